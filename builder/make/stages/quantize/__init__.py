"""quantize: on each fused graph, int8 with the hardware profile's preset, dynamic (QOperator, IntegerOps;
activations quantized at run time; dynamic.py) or static (QDQ; activation ranges from calibration data;
static.py), or int4 weight-only (MatMulNBits; int4.py)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import onnx

from builder.config import quantization_settings
from builder.make.context import BuildContext
from builder.make.files import keep_inputs, remove_onnx, save_onnx
from builder.make.stages.quantize.gemm import gemm_as_matmul

QUANTIZED_OPS = (
    "MatMulInteger",
    "DynamicQuantizeMatMul",
    "QAttention",
    "MatMulIntegerToFloat",
    "GatherBlockQuantized",
    "MatMulNBits",
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
    kept: dict[str, list[str]] = {}
    quantized = 0
    gemms = 0
    external = ctx.cfg.export.external_data
    for graph in ctx.models.graphs:
        out = folder / f"{graph.role}.quantized.onnx"
        intermediates = [out]
        inputs = list(onnx.load(str(ctx.graphs[graph.role]), load_external_data=False).graph.input)
        if (
            chosen["method"] in ("dynamic", "int4")
            and "MatMul" in chosen["op_types"]
            and _has_gemm(ctx, graph)
        ):
            model = onnx.load(str(ctx.graphs[graph.role]))
            rewritten = gemm_as_matmul(model)
            if rewritten:  # GPT-2's Conv1D layers: quantizable once they are MatMuls
                gemms += rewritten
                ctx.graphs[graph.role] = save_onnx(model, folder / f"{graph.role}.matmul.onnx", external)
                intermediates.append(ctx.graphs[graph.role])
            del model  # a large graph: one copy in memory at a time
        with _quiet_root_logger():  # the quantizer logs "please consider pre-processing" on the root logger
            if chosen["method"] == "static":
                from builder.make.stages.quantize.static import quantize_static

                calibrations[graph.role] = quantize_static(ctx, graph, chosen, out)
            elif chosen["method"] == "int4":
                from builder.make.stages.quantize.int4 import quantize_int4

                kept[graph.role] = quantize_int4(ctx.graphs[graph.role], chosen, out, external)
            else:
                from builder.make.stages.quantize.dynamic import quantize_dynamic

                quantize_dynamic(ctx.graphs[graph.role], chosen, out)
        model = onnx.load(str(out), load_external_data=False)
        keep_inputs(model, inputs)  # the quantizers prune inputs nothing reads
        ctx.graphs[graph.role] = save_onnx(model, folder / graph.file, external, weights_from=out.parent)
        quantized += sum(n.op_type in QUANTIZED_OPS for n in model.graph.node)
        del model
        for path in intermediates:
            remove_onnx(path)
    record: dict[str, Any] = {"quantized_nodes": quantized}
    if gemms:
        record["gemm_as_matmul"] = gemms
    if kept:
        record["float_nodes"] = kept["model"] if list(kept) == ["model"] else kept
    if calibrations:  # one graph: its calibration record; several: by role
        record["calibration"] = calibrations["model"] if list(calibrations) == ["model"] else calibrations
    return chosen | record


def _has_gemm(ctx: BuildContext, graph: Any) -> bool:
    """Whether the graph has Gemm nodes to rewrite, read without its weights."""
    from builder.make.files import all_graphs

    model = onnx.load(str(ctx.graphs[graph.role]), load_external_data=False)
    return any(n.op_type == "Gemm" for g in all_graphs(model.graph) for n in g.node)


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)
