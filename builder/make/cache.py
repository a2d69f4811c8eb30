"""Content-addressed stage cache, shared by every build and sweep job.

A stage's key is the sha256 of (stage, the previous stage's key or the source identity, the config the stage
reads, tool versions). An entry is a folder `<root>/<stage>/<key>/` with the stage's files and `record.json`
(what the stage recorded, and the sha256 of every file). Entries are written into a temporary folder and
renamed into place under a per-key file lock, so parallel jobs never see half an entry and never build the
same one twice; an entry whose files no longer match its record is removed and rebuilt.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from builder.digests import remember, sha256_remembered
from builder.make.workspace import is_held, share
from builder.runtime.manifest import sha256_file

RECORD = "record.json"


def stage_key(stage: str, parent: str, config: Any, versions: dict[str, str]) -> str:
    canonical = json.dumps(
        {"stage": stage, "parent": parent, "config": config, "versions": versions},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class StageCache:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser()
        self.kept_in_use = 0  # entries the last clear() left to running builds
        self._using: list[int] = []  # shared locks on the `.use` files of entries this build reads

    def hold(self, stage: str, key: str) -> None:
        """Keep the entry from `cache clear` until release(): the build reads its files in later stages."""
        fd = os.open(self.root / stage / f"{key}.use", os.O_RDONLY | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
        self._using.append(fd)

    def release(self) -> None:
        while self._using:
            os.close(self._using.pop())

    def entry(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    @contextlib.contextmanager
    def lock(self, stage: str, key: str) -> Iterator[None]:
        """Held while one job looks up or builds an entry; others with the same key wait, then reuse it."""
        folder = self.root / stage
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{key}.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load(self, stage: str, key: str) -> dict[str, Any] | None:
        """The entry's record if every file matches it; a damaged entry is removed (and so rebuilt)."""
        folder = self.entry(stage, key)
        try:
            record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
            intact = all(
                (folder / name).is_file() and sha256_remembered(folder / name) == digest
                for name, digest in record["files"].items()
            )
        except (OSError, ValueError, KeyError, TypeError):
            intact = False
            record = None
        if not intact:
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
            return None
        return record

    def store(self, stage: str, key: str, files: list[Path], data: dict[str, Any]) -> Path:
        """Copy files into a new entry with its record; return the entry folder."""
        final = self.entry(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key[:8]}-", dir=final.parent))
        share(tmp)  # readable by whoever may read the cache folder, as the umask says
        try:
            for path in files:
                shutil.copyfile(path, tmp / path.name)
            record = {
                "stage": stage,
                "key": key,
                "data": data,
                "files": {p.name: sha256_file(tmp / p.name) for p in files},
            }
            (tmp / RECORD).write_text(json.dumps(record, indent=1, default=str), encoding="utf-8")
            if final.exists():
                shutil.rmtree(final)
            os.rename(tmp, final)
            # Jobs in this process that load the entry need not read it again.
            for name, digest in record["files"].items():
                remember(final / name, digest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return final

    def get_or_build(
        self, stage: str, key: str, build: Callable[[], tuple[list[Path], dict[str, Any]]]
    ) -> tuple[Path, dict[str, Any], bool]:
        """The entry for key, built by `build()` (its files and record data) if it is missing or damaged.
        Returns (entry folder, record data, reused)."""
        with self.lock(stage, key):
            entry = self.load(stage, key)
            if entry is not None:
                self.hold(stage, key)
                return self.entry(stage, key), entry["data"], True
            files, data = build()
            folder = self.store(stage, key, files, data)
            self.hold(stage, key)
            return folder, data, False

    def info(self) -> dict[str, Any]:
        stages: dict[str, Any] = {}
        for entry in self.entries():
            stage = stages.setdefault(entry.parent.name, {"entries": 0, "bytes": 0})
            stage["entries"] += 1
            stage["bytes"] += sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
        return {"root": str(self.root), "stages": stages}

    def unfinished(self) -> list[Path]:
        """`.tmp-*` entries whose writer died (a live writer holds its key's lock while it writes)."""
        dead = []
        for tmp in sorted(self.root.glob("*/.tmp-*")) if self.root.is_dir() else []:
            prefix = tmp.name.split("-")[1]
            if not any(is_held(lock) for lock in tmp.parent.glob(f"{prefix}*.lock")):
                dead.append(tmp)
        return dead

    def remove_dead(self) -> int:
        """Remove the unfinished entries of dead writers; return how many."""
        dead = self.unfinished()
        for tmp in dead:
            shutil.rmtree(tmp, ignore_errors=True)
        return len(dead)

    def entries(self) -> list[Path]:
        """The folders this cache wrote: <stage>/<key>/ whose record names that stage and key."""
        found = []
        if self.root.is_dir():
            for record in sorted(self.root.glob(f"*/*/{RECORD}")):
                entry = record.parent
                try:
                    data = json.loads(record.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    continue
                if (
                    isinstance(data, dict)
                    and data.get("stage") == entry.parent.name
                    and data.get("key") == entry.name
                ):
                    found.append(entry)
        return found

    def clear(self) -> int:
        """Remove what this cache wrote (entries, their lock files, unfinished entries) and nothing else; a folder
        that holds no cache entry is refused, whatever else it holds."""
        from builder.errors import BuilderError

        entries, unfinished = self.entries(), self.unfinished()
        if not entries and not unfinished and self.root.is_dir() and any(self.root.iterdir()):
            raise BuilderError(
                f"cache clear: {self.root} holds no builder stage cache (no <stage>/<key>/{RECORD}); nothing was "
                "removed. Give the cache_dir of your builds (default <output_dir>/.cache)."
            )
        in_use = [e for e in entries if is_held(e.parent / f"{e.name}.use")]
        for entry in entries:
            if entry in in_use:  # a running build reads it
                continue
            shutil.rmtree(entry, ignore_errors=True)
            for suffix in (".lock", ".use"):
                (entry.parent / f"{entry.name}{suffix}").unlink(missing_ok=True)
        self.remove_dead()
        stages = {e.parent for e in entries + unfinished}
        for stage in stages:
            for lock in [*stage.glob("*.lock"), *stage.glob("*.use")]:
                if not is_held(lock):  # a live build's lock stays
                    lock.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # kept if it holds anything else
                stage.rmdir()
        with contextlib.suppress(OSError):
            self.root.rmdir()
        self.kept_in_use = len(in_use)
        return len(entries) - len(in_use)


class CachedWork:
    """The stage cache as a stage sees it, for work besides its output (calibration ranges, the baseline's score):
    the stage names the work and what it depends on, this makes the key. Without a cache, the work is done.

    Keys chain from the source identity (`after="source"`: depends on the model only) or from the running
    stage's input (`after="input"`: depends on the graph the stage reads); the driver sets `input_key`."""

    def __init__(self, store: StageCache | None, source_key: str, versions: dict[str, str]):
        self.store, self.source_key, self.versions = store, source_key, versions
        self.input_key = source_key

    def get_or_build(
        self,
        kind: str,
        content: Any,
        build: Callable[[], tuple[list[Path], dict[str, Any]]],
        after: str = "input",
    ) -> tuple[Path | None, dict[str, Any], bool, str | None]:
        """(folder holding the files, record data, reused, key). `build()` returns files that lie in one folder."""
        if self.store is None:
            files, data = build()
            return (files[0].parent if files else None), data, False, None
        parent = self.source_key if after == "source" else self.input_key
        key = stage_key(kind, parent, content, self.versions)
        folder, data, reused = self.store.get_or_build(kind, key, build)
        return folder, data, reused, key
