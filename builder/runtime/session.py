"""ONNX Runtime sessions configured by a bundle's hardware profile."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from builder.runtime import huge_pages

# hardware.session_optimization: the graph optimizations ONNX Runtime applies when it loads the model
SESSION_OPTIMIZATIONS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

FLOATS = {"tensor(float)": np.float32, "tensor(float16)": np.float16}  # ONNX Runtime's type names, as numpy's


def float_inputs(session: ort.InferenceSession) -> dict[str, type]:
    """A session's float inputs, each with the numpy type it takes."""
    return {i.name: FLOATS[i.type] for i in session.get_inputs() if i.type in FLOATS}


def as_taken(feeds: Mapping[str, np.ndarray], types: Mapping[str, type]) -> dict[str, np.ndarray]:
    """Feeds with each float array in the type its input takes: callers build float32 arrays, and an fp16 graph
    takes its key/value cache in float16 (builder/make/stages/optimize.py)."""
    return {n: a.astype(types[n]) if n in types and a.dtype != types[n] else a for n, a in feeds.items()}


def providers_for(hardware: Mapping[str, Any]) -> list[str]:
    """The profile's providers that this onnxruntime build has, CPU always last as the fallback."""
    available = set(ort.get_available_providers())
    wanted = list(hardware.get("providers") or ["CPUExecutionProvider"])
    chosen = [p for p in wanted if p in available]
    missing = [p for p in wanted if p not in available]
    if missing:
        _warn(
            f"{', '.join(missing)} not available in this onnxruntime build "
            f"(has: {', '.join(sorted(available))}); running on {chosen[0] if chosen else 'CPUExecutionProvider'}.",
            depth=2,  # providers_for <- create_session <- its caller
        )
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


def create_session(model_path: str | Path, hardware: Mapping[str, Any]) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(hardware.get("intra_op_threads") or 0)
    options.graph_optimization_level = SESSION_OPTIMIZATIONS[hardware.get("session_optimization") or "all"]
    options.log_severity_level = 3  # errors only: ORT's warnings about unused initializers are noise here
    providers = providers_for(hardware)
    # hardware.huge_pages: a CPU session's weights in 2 MB pages (builder/runtime/huge_pages.py)
    before = (
        huge_pages.anonymous_regions()
        if hardware.get("huge_pages", True) and huge_pages.available()
        else None
    )
    session = ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
    started = session.get_providers()
    if before is not None and started[0] == "CPUExecutionProvider":
        huge_pages.collapse_new_in_background(before)
    # A provider compiled into the build can still fail to start (CUDA or cuDNN libraries not found):
    # ONNX Runtime then runs on the CPU and only logs it, below the severity shown above.
    failed = [p for p in providers if p not in started]
    if failed:
        _warn(
            f"{', '.join(failed)} is in this onnxruntime build but did not start (are the CUDA and cuDNN "
            f"libraries it needs on the library path? see onnxruntime.preload_dlls); running on {started[0]}.",
            depth=1,
        )
    return session


def _warn(message: str, depth: int) -> None:
    """A provider fallback, reported at the line that asked for the session: `depth` frames up from the caller."""
    warnings.warn(message, RuntimeWarning, stacklevel=depth + 2)
