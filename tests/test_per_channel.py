"""The vectorized per-channel weight quantization writes the same bytes as ONNX Runtime's channel-by-channel
loop, for every weight type and range setting builder uses, edge-case channels included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.onnx_quantizer import ONNXQuantizer

from builder.make.stages.quantize.per_channel import vectorized_per_channel


def _graph(path: Path) -> Path:
    """Embedding Gather -> MatMul -> MatMul, weights with all-zero, one-signed, tiny and wide channels."""
    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.05, size=(16, 24)).astype(np.float32)
    w1[:, 0] = 0.0  # a channel of zeros: scale 1, zero point 0
    w1[:, 1] = np.abs(w1[:, 1]) + 0.1  # only positive
    w1[:, 2] = -np.abs(w1[:, 2]) - 0.1  # only negative
    w1[:, 3] = 1e-39  # subnormal: below float32's tiny
    w1[:, 4] *= 1000.0  # wide
    w2 = rng.normal(0, 1.0, size=(24, 8)).astype(np.float32)
    table = rng.normal(0, 0.5, size=(50, 16)).astype(np.float32)
    nodes = [
        helper.make_node("Gather", ["table", "ids"], ["emb"]),
        helper.make_node("MatMul", ["emb", "w1"], ["h"]),
        helper.make_node("MatMul", ["h", "w2"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", 8])],
        [numpy_helper.from_array(a, n) for n, a in (("table", table), ("w1", w1), ("w2", w2))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("weight_type", [QuantType.QInt8, QuantType.QUInt8], ids=["int8", "uint8"])
@pytest.mark.parametrize("reduce_range", [False, True], ids=["full", "reduced"])
def test_same_bytes_as_onnxruntime(tmp_path: Path, weight_type: QuantType, reduce_range: bool) -> None:
    src = _graph(tmp_path / "model.onnx")

    def quantize(out: Path) -> bytes:
        quantize_dynamic(
            str(src),
            str(out),
            weight_type=weight_type,
            per_channel=True,
            reduce_range=reduce_range,
            op_types_to_quantize=["MatMul", "Gather"],
            extra_options={"DefaultTensorType": TensorProto.FLOAT, "MatMulConstBOnly": True},
        )
        return out.read_bytes()

    reference = quantize(tmp_path / "ort.onnx")
    with vectorized_per_channel() as counts:
        ours = quantize(tmp_path / "ours.onnx")
    assert counts["installed"] and counts["vectorized"] == 2  # both MatMul weights went through our path
    assert ours == reference
    assert "quantize_weight_per_channel_impl" not in ONNXQuantizer.__dict__  # ORT's own method is back


def test_overrides_go_to_onnxruntime(tmp_path: Path) -> None:
    src = _graph(tmp_path / "model.onnx")
    kwargs = {
        "weight_type": QuantType.QInt8,
        "per_channel": True,
        "op_types_to_quantize": ["MatMul"],
        "extra_options": {
            "MatMulConstBOnly": True,
            "TensorQuantOverrides": {"w1": [{"axis": 1, "symmetric": False}]},
        },
    }
    quantize_dynamic(str(src), str(tmp_path / "ort.onnx"), **kwargs)
    with vectorized_per_channel() as counts:
        quantize_dynamic(str(src), str(tmp_path / "ours.onnx"), **kwargs)
    assert counts == {"installed": 1, "vectorized": 1, "by_onnxruntime": 1}
    assert (tmp_path / "ours.onnx").read_bytes() == (tmp_path / "ort.onnx").read_bytes()
