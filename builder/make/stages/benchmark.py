"""benchmark: latency and throughput of the bundle's session and of the PyTorch baseline, interleaved in
one run on the same inputs and thread count (in alternating blocks of back-to-back calls), per batch size and
sequence length. It times the task's workloads (Task.benchmark_workloads); the driver gives it the host to itself
(exclusive)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from builder.hardware import cpu_info, cpu_seconds, gpu_names, host_can_run, load_by_others
from builder.make.context import BuildContext, runtime_section
from builder.runtime.engine import OnnxEngine


def exclusive(ctx: BuildContext) -> bool:
    """Time with the host to ourselves (when timing at all): other builds on this host pause meanwhile."""
    b = ctx.cfg.benchmark
    return bool(b.enabled and b.exclusive and host_can_run(ctx.cfg.hardware))


def run(ctx: BuildContext) -> dict[str, Any]:
    b = ctx.cfg.benchmark
    if not b.enabled:
        return {"skipped": True}
    hw = ctx.cfg.hardware
    if not host_can_run(hw):
        why = "no GPU" if hw.device == "cuda" and not gpu_names() else "missing instruction sets or providers"
        return {
            "measured": False,
            "reason": f"this host cannot run hardware={hw.name} ({why}: see metrics.host)",
        }
    threads = hw.intra_op_threads or cpu_info()["physical_cores"] or 1
    first = ctx.models.graphs[
        0
    ].role  # the graph whose session says where the bundle runs (an encoder's first)
    session = ctx.sessions.get(ctx.graphs[first])
    provider = session.get_providers()[0]
    if hw.device == "cuda" and provider != "CUDAExecutionProvider":  # CUDA compiled in, but it did not start
        return {
            "measured": False,
            "reason": f"onnxruntime here runs hardware={hw.name} on {provider}: CUDA did not start",
        }
    # The baseline runs where users would run PyTorch for this hardware: a cuda bundle against the GPU.
    device = "cuda" if hw.device == "cuda" else "cpu"
    # the first graph's module: an encoder task's whole model; a generating task's holds the model it generates with
    # in the bundle's precision: an fp16 (O4) bundle against PyTorch in fp16 on the same GPU
    dtype = "float16" if device == "cuda" and ctx.cfg.optimization.fp16 else "float32"
    baseline = (
        ctx.models.torch_modules(eager=False, device=device, dtype=dtype)[first] if b.baseline else None
    )
    facts = ctx.models.facts
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    shapes = [(bs, sl) for bs in b.batch_sizes for sl in b.sequence_lengths if sl <= facts.max_length]
    results = []
    try:
        engine = OnnxEngine(ctx.model_files, runtime_section(ctx), sessions=ctx.sessions.of(ctx.graphs))
        workloads = [
            w
            for shape in shapes
            for w in ctx.task.benchmark_workloads(engine, baseline, facts, shape, b, device)
        ]
        total = len(workloads) * (b.warmup + b.iterations)
        with tqdm(total=total, desc="benchmark", leave=False, disable=None) as bar:
            window, cpu_before, warmed = [time.time()], cpu_seconds(), []
            for w in workloads:
                runners = {"bundle": w.bundle} | ({"pytorch": w.pytorch} if w.pytorch else {})
                counts = {"bundle": b.iterations, "pytorch": b.baseline_iterations}
                warmups = {"bundle": b.warmup, "pytorch": _baseline_warmup(baseline, device, threads, w, b)}
                made, seconds = _warm(runners, warmups, b.max_seconds, bar.update)
                warmed.append(made)
                counts = {
                    name: calls_within(counts[name], seconds.get(name), b.max_seconds) for name in runners
                }
                settle = {name: settling_calls(name, seconds.get(name), len(runners)) for name in runners}
                bar.total += made["bundle"] + counts["bundle"] - b.warmup - b.iterations
                bar.refresh()
                times = _interleaved(runners, b.rounds, counts, settle, bar.update)
                row = {"workload": w.name, "batch_size": w.shape[0], "sequence_length": w.shape[1]}
                row |= {name: stats(t, w.items) for name, t in times.items()}
                row["untimed_calls"] = {"warmup": made, "settle_per_block": settle}
                if "pytorch" in row:
                    row["speedup_p50"] = row["pytorch"]["p50_ms"] / row["bundle"]["p50_ms"]
                results.append(row)
            window.append(time.time())
            others = load_by_others(cpu_before, cpu_seconds(), window[1] - window[0])
    finally:
        torch.set_num_threads(previous_threads)
    after_first_token(results, b.new_tokens)
    return {
        "measured": True,
        "threads": threads,
        "provider": provider,
        "baseline_device": device if baseline is not None else None,
        "baseline_dtype": dtype if baseline is not None else None,
        "warmup": b.warmup,
        "warmup_calls": warmed,  # per shape and side: the baseline skips it once warm in this process
        "iterations": b.iterations,
        "baseline_iterations": b.baseline_iterations if baseline is not None else 0,
        "max_seconds": b.max_seconds,  # slow calls get fewer timed calls: each row's `calls` says how many
        "min_calls": MIN_CALLS,
        "rounds": b.rounds,
        "new_tokens": b.new_tokens,
        "settle_calls": SETTLE if baseline is not None else {},  # calls under LONG_CALL_S; rows say theirs
        "host_exclusive": b.exclusive,  # no other build on this host computed while this one timed
        "timed_window": window,  # unix times
        # Share of the host's CPU that other processes (or the hypervisor) took while timing: above
        # bundle.BUSY_HOST the latencies are inflated, and the CLI, card and report say so.
        "host_load_by_others": others,
        "results": results,
    }


# Untimed calls each time the loop switches sides, as many as each side takes to settle (docs/benchmarks.md): the
# first calls are slowed by the other side's still-spinning threads and its cache footprint; calling the sides
# one for one would time that interference.
SETTLE = {"bundle": 1, "pytorch": 2}
# That interference is a fixed few tens of ms: calls this long skip settling (under 5% of the first call of a
# block, and a generation's call takes seconds), since settling them would cost more than it corrects.
LONG_CALL_S = 1.0
# The fewest timed calls of a side when max_seconds cuts its count, and the share of max_seconds after which
# warm-up calls stop (from the second call on: slow calls pay their one-time costs in the first).
MIN_CALLS = 5
WARMUP_SHARE = 0.2


def calls_within(count: int, seconds: float | None, max_seconds: float | None) -> int:
    """Timed calls of a side: its configured count, cut so that they take about max_seconds when one call takes
    `seconds` (a generation of 128 tokens by PyTorch takes ~9 s on the SmolLM2 shape), but never below MIN_CALLS."""
    if max_seconds is None or not seconds:
        return count
    return min(count, max(MIN_CALLS, int(max_seconds / seconds)))


def settling_calls(side: str, seconds: float | None, sides: int) -> int:
    """Untimed calls of a side before each of its blocks: none without another side to interfere or when its calls
    are long (LONG_CALL_S); SETTLE otherwise (also when its length is unknown)."""
    if sides < 2 or (seconds is not None and seconds >= LONG_CALL_S):
        return 0
    return SETTLE[side]


def _baseline_warmup(model: Any, device: str, threads: int, workload: Any, b: Any) -> int:
    """Warm-up calls the baseline needs: none once this process has run the same model on these shapes with
    these threads (a sweep's later jobs), since the one-time costs are paid and settling calls precede every block."""
    if model is None:
        return 0
    key = (device, threads, workload.name, workload.shape)
    warm = model.__dict__.setdefault("_builder_warm", set())
    if key in warm:
        return 0
    warm.add(key)
    return b.warmup


def _warm(
    runners: dict, warmups: dict[str, int], max_seconds: float | None, tick: Any
) -> tuple[dict[str, int], dict[str, float]]:
    """Each side's untimed warm-up calls, in a block: warmups[name] of them, ending after the second once they have
    taken WARMUP_SHARE of max_seconds. Returns the calls made and the last one's seconds per side. With max_seconds
    set, a side owed no warm-up (a baseline already warm in this process) still makes one call, to be measured."""
    made: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for name, call in runners.items():
        want = max(warmups.get(name, 0), 0 if max_seconds is None else 1)
        spent, n = 0.0, 0
        while n < want and not (n >= 2 and max_seconds is not None and spent >= WARMUP_SHARE * max_seconds):
            start = time.perf_counter()
            call()
            seconds[name] = time.perf_counter() - start
            spent, n = spent + seconds[name], n + 1
            if name == "bundle":
                tick()
        made[name] = n
    return made, seconds


def _interleaved(
    runners: dict, rounds: int, counts: dict[str, int], settle: dict[str, int], tick: Any
) -> dict[str, list]:
    """Seconds per call, in `rounds` rounds in which each side in turn makes its `settle` untimed calls and then its
    share of `counts` timed calls back to back. Each side is timed in its steady state, and both are sampled across
    the whole run, so slow drifts of the host's load hit both alike."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    for r in range(rounds):
        for name in runners:  # blocks alternate sides: each block follows one of the other side
            n = counts[name]
            share = n * (r + 1) // rounds - n * r // rounds
            if not share:
                continue
            for _ in range(settle.get(name, 0)):
                runners[name]()
            for _ in range(share):
                start = time.perf_counter()
                runners[name]()
                times[name].append(time.perf_counter() - start)
                if name == "bundle":
                    tick()
    return times


def after_first_token(results: list[dict], new_tokens: int) -> None:
    """Text generation: each decode row gets the rate after the first token, per side, from the same run's medians:
    a decode call is the prefill call (prompt to first token) and then new_tokens - 1 steps of one token, so a
    step takes (decode p50 - prefill p50) / (new_tokens - 1). This is the decode rate users compare; the row's own
    throughput counts the prompt's time too. Left out when noise makes the difference non-positive."""
    prefill = {(r["batch_size"], r["sequence_length"]): r for r in results if r.get("workload") == "prefill"}
    for row in results:
        first = prefill.get((row["batch_size"], row["sequence_length"]))
        if row.get("workload") != "decode" or first is None or new_tokens < 2:
            continue
        steps = {
            side: (row[side]["p50_ms"] - first[side]["p50_ms"]) / (new_tokens - 1)
            for side in ("bundle", "pytorch")
            if side in row and side in first
        }
        if min(steps.values()) <= 0:
            continue
        sides: dict[str, Any] = {
            side: {"step_ms": ms, "tokens_per_s": row["batch_size"] * 1000.0 / ms}
            for side, ms in steps.items()
        }
        if "pytorch" in sides:
            sides["speedup"] = sides["pytorch"]["step_ms"] / sides["bundle"]["step_ms"]
        row["after_first_token"] = sides


def stats(seconds: list[float], batch_size: int) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "calls": int(ms.size),
        "mean_ms": float(ms.mean()),
        "std_ms": float(ms.std()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "throughput_per_s": float(batch_size * 1000.0 / ms.mean()),
    }
