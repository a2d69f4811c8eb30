"""quantize: int8 with the hardware profile's preset, on the fused graph: dynamic (QOperator, IntegerOps;
activations quantized at run time) or static (QDQ; activation ranges from calibration data)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx

from builder.runtime.manifest import sha256_file
from builder.stages.common import BuildContext, save_onnx

QUANT_TYPES = {"int8": "QInt8", "uint8": "QUInt8"}
QUANTIZED_OPS = (
    "MatMulInteger",
    "DynamicQuantizeMatMul",
    "QAttention",
    "MatMulIntegerToFloat",
    "GatherBlockQuantized",
)


def settings(cfg: Any) -> dict[str, Any]:
    """The quantization config with the hardware preset filled in where it says null."""
    preset, q = cfg.hardware.quantization, cfg.quantization
    keys = ("activation_type", "weight_type", "per_channel", "reduce_range")
    chosen = {k: q[k] if q[k] is not None else preset[k] for k in keys}
    if q.method == "static" and q.reduce_range is None and chosen["weight_type"] == "int8":
        # u8 x s8 products can saturate (VPMADDUBSW) on x86 CPUs without VNNI: use 7-bit weights there.
        hw = cfg.hardware
        chosen["reduce_range"] = bool(hw.device == "cpu" and not any("vnni" in f for f in hw.cpu_flags))
    extra = {"exclude_op_types": list(q.exclude_op_types), "exclude_nodes": list(q.exclude_nodes)}
    return {"method": q.method, "op_types": list(q.op_types), **chosen, **extra}


def cache_config(ctx: BuildContext) -> dict | None:
    chosen = settings(ctx.cfg)
    if chosen["method"] == "none":
        return None
    if chosen["method"] != "static":
        return {"quantization": chosen}
    calibration = dict(ctx.cfg.quantization.calibration)
    ev = ctx.cfg.evaluation
    dataset = calibration["dataset"] or ev.dataset
    data_file = Path(dataset).expanduser()
    return {  # static: the calibration data is an input too
        "quantization": chosen,
        "calibration": calibration,
        "dataset": dataset,
        "dataset_sha256": sha256_file(data_file) if data_file.is_file() else None,
        "dataset_revision": ev.revision,
        "columns": dict(ev.columns),
        "max_length": ctx.max_length,
    }


def run(ctx: BuildContext) -> None:
    chosen = settings(ctx.cfg)
    if chosen["method"] == "none":
        ctx.metrics["quantize"] = {"method": "none", "skipped": True}
        return

    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = ctx.workdir / "quantized.onnx"
    record: dict[str, Any] = {}
    with _quiet_root_logger():  # the quantizer logs "please consider pre-processing" on the root logger
        if chosen["method"] == "static":
            from builder.stages.static_quantization import quantize as quantize_static

            record = quantize_static(ctx, chosen, out)
        else:
            from builder.stages.per_channel import vectorized_per_channel

            with vectorized_per_channel():  # the same bytes as ORT's channel-by-channel loop, ~1 s sooner
                quantize_dynamic(
                    str(ctx.onnx_path),
                    str(out),
                    weight_type=getattr(QuantType, QUANT_TYPES[chosen["weight_type"]]),
                    per_channel=chosen["per_channel"],
                    reduce_range=chosen["reduce_range"],
                    op_types_to_quantize=[
                        op for op in chosen["op_types"] if op not in chosen["exclude_op_types"]
                    ],
                    nodes_to_exclude=chosen["exclude_nodes"],
                    # Fused contrib ops (Attention, SkipLayerNormalization) defeat ONNX shape inference; without a
                    # default type the quantizer cannot type their outputs: the failure Optimum hits on O3 graphs.
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
                )
    model = onnx.load(str(out))
    ctx.onnx_path = save_onnx(model, ctx.workdir / "model.onnx")
    quantized = sum(n.op_type in QUANTIZED_OPS for n in model.graph.node)
    ctx.metrics["quantize"] = chosen | record | {"quantized_nodes": quantized}


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)
