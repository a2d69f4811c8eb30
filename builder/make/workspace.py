"""Where a build works, how it publishes, and how the leftovers of dead builds are found.

A build works in one folder beside its output, `<output_dir>/.work-<id8>-<random>/`: intermediate graphs,
model files, and `bundle/`, the bundle being assembled (on the output's file system, so publishing is a
rename). While the build runs it holds an flock on `.work-*/.alive`; the kernel drops it when the process
dies, however it dies. So a `.work-*` folder whose `.alive` can be locked belongs to a dead build: the next
build (and `builder cache clear`) removes it, and never a live build's.

Replacing a bundle that exists is one `renameat2(RENAME_EXCHANGE)` on Linux: the name always resolves to a
complete bundle, the old or the new (the old one lands in the work folder and goes with it). Elsewhere it is
two renames, with a moment in between when the name is missing.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ALIVE = ".alive"
BUNDLE = "bundle"
GRACE_S = 60.0  # a .work folder younger than this without .alive may be between mkdtemp and its lock


def umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def share(folder: Path) -> None:
    """mkdtemp makes folders 0700; give a folder the mode the user's umask gives any new folder."""
    os.chmod(folder, 0o777 & ~umask())


@contextlib.contextmanager
def workspace(root: Path, bid: str) -> Iterator[Path]:
    """A work folder held alive for the block; removed with everything in it afterwards."""
    work = Path(tempfile.mkdtemp(prefix=f".work-{bid[:8]}-", dir=root))
    fd = os.open(work / ALIVE, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        (work / BUNDLE).mkdir()
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.close(fd)


def is_held(path: Path) -> bool:
    """True if some live process holds an flock on the file."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops a lock this call took
    return False


def dead_work_folders(root: Path) -> list[Path]:
    """`.work-*` folders in root left by builds that are no longer running."""
    dead = []
    for work in sorted(root.glob(".work-*")) if root.is_dir() else []:
        if not work.is_dir() or work.is_symlink():
            continue
        alive = work / ALIVE
        if alive.exists():
            if not is_held(alive):
                dead.append(work)
        elif time.time() - work.stat().st_mtime > GRACE_S:  # a builder work folder from before .alive
            dead.append(work)
    return dead


def remove_dead(root: Path) -> int:
    """Remove what dead builds left in root; return how many folders went."""
    gone = 0
    for work in dead_work_folders(root):
        shutil.rmtree(work, ignore_errors=True)
        gone += not work.exists()
    return gone


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def publish(work: Path, final: Path) -> None:
    """Move the work folder's complete bundle to `final`. Readers of `final` see the old bundle or the new one."""
    staging = work / BUNDLE
    if not final.exists():
        try:
            os.rename(staging, final)
            return
        except OSError:
            if not final.exists():
                raise
    if _exchange(staging, final):  # staging now holds the old bundle, removed with the work folder
        return
    old = work / "replaced"
    os.rename(final, old)
    os.rename(staging, final)
