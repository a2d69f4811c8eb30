"""The build stages in order. Adding a stage: one module with `run(ctx)`, one line here."""

from __future__ import annotations

from collections.abc import Callable

from builder.stages import benchmark, evaluation, export, fidelity, optimize, quantize
from builder.stages.common import BuildContext

STAGES: dict[str, Callable[[BuildContext], None]] = {
    "export": export.run,
    "optimize": optimize.run,
    "quantize": quantize.run,
    "fidelity": fidelity.run,
    "evaluation": evaluation.run,
    "benchmark": benchmark.run,
}
