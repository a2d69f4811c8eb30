"""Static (QDQ) quantization: each calibration method gives a different, valid model; data is collected in
bounded passes; per-hardware reduce_range."""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from conftest import bundles_in, read_json, run_builder

from builder.config import compose_config
from builder.config import quantization_settings as settings


@pytest.fixture(scope="module")
def static_bundles(tiny_models: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("static")
    proc = run_builder(
        "-m",
        f"model.source={tiny_models[('bert', 'text-classification')]}",
        "task=text-classification",
        "quantization=static",
        "quantization.calibration.method=minmax,entropy,percentile",
        "quantization.calibration.n=48",
        "quantization.calibration.chunk_batches=2",
        "benchmark=none",
        "fidelity.min_agreement=0.5",
        f"output_dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    return {read_json(f / "metrics.json")["quantize"]["calibration"]["method"]: f for f in bundles_in(out)}


def test_each_calibration_method_gives_a_different_valid_model(static_bundles: dict[str, Path]) -> None:
    assert set(static_bundles) == {"minmax", "entropy", "percentile"}
    digests = set()
    for method, folder in static_bundles.items():
        model = onnx.load(str(folder / "model.onnx"))
        onnx.checker.check_model(model)
        ops = {n.op_type for n in model.graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops, method
        # the embedding tables are stored as int8 too: each Gather reads a dequantized int8 initializer
        produced_by = {o: n for n in model.graph.node for o in n.output}
        int8 = {
            i.name
            for i in model.graph.initializer
            if i.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
        }
        embeddings = [
            n for n in model.graph.node if n.op_type == "Gather" and n.name.endswith("_embeddings/Gather")
        ]
        assert embeddings, method
        for gather in embeddings:
            source = produced_by.get(gather.input[0])
            assert source is not None and source.op_type == "DequantizeLinear" and source.input[0] in int8
        metrics = read_json(folder / "metrics.json")
        calibration = metrics["quantize"]["calibration"]
        assert calibration["tensors"] > 0 and calibration["examples"] == 48
        assert calibration["collection_passes"] == 3  # 48 examples / batch 8 = 6 batches, 2 per pass
        assert metrics["fidelity"]["passed"] and "accuracy" in metrics["evaluation"]["bundle"]
        ort.InferenceSession(str(folder / "model.onnx"))
        digests.add(hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest())
    assert len(digests) == 3
    entropy = read_json(static_bundles["entropy"] / "metrics.json")["quantize"]["calibration"]
    assert entropy["num_quantized_bins"] == 255  # not ONNX Runtime's default, which degenerates to minmax


def test_reduce_range_follows_the_hardware() -> None:
    def chosen(*overrides: str) -> dict:
        return settings(compose_config(["quantization=static", *overrides]))

    assert chosen("hardware=avx512_vnni")["reduce_range"] is False  # VNNI: no u8 x s8 saturation
    assert chosen("hardware=avx2", "quantization.weight_type=int8")["reduce_range"] is True
    assert chosen("hardware=avx2")["reduce_range"] is False  # avx2 preset: u8 weights
    assert (
        chosen("hardware=avx2", "quantization.weight_type=int8", "quantization.reduce_range=false")[
            "reduce_range"
        ]
        is False
    )


def test_excluded_op_types_stay_float(tiny_models: dict, tmp_path: Path) -> None:
    proc = run_builder(
        f"model.source={tiny_models[('bert', 'feature-extraction')]}",
        "quantization=dynamic",
        "quantization.exclude_op_types=[Gather]",
        "benchmark=none",
        "evaluation=none",
        f"output_dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stderr
    (folder,) = bundles_in(tmp_path)
    ops = [n.op_type for n in onnx.load(str(folder / "model.onnx")).graph.node]
    assert "Gather" in ops and "GatherBlockQuantized" not in ops
    assert read_json(folder / "metrics.json")["quantize"]["exclude_op_types"] == ["Gather"]


def test_jobs_differing_only_in_weight_type_share_one_calibration(tiny_models: dict, tmp_path: Path) -> None:
    common = [
        f"model.source={tiny_models[('bert', 'text-classification')]}",
        "task=text-classification",
        "quantization=static",
        "quantization.calibration.n=16",
        "benchmark=none",
        "evaluation=none",
        "fidelity.min_agreement=0.5",
    ]
    proc = run_builder("-m", *common, "hardware=avx2,avx512_vnni", f"output_dir={tmp_path / 'sweep'}")
    assert proc.returncode == 0, proc.stderr
    jobs = {
        read_json(f / "manifest.json")["runtime"]["hardware"]["name"]: f
        for f in bundles_in(tmp_path / "sweep")
    }
    avx2, vnni = (read_json(jobs[h] / "metrics.json")["quantize"] for h in ("avx2", "avx512_vnni"))
    assert (avx2["weight_type"], vnni["weight_type"]) == ("uint8", "int8")
    assert avx2["calibration"]["key"] == vnni["calibration"]["key"]
    assert sorted([avx2["calibration"]["reused"], vnni["calibration"]["reused"]]) == [False, True]

    # Reused ranges give the same bytes as calibrating afresh with the cache off.
    proc = run_builder(*common, "hardware=avx512_vnni", "cache_dir=null", f"output_dir={tmp_path / 'fresh'}")
    assert proc.returncode == 0, proc.stderr
    (fresh,) = bundles_in(tmp_path / "fresh")
    assert read_json(fresh / "metrics.json")["quantize"]["calibration"]["reused"] is False
    assert (fresh / "model.onnx").read_bytes() == (jobs["avx512_vnni"] / "model.onnx").read_bytes()
