"""quantize: dynamic int8 (QOperator, IntegerOps) with the hardware profile's preset, on the fused graph."""

from __future__ import annotations

import logging

import onnx

from builder.stages.common import BuildContext, save_onnx

QUANT_TYPES = {"int8": "QInt8", "uint8": "QUInt8"}


def settings(cfg) -> dict:  # type: ignore[no-untyped-def]
    """The quantization config with the hardware preset filled in where it says null."""
    preset, q = cfg.hardware.quantization, cfg.quantization
    pick = {
        k: (q[k] if q[k] is not None else preset[k])
        for k in ("activation_type", "weight_type", "per_channel", "reduce_range")
    }
    return {"method": q.method, "op_types": list(q.op_types), **pick}


def run(ctx: BuildContext) -> None:
    chosen = settings(ctx.cfg)
    if chosen["method"] == "none":
        ctx.metrics["quantize"] = {"method": "none", "skipped": True}
        return

    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.getLogger().setLevel(
        max(logging.getLogger().level, logging.ERROR)
    )  # "consider pre-processing" hints
    out = ctx.workdir / "quantized.onnx"
    quantize_dynamic(
        str(ctx.onnx_path),
        str(out),
        weight_type=getattr(QuantType, QUANT_TYPES[chosen["weight_type"]]),
        per_channel=chosen["per_channel"],
        reduce_range=chosen["reduce_range"],
        op_types_to_quantize=chosen["op_types"],
        # Fused contrib ops (Attention, SkipLayerNormalization) defeat ONNX shape inference; without a default
        # type the quantizer cannot type their outputs: the failure Optimum hits on O3 graphs.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
    )
    model = onnx.load(str(out))
    ctx.onnx_path = save_onnx(model, ctx.workdir / "model.onnx")
    quantized = sum(
        n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul", "QAttention", "MatMulIntegerToFloat")
        for n in model.graph.node
    )
    ctx.metrics["quantize"] = chosen | {"quantized_nodes": quantized}
