"""The build stages in order. Adding a stage: one module with `run(ctx)`, one line here.

A stage module may also define `cache_config(ctx) -> dict | None`: the config its output depends on. Such a
stage's output is kept in the stage cache under a content key and reused by any build that asks for the
same; None (or no function) means the stage is not cached (measurements, no-op settings).
"""

from __future__ import annotations

from types import ModuleType

from builder.stages import benchmark, evaluation, export, fidelity, optimize, quantize

STAGES: dict[str, ModuleType] = {
    "export": export,
    "optimize": optimize,
    "quantize": quantize,
    "fidelity": fidelity,
    "evaluation": evaluation,
    "benchmark": benchmark,
}
