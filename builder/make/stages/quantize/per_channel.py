"""Per-channel weight quantization for ONNX Runtime's dynamic quantizer, one array operation per weight.

ONNX Runtime quantizes a weight one channel at a time in Python (`quantize_weight_per_channel_impl`), about half
of a small model's quantize stage (docs/benchmarks.md). This computes the
same per-channel ranges, scales, zero points and integers with the same float steps (ORT's
`compute_scale_zp`, applied to all channels at once, and ORT's own `quantize_nparray`), and writes the same
initializers in the same order: the quantized model is byte-identical (tests/test_per_channel.py compares
against ORT's loop). Anything but the plain case (fp32 weights, 8-bit types, no user overrides, no minimum
real range) goes to ORT's method, and an ORT without that method is left alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import onnx
import onnx.numpy_helper


@contextlib.contextmanager
def vectorized_per_channel() -> Iterator[dict[str, int]]:
    """While active, ONNX Runtime's dynamic quantizer uses `quantize_weight_per_channel` below. Yields counts of
    the weights done here and by ORT's own method (`installed` 0: this ORT has no such method)."""
    from onnxruntime.quantization.onnx_quantizer import ONNXQuantizer

    counts = {"installed": 0, "vectorized": 0, "by_onnxruntime": 0}
    original = getattr(ONNXQuantizer, "quantize_weight_per_channel_impl", None)
    if original is None:
        yield counts
        return
    own = "quantize_weight_per_channel_impl" in ONNXQuantizer.__dict__

    def impl(
        self: Any, weight_name: str, weight_qtype: int, channel_axis: int, *args: Any, **kwargs: Any
    ) -> Any:
        done = quantize_weight_per_channel(self, weight_name, weight_qtype, channel_axis, *args, **kwargs)
        counts["vectorized" if done else "by_onnxruntime"] += 1
        return done or original(self, weight_name, weight_qtype, channel_axis, *args, **kwargs)

    ONNXQuantizer.quantize_weight_per_channel_impl = impl
    counts["installed"] = 1
    try:
        yield counts
    finally:
        if own:
            ONNXQuantizer.quantize_weight_per_channel_impl = original
        else:
            del ONNXQuantizer.quantize_weight_per_channel_impl


def quantize_weight_per_channel(
    quantizer: Any,
    weight_name: str,
    weight_qtype: int,
    channel_axis: int,
    reduce_range: bool = True,
    keep_float_weight: bool = False,
) -> tuple[str, str, str] | None:
    """ORT's per-channel weight quantization for 8-bit types; None where ORT's own method must do it."""
    eight_bit = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    try:  # ORT's helpers and quantizer attributes as 1.2x-1.3x name them; another layout goes to ORT's method
        from onnxruntime.quantization.quant_utils import (
            TENSOR_NAME_QUANT_SUFFIX,
            find_by_name,
            get_qmin_qmax_for_qType,
            normalize_axis,
            quantize_nparray,
            tensor_proto_to_array,
        )

        overrides = quantizer.tensor_quant_overrides.get_per_channel_overrides(
            weight_name, default_val=[{"axis": channel_axis}]
        )
        plain = overrides == [{"axis": channel_axis}] and quantizer.min_real_range is None
        symmetric = quantizer.is_weight_symmetric(weight_qtype)
        reduced = quantizer.reduce_range and reduce_range
        initializer = find_by_name(weight_name, quantizer.model.initializer())
    except (ImportError, AttributeError, TypeError):
        return None
    if (
        weight_qtype not in eight_bit or not plain or initializer is None
    ):  # a missing one: ORT raises its error
        return None
    weights = tensor_proto_to_array(initializer)
    valid, axis = normalize_axis(channel_axis, weights.ndim)
    if not valid or weights.dtype != np.float32 or weights.size == 0:
        return None
    qmin, qmax = get_qmin_qmax_for_qType(weight_qtype, reduced, symmetric=symmetric)

    channels = np.moveaxis(weights, axis, 0)
    rows = channels.reshape(channels.shape[0], -1)
    zero_point, scale = _scale_zero_point(rows.min(axis=1), rows.max(axis=1), qmin, qmax, symmetric)
    quantized = quantize_nparray(weight_qtype, rows, scale[:, None], zero_point[:, None])

    q_name, zp_name, scale_name = (
        weight_name + TENSOR_NAME_QUANT_SUFFIX,
        weight_name + "_zero_point",
        weight_name + "_scale",
    )
    shape = [initializer.dims[axis]]
    quantizer.model.initializer_extend(
        [
            onnx.helper.make_tensor(scale_name, initializer.data_type, shape, scale.tolist()),
            onnx.helper.make_tensor(zp_name, weight_qtype, shape, zero_point.tolist()),
        ]
    )
    if not keep_float_weight:
        values = np.moveaxis(quantized.reshape(channels.shape), 0, axis)
        values = np.asarray(values, dtype=onnx.helper.tensor_dtype_to_np_dtype(weight_qtype)).reshape(
            initializer.dims
        )
        quantizer.model.initializer_extend([onnx.numpy_helper.from_array(values, q_name)])
    return q_name, zp_name, scale_name


def _scale_zero_point(
    rmin: np.ndarray, rmax: np.ndarray, qmin: np.ndarray, qmax: np.ndarray, symmetric: bool
) -> tuple[np.ndarray, np.ndarray]:
    """ORT's compute_scale_zp (quant_utils.py), per channel: the same dtypes at every step."""
    dtype = rmin.dtype
    rmin = np.minimum(rmin, np.array(0, dtype=dtype))
    rmax = np.maximum(rmax, np.array(0, dtype=dtype))
    if symmetric:
        absmax = np.maximum(np.abs(rmin), np.abs(rmax))
        rmin, rmax = -absmax, +absmax
    dr = np.asarray(rmax, dtype=np.float64) - np.asarray(rmin, dtype=np.float64)
    dq = np.array(qmax, dtype=np.float64) - np.array(qmin, dtype=np.float64)
    scale = dr / dq
    if symmetric:
        zero = np.array(np.round((qmin + qmax) / np.array(2.0, dtype=np.float64)), dtype=qmin.dtype)
        zero_point = np.full(scale.shape, zero, dtype=qmin.dtype)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # the tiny-scale channels are replaced below
            zero_point = np.round(qmin - rmin / scale).astype(qmin.dtype)
    tiny = scale < np.finfo(dtype).tiny  # a channel of zeros: ORT uses scale 1, zero point 0
    scale = scale.astype(dtype)
    scale[tiny] = 1.0
    zero_point[tiny] = 0
    return zero_point, scale
