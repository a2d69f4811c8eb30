"""sha256 of files, remembered per (path, inode, size, mtime) in this process: sweep jobs that run in one process
read the same source model and stage-cache entries, and hash each once. Build-side only: verifying a bundle
(builder/runtime/manifest.py) always reads the bytes."""

from __future__ import annotations

from pathlib import Path

from builder.runtime.manifest import sha256_file

_DIGESTS: dict[tuple, str] = {}


def _key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)


def sha256_remembered(path: Path) -> str:
    key = _key(path)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def remember(path: Path, digest: str) -> None:
    """A digest just computed for this file (e.g. before a rename, which keeps inode and mtime)."""
    _DIGESTS[_key(path)] = digest
