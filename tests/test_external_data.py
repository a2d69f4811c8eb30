"""The large-model path on a small model: `export.external_data=always` keeps every graph's weights in
model.onnx_data through export, optimization, quantization, fidelity and loading, as a graph past protobuf's
2 GB limit must. The bundle answers as the one-file bundle does, the manifest covers the data file, and a
tampered, missing or escaping data file is refused."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import Lazy, read_json, run_builder

import builder
from builder.errors import BundleIntegrityError

EXTERNAL = onnx.TensorProto.EXTERNAL


def _build(source: Path, out: Path, quantization: str, external: str, *extra: str) -> Path:
    return builder.build(
        overrides=[
            f"model.source={source}",
            "task=text-generation",
            f"quantization={quantization}",
            "benchmark=none",
            f"output_dir={out}",
            f"export.external_data={external}",
            *extra,
        ],  # fmt: skip
        quiet=True,
    )


@pytest.fixture(scope="module")
def llama_bundles(tiny_decoders: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("external-data")
    keys = tuple((q, e) for q in ("none", "dynamic", "int4") for e in ("auto", "always"))
    return Lazy(lambda key: _build(tiny_decoders["llama"], out, *key), keys)


def _weight_bytes(folder: Path) -> int:
    """The bytes of a graph's initializers, wherever they are stored (inline or in the data file)."""
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False).graph
    total = 0
    for t in graph.initializer:
        if t.data_location == EXTERNAL:
            total += int(next(e.value for e in t.external_data if e.key == "length"))
        else:
            total += len(t.raw_data)
    return total


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("quantization", ["none", "dynamic", "int4"])
def test_weights_stay_in_model_onnx_data_and_answer_as_one_file_does(
    llama_bundles: dict, quantization: str
) -> None:
    folder = llama_bundles[quantization, "always"]
    one_file = llama_bundles[quantization, "auto"]
    assert not (one_file / "model.onnx_data").exists()
    graph = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    large = [t for t in graph.graph.initializer if t.data_location == EXTERNAL or len(t.raw_data) > 1024]
    assert large and all(t.data_location == EXTERNAL for t in large)  # onnx keeps tensors under 1 KB inline
    assert {e.value for t in large for e in t.external_data if e.key == "location"} == {"model.onnx_data"}
    files = read_json(folder / "manifest.json")["files"]
    assert files["model.onnx_data"]["sha256"] == _sha(folder / "model.onnx_data")
    # The same weights, so the same numbers: fidelity's measurements and the generated tokens are equal.
    ours, theirs = read_json(folder / "metrics.json"), read_json(one_file / "metrics.json")
    assert ours["fidelity"]["outputs"] == theirs["fidelity"]["outputs"]
    # the fusions ran on the graph without its weights, and fused what they fuse with them
    assert ours["optimize"]["fused_operators"] == theirs["optimize"]["fused_operators"]
    assert ours["optimize"]["fused_operators"].get("SkipSimplifiedLayerNormalization")
    assert ours["optimize"]["nodes_after"] == theirs["optimize"]["nodes_after"]
    assert ours["evaluation"]["bundle"] == theirs["evaluation"]["bundle"]
    assert _weight_bytes(folder) == _weight_bytes(one_file)  # the same weights, byte for byte in length
    prompts = ["Once upon a time", "The cat"]
    args = {"max_new_tokens": 8, "do_sample": False}
    assert builder.load(folder)(prompts, **args) == builder.load(one_file)(prompts, **args)
    proc = run_builder("verify", str(folder))
    assert proc.returncode == 0, proc.stderr
    info = run_builder("info", str(folder)).stdout
    assert "model.onnx + model.onnx_data" in info and "peak memory" in info


def test_a_rebuild_writes_the_same_data_bytes(
    llama_bundles: dict, tiny_decoders: dict, tmp_path: Path
) -> None:
    first = llama_bundles["int4", "always"]
    again = _build(tiny_decoders["llama"], tmp_path, "int4", "always", "cache_dir=null")
    assert again.name == first.name
    for name in ("model.onnx", "model.onnx_data"):
        assert _sha(again / name) == _sha(first / name), name
    # the stage cache keeps the data file beside its graph: a build that reuses the export still loads
    reused = _build(tiny_decoders["llama"], first.parent, "dynamic", "always", "optimization=O1")
    stages = read_json(reused / "metrics.json")["stages"]
    assert stages["export"]["status"] == "reused"
    assert builder.load(reused)("Once upon a time", max_new_tokens=4, do_sample=False)


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / folder.name
    shutil.copytree(folder, target)
    return target


def test_a_tampered_data_file_is_refused(llama_bundles: dict, tmp_path: Path) -> None:
    folder = _copy(llama_bundles["int4", "always"], tmp_path)
    data = bytearray((folder / "model.onnx_data").read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight
    (folder / "model.onnx_data").write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="model.onnx_data"):
        builder.load(folder)
    proc = run_builder("verify", str(folder))
    assert proc.returncode != 0 and "model.onnx_data" in proc.stderr and "Traceback" not in proc.stderr


def test_a_missing_data_file_is_refused(llama_bundles: dict, tmp_path: Path) -> None:
    folder = _copy(llama_bundles["none", "always"], tmp_path)
    (folder / "model.onnx_data").unlink()
    with pytest.raises(BundleIntegrityError, match="model.onnx_data"):
        builder.load(folder)


def test_a_data_location_leading_outside_is_refused(llama_bundles: dict, tmp_path: Path) -> None:
    """A tamperer who also rewrites the manifest: hashes match, only the location check is left."""
    import json

    from builder.runtime.manifest import file_table

    folder = _copy(llama_bundles["none", "always"], tmp_path / "bundle")
    model = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../model.onnx_data"
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    shutil.move(folder / "model.onnx_data", tmp_path / "bundle" / "model.onnx_data")
    manifest = read_json(folder / "manifest.json")
    manifest["files"] = file_table(folder)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleIntegrityError, match="outside the bundle"):
        builder.load(folder)


def test_the_data_file_holds_the_same_weights(llama_bundles: dict) -> None:
    """Every weight of the one-file graph is there, bit for bit, once model.onnx_data is read in."""
    folder = llama_bundles["none", "always"]
    full = onnx.load(str(folder / "model.onnx"))
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in full.graph.initializer}
    one_file = onnx.load(str(llama_bundles["none", "auto"] / "model.onnx"))
    for tensor in one_file.graph.initializer:
        np.testing.assert_array_equal(weights[tensor.name], onnx.numpy_helper.to_array(tensor))
