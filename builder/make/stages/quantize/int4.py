"""int4 weight-only (MatMulNBits, QOperator): each constant MatMul weight (and, when asked, Gather's embedding
table) in blocks of 4-bit integers along its input axis, a scale per block (and a zero point unless symmetric).
Activations stay float; `accuracy_level` says what the kernel computes in. Round-to-nearest: no randomness, so
the same graph gives the same bytes."""

from __future__ import annotations

import fnmatch
import logging
from pathlib import Path
from typing import Any

import onnx

from builder.make.files import save_onnx


def quantize_int4(source: Path, chosen: dict[str, Any], out: Path, external_data: str = "auto") -> list[str]:
    """Quantize `source` into `out`; returns the names of the nodes left in float because exclude_nodes named
    them (glob patterns: e.g. '*lm_head*')."""
    from onnxruntime.quantization.quant_utils import QuantFormat

    nbits = _quantizer_module()
    DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer = (
        nbits.DefaultWeightOnlyQuantConfig,
        nbits.MatMulNBitsQuantizer,
    )
    model = onnx.load(str(source))
    ops = [op for op in chosen["op_types"] if op not in chosen["exclude_op_types"]]
    kept = excluded_nodes(model, chosen["exclude_nodes"], ops)
    config = DefaultWeightOnlyQuantConfig(
        block_size=chosen["block_size"],
        is_symmetric=chosen["symmetric"],
        accuracy_level=chosen["accuracy_level"],
        quant_format=QuantFormat.QOperator,
        op_types_to_quantize=tuple(ops),
        quant_axes=(("MatMul", 0), ("Gather", 1)),
        bits=4,
    )
    quantizer = MatMulNBitsQuantizer(model, nodes_to_exclude=kept, algo_config=config)
    quantizer.process()
    save_onnx(quantizer.model.model, out, external_data)
    return kept


def _quantizer_module() -> Any:
    """ONNX Runtime's int4 quantizer module. Its import calls logging.basicConfig(level=INFO): the root logger
    gets back the handlers and level it had, and the module's own logger says only warnings (it logs every node)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onnxruntime.quantization import matmul_nbits_quantizer

    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger(matmul_nbits_quantizer.__name__).setLevel(logging.WARNING)
    return matmul_nbits_quantizer


def excluded_nodes(model: onnx.ModelProto, patterns: list[str], ops: list[str]) -> list[str]:
    """Names of the nodes of the quantized op types that match any of the patterns."""
    names = [n.name for n in model.graph.node if n.op_type in ops]
    return [name for name in names if any(fnmatch.fnmatchcase(name, p) for p in patterns)]
