"""sha256 of files, remembered per (path, inode, size, mtime) in this process: sweep jobs that run in one process
read the same source model and stage-cache entries, and hash each once. Build-side only: verifying a bundle
(builder/runtime/manifest.py) always reads the bytes. Also the digest of builder's own code that keys its stages."""

from __future__ import annotations

import hashlib
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


def code_digest(package: Path) -> str:
    """sha256 over builder's own files (relative path and bytes), its configs (the `conf` subpackage of an install)
    and bytecode left out. It sits beside the version in stage-cache keys and bundle ids: a checkout whose code
    changed while the version string did not never reuses a stage an older checkout cached."""
    h = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if (
            not path.is_file()
            or rel.parts[0] == "conf"
            or "__pycache__" in rel.parts
            or path.suffix == ".pyc"
        ):
            continue
        h.update(rel.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()
