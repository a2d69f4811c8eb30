"""Transparent huge pages for CPU sessions (builder/runtime/huge_pages.py): on real memory and real sessions."""

from __future__ import annotations

import ctypes
import mmap
import platform
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from builder.runtime import huge_pages
from builder.runtime.session import create_session

pytestmark = pytest.mark.skipif(
    not huge_pages.available()
    or tuple(int(x) for x in platform.release().split(".")[:2] if x.isdigit()) < (6, 1),
    reason="needs Linux 6.1+ (MADV_COLLAPSE) with transparent huge pages not turned off",
)


def _smaps_kb(field: str, start: int, end: int) -> int:
    """A /proc/self/smaps field summed over the mappings that overlap [start, end)."""
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and ":" not in head:  # a mapping's first line: start-end perms ...
            a, b = (int(x, 16) for x in head.split("-"))
            inside = a < end and b > start
        elif inside and line.startswith(field + ":"):
            total += int(line.split()[1])
    return total


def _huge_kb(start: int, end: int) -> int:
    return _smaps_kb("AnonHugePages", start, end)


def _rss_kb(start: int, end: int) -> int:
    return _smaps_kb("Rss", start, end)


def _private_block(size: int = 16 << 20, step: int = 1) -> tuple[mmap.mmap, int, int]:
    """Anonymous private memory never advised (numpy advises its own large arrays), between two inaccessible pages
    so that the kernel cannot merge it with a neighbour (smaps then reports it alone); every `step`-th 4 KB page
    written. The mapping and the inner range's start and end."""
    page = mmap.PAGESIZE
    block = mmap.mmap(-1, size + 2 * page, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    base = ctypes.addressof(ctypes.c_char.from_buffer(block))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    for guard in (base, base + page + size):
        assert libc.mprotect(guard, page, 0) == 0  # PROT_NONE
    for offset in range(page, page + size, step * page):
        block[offset : offset + page] = bytes([offset // page % 251]) * page
    return block, base + page, base + page + size


def test_memory_added_since_the_snapshot_is_collapsed_and_keeps_its_contents() -> None:
    before = huge_pages.anonymous_regions()
    block, start, end = _private_block()
    inner = slice(mmap.PAGESIZE, mmap.PAGESIZE + end - start)  # the guard pages fault if read
    expected = block[inner]
    assert _huge_kb(start, end) == 0  # the host's "madvise" mode: none without the advice
    huge_pages.collapse_new_in_background(before).join(60)
    assert _huge_kb(start, end) >= 7 * 2048  # 16 MB at any 4 KB alignment holds seven whole 2 MB pages
    assert block[inner] == expected


def test_sparse_memory_is_not_filled_in() -> None:
    """A collapse would back a half-written range with whole pages: resident memory must not grow."""
    before = huge_pages.anonymous_regions()
    block, start, end = _private_block(step=2)
    huge_pages.collapse_new_in_background(before).join(60)
    assert _huge_kb(start, end) == 0
    assert _rss_kb(start, end) == 8 * 1024


def test_memory_from_before_the_snapshot_is_left_alone() -> None:
    block, start, end = _private_block()
    huge_pages.collapse_new_in_background(huge_pages.anonymous_regions()).join(60)
    assert _huge_kb(start, end) == 0


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MatMul with a 4 MB weight: ONNX Runtime copies it into memory of its own when the session starts."""
    weight = numpy_helper.from_array(np.ones((1024, 1024), np.float32), "w")
    model = helper.make_model(
        helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1024])],
            [weight],
        ),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    path = tmp_path_factory.mktemp("huge") / "model.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("wanted", [True, False])
def test_a_cpu_session_is_collapsed_as_its_profile_says(graph: Path, wanted: bool) -> None:
    huge_pages.wait()
    session = create_session(graph, {"huge_pages": wanted})
    started = list(huge_pages._pending)
    huge_pages.wait()
    assert bool(started) == wanted
    x = np.ones((1, 1024), np.float32)
    assert np.allclose(session.run(None, {"x": x})[0], 1024.0)
