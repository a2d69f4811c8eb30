"""What the host is (CPU model, instruction-set flags, cores, GPU) and whether it can run a profile."""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
from typing import Any


@functools.lru_cache(maxsize=1)
def cpu_info() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:  # not Linux: no flags, so only profiles without cpu_flags match
        pass
    return {
        "model": model,
        "flags": sorted(flags),
        "logical_cores": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "machine": platform.machine(),
    }


def _physical_cores() -> int | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            pairs = set()
            phys = core = None
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    phys = value.strip()
                elif key == "core id":
                    core = value.strip()
                elif not line.strip() and core is not None:
                    pairs.add((phys, core))
                    phys = core = None
            return len(pairs) or os.cpu_count()
    except OSError:
        return os.cpu_count()


@functools.lru_cache(maxsize=1)
def gpu_names() -> tuple[str, ...]:
    """NVIDIA GPUs visible to this process (empty without a driver)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return ()
    exe = shutil.which("nvidia-smi")
    if not exe:
        return ()
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return (
        tuple(line.strip() for line in out.stdout.splitlines() if line.strip()) if out.returncode == 0 else ()
    )


def host_capabilities() -> dict[str, Any]:
    cpu = cpu_info()
    return {
        "flags": set(cpu["flags"]),
        "gpus": gpu_names(),
        "providers": set(_onnxruntime_providers()),
    }


def _onnxruntime_providers() -> list[str]:
    import onnxruntime

    return sorted(onnxruntime.get_available_providers())


def host_can_run(profile: Any, host: dict[str, Any] | None = None) -> bool:
    """The machine has what the profile needs, and so does its onnxruntime: a GPU without onnxruntime-gpu
    cannot run a cuda bundle here (its sessions would fall back to the CPU)."""
    host = host or host_capabilities()
    if profile.device == "cuda" and not host["gpus"]:
        return False
    if not set(profile.providers) <= host["providers"] | {"CPUExecutionProvider"}:
        return False
    return set(profile.cpu_flags) <= host["flags"]


def host_facts() -> dict[str, Any]:
    """Recorded in metrics.json next to every measurement."""
    cpu = cpu_info()
    return {
        "cpu": cpu["model"],
        "machine": cpu["machine"],
        "logical_cores": cpu["logical_cores"],
        "physical_cores": cpu["physical_cores"],
        "isa_flags": [f for f in cpu["flags"] if f.startswith(("avx", "amx", "sse4", "fma", "f16c", "vnni"))],
        "gpus": list(gpu_names()),
        "onnxruntime_providers": _onnxruntime_providers(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds the whole host has been busy, hypervisor steal included; CPU seconds of this process).
    Their changes over a timed window give the load of everything else. None where /proc/stat is missing."""
    try:
        with open("/proc/stat", encoding="utf-8") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = sum(fields[3:5])  # idle, iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal (guest is inside user)
    own = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system


def load_by_others(
    before: tuple[float, float] | None, after: tuple[float, float] | None, wall: float
) -> float | None:
    """Share of the host's CPU capacity that other processes (or the hypervisor) used during `wall` seconds."""
    if before is None or after is None or wall <= 0:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return round(min(max(others / (wall * (os.cpu_count() or 1)), 0.0), 1.0), 3)
