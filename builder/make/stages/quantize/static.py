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

from builder.make.context import BuildContext
from builder.make.files import graph_io, save_onnx
from builder.make.stages.quantize.dynamic import QUANT_TYPES
from builder.runtime.manifest import sha256_file
from builder.runtime.tokenizer import BundleTokenizer, pad
from builder.tasks import Graph


def calibration_identity(ctx: BuildContext) -> dict[str, Any]:
    """What the calibration data depends on."""
    calibration = dict(ctx.cfg.quantization.calibration)
    ev = ctx.cfg.evaluation
    dataset = calibration["dataset"] or ev.dataset
    data_file = Path(dataset).expanduser()
    return {
        "calibration": calibration,
        "dataset": dataset,
        "dataset_sha256": sha256_file(data_file) if data_file.is_file() else None,
        "dataset_revision": ev.revision,
        "columns": dict(ev.columns),
        "max_length": ctx.models.facts.max_length,
        "options": ctx.options,
    }


def calibration_inputs(ctx: BuildContext, graph: Graph) -> list[Any]:
    """Encodings of the calibration examples, as the runtime would encode them."""
    from builder.make.eval_data import load_examples

    cal, cfg = ctx.cfg.quantization.calibration, ctx.cfg.copy()
    cfg.evaluation.dataset = cal.dataset or cfg.evaluation.dataset
    cfg.evaluation.max_samples = cal.n
    cfg.evaluation.seed = cal.seed
    examples, _ = load_examples(cfg)
    tok = BundleTokenizer(ctx.model_files, ctx.models.facts.max_length)
    return ctx.task.calibration_encodings(examples, tok, ctx.options)


class _Reader:
    """ONNX Runtime CalibrationDataReader over padded batches of encodings."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        self._it: Iterator[dict[str, np.ndarray]] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize_static(ctx: BuildContext, graph: Graph, chosen: dict[str, Any], out: Path) -> dict[str, Any]:
    """Quantize the graph into `out`; return the calibration record."""
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization.qdq_quantizer import QDQQuantizer

    op_types = [op for op in chosen["op_types"] if op not in chosen["exclude_op_types"]]
    typed, ranges, record = _calibrated(ctx, graph, chosen, op_types)
    if not len(ranges.data):
        from builder.errors import StageError

        raise StageError(
            f"quantize: calibration found no {', '.join(op_types)} activations to measure in this graph"
        )
    quantizer = QDQQuantizer(
        onnx.load(str(typed)),
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
    save_onnx(quantizer.model.model, out)  # past 2 GB: with its data beside it
    return record


def _calibrated(
    ctx: BuildContext, graph: Graph, chosen: dict[str, Any], op_types: list[str]
) -> tuple[Path, Any, dict]:
    """The shape-typed graph and its activation ranges. They depend on the graph, the calibration data and
    settings, not on the weight type: sweep jobs that differ only there (avx2 vs avx512_vnni) share one
    calibration through the stage cache."""
    work = Path(tempfile.mkdtemp(prefix=f"calibration-{graph.role}-", dir=ctx.workdir))
    content = calibration_identity(ctx) | {
        "graph": graph.role,
        "op_types": op_types,
        "activation_type": chosen["activation_type"],
    }

    def build() -> tuple[list[Path], dict]:
        typed, ranges, record = _calibrate(ctx, graph, chosen, op_types, work)
        return [typed, save_ranges(ranges, work / "ranges.npz")], record

    folder, record, reused, key = ctx.cache.get_or_build("calibration", content, build)
    assert folder is not None
    return folder / "typed.onnx", load_ranges(folder / "ranges.npz"), record | {"reused": reused, "key": key}


def _calibrate(
    ctx: BuildContext, graph: Graph, chosen: dict[str, Any], op_types: list[str], work: Path
) -> tuple[Path, Any, dict]:
    from onnxruntime.quantization import CalibrationMethod, create_calibrator
    from onnxruntime.quantization.shape_inference import quant_pre_process

    cal = ctx.cfg.quantization.calibration
    tok = BundleTokenizer(ctx.model_files, ctx.models.facts.max_length)
    encodings = calibration_inputs(ctx, graph)
    if len(encodings) > cal.batch_size:  # full batches only: the histogram collector stacks them
        encodings = encodings[: len(encodings) - len(encodings) % cal.batch_size]
    longest = max(len(e.ids) for e in encodings)  # one length for all: histograms stack batches
    inputs, _ = graph_io(ctx.graphs[graph.role])
    batches = [
        pad(encodings[i : i + cal.batch_size], inputs, tok.pad_id, tok.pad_type_id, longest)
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
    # Symbolic shape inference knows the fused contrib ops: without it their outputs have no type, and the
    # calibrator silently skips every tensor they touch (leaving weight-only "static" quantization).
    typed = work / "typed.onnx"
    quant_pre_process(str(ctx.graphs[graph.role]), str(typed), skip_optimization=True, auto_merge=True)
    with tempfile.TemporaryDirectory(dir=work) as tmp:
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
    record = {
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
        **({"num_bins": cal.num_bins, "percentile": cal.percentile} if cal.method == "percentile" else {}),
    }
    return typed, ranges, record


def save_ranges(ranges: Any, path: Path) -> Path:
    """Activation ranges as plain arrays (no pickle), in the calibrator's tensor order."""
    arrays: dict[str, np.ndarray] = {"method": np.array(ranges.calibration_method.name)}
    for i, (name, data) in enumerate(ranges.data.items()):
        arrays[f"{i}/name"] = np.array(name)
        for attr in data._attrs:
            arrays[f"{i}/{attr}"] = np.asarray(getattr(data, attr))  # 0-d arrays come back as numpy scalars
    with open(path, "wb") as f:  # np.savez on a file object: no timestamped temp files
        np.savez(f, **arrays)
    return path


def load_ranges(path: Path) -> Any:
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData

    with np.load(path, allow_pickle=False) as npz:
        fields: dict[int, dict[str, np.ndarray]] = {}
        for key in npz.files:
            if key != "method":
                index, attr = key.split("/", 1)
                fields.setdefault(int(index), {})[attr] = npz[key]
        method = CalibrationMethod[str(npz["method"])]
    data = {}
    for index in sorted(fields):
        attrs = fields[index]
        name = str(attrs.pop("name"))
        data[name] = TensorData(**{k: v[()] if v.ndim == 0 else v for k, v in attrs.items()})
    return TensorsData(method, data)
