"""Static int8 (QDQ): activation ranges from calibration data, then ONNX Runtime's QDQ quantizer.

The calibrator is driven here rather than through `quantize_static`, whose entropy defaults leave a single
candidate threshold (entropy silently equals minmax). Data is collected a few batches at a time, so memory
does not grow with the calibration set.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from tqdm.auto import tqdm

from builder.runtime.tokenizer import BundleTokenizer, pad
from builder.stages.common import BuildContext

QUANT_TYPES = {"int8": "QInt8", "uint8": "QUInt8"}


def calibration_inputs(ctx: BuildContext) -> list[Any]:
    """Encodings of the calibration examples, as the runtime would encode them."""
    from builder.eval_data import load_examples

    cal, cfg = ctx.cfg.quantization.calibration, ctx.cfg.copy()
    cfg.evaluation.dataset = cal.dataset or cfg.evaluation.dataset
    cfg.evaluation.max_samples = cal.n
    cfg.evaluation.seed = cal.seed
    examples, _ = load_examples(cfg)
    tok = BundleTokenizer(ctx.files_dir(), ctx.max_length)
    task = ctx.task.name
    if task == "question-answering":
        return tok.encode(
            [e["question"] for e in examples], [e["context"] for e in examples], strategy="only_second"
        )
    if task == "token-classification":
        return tok.encode([e["tokens"] for e in examples], pretokenized=True)
    if task == "feature-extraction":
        return tok.encode([e["sentence1"] for e in examples] + [e["sentence2"] for e in examples])
    return tok.encode([e["text"] for e in examples])


class _Reader:
    """ONNX Runtime CalibrationDataReader over padded batches of encodings."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        self._it: Iterator[dict[str, np.ndarray]] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize(ctx: BuildContext, chosen: dict[str, Any], out: Path) -> dict[str, Any]:
    from onnxruntime.quantization import CalibrationMethod, QuantType, create_calibrator
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer
    from onnxruntime.quantization.shape_inference import quant_pre_process

    cal = ctx.cfg.quantization.calibration
    tok = BundleTokenizer(ctx.files_dir(), ctx.max_length)
    encodings = calibration_inputs(ctx)
    if len(encodings) > cal.batch_size:  # full batches only: the histogram collector stacks them
        encodings = encodings[: len(encodings) - len(encodings) % cal.batch_size]
    longest = max(len(e.ids) for e in encodings)  # one length for all: histograms stack batches
    batches = [
        pad(encodings[i : i + cal.batch_size], list(ctx.input_names), tok.pad_id, tok.pad_type_id, longest)
        for i in range(0, len(encodings), cal.batch_size)
    ]
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[cal.method]
    options: dict[str, Any] = {"symmetric": chosen["activation_type"] == "int8"}
    if cal.method == "entropy":
        options |= {"num_bins": cal.num_bins, "num_quantized_bins": cal.num_quantized_bins}
    elif cal.method == "percentile":
        options |= {"num_bins": cal.num_bins, "percentile": cal.percentile}
    op_types = [op for op in chosen["op_types"] if op not in chosen["exclude_op_types"]]
    with tempfile.TemporaryDirectory(dir=ctx.workdir) as tmp:
        # Symbolic shape inference knows the fused contrib ops: without it their outputs have no type, and the
        # calibrator silently skips every tensor they touch (leaving weight-only "static" quantization).
        typed = Path(tmp) / "typed.onnx"
        quant_pre_process(str(ctx.onnx_path), str(typed), skip_optimization=True, auto_merge=True)
        calibrator = create_calibrator(
            typed,
            op_types,
            augmented_model_path=str(Path(tmp) / "augmented.onnx"),
            calibrate_method=method,
            providers=["CPUExecutionProvider"],
            extra_options=options,
        )
        step = cal.chunk_batches
        for start in tqdm(range(0, len(batches), step), desc="calibrate", leave=False, disable=None):
            calibrator.collect_data(_Reader(batches[start : start + step]))
        ranges = calibrator.compute_data()
        del calibrator
        model = onnx.load(str(typed))
    if not len(ranges.data):
        from builder.errors import StageError

        raise StageError(
            f"quantize: calibration found no {', '.join(op_types)} activations to measure in this graph"
        )
    quantizer = QDQQuantizer(
        model,
        chosen["per_channel"],
        chosen["reduce_range"],
        getattr(QuantType, QUANT_TYPES[chosen["weight_type"]]),
        getattr(QuantType, QUANT_TYPES[chosen["activation_type"]]),
        ranges,
        [],
        list(chosen["exclude_nodes"]),
        op_types,
        {
            "DefaultTensorType": onnx.TensorProto.FLOAT,
            "ActivationSymmetric": chosen["activation_type"] == "int8",
        },
    )
    quantizer.quantize_model()
    quantizer.model.topological_sort()  # the QDQ quantizer appends nodes out of order; keep the file valid ONNX
    onnx.save_model(quantizer.model.model, str(out))
    return {
        "calibration": {
            "method": cal.method,
            "examples": len(encodings),
            "tensors": len(ranges.data),
            "batches": len(batches),
            "collection_passes": -(-len(batches) // cal.chunk_batches),
            "dataset": cal.dataset or ctx.cfg.evaluation.dataset,
            **(
                {"num_bins": cal.num_bins, "num_quantized_bins": cal.num_quantized_bins}
                if cal.method == "entropy"
                else {}
            ),
            **(
                {"num_bins": cal.num_bins, "percentile": cal.percentile} if cal.method == "percentile" else {}
            ),
        }
    }
