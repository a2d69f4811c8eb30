"""Side-by-side timing used by the benchmarks: every contender runs in each round, in rotating order so no
one always goes first; each round's median per contender, and the median over rounds."""

from __future__ import annotations

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
