"""`builder verify` and `builder info` on a real bundle; tampering is named file by file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import bundles_in, read_json, run_builder


@pytest.fixture(scope="module")
def bundle(tiny_models: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    proc = run_builder(
        f"model.source={tiny_models[('roberta', 'text-classification')]}",
        "task=text-classification",
        "benchmark=quick",
        "fidelity.min_agreement=0.5",
        f"output_dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "bundle    " in proc.stdout
        and "latency   p50" in proc.stdout
        and "fidelity  logits cosine" in proc.stdout
    )
    (folder,) = bundles_in(out)
    return folder


@pytest.fixture()
def copy(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / bundle.name))


def test_verify_passes_on_an_intact_bundle(bundle: Path) -> None:
    proc = run_builder("verify", str(bundle))
    assert proc.returncode == 0 and "ok:" in proc.stdout


def test_verify_names_a_changed_file(copy: Path) -> None:
    with open(copy / "config.json", "a") as f:
        f.write(" ")
    proc = run_builder("verify", str(copy))
    assert proc.returncode != 0 and "config.json: changed" in proc.stderr and "Traceback" not in proc.stderr


def test_verify_names_missing_and_added_files(copy: Path) -> None:
    (copy / "tokenizer.json").unlink()
    (copy / "extra.bin").write_bytes(b"\0")
    proc = run_builder("verify", str(copy))
    assert proc.returncode != 0
    assert "tokenizer.json: missing" in proc.stderr and "extra.bin: added" in proc.stderr


def test_verify_rejects_a_link(copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    shutil.copyfile(copy / "config.json", outside)
    (copy / "config.json").unlink()
    (copy / "config.json").symlink_to(outside)
    proc = run_builder("verify", str(copy))
    assert proc.returncode != 0 and "config.json: is a link" in proc.stderr


def test_verify_on_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    proc = run_builder("verify", str(tmp_path))
    assert proc.returncode != 0 and "manifest.json: missing" in proc.stderr


def test_newer_format_is_refused_with_a_clear_message(copy: Path) -> None:
    manifest = read_json(copy / "manifest.json")
    manifest["format_version"] = 99
    import json

    (copy / "manifest.json").write_text(json.dumps(manifest))
    proc = run_builder("verify", str(copy))
    assert proc.returncode != 0 and "newer than this builder reads" in proc.stderr


def test_info_describes_the_bundle(bundle: Path) -> None:
    proc = run_builder("info", str(bundle))
    assert proc.returncode == 0, proc.stderr
    for needle in ("text-classification", "verified", "avx", "O2", "dynamic", "latency", "fidelity"):
        assert needle in proc.stdout
    proc = run_builder("info", str(bundle), "--json")
    import json

    assert (
        json.loads(proc.stdout)["manifest"]["bundle_id"] == read_json(bundle / "manifest.json")["bundle_id"]
    )


def _rewrite_manifest(folder: Path) -> None:
    """What a tamperer who also rewrites the manifest would do: hashes match, so only the path check is left."""
    import json

    from builder.runtime.manifest import file_table

    manifest = read_json(folder / "manifest.json")
    manifest["files"] = file_table(folder)
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("location", ["../outside.bin", "/tmp/elsewhere.bin"])
def test_external_data_leading_outside_is_refused(copy: Path, tmp_path: Path, location: str) -> None:
    import onnx

    import builder
    from builder.errors import BundleIntegrityError

    model = onnx.load(str(copy / "model.onnx"))
    onnx.save_model(
        model, str(copy / "model.onnx"), save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    model = onnx.load(str(copy / "model.onnx"), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    (copy / "model.onnx").write_bytes(model.SerializeToString())
    shutil.move(copy / "weights.bin", tmp_path / "outside.bin")
    _rewrite_manifest(copy)
    with pytest.raises(BundleIntegrityError, match=r"model.onnx: external data .* outside the bundle"):
        builder.load(copy)
    proc = run_builder("verify", str(copy))
    assert proc.returncode != 0 and "outside the bundle" in proc.stderr


def test_external_data_inside_the_bundle_loads(copy: Path) -> None:
    import onnx

    import builder

    before = builder.load(copy)("a text to classify", top_k=None)
    model = onnx.load(str(copy / "model.onnx"))
    onnx.save_model(model, str(copy / "model.onnx"), save_as_external_data=True, location="model.onnx_data")
    _rewrite_manifest(copy)
    assert builder.load(copy)("a text to classify", top_k=None) == before
