"""Side-by-side timing used by the benchmarks: every contender runs in each round, in rotating order so no
one always goes first; each round's median per contender, and the median over rounds."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable


def interleaved(
    runners: dict[str, Callable[[], object]], rounds: int, calls: int, warmup: int = 5
) -> dict[str, list[float]]:
    """Round medians in milliseconds per runner."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    order = list(runners)
    medians: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(rounds):
        for name in order[r % len(order) :] + order[: r % len(order)]:
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                runners[name]()
                times.append(time.perf_counter() - start)
            medians[name].append(statistics.median(times) * 1000)
    return medians


def add_timing_args(parser: argparse.ArgumentParser, calls: int) -> None:
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--calls", type=int, default=calls, help="calls per contender per round")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads for every contender")


def timing_record(args: argparse.Namespace, rounds: dict[str, list[float]]) -> dict:
    """The fields every benchmark result shares: settings, median of round medians, and the rounds."""
    return {
        "threads": args.threads,
        "rounds": args.rounds,
        "calls_per_round": args.calls,
        "median_ms": {name: statistics.median(v) for name, v in rounds.items()},
        "round_medians_ms": rounds,
    }
