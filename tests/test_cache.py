"""The stage cache: reuse across builds and sweep jobs, damaged entries rebuilt, `builder cache`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import bundles_in, read_json, run_builder

import builder
from builder.config.compose import CONF_DIR
from builder.digests import code_digest
from builder.make.cache import StageCache
from builder.make.writer import tool_versions


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


def test_only_the_unfinished_entries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    """A `.tmp-<key8>-*` folder whose key lock nobody holds is a dead writer's: removed. One whose writer holds
    the lock is being written: kept."""
    store = StageCache(tmp_path)
    dead_key, live_key = "a" * 64, "b" * 64
    (tmp_path / "export").mkdir()
    dead = tmp_path / "export" / f".tmp-{dead_key[:8]}-x1"
    live = tmp_path / "export" / f".tmp-{live_key[:8]}-x2"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"half written")
    (tmp_path / "export" / f"{dead_key}.lock").touch()  # its writer died: the lock file stays, unheld
    with store.lock("export", live_key):
        assert store.unfinished() == [dead]
        assert store.remove_dead() == 1
    assert not dead.exists() and live.is_dir()
    assert StageCache(tmp_path / "nothing-here").unfinished() == []


def test_a_damaged_entry_is_removed_when_read(tmp_path: Path) -> None:
    """load() of an entry whose file no longer matches its record answers None and removes the entry, so the
    build rebuilds it and `cache info` does not count it: whichever way the damaged file's digest compares."""
    import hashlib

    store = StageCache(tmp_path / "cache")
    graph = tmp_path / "model.onnx"
    graph.write_bytes(b"graph bytes")
    original = hashlib.sha256(b"graph bytes").hexdigest()
    damaged = {}  # one damaged content whose digest sorts before the original's, one after
    for n in range(100):
        content = f"graph bytes, changed {n}".encode()
        damaged.setdefault(hashlib.sha256(content).hexdigest() < original, content)
    assert len(damaged) == 2
    key = "c" * 64
    for content in damaged.values():
        folder = store.store("export", key, [graph], {"graphs": {"model": "model.onnx"}})
        assert store.load("export", key)["data"] == {"graphs": {"model": "model.onnx"}}
        (folder / "model.onnx").write_bytes(content)
        assert store.load("export", key) is None
        assert not folder.exists() and store.entries() == []
    folder = store.store("export", key, [graph], {})
    (folder / "record.json").write_text("{cut short")  # the record itself damaged
    assert store.load("export", key) is None and not folder.exists()


def test_entries_are_found_past_a_damaged_record(tmp_path: Path) -> None:
    store = StageCache(tmp_path)
    (tmp_path / "aaa" / "bbb").mkdir(parents=True)
    (tmp_path / "aaa" / "bbb" / "record.json").write_text("{not json")  # sorts before the entry
    graph = tmp_path / "model.onnx"
    graph.write_bytes(b"graph bytes")
    entry = store.store("export", "d" * 64, [graph], {})
    assert store.entries() == [entry]


def test_a_record_naming_another_stage_is_no_entry(tmp_path: Path) -> None:
    """An entry's record names its own stage folder: a record of another stage, whichever way the names sort, is
    not this cache's entry (clear would delete it as one)."""
    store = StageCache(tmp_path)
    key = "a" * 64
    for folder, named in (("export", "optimize"), ("optimize", "export")):
        (tmp_path / folder / key).mkdir(parents=True)
        (tmp_path / folder / key / "record.json").write_text(json.dumps({"stage": named, "key": key}))
    assert store.entries() == []


def test_an_entry_just_stored_is_not_hashed_again_when_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next job in the process that loads an entry this one stored takes its files' digests from memory: a
    1.5B decoder's 7 GB of weights are not read again to check them."""
    import builder.digests as digests

    store = StageCache(tmp_path / "cache")
    graph = tmp_path / "model.onnx"
    graph.write_bytes(b"graph bytes")
    store.store("export", "b" * 64, [graph], {"graphs": {}})
    hashed: list[Path] = []
    original = digests.sha256_file
    monkeypatch.setattr(digests, "sha256_file", lambda path: hashed.append(path) or original(path))
    assert store.load("export", "b" * 64) is not None and hashed == []


def test_clear_removes_the_stale_locks_of_its_stages_and_keeps_a_held_one(tmp_path: Path) -> None:
    """A lock or use file left by a build that died (its entry gone or never written) goes with `clear`, and then
    the emptied stage folder; a lock a live build holds stays, and with it the folder."""
    store = StageCache(tmp_path / "cache")
    graph = tmp_path / "model.onnx"
    graph.write_bytes(b"graph bytes")
    for stage in ("export", "optimize"):
        store.store(stage, "e" * 64, [graph], {})
        (store.root / stage / f"{'f' * 64}.lock").touch()  # a dead build's
        (store.root / stage / f"{'f' * 64}.use").touch()
    with store.lock("optimize", "9" * 64):  # a live build's
        assert store.clear() == 2
        assert not (store.root / "export").exists()
        assert sorted(p.name for p in (store.root / "optimize").iterdir()) == [f"{'9' * 64}.lock"]


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


