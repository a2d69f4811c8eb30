"""The benchmark's schedule: how many calls each side gets, in alternating blocks of back-to-back calls, each
block after a few untimed settling calls."""

from __future__ import annotations

import itertools

import pytest

from builder.stages.benchmark import SETTLE, _interleaved


def blocks(order: list[str]) -> list[tuple[str, int]]:
    return [(name, len(list(group))) for name, group in itertools.groupby(order)]


@pytest.mark.parametrize(
    ("iterations", "baseline_iterations", "rounds"), [(50, 20, 5), (3, 3, 1), (10, 25, 4)]
)
def test_each_side_is_timed_in_alternating_settled_blocks(
    iterations: int, baseline_iterations: int, rounds: int
) -> None:
    order: list[str] = []
    runners = {"bundle": lambda: order.append("b"), "pytorch": lambda: order.append("p")}
    ticks: list[int] = []
    counts = {"bundle": iterations, "pytorch": baseline_iterations}
    times = _interleaved(runners, 2, rounds, counts, lambda: ticks.append(1))
    assert len(times["bundle"]) == iterations and len(times["pytorch"]) == baseline_iterations
    assert all(t >= 0 for t in times["bundle"] + times["pytorch"])
    assert order[:4] == ["b", "b", "p", "p"]  # warm-up: a block of each side
    assert len(ticks) == 2 + iterations
    timed = blocks(order[4:])
    assert [side for side, _ in timed] == ["b", "p"] * rounds  # one block per side per round, alternating
    for name, n in (("b", iterations), ("p", baseline_iterations)):
        sizes = [size - SETTLE for side, size in timed if side == name]
        assert sum(sizes) == n and max(sizes) - min(sizes) <= 1  # spread evenly over the rounds


def test_without_a_baseline_only_the_bundle_runs_without_settling() -> None:
    calls: list[int] = []
    times = _interleaved({"bundle": lambda: calls.append(1)}, 1, 5, {"bundle": 5}, lambda: None)
    assert list(times) == ["bundle"] and len(times["bundle"]) == 5 and len(calls) == 6
