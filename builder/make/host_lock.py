"""One host, several builds (parallel sweep jobs, two terminals): latency is timed only while no other build on
this host computes; otherwise parallel jobs time each other's load (docs/benchmarks.md).

A readers-writer lock on two files in the temp folder: a build holds the `compute` lock shared while it
works; the benchmark trades it for the lock held exclusively while it times, so it waits for the other builds'
running work and they wait for it. The `gate` lock lets a waiting benchmark in ahead of builds that start later
(flock alone would let a steady stream of shared holders starve it). flock locks go with the process: a
killed build frees them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from builder.errors import BuilderError

_held: dict[str, int] = {}  # this process's open lock files, by name, while it holds them


def lock_dir() -> Path:
    """Shared by every user of the host (override: BUILDER_HOST_LOCK_DIR)."""
    return Path(os.environ.get("BUILDER_HOST_LOCK_DIR") or tempfile.gettempdir())


def _open(name: str) -> int:
    path = lock_dir() / f"builder-{name}.lock"
    old = os.umask(0)
    try:  # readable by all: flock needs no write access, so other users' builds can lock it too
        return os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError as e:
        raise BuilderError(
            f"cannot open the host lock {path} ({e.strerror}): set BUILDER_HOST_LOCK_DIR to a folder that "
            "every build on this host can write"
        ) from e
    finally:
        os.umask(old)


def _acquire(name: str, mode: int) -> None:
    fd = _held.get(name)
    if fd is not None:  # held already: change its mode
        fcntl.flock(fd, mode)
        return
    fd = _open(name)
    try:
        fcntl.flock(fd, mode)
    except BaseException:  # e.g. Ctrl-C while waiting: not held
        os.close(fd)
        raise
    _held[name] = fd


def _release(name: str) -> None:
    fd = _held.pop(name, None)
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


@contextlib.contextmanager
def computing() -> Iterator[None]:
    """Held for a whole build: timing by other builds on this host waits for it (nesting is a no-op)."""
    if "compute" in _held:
        yield
        return
    _acquire("gate", fcntl.LOCK_EX)  # behind any benchmark already waiting
    try:
        _acquire("compute", fcntl.LOCK_SH)
    finally:
        _release("gate")
    try:
        yield
    finally:
        _release("compute")


@contextlib.contextmanager
def measuring(enabled: bool = True) -> Iterator[float]:
    """Time with the host to ourselves: yields the seconds spent waiting for other builds."""
    if not enabled:
        yield 0.0
        return
    start = time.perf_counter()
    was_computing = "compute" in _held
    # Let go of our shared hold first: two benchmarks each holding it while waiting would deadlock.
    _release("compute")
    _acquire("gate", fcntl.LOCK_EX)
    try:
        _acquire("compute", fcntl.LOCK_EX)
        try:
            yield time.perf_counter() - start
        finally:
            if was_computing:
                fcntl.flock(_held["compute"], fcntl.LOCK_SH)  # back to shared before others may pass
            else:
                _release("compute")
    finally:
        _release("gate")
