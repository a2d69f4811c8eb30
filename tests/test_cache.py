"""The stage cache: reuse across builds and sweep jobs, damaged entries rebuilt, `builder cache`."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import bundles_in, read_json, run_builder


def stages_of(folder: Path) -> dict[str, str]:
    return {name: s["status"] for name, s in read_json(folder / "metrics.json")["stages"].items()}


@pytest.fixture()
def model(tiny_models: dict) -> Path:
    return tiny_models[("distilbert", "text-classification")]


COMMON = [
    "task=text-classification",
    "benchmark=none",
    "evaluation.max_samples=8",
    "fidelity.min_agreement=0.5",
]


def test_sweep_exports_once_and_a_rebuild_reuses_everything_but_measurements(
    model: Path, tmp_path: Path
) -> None:
    proc = run_builder(
        "-m", f"model.source={model}", "quantization=none,dynamic", *COMMON, f"output_dir={tmp_path}"
    )
    assert proc.returncode == 0, proc.stderr
    folders = bundles_in(tmp_path)
    assert len(folders) == 2
    statuses = [stages_of(f) for f in folders]
    assert sorted(s["export"] for s in statuses) == ["built", "reused"]  # exported once for both jobs
    assert sorted(s["optimize"] for s in statuses) == ["built", "reused"]
    assert all(s["fidelity"] == "ran" and s["evaluation"] == "ran" for s in statuses)

    proc = run_builder(f"model.source={model}", "quantization=dynamic", *COMMON, f"output_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    (rebuilt,) = [f for f in bundles_in(tmp_path) if "dynamic" in f.name]
    assert stages_of(rebuilt) == {
        "export": "reused",
        "optimize": "reused",
        "quantize": "reused",
        "fidelity": "ran",
        "evaluation": "ran",
        "benchmark": "ran",
    }


def test_damaged_cache_entry_is_rebuilt(model: Path, tmp_path: Path) -> None:
    args = [f"model.source={model}", "quantization=none", *COMMON, f"output_dir={tmp_path}"]
    assert run_builder(*args).returncode == 0
    (entry,) = (tmp_path / ".cache" / "export").glob("*/model.onnx")
    entry.write_bytes(entry.read_bytes()[:-10])  # truncated on disk
    proc = run_builder(*args)
    assert proc.returncode == 0, proc.stderr
    (folder,) = bundles_in(tmp_path)
    assert stages_of(folder)["export"] == "built"
    proc = run_builder("verify", str(folder))
    assert proc.returncode == 0


def test_cache_info_and_clear(model: Path, tmp_path: Path) -> None:
    assert run_builder(f"model.source={model}", *COMMON, f"output_dir={tmp_path}").returncode == 0
    info = run_builder("cache", "info", "--dir", str(tmp_path / ".cache"))
    assert info.returncode == 0 and "export" in info.stdout and "quantize" in info.stdout
    assert "baseline-evaluation" in info.stdout
    cleared = run_builder("cache", "clear", "--dir", str(tmp_path / ".cache"))
    assert (
        cleared.returncode == 0 and "removed 4 cache entries" in cleared.stdout
    )  # 3 stages + baseline score
    assert "(empty)" in run_builder("cache", "info", "--dir", str(tmp_path / ".cache")).stdout


def test_cache_can_be_turned_off(model: Path, tmp_path: Path) -> None:
    assert (
        run_builder(f"model.source={model}", *COMMON, "cache_dir=null", f"output_dir={tmp_path}").returncode
        == 0
    )
    (folder,) = bundles_in(tmp_path)
    assert set(stages_of(folder).values()) == {"ran"} and not (tmp_path / ".cache").exists()


def test_cache_clear_removes_only_what_the_cache_wrote(model: Path, tmp_path: Path) -> None:
    """`cache clear --dir` on a folder that is not a cache refuses and deletes nothing; on a cache it removes the
    entries and leaves a file of the user's in it alone."""
    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    (notes / "todo.txt").write_text("keep me")
    (notes / "sub" / "draft.md").write_text("and me")
    proc = run_builder("cache", "clear", "--dir", str(notes))
    assert (
        proc.returncode == 2
        and "holds no builder stage cache" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    assert (notes / "todo.txt").read_text() == "keep me" and (notes / "sub" / "draft.md").is_file()

    assert run_builder(f"model.source={model}", *COMMON, f"output_dir={tmp_path / 'out'}").returncode == 0
    cache = tmp_path / "out" / ".cache"
    (cache / "mine.txt").write_text("a user's file inside the cache folder")
    proc = run_builder("cache", "clear", "--dir", str(cache))
    assert proc.returncode == 0 and "removed 4 cache entries" in proc.stdout
    assert [p.name for p in cache.iterdir()] == ["mine.txt"]
    assert bundles_in(tmp_path / "out")  # the bundles beside the cache are untouched
