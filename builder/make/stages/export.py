"""export: each of the task's graphs from PyTorch to ONNX (TorchScript exporter; encoders in eager attention, which
ONNX Runtime's optimizer fuses; decoders with their attention written fused, Task.export_module), with dynamic batch
and sequence axes, checked against PyTorch as transformers runs it on the built-in inputs."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from builder.errors import StageError
from builder.make.context import BuildContext
from builder.make.files import keep_inputs, onnx_size, save_onnx, stored_size
from builder.make.logits_to_keep import add_logits_to_keep
from builder.make.stages.fidelity import cache_vectors, masks
from builder.runtime.session import create_session
from builder.tasks import Graph
from builder.tasks.torch_module import torch_outputs


def cache_config(ctx: BuildContext) -> dict[str, Any]:
    c = ctx.cfg
    return {
        "model": {k: c.model[k] for k in ("source", "revision", "trust_remote_code")},
        "task": ctx.task.name,
        "options": ctx.task.runtime_options(ctx.options, ctx.source.path),
        "export": dict(c.export),
        **({"fused_attention_problem": problem} if (problem := _fused_attention_problem(ctx)) else {}),
    }


def _fused_attention_problem(ctx: BuildContext) -> str | None:
    from builder.tasks.text_generation import fused_attention_problem

    return fused_attention_problem(ctx.cfg.hardware.device)


def run(ctx: BuildContext) -> dict[str, Any]:
    modules = ctx.models.torch_modules(eager=True)
    facts = ctx.models.facts
    folder = ctx.stage_dir("export")
    graphs = {}
    for graph in ctx.models.graphs:
        batches = ctx.task.sample_batches(facts, graph)
        inputs = graph.input_names(facts)
        try:
            traced, attention = ctx.task.export_module(
                modules[graph.role], ctx.cfg.export.attention, _fused_attention_problem(ctx)
            )
        except ValueError as e:
            raise StageError(f"export: {e}") from None
        fused = attention.get("attention") == "GroupQueryAttention"
        path = _export(traced, graph, inputs, batches[0], folder, ctx.cfg.export, fused)
        del traced
        ctx.graphs[graph.role] = path
        # checked against the module as transformers runs it, not against the traced one
        checked = [c for b in batches for c in ctx.task.check_batches(b, fused)]
        graphs[graph.role] = {
            "max_abs_diff": _check(ctx, modules[graph.role], graph, path, checked),
            "size_bytes": onnx_size(path),
            **attention,
        }
    record = {
        "opset": ctx.cfg.export.opset,
        "max_abs_diff": max(g["max_abs_diff"] for g in graphs.values()),
        "size_bytes": sum(g["size_bytes"] for g in graphs.values()),
        "graphs": graphs,
    }
    if len(graphs) > 1:  # the bundle stores each distinct weight once (writer.SHARED_DATA)
        record["stored_bytes"] = stored_size(list(ctx.graphs.values()))
    return record


def _export(
    module: torch.nn.Module,
    graph: Graph,
    names: tuple[str, ...],
    sample: dict,
    folder: Path,
    export: Any,
    fused: bool,
) -> Path:
    # A folder of its own: past 2 GB the exporter writes each weight to a file of its own beside the graph.
    raw_dir = folder / f"{graph.role}.raw"
    shutil.rmtree(raw_dir, ignore_errors=True)
    raw_dir.mkdir()
    raw = raw_dir / graph.file
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow on shapes
        torch.onnx.export(
            module,
            tuple(torch.from_numpy(sample[n]) for n in names),
            str(raw),
            input_names=list(names),
            output_names=list(graph.output_names),
            dynamic_axes=graph.dynamic_axes(names),
            opset_version=export.opset,
            do_constant_folding=True,
            dynamo=False,
            # fused decoder attention (builder.tasks.decoder_attention); named only where used: the exporter
            # warns about an unused domain
            custom_opsets={"com.microsoft": 1} if fused else None,
        )
    model = onnx.load(str(raw), load_external_data=False)  # past 2 GB: its weights are copied file to file
    _restore_unused_inputs(model, names, sample, graph.dynamic_axes(names))
    if graph.logits_to_keep:
        add_logits_to_keep(model)
    path = save_onnx(model, folder / graph.file, export.external_data, weights_from=raw_dir)
    shutil.rmtree(raw_dir)
    return path


def _restore_unused_inputs(model: onnx.ModelProto, names: tuple[str, ...], sample: dict, axes: dict) -> None:
    """The exporter drops an input the graph never reads (a fused decoder's position_ids: its rotary positions come
    from the cache); it goes back (files.keep_inputs), typed as the sample and named as the dynamic axes."""
    traced = {i.name: i for i in model.graph.input}
    declared = []
    for name in names:
        if name not in traced:
            array = sample[name]
            dims = [axes.get(name, {}).get(d, size) for d, size in enumerate(array.shape)]
            dtype = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
            declared.append(onnx.helper.make_tensor_value_info(name, dtype, dims))
        else:
            declared.append(traced[name])
    keep_inputs(model, declared)


def _check(ctx: BuildContext, module: torch.nn.Module, graph: Graph, path: Any, batches: list[dict]) -> float:
    """Max |onnx - torch| over valid (unpadded) positions, a cache's included (what a padding position holds is
    never read); fails the build beyond atol + rtol*|torch|."""
    atol, rtol = ctx.cfg.export.atol, ctx.cfg.export.rtol
    # a check that runs briefly: no huge pages for it (runtime/huge_pages.py)
    session = create_session(path, {"providers": ["CPUExecutionProvider"], "huge_pages": False})
    taken = [i.name for i in session.get_inputs()]
    worst, excess = 0.0, -np.inf
    for batch in batches:
        expected = torch_outputs(module, batch, graph.input_names(ctx.models.facts))
        got = session.run(list(graph.output_names), {n: batch[n] for n in taken})
        for e, g, output in zip(expected, got, graph.outputs, strict=True):
            mask, full = masks(batch, output, e)
            if output.cache:  # [B, heads, positions, dim]: the positions the whole mask marks real
                e, g = cache_vectors(e, g, full)
            elif output.per_token:
                e, g = e[mask], g[mask]
            diff = np.abs(e - g)
            worst = max(worst, float(diff.max(initial=0.0)))
            excess = max(excess, float((diff - atol - rtol * np.abs(e)).max(initial=-np.inf)))
    if excess > 0:
        raise StageError(
            f"export: the {graph.role} graph differs from PyTorch by up to {worst:.3g} (allowed: export.atol={atol} "
            f"+ export.rtol={rtol} x |value|). Try another export.opset, or loosen export.atol."
        )
    return worst
