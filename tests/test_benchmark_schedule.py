"""The benchmark's interleaving: how many calls each side gets, and that the baseline's are spread out."""

from __future__ import annotations

import pytest

from builder.stages.benchmark import _interleaved


@pytest.mark.parametrize(("iterations", "baseline_iterations"), [(50, 20), (3, 3), (10, 25), (7, 1)])
def test_each_side_gets_its_calls_and_the_baseline_is_spread(
    iterations: int, baseline_iterations: int
) -> None:
    order: list[str] = []
    runners = {"bundle": lambda: order.append("b"), "pytorch": lambda: order.append("p")}
    ticks: list[int] = []
    times = _interleaved(runners, 2, iterations, baseline_iterations, lambda: ticks.append(1))
    assert len(times["bundle"]) == iterations and len(times["pytorch"]) == baseline_iterations
    assert all(t >= 0 for t in times["bundle"] + times["pytorch"])
    assert order[:4] == ["b", "p", "b", "p"]  # warm-up: each side, alternating
    assert len(ticks) == 2 + iterations
    timed = order[4:]
    # Spread evenly: in any prefix, the baseline's share of its calls tracks the bundle's within one call of each.
    bundle_seen = baseline_seen = 0
    for call in timed:
        bundle_seen += call == "b"
        baseline_seen += call == "p"
        gap = abs(baseline_seen / baseline_iterations - bundle_seen / iterations)
        assert gap <= 1 / baseline_iterations + 1 / iterations + 1e-9
    assert timed[-1] == "p"  # the baseline's last call comes with the bundle's last, not all at the start


def test_without_a_baseline_only_the_bundle_runs() -> None:
    calls: list[int] = []
    times = _interleaved({"bundle": lambda: calls.append(1)}, 1, 5, 20, lambda: None)
    assert list(times) == ["bundle"] and len(times["bundle"]) == 5 and len(calls) == 6
