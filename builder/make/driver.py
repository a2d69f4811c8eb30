"""build_bundle(): validate, resolve the source, check the settings the model can refute, run the stages,
assemble the bundle in the build's work folder, and publish it with a rename (builder/make/workspace.py). A
failed or interrupted build leaves no bundle folder behind."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from builder import config, source
from builder.errors import ConfigError, StageError
from builder.make import host_lock, memory, stages, workspace, writer
from builder.make.cache import CachedWork, StageCache, stage_key
from builder.make.console import print_whole
from builder.make.context import BuildContext
from builder.make.eval_data import load_examples
from builder.make.files import onnx_files
from builder.make.models import Models, write_model_files
from builder.make.sessions import Sessions
from builder.tasks import TASKS


def build_bundle(
    cfg: DictConfig,
    *,
    overrides: list[str] | tuple[str, ...] = (),
    choices: dict[str, Any] | None = None,
    quiet: bool = False,
    prefix: str | None = None,
) -> Path:
    """Build the bundle a composed config describes; return its folder. Raises builder.errors.BuilderError.
    prefix: put in front of every line printed (a sweep job's name)."""
    config.validate(cfg)
    resolved = config.to_container(cfg)
    task = TASKS[cfg.task.name]
    options = {k: v for k, v in OmegaConf.to_container(cfg.task).items() if k != "name"}
    src = source.resolve(cfg)
    examples = load_examples(cfg) if cfg.evaluation.enabled else None  # a bad dataset fails before model work
    bid = writer.bundle_id(resolved, src.identity)
    name = writer.bundle_name(resolved, bid)
    root = Path(cfg.output_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    say = StageLines(quiet, prefix)
    say.line(f"building {name}")
    workspace.remove_dead(root)  # what killed builds left here
    versions = writer.tool_versions()
    models = Models(src, task, options, cfg.model.trust_remote_code, cfg.model.source)
    problems = config.model_fit_problems(
        cfg, models.facts.max_length, None if examples is None else len(examples[0])
    )
    if problems:
        raise ConfigError(problems)
    store = StageCache(cfg.cache_dir) if cfg.cache_dir else None
    if store is not None:
        store.remove_dead()
    with workspace.workspace(root, bid) as work:
        ctx = BuildContext(
            cfg=cfg,
            task=task,
            options=options,
            source=src,
            workdir=work,
            models=models,
            sessions=Sessions(cfg.hardware),
            cache=CachedWork(store, stage_key("source", "", src.identity, versions), versions),
            model_files=work / "files",
            examples=examples,
        )
        try:
            with host_lock.computing():  # other builds on this host time their latency only in between
                write_model_files(models, ctx.model_files, cfg.hardware.device)
                ctx.metrics["stages"] = run_stages(ctx, store, say)
                writer.assemble(
                    ctx, work / workspace.BUNDLE, resolved, bid, name, list(overrides), choices or {}
                )
                workspace.publish(work, root / name)
        except StageError as e:
            say.end("failed")
            report = _reject(root, name, resolved, ctx.metrics, str(e))
            rejected = StageError(f"{e} What was measured: {report}")
            rejected.report = report  # type: ignore[attr-defined]
            raise rejected from e
        except BaseException:
            say.end("failed")
            raise
        finally:
            if store is not None:
                store.release()
    return root / name


class StageLines:
    """The `  [i/n] stage ... 1.2s` lines of a build. The line is started when the stage starts and ended with its
    time. On a terminal it is written again when the stage ends, since a progress bar drawn on it meanwhile
    leaves it blank; with a prefix (parallel sweep jobs) each line is written whole when its stage ends, so jobs'
    lines never interleave mid-line."""

    def __init__(self, quiet: bool = False, prefix: str | None = None):
        self.quiet, self.prefix = quiet, prefix or ""
        self.tty = sys.stdout.isatty()
        self.open: str | None = None

    def line(self, text: str) -> None:
        if not self.quiet:
            print_whole(f"{self.prefix}{text}")

    def start(self, text: str) -> None:
        self.open = text
        if not self.quiet and not self.prefix:
            print(text, end="", flush=True)

    def end(self, result: str) -> None:
        text, self.open = self.open, None
        if self.quiet or text is None:
            return
        if self.prefix:
            print_whole(f"{self.prefix}{text} {result}")
        else:
            print(f"\r{text} {result}" if self.tty else f" {result}", flush=True)


def run_stages(ctx: BuildContext, store: StageCache | None, say: StageLines) -> dict[str, Any]:
    """Every stage in order. A stage with a cache config is reused from the stage cache when its key is there;
    one that needs the host alone runs under the host lock. Returns, per stage: built / reused / ran (not
    cacheable), its cache key, seconds, its window (unix times) and the process's peak resident memory while it ran."""
    timeline: dict[str, Any] = {}
    parent = ctx.cache.source_key
    for i, stage in enumerate(stages.STAGES, 1):
        start, started_at = time.perf_counter(), time.time()
        peak_known = memory.reset_peak()
        say.start(f"  [{i}/{len(stages.STAGES)}] {stage.name} ...")
        ctx.cache.input_key = parent
        content = stage.cache_config(ctx) if store else None
        key = None if content is None else stage_key(stage.name, parent, content, ctx.cache.versions)
        try:
            with host_lock.measuring(stage.exclusive(ctx)) as waited:
                record, status = _run(ctx, stage, store, key)
        except StageError as e:
            if e.record is not None:
                ctx.metrics[stage.name] = e.record
            raise
        except BaseException as e:  # an interrupt: the CLI names the stage it stopped
            if not isinstance(e, Exception):
                e.stage = stage.name  # type: ignore[attr-defined]
            raise
        ctx.models.release_large()
        _drop_superseded(ctx)
        if stage.exclusive(ctx):
            record["waited_for_host_s"] = round(waited, 3)
        ctx.metrics[stage.name] = record
        if key is not None:
            parent = key
        seconds = round(time.perf_counter() - start, 3)
        timeline[stage.name] = {
            "status": status,
            "key": key,
            "seconds": seconds,
            "window": [started_at, time.time()],
            "peak_rss_bytes": memory.peak_bytes() if peak_known else None,
        }
        say.end(f"{seconds:.1f}s" + (" (reused)" if status == "reused" else ""))
    return timeline


def _drop_superseded(ctx: BuildContext) -> None:
    """Remove the stage folders of the work folder that no graph is read from any more (the export once the
    optimized graph exists): a 1.5B decoder leaves 6 GB in each."""
    live = {path.resolve().parent for path in ctx.graphs.values()}
    for stage in stages.STAGES:
        folder = ctx.workdir / stage.name
        if folder.is_dir() and folder.resolve() not in live:
            shutil.rmtree(folder, ignore_errors=True)


def _run(
    ctx: BuildContext, stage: stages.Stage, store: StageCache | None, key: str | None
) -> tuple[dict, str]:
    """(the stage's record, built | reused | ran). A cached stage's output is the graphs it leaves in ctx.graphs."""
    if key is None or store is None:
        return stage.run(ctx), "ran"

    def build() -> tuple[list[Path], dict[str, Any]]:
        record = stage.run(ctx)
        files = [part for path in ctx.graphs.values() for part in onnx_files(path)]
        return files, {"graphs": {role: path.name for role, path in ctx.graphs.items()}, "record": record}

    folder, data, reused = store.get_or_build(stage.name, key, build)
    if reused:
        ctx.graphs = {role: folder / file for role, file in data["graphs"].items()}
    return data["record"], "reused" if reused else "built"


def _reject(root: Path, name: str, resolved: dict[str, Any], metrics: dict[str, Any], reason: str) -> Path:
    """Keep the measurements of a build that failed a gate, outside the published bundles."""
    folder = root / ".rejected"
    folder.mkdir(exist_ok=True)
    report = folder / f"{name}.json"
    record = {"name": name, "reason": reason, "config": resolved, "metrics": metrics}
    tmp = report.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(report)
    return report
