"""optimize: ONNX Runtime's basic graph optimizations and its transformer fusions (Optimum's O1-O4), on each
graph."""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort

from builder.make.context import BuildContext
from builder.make.files import keep_inputs, onnx_files, remove_onnx, save_onnx
from builder.tasks.architectures import ARCHITECTURES

FUSED_OPS = (
    "Attention",
    "MultiHeadAttention",
    "SkipLayerNormalization",
    "LayerNormalization",
    "SkipSimplifiedLayerNormalization",
    "SimplifiedLayerNormalization",
    "GroupQueryAttention",
    "RotaryEmbedding",
    "EmbedLayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
    "GemmFastGelu",
)


def cache_config(ctx: BuildContext) -> dict | None:
    opt = ctx.cfg.optimization
    return None if opt.level == "none" else {"optimization": dict(opt), "device": ctx.cfg.hardware.device}


def run(ctx: BuildContext) -> dict[str, Any]:
    opt = ctx.cfg.optimization
    if opt.level == "none":
        nodes = sum(len(onnx.load(str(p), load_external_data=False).graph.node) for p in ctx.graphs.values())
        return {"level": opt.level, "nodes_before": nodes, "skipped": True}
    folder = ctx.stage_dir("optimize")
    # ONNX Runtime's own pass opens a session at the default log level, which warns of every overridable initializer
    # (a decoder's logits_to_keep, builder/make/logits_to_keep.py): errors only, as builder's sessions log
    ort.set_default_logger_severity(3)
    graphs = {}
    for role, path in list(ctx.graphs.items()):
        inputs = list(onnx.load(str(path), load_external_data=False).graph.input)
        if len(onnx_files(path)) > 1:
            graphs[role], model, weights = _optimize_external(ctx, role, path, folder)
        else:
            (graphs[role], model), weights = _optimize(ctx, role, path), None
        keep_inputs(model, inputs)  # the optimizer prunes inputs nothing reads
        ctx.graphs[role] = save_onnx(model, folder / path.name, ctx.cfg.export.external_data, weights)
        del model
        remove_onnx(folder / f"{path.stem}.ort.onnx")  # ONNX Runtime's pass, on a graph past 2 GB
    fused = Counter()
    for g in graphs.values():
        fused.update(g["fused_operators"])
    return {
        "level": opt.level,
        "nodes_before": sum(g["nodes_before"] for g in graphs.values()),
        "nodes_after": sum(g["nodes_after"] for g in graphs.values()),
        "fused_operators": dict(fused),
        "attention_fused": any(
            fused.get(op) for op in ("Attention", "MultiHeadAttention", "GroupQueryAttention")
        ),
        "fp16": opt.fp16,
        "graphs": graphs,
    }


def _fusion_settings(ctx: BuildContext) -> tuple[str, int, int, Any]:
    """(optimizer model type, heads, hidden size, FusionOptions) for this model and level."""
    from onnxruntime.transformers.fusion_options import FusionOptions

    opt, mc = ctx.cfg.optimization, ctx.models.config
    arch = ARCHITECTURES[mc["model_type"]]
    options = FusionOptions(arch.optimizer_type)
    # The raw 0/1 mask keeps fused attention right with left padding too (mask_index assumes right padding).
    options.use_raw_attention_mask(True)
    options.enable_embed_layer_norm = opt.fuse_embed_layer_norm
    options.enable_gelu_approximation = opt.gelu_approximation
    return arch.optimizer_type, mc.get(arch.heads_key, 0), mc.get(arch.hidden_key, 0), options


def fp32_io(ctx: BuildContext, role: str, model: onnx.ModelProto) -> list[str]:
    """The inputs and outputs an fp16 graph keeps in float32: all but a key/value cache. Apps feed and read the
    same arrays as for any other bundle; the cache goes back in as it came out, in the graph's float16, so a step
    moves half the bytes, no Cast copies it, and GroupQueryAttention writes it in place (shared_cache)."""
    graph = next(g for g in ctx.models.graphs if g.role == role)
    cache = {o.name for o in graph.outputs if o.cache}
    names = [v.name for v in (*model.graph.input, *model.graph.output)]
    return [n for n in names if n not in cache and not n.startswith("past_key_values.")]


def _optimize(ctx: BuildContext, role: str, path: Any) -> tuple[dict[str, Any], onnx.ModelProto]:
    from onnxruntime.transformers.optimizer import optimize_model

    opt = ctx.cfg.optimization
    model_type, heads, hidden, options = _fusion_settings(ctx)
    before = len(onnx.load(str(path), load_external_data=False).graph.node)
    model = optimize_model(
        str(path),
        model_type=model_type,
        num_heads=heads,
        hidden_size=hidden,
        optimization_options=options,
        opt_level=opt.ort_level,
        use_gpu=ctx.cfg.hardware.device == "cuda",
        only_onnxruntime=not opt.fuse_transformers,
    )
    if opt.fp16:
        model.convert_float_to_float16(keep_io_types=fp32_io(ctx, role, model.model))
    return _record(before, model.model), model.model


def _optimize_external(
    ctx: BuildContext, role: str, path: Path, folder: Path
) -> tuple[dict[str, Any], onnx.ModelProto, Path]:
    """A graph whose weights are in a data file (past 2 GB), optimized as optimize_model() does but without
    ever holding its weights: ONNX Runtime's pass reads the file itself, and the fusions run on the graph alone,
    reading from the data file only the few constants they check (optimize_model on a 1.5B decoder copies its
    6 GB of weights several times over and runs out of memory on 24 GB). Returns the record, the graph, and the
    folder its weights are read from."""
    from onnxruntime.transformers.optimizer import (
        MODEL_TYPES,
        optimize_by_fusion,
        optimize_by_onnxruntime,
    )

    opt = ctx.cfg.optimization
    model_type, heads, hidden, options = _fusion_settings(ctx)
    before = len(onnx.load(str(path), load_external_data=False).graph.node)
    source = path
    if opt.ort_level > 0:
        source = folder / f"{path.stem}.ort.onnx"
        optimize_by_onnxruntime(
            str(path),
            use_gpu=ctx.cfg.hardware.device == "cuda",
            optimized_model_path=str(source),
            opt_level=opt.ort_level,
            disabled_optimizers=["ConstantSharing"],  # as optimize_model() at the levels builder uses (0, 1)
            save_as_external_data=True,
        )
    graph = onnx.load(str(source), load_external_data=False)
    # The fusions read constants with paths relative to the working folder: the graph's own, while they run.
    with contextlib.chdir(source.parent):
        if opt.fuse_transformers:
            model = optimize_by_fusion(graph, model_type, heads, hidden, options)
        else:
            model = MODEL_TYPES[model_type][0](graph, heads, hidden)
        if opt.fp16:
            # reads each weight, keeps half of it
            model.convert_float_to_float16(keep_io_types=fp32_io(ctx, role, model.model))
    return _record(before, model.model), model.model, source.parent


def _record(before: int, model: onnx.ModelProto) -> dict[str, Any]:
    counts = Counter(node.op_type for node in model.graph.node)
    fused = {op: counts[op] for op in FUSED_OPS if counts[op]}
    return {"nodes_before": before, "nodes_after": len(model.graph.node), "fused_operators": fused}
