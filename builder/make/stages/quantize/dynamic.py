"""Dynamic int8 (QOperator, IntegerOps): weights quantized ahead, activations at run time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx

from builder.make.files import onnx_files

QUANT_TYPES = {"int8": "QInt8", "uint8": "QUInt8"}


def quantize_dynamic(source: Path, chosen: dict[str, Any], out: Path) -> None:
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    from builder.make.stages.quantize.per_channel import vectorized_per_channel

    with vectorized_per_channel():  # the same bytes as ORT's channel-by-channel loop, ~1 s sooner
        ort_quantize_dynamic(
            str(source),
            str(out),
            weight_type=getattr(QuantType, QUANT_TYPES[chosen["weight_type"]]),
            per_channel=chosen["per_channel"],
            reduce_range=chosen["reduce_range"],
            op_types_to_quantize=[op for op in chosen["op_types"] if op not in chosen["exclude_op_types"]],
            nodes_to_exclude=chosen["exclude_nodes"],
            # Fused contrib ops (Attention, SkipLayerNormalization) defeat ONNX shape inference; without a
            # default type the quantizer cannot type their outputs: the failure Optimum hits on O3 graphs.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT, "MatMulConstBOnly": True},
            # a graph kept in external data stays there (protobuf cannot write one past 2 GB)
            use_external_data_format=len(onnx_files(source)) > 1,
        )
