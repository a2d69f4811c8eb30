"""The benchmark's schedule: how many calls each side gets, in alternating blocks of back-to-back calls, each
block after a few untimed settling calls."""

from __future__ import annotations

import itertools

import pytest

from builder.make.stages.benchmark import SETTLE, _interleaved


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
    times = _interleaved(runners, {"bundle": 2, "pytorch": 2}, rounds, counts, lambda: ticks.append(1))
    assert len(times["bundle"]) == iterations and len(times["pytorch"]) == baseline_iterations
    assert all(t >= 0 for t in times["bundle"] + times["pytorch"])
    assert order[:4] == ["b", "b", "p", "p"]  # warm-up: a block of each side
    assert len(ticks) == 2 + iterations
    timed = blocks(order[4:])
    assert [side for side, _ in timed] == ["b", "p"] * rounds  # one block per side per round, alternating
    for name, side_name, n in (("b", "bundle", iterations), ("p", "pytorch", baseline_iterations)):
        sizes = [size - SETTLE[side_name] for side, size in timed if side == name]
        assert sum(sizes) == n and max(sizes) - min(sizes) <= 1  # spread evenly over the rounds


def test_without_a_baseline_only_the_bundle_runs_without_settling() -> None:
    calls: list[int] = []
    times = _interleaved({"bundle": lambda: calls.append(1)}, {"bundle": 1}, 5, {"bundle": 5}, lambda: None)
    assert list(times) == ["bundle"] and len(times["bundle"]) == 5 and len(calls) == 6


def test_the_baseline_warms_up_once_per_process_model_and_shape() -> None:
    import torch
    from omegaconf import OmegaConf

    from builder.make.stages.benchmark import _baseline_warmup
    from builder.tasks.base import Workload

    def work(name: str, shape: tuple) -> Workload:
        return Workload(name, lambda: None, lambda: None, shape[0], shape)

    b = OmegaConf.create({"warmup": 5})
    model = torch.nn.Linear(2, 2)
    feeds = work("forward", (1, 8))
    assert _baseline_warmup(model, "cpu", 2, feeds, b) == 5
    assert _baseline_warmup(model, "cpu", 2, feeds, b) == 0  # a later sweep job: already warm
    assert _baseline_warmup(model, "cpu", 1, feeds, b) == 5  # other threads
    assert _baseline_warmup(model, "cpu", 2, work("forward", (4, 8)), b) == 5  # another shape
    assert _baseline_warmup(model, "cpu", 2, work("decode", (1, 8)), b) == 5  # another workload
    assert _baseline_warmup(torch.nn.Linear(2, 2), "cpu", 2, feeds, b) == 5  # another model
    assert _baseline_warmup(None, "cpu", 2, feeds, b) == 0
