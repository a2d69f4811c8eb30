"""Bundles that travel through the Hugging Face Hub, tested on the layouts huggingface_hub itself writes (its own
cache functions, no network): the Hub cache (blobs, snapshots, refs) and an `hf download --local-dir` copy; and
what `builder push` would upload."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_builder

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(bundle: Path, cache: Path, repo_id: str) -> Path:
    """The bundle as snapshot_download leaves it in the Hub cache: blobs named by content, a snapshot of links
    into them, refs/main naming the commit, and the .gitattributes every Hub repo has."""
    from huggingface_hub.file_download import (
        _cache_commit_hash_for_specific_revision,
        _create_symlink,
        repo_folder_name,
    )

    storage = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    (storage / "blobs").mkdir(parents=True)
    files = [p for p in bundle.rglob("*") if p.is_file()]
    (bundle.parent / ".gitattributes").write_text("*.onnx filter=lfs diff=lfs merge=lfs -text\n")
    for path, rel in [
        *((p, p.relative_to(bundle).as_posix()) for p in files),
        (bundle.parent / ".gitattributes", ".gitattributes"),
    ]:
        blob = storage / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.copyfile(path, blob)
        target = storage / "snapshots" / COMMIT / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        _create_symlink(str(blob), str(target))
    _cache_commit_hash_for_specific_revision(str(storage), "main", COMMIT)
    return storage / "snapshots" / COMMIT


def load_in_fresh_process(
    what: str, env: dict[str, str], revision: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    code = f"import builder\nb = builder.load({what!r}, revision={revision!r})\nprint(b('a text'))"
    full = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, cwd=cwd)


def test_a_bundle_loads_from_the_hub_cache_offline(bert_bundles: dict, tmp_path: Path) -> None:
    import builder

    bundle = bert_bundles["text-classification"]
    snapshot = hub_cache(bundle, tmp_path / "hub", "someone/tiny-classifier")
    assert all(p.is_symlink() for p in snapshot.iterdir() if p.is_file())
    expected = str(builder.load(bundle)("a text"))
    env = {"HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    for revision in (None, "main", COMMIT):
        proc = load_in_fresh_process("someone/tiny-classifier", env, revision)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip() == expected
    assert run_builder("verify", str(snapshot)).returncode == 0

    # still verified by hash: a blob changed in place is refused
    blob = (snapshot / "config.json").resolve()
    blob.write_text(blob.read_text().replace("{", "{ ", 1))
    proc = load_in_fresh_process("someone/tiny-classifier", env)
    assert proc.returncode != 0 and "config.json: changed" in proc.stderr


def test_links_outside_the_cache_and_unknown_files_are_still_refused(
    bert_bundles: dict, tmp_path: Path
) -> None:
    from builder.errors import BundleIntegrityError
    from builder.runtime.manifest import verify

    snapshot = hub_cache(bert_bundles["text-classification"], tmp_path / "hub", "someone/x")
    outside = tmp_path / "elsewhere.json"
    shutil.copyfile(snapshot / "config.json", outside)
    (snapshot / "config.json").unlink()
    (snapshot / "config.json").symlink_to(outside)
    (snapshot / "notes.txt").write_text("not the bundle's")
    with pytest.raises(BundleIntegrityError) as caught:
        verify(snapshot)
    assert "config.json: is a link" in str(caught.value) and "notes.txt: added" in str(caught.value)


def test_a_local_dir_download_loads(bert_bundles: dict, tmp_path: Path) -> None:
    import builder

    folder = tmp_path / "download"
    shutil.copytree(bert_bundles["text-classification"], folder)
    (folder / ".gitattributes").write_text("*.onnx filter=lfs\n")
    meta = folder / ".cache" / "huggingface" / "download"
    meta.mkdir(parents=True)
    (meta / "model.onnx.metadata").write_text(f"{COMMIT}\netag\n1700000000.0\n")
    (folder / ".cache" / "huggingface" / ".gitignore").write_text("*\n")
    assert builder.load(folder)("a text")
    (folder / ".cache" / "other.txt").write_text("x")  # only the Hub's own housekeeping is ignored
    with pytest.raises(Exception, match=r"\.cache/other.txt: added"):
        builder.load(folder)


def test_a_missing_folder_is_not_blamed_on_the_hub(tmp_path: Path) -> None:
    (tmp_path / "artifacts").mkdir()
    proc = load_in_fresh_process("artifacts/minilm_typo", {"HF_HUB_OFFLINE": "1"}, cwd=tmp_path)
    assert "artifacts/minilm_typo: no such folder" in proc.stderr and "unreachable" not in proc.stderr
    proc = load_in_fresh_process(
        "someone/not-cached", {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "c")}
    )
    assert "unreachable from here and the local Hub cache does not hold it" in proc.stderr


def test_push_shows_what_it_would_upload_and_refuses_a_tampered_bundle(
    bert_bundles: dict, tmp_path: Path
) -> None:
    bundle = bert_bundles["text-classification"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    proc = run_builder("push", str(bundle), "someone/tiny-classifier", "--private", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert f"commit message: builder bundle {manifest['bundle_id']}" in proc.stdout
    assert f"tag: bundle-{manifest['bundle_id'][:12]}" in proc.stdout and "private" in proc.stdout
    for name in [*manifest["files"], "manifest.json"]:
        assert f"  {name}" in proc.stdout

    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    (tampered / "config.json").write_text("{}")
    proc = run_builder("push", str(tampered), "someone/x", "--dry-run")
    assert proc.returncode == 2 and "config.json: changed" in proc.stderr and "Traceback" not in proc.stderr


def test_push_offline_is_one_clear_error(bert_bundles: dict) -> None:
    proc = run_builder(
        "push", str(bert_bundles["text-classification"]), "someone/x", env={"HF_HUB_OFFLINE": "1"}
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "Hugging Face Hub is unreachable" in proc.stderr and "builder push" in proc.stderr


def test_the_card_names_no_local_path_carries_the_license_and_parses(
    tiny_models: dict, tmp_path: Path
) -> None:
    from huggingface_hub import ModelCard

    import builder

    source = tmp_path / "my-encoder"
    shutil.copytree(tiny_models[("bert", "feature-extraction")], source)
    (source / "README.md").write_text("---\nlicense: mit\n---\n# my encoder\n")
    folder = builder.build(overrides=[f"model.source={source}", "quantization=none", "benchmark=none",
                                      "evaluation=none", f"output_dir={tmp_path / 'out'}"], quiet=True)  # fmt: skip
    card = (folder / "README.md").read_text()
    assert str(tmp_path) not in card and "my-encoder (a local model folder)" in card
    data = ModelCard.load(folder / "README.md").data.to_dict()
    assert (
        data["license"] == "mit"
        and data["library_name"] == "onnx"
        and data["pipeline_tag"] == "feature-extraction"
    )

    # the license is part of what identifies the source: another license, another bundle id
    (source / "README.md").write_text("---\nlicense: apache-2.0\n---\n")
    other = builder.build(overrides=[f"model.source={source}", "quantization=none", "benchmark=none",
                                     "evaluation=none", f"output_dir={tmp_path / 'out'}"], quiet=True)  # fmt: skip
    assert other != folder and ModelCard.load(other / "README.md").data.to_dict()["license"] == "apache-2.0"


@pytest.mark.slow
def test_bundle_tokenizers_load_in_transformers_4(bert_bundles: dict, tmp_path: Path) -> None:
    """The bundle's tokenizer files as transformers 4.57 reads them (its own virtualenv, no torch): the same ids
    as the bundle's runtime tokenizer, for every encoder task's bundle."""
    import builder

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "transformers==4.57.*"], capture_output=True, text=True
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    text = "George Washington was born in Virginia; the café opened at 9."
    for task in bert_bundles.known:
        folder = bert_bundles[task]
        expected = builder.load(folder).tokenizer.encode([text])[0].ids
        code = f"from transformers import AutoTokenizer\nprint(AutoTokenizer.from_pretrained({str(folder)!r})({text!r})['input_ids'])"
        proc = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True)
        assert proc.returncode == 0, (task, proc.stderr[-2000:])
        assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected, task
