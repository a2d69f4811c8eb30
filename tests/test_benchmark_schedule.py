"""The benchmark's schedule: how many calls each side gets, in alternating blocks of back-to-back calls, each
block after a few untimed settling calls."""

from __future__ import annotations

import itertools
import time

import pytest

from builder.make.stages.benchmark import (
    LONG_CALL_S,
    MIN_CALLS,
    SETTLE,
    _interleaved,
    _warm,
    after_first_token,
    calls_within,
    settling_calls,
    stats,
)


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
    made, seconds = _warm(runners, {"bundle": 2, "pytorch": 2}, None, lambda: ticks.append(1))
    assert made == {"bundle": 2, "pytorch": 2} and set(seconds) == {"bundle", "pytorch"}
    times = _interleaved(runners, rounds, counts, SETTLE, lambda: ticks.append(1))
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
    runners = {"bundle": lambda: calls.append(1)}
    made, seconds = _warm(runners, {"bundle": 1}, None, lambda: None)
    settle = {"bundle": settling_calls("bundle", seconds["bundle"], len(runners))}
    times = _interleaved(runners, 5, {"bundle": 5}, settle, lambda: None)
    assert (
        list(times) == ["bundle"]
        and len(times["bundle"]) == 5
        and len(calls) == 6
        and settle == {"bundle": 0}
    )


def test_slow_calls_get_fewer_timed_calls_and_no_settling() -> None:
    """benchmark.max_seconds cuts a side's count to what fits in it (never below MIN_CALLS, never above the count);
    calls of LONG_CALL_S or more skip settling; fast calls keep the configured schedule."""
    assert calls_within(50, 0.010, 30.0) == 50  # an encoder call: the full count
    assert calls_within(50, 1.0, 30.0) == 30  # a bundle's generation of 128 tokens
    assert calls_within(20, 9.0, 30.0) == MIN_CALLS  # PyTorch's: the floor
    assert calls_within(3, 9.0, 30.0) == 3  # never more than configured (benchmark=quick)
    assert calls_within(20, 9.0, None) == 20 and calls_within(20, None, 30.0) == 20
    assert settling_calls("pytorch", 0.03, 2) == SETTLE["pytorch"] and settling_calls("bundle", None, 2) == 1
    assert settling_calls("pytorch", LONG_CALL_S, 2) == 0 and settling_calls("bundle", 0.01, 1) == 0


def test_warm_up_of_slow_calls_ends_after_the_second_past_its_share() -> None:
    """Warm-up calls stop after the second once they have taken a fifth of max_seconds; without max_seconds, or for
    fast calls, all run. A side owed no warm-up still makes one call when its length is needed."""
    made_by = {"bundle": 0, "pytorch": 0}

    def call(name: str, seconds: float):
        def run() -> None:
            made_by[name] += 1
            time.sleep(seconds)

        return run

    runners = {"bundle": call("bundle", 0.0), "pytorch": call("pytorch", 0.02)}
    made, seconds = _warm(runners, {"bundle": 5, "pytorch": 5}, 0.1, lambda: None)  # a fifth: 0.02 s
    assert made == {"bundle": 5, "pytorch": 2} == made_by and seconds["pytorch"] >= 0.02
    made, _ = _warm(runners, {"bundle": 5, "pytorch": 5}, None, lambda: None)
    assert made == {"bundle": 5, "pytorch": 5}
    made, seconds = _warm(runners, {"bundle": 0, "pytorch": 0}, 0.1, lambda: None)
    assert made == {"bundle": 1, "pytorch": 1} and set(seconds) == {"bundle", "pytorch"}
    assert _warm(runners, {"bundle": 0, "pytorch": 0}, None, lambda: None) == (
        {"bundle": 0, "pytorch": 0},
        {},
    )


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


def row(workload: str, batch: int, bundle_s: list[float], pytorch_s: list[float] | None) -> dict:
    r = {"workload": workload, "batch_size": batch, "sequence_length": 16, "bundle": stats(bundle_s, batch)}
    return r | ({"pytorch": stats(pytorch_s, batch)} if pytorch_s else {})


def test_decode_after_the_first_token_is_the_steps_share_of_a_call() -> None:
    """A decode call is the prefill call plus new_tokens - 1 steps: the rate after the first token comes from the
    two medians of the same shape, per side, and the card and the build's summary show it."""
    results = [
        row("prefill", 1, [0.010, 0.011, 0.030], [0.040, 0.041, 0.042]),
        row("decode", 1, [0.073, 0.074, 0.090], [0.400, 0.401, 0.500]),  # p50 + 63 ms, + 360 ms
        row("prefill", 8, [0.020], None),
        row("decode", 8, [0.020 + 0.009 * 7], None),
        row("prefill", 4, [0.050], [0.050]),
        row("decode", 4, [0.049], [0.300]),  # noise: a decode median below the prefill one gives no rate
    ]
    after_first_token(results, new_tokens=8)
    one, eight, noisy = results[1]["after_first_token"], results[3]["after_first_token"], results[5]
    assert one["bundle"]["step_ms"] == pytest.approx(63 / 7) and one["pytorch"]["step_ms"] == pytest.approx(
        360 / 7
    )
    assert one["bundle"]["tokens_per_s"] == pytest.approx(7000 / 63) and one["speedup"] == pytest.approx(
        360 / 63
    )
    assert eight["bundle"]["tokens_per_s"] == pytest.approx(8 * 1000 / 9) and set(eight) == {"bundle"}
    assert "after_first_token" not in noisy and all("after_first_token" not in r for r in results[::2])
    single = [row("prefill", 1, [0.01], None), row("decode", 1, [0.01], None)]
    after_first_token(single, new_tokens=1)  # one new token: no steps after the first
    assert "after_first_token" not in single[1]
