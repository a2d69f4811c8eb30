"""The build stages, in order. A stage is a contract the driver (builder/make/driver.py) runs:

- `name`: its key in metrics.json and in the stage cache;
- `cache_config(ctx) -> dict | None`: what its output depends on beyond its input. A stage with a dict is
  cached under the content key (previous stage's key, this dict, tool versions), and its output is the graphs
  it leaves in `ctx.graphs`; None: not cached (measurements, no-op settings);
- `exclusive(ctx) -> bool`: it needs the host to itself (the driver takes the host lock, see host_lock.py);
- `run(ctx) -> dict`: does the work, returns what it recorded (metrics.json[name]).

Adding a stage: one module with run(), one line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from builder.make.stages import benchmark, evaluation, export, fidelity, optimize, quantize


def _never(ctx: Any) -> Any:
    return None


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[Any], dict[str, Any]]
    cache_config: Callable[[Any], dict[str, Any] | None] = _never
    exclusive: Callable[[Any], bool] = lambda ctx: False


STAGES: tuple[Stage, ...] = (
    Stage("export", export.run, export.cache_config),
    Stage("optimize", optimize.run, optimize.cache_config),
    Stage("quantize", quantize.run, quantize.cache_config),
    Stage("fidelity", fidelity.run),
    Stage("evaluation", evaluation.run),
    Stage("benchmark", benchmark.run, exclusive=benchmark.exclusive),
)
