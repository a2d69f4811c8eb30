"""What the stages of one build share: the config, the task, the model, the graphs built so far (by role), and
where to put files. Loading models (models.py), opening sessions (sessions.py) and caching (cache.py) are
services it hands on; it does none of that itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from builder.config import quantization_settings
from builder.make.cache import CachedWork
from builder.make.models import Models
from builder.make.sessions import Sessions
from builder.source import Source
from builder.tasks import Task


@dataclass
class BuildContext:
    cfg: Any
    task: Task
    options: dict[str, Any]  # the task's settings (task.* less name)
    source: Source
    workdir: Path
    models: Models
    sessions: Sessions
    cache: CachedWork
    model_files: Path  # tokenizer files and config.json, as the bundle will hold them
    examples: Any = None  # (evaluation examples, their origin), loaded before any stage runs
    graphs: dict[str, Path] = field(default_factory=dict)  # role -> the latest ONNX file of that graph
    metrics: dict[str, Any] = field(default_factory=dict)  # what the stages recorded, by stage

    def stage_dir(self, stage: str) -> Path:
        """A fresh folder for a stage's files."""
        folder = self.workdir / stage
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def runtime_section(ctx: BuildContext) -> dict[str, Any]:
    """The manifest's runtime section (format 2): what the runtime needs to run the graphs."""
    from builder.make.files import graph_io, written_by

    cfg, task = ctx.cfg, ctx.task
    graphs = {}
    for graph in ctx.models.graphs:
        inputs, outputs = graph_io(ctx.graphs[graph.role])
        graphs[graph.role] = {
            "file": graph.file,
            "inputs": inputs,
            "outputs": outputs,
            "token_outputs": [o.name for o in graph.outputs if o.per_token],
        }
        cache = {o.name for o in graph.outputs if o.cache}
        if cache and cache <= written_by(ctx.graphs[graph.role], "GroupQueryAttention"):
            # the operator appends to its past in place when past and present are one buffer (runtime/kv_cache.py)
            graphs[graph.role]["shared_cache"] = True
    return {
        "task": task.name,
        "pipeline": task.pipeline,
        "graphs": graphs,
        "max_length": ctx.models.facts.max_length,
        "options": task.runtime_options(ctx.options, ctx.source.path),
        "hardware": {
            k: _plain(cfg.hardware[k])
            for k in ("name", "device", "providers", "intra_op_threads", "session_optimization", "huge_pages")
        },
        "quantization": quantization_settings(cfg),
        "optimization": cfg.optimization.level,
        "opset": cfg.export.opset,
    }


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
