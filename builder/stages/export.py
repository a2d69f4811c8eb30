"""export: the PyTorch model to ONNX (TorchScript exporter, eager attention so ONNX Runtime can fuse it),
dynamic batch and sequence axes, checked against PyTorch on the built-in inputs."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import torch

from builder.errors import StageError
from builder.runtime.session import create_session
from builder.stages.common import BuildContext, fidelity_batches, onnx_size, save_onnx, torch_outputs


def cache_config(ctx: BuildContext) -> dict:
    c = ctx.cfg
    return {
        "model": {k: c.model[k] for k in ("source", "revision", "trust_remote_code")},
        "task": dict(c.task),
        "export": dict(c.export),
        "pooling": ctx.pooling,
    }


def run(ctx: BuildContext) -> None:
    module = ctx.torch_model(eager=True)
    names, outputs = ctx.input_names, ctx.task.outputs
    sample = fidelity_batches(ctx)[0]
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    for name, token_level in zip(outputs, ctx.task.token_level, strict=True):
        axes[name] = {0: "batch", 1: "sequence"} if token_level else {0: "batch"}
    raw = ctx.workdir / "export.onnx"
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about python control flow on shapes
        torch.onnx.export(
            module,
            tuple(torch.from_numpy(sample[n]) for n in names),
            str(raw),
            input_names=list(names),
            output_names=list(outputs),
            dynamic_axes=axes,
            opset_version=ctx.cfg.export.opset,
            do_constant_folding=True,
            dynamo=False,
        )
    path = save_onnx(onnx.load(str(raw)), ctx.workdir / "fp32.onnx")
    raw.unlink()
    ctx.onnx_path = path
    ctx.runtime.update(inputs=list(names), outputs=list(outputs), opset=ctx.cfg.export.opset)
    ctx.metrics["export"] = {
        "opset": ctx.cfg.export.opset,
        "max_abs_diff": _check(ctx, module),
        "size_bytes": onnx_size(path),
    }


def _check(ctx: BuildContext, module: torch.nn.Module) -> float:
    """Max |onnx - torch| over valid (unpadded) positions; fails the build beyond atol + rtol*|torch|."""
    atol, rtol = ctx.cfg.export.atol, ctx.cfg.export.rtol
    session = create_session(ctx.onnx_path, {"providers": ["CPUExecutionProvider"]})
    worst, excess = 0.0, -np.inf
    for batch in fidelity_batches(ctx):
        expected = torch_outputs(module, batch, ctx.input_names)
        got = session.run(list(ctx.task.outputs), batch)
        mask = batch["attention_mask"].astype(bool)
        for e, g, token_level in zip(expected, got, ctx.task.token_level, strict=True):
            e, g = (e[mask], g[mask]) if token_level else (e, g)
            diff = np.abs(e - g)
            worst = max(worst, float(diff.max(initial=0.0)))
            excess = max(excess, float((diff - atol - rtol * np.abs(e)).max(initial=-np.inf)))
    if excess > 0:
        raise StageError(
            f"export: the ONNX graph differs from PyTorch by up to {worst:.3g} (allowed: export.atol={atol} "
            f"+ export.rtol={rtol} x |value|). Try another export.opset, or loosen export.atol."
        )
    return worst
