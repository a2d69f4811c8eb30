"""Transparent huge pages for a CPU session's memory (Linux).

Each decode step reads every weight once. With 4 KB pages, a 100 MB int4 model is ~25,000 pages to translate
each step, and most of those translations miss the TLB. Once ONNX Runtime has laid out (prepacked) a session's
weights, the anonymous memory the session added is advised as huge (MADV_HUGEPAGE) and collapsed into 2 MB pages
(MADV_COLLAPSE, Linux 6.1 and later). Hosts whose transparent huge pages are "madvise" (this one; Debian's and
Ubuntu's default) give none without the advice.

The collapse runs on a background thread (the kernel does the copying; ctypes lets go of the GIL), so loading
does not wait for it; wait() does. Contents never change. Elsewhere, or where the kernel refuses, nothing
happens. Measured in docs/benchmarks.md."""

from __future__ import annotations

import ctypes
import mmap
import os
import sys
import threading
from pathlib import Path

import numpy as np

THP = Path("/sys/kernel/mm/transparent_hugepage")
MADV_HUGEPAGE, MADV_COLLAPSE = 14, 25
MISSING = 1 / 16  # the share of a 2 MB page's 4 KB pages that may be absent for it to be collapsed
_pending: list[threading.Thread] = []


def available() -> bool:
    """Linux with transparent huge pages not turned off."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mode = (THP / "enabled").read_text()
    except OSError:
        return False
    return "[never]" not in mode


def _huge_size() -> int:
    """The kernel's huge page size (2 MB on x86-64 and on arm64 with 4 KB pages)."""
    try:
        return int((THP / "hpage_pmd_size").read_text())
    except (OSError, ValueError):
        return 2 << 20


def anonymous_regions() -> dict[int, int]:
    """start -> end of the process's private, writable, anonymous mappings (the heap included)."""
    regions = {}
    with open("/proc/self/maps", encoding="ascii") as maps:
        for line in maps:
            parts = line.split()  # start-end perms offset dev inode [path]
            if parts[1] == "rw-p" and parts[4] == "0" and (len(parts) == 5 or parts[5] == "[heap]"):
                start, end = (int(x, 16) for x in parts[0].split("-"))
                regions[start] = end
    return regions


def collapse(regions: dict[int, int]) -> int:
    """Advise and collapse the regions' 2 MB pages that are already (nearly) all in memory; the bytes collapsed.
    A collapse fills a page's missing 4 KB pages with zeros, so a sparse range (a heap's free space, a thread
    arena's reserve) is left as it is and resident memory grows by at most MISSING. A range the kernel refuses
    (gone since, or a kernel before 6.1) is skipped: advised ranges still get huge pages from khugepaged, later."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    done = 0
    for first, last in _resident_runs(regions):
        advised = libc.madvise(first, last - first, MADV_HUGEPAGE) == 0
        if advised and libc.madvise(first, last - first, MADV_COLLAPSE) == 0:
            done += last - first
    return done


def _resident_runs(regions: dict[int, int]) -> list[tuple[int, int]]:
    """[start, end) runs of whole huge pages inside the regions whose 4 KB pages are in memory but for MISSING,
    from /proc/self/pagemap (bit 63: present, bit 62: swapped)."""
    small, huge = mmap.PAGESIZE, _huge_size()
    per_huge = huge // small
    runs: list[tuple[int, int]] = []
    try:
        pagemap = os.open("/proc/self/pagemap", os.O_RDONLY)
    except OSError:
        return runs
    try:
        for start, end in regions.items():
            first, last = -(-start // huge) * huge, end // huge * huge
            if last - first < huge:
                continue
            entries = os.pread(pagemap, (last - first) // small * 8, first // small * 8)
            flags = np.frombuffer(entries, dtype=np.uint64) >> np.uint64(62)
            resident = (flags != 0).reshape(-1, per_huge).sum(axis=1) >= per_huge * (1 - MISSING)
            for i, keep in enumerate(resident):
                at = first + i * huge
                if not keep:
                    continue
                if runs and runs[-1][1] == at:
                    runs[-1] = (runs[-1][0], at + huge)
                else:
                    runs.append((at, at + huge))
    except OSError:  # a region unmapped meanwhile
        pass
    finally:
        os.close(pagemap)
    return runs


def collapse_new_in_background(before: dict[int, int]) -> threading.Thread:
    """Collapse the anonymous regions that are new or have grown since `before` (anonymous_regions()), on a
    daemon thread."""
    grown = {a: b for a, b in anonymous_regions().items() if before.get(a) != b}
    thread = threading.Thread(target=collapse, args=(grown,), name="builder-huge-pages", daemon=True)
    thread.start()
    _pending.append(thread)
    return thread


def wait(timeout: float | None = None) -> None:
    """Until every collapse started so far has ended (benchmarks: time the steady state)."""
    while _pending:
        _pending.pop().join(timeout)
