"""quantize: int8 with the hardware profile's preset, on each fused graph: dynamic (QOperator, IntegerOps;
activations quantized at run time; dynamic.py) or static (QDQ; activation ranges from calibration data;
static.py)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import onnx

from builder.config import quantization_settings
from builder.make.context import BuildContext
from builder.make.files import save_onnx

QUANTIZED_OPS = (
    "MatMulInteger",
    "DynamicQuantizeMatMul",
    "QAttention",
    "MatMulIntegerToFloat",
    "GatherBlockQuantized",
)


def cache_config(ctx: BuildContext) -> dict | None:
    chosen = quantization_settings(ctx.cfg)
    if chosen["method"] == "none":
        return None
    if chosen["method"] != "static":
        return {"quantization": chosen}
    from builder.make.stages.quantize.static import calibration_identity

    return {
        "quantization": chosen,
        **calibration_identity(ctx),
    }  # static: the calibration data is an input too


def run(ctx: BuildContext) -> dict[str, Any]:
    chosen = quantization_settings(ctx.cfg)
    if chosen["method"] == "none":
        return {"method": "none", "skipped": True}
    folder = ctx.stage_dir("quantize")
    calibrations: dict[str, Any] = {}
    quantized = 0
    for graph in ctx.models.graphs:
        out = folder / f"{graph.role}.quantized.onnx"
        with _quiet_root_logger():  # the quantizer logs "please consider pre-processing" on the root logger
            if chosen["method"] == "static":
                from builder.make.stages.quantize.static import quantize_static

                calibrations[graph.role] = quantize_static(ctx, graph, chosen, out)
            else:
                from builder.make.stages.quantize.dynamic import quantize_dynamic

                quantize_dynamic(ctx.graphs[graph.role], chosen, out)
        model = onnx.load(str(out))
        ctx.graphs[graph.role] = save_onnx(model, folder / graph.file)
        quantized += sum(n.op_type in QUANTIZED_OPS for n in model.graph.node)
    record = {"quantized_nodes": quantized}
    if calibrations:  # one graph: its calibration record; several: by role
        record["calibration"] = calibrations["model"] if list(calibrations) == ["model"] else calibrations
    return chosen | record


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)