def test_a_changed_builder_rebuilds_what_an_older_one_cached(model: Path, tmp_path: Path) -> None:
    """Stage keys and bundle ids hold a digest of builder's code beside its version: a checkout whose code changed
    while the version string did not rebuilds every stage instead of serving the older code's export. A copy of the
    same code (bytecode and the configs' folder aside) reuses everything."""
    package = Path(builder.__file__).parent
    assert tool_versions()["builder"] == f"{builder.__version__}+code.{code_digest(package)[:12]}"
    copy = tmp_path / "src" / "builder"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("conf"))  # __pycache__ travels: left out
    (copy / "conf").symlink_to(CONF_DIR, target_is_directory=True)
    assert code_digest(copy) == code_digest(package)
    out = tmp_path / "out"
    args = [f"model.source={model}", "quantization=none", *COMMON, f"output_dir={out}"]
    assert run_builder(*args).returncode == 0
    (first,) = bundles_in(out)

    proc = run_builder(*args, env={"PYTHONPATH": str(copy.parent)})  # the same code from another folder
    assert proc.returncode == 0, proc.stderr
    assert bundles_in(out) == [first] and stages_of(first)["export"] == "reused"

    export = copy / "make" / "stages" / "export.py"
    export.write_text(export.read_text(encoding="utf-8") + "\n# an edit\n", encoding="utf-8")
    assert code_digest(copy) != code_digest(package)
    proc = run_builder(*args, env={"PYTHONPATH": str(copy.parent)})
    assert proc.returncode == 0, proc.stderr
    (second,) = [f for f in bundles_in(out) if f != first]  # another id
    assert stages_of(second)["export"] == "built" and stages_of(second)["optimize"] == "built"
    versions = read_json(second / "manifest.json")["versions"]
    assert versions["builder"] == f"{builder.__version__}+code.{code_digest(copy)[:12]}"


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
    store = StageCache(tmp_path / ".cache")
    held = store.entries()[0]
    store.hold(held.parent.name, held.name)  # as a running build holds what it reads
    cleared = run_builder("cache", "clear", "--dir", str(tmp_path / ".cache"))
    assert cleared.returncode == 0, cleared.stderr
    assert "removed 3 cache entries" in cleared.stdout and "kept 1 in use" in cleared.stdout
    assert store.entries() == [held]
    store.release()
    cleared = run_builder("cache", "clear", "--dir", str(tmp_path / ".cache"))
    assert (
        cleared.returncode == 0 and "removed 1 cache entries" in cleared.stdout
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
    # A record.json of someone else's, two folders down, is not an entry unless it names that stage and key.
    (notes / "sub" / "more").mkdir()
    (notes / "sub" / "more" / "record.json").write_text('{"stage": "export", "key": "more"}')
    for folder, key in (("mmm", "zzz"), ("nnn", "aaa")):  # the stage matches, the key is another's
        (notes / "export" / folder).mkdir(parents=True)
        (notes / "export" / folder / "record.json").write_text(f'{{"stage": "export", "key": "{key}"}}')
    (notes / "export" / "ooo").mkdir()
    (notes / "export" / "ooo" / "record.json").write_text("{not json")  # a damaged one is no entry either
    (notes / "export" / "ppp" / "record.json").mkdir(parents=True)  # nor one that cannot be read
    proc = run_builder("cache", "clear", "--dir", str(notes))
    assert proc.returncode == 2 and "holds no builder stage cache" in proc.stderr
    assert (notes / "sub" / "more" / "record.json").is_file() and (notes / "sub" / "draft.md").is_file()
    assert (notes / "export" / "mmm" / "record.json").is_file() and (notes / "export" / "nnn").is_dir()
    assert (notes / "export" / "ooo" / "record.json").is_file()
    assert (notes / "export" / "ppp" / "record.json").is_dir()

    assert run_builder(f"model.source={model}", *COMMON, f"output_dir={tmp_path / 'out'}").returncode == 0
    cache = tmp_path / "out" / ".cache"
    (cache / "mine.txt").write_text("a user's file inside the cache folder")
    proc = run_builder("cache", "clear", "--dir", str(cache))
    assert proc.returncode == 0 and "removed 4 cache entries" in proc.stdout
    assert [p.name for p in cache.iterdir()] == ["mine.txt"]
    assert bundles_in(tmp_path / "out")  # the bundles beside the cache are untouched
