"""build(): validate, resolve the source, run the stages, assemble the bundle in a staging folder, and
publish it with a rename. A failed or interrupted build leaves no bundle folder behind."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig

from builder import bundle, cache, config, host_lock, source
from builder.cache import StageCache
from builder.errors import StageError
from builder.hardware import host_can_run, host_facts
from builder.stages import STAGES
from builder.stages.common import BuildContext, onnx_files, onnx_size


def build_bundle(
    cfg: DictConfig,
    *,
    overrides: list[str] | tuple[str, ...] = (),
    choices: dict[str, Any] | None = None,
    quiet: bool = False,
) -> Path:
    """Build the bundle a composed config describes; return its folder. Raises builder.errors.BuilderError."""
    config.validate(cfg)
    resolved = config.to_container(cfg)
    src = source.resolve(cfg)
    evaluation_data = None
    if cfg.evaluation.enabled:  # a bad dataset fails here, before any model work
        from builder.eval_data import load_examples

        evaluation_data = load_examples(cfg)
    bid = bundle.bundle_id(resolved, src.identity)
    name = bundle.bundle_name(resolved, bid)
    root = Path(cfg.output_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    final = root / name
    say = (lambda *a, **k: None) if quiet else print
    say(f"building {name}")
    work = Path(tempfile.mkdtemp(prefix=f".work-{bid[:8]}-", dir=root))
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{bid[:8]}-", dir=root))
    ctx = BuildContext(cfg=cfg, source=src, workdir=work, evaluation_data=evaluation_data)
    try:
        with host_lock.computing():  # other builds on this host time their latency only in between
            ctx.metrics["stages"] = _run_stages(ctx, say)
            _assemble(ctx, staging, resolved, bid, name, list(overrides), choices or {})
            bundle.publish(staging, final)
    except StageError as e:
        say(" failed", flush=True)
        report = _reject(root, name, resolved, ctx.metrics, str(e))
        rejected = StageError(f"{e} What was measured: {report}")
        rejected.report = report  # type: ignore[attr-defined]
        raise rejected from e
    except BaseException:
        say(" failed", flush=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _run_stages(ctx: BuildContext, say: Any) -> dict[str, Any]:
    """Run every stage in order; a cacheable stage is reused from the stage cache when its key is there.
    Returns, per stage: built / reused / ran (not cacheable), its cache key, seconds, and its window (unix times)."""
    store = StageCache(ctx.cfg.cache_dir) if ctx.cfg.cache_dir else None
    versions = bundle.tool_versions()
    parent = cache.stage_key("source", "", ctx.source.identity, versions)
    record: dict[str, Any] = {}
    ctx.stage_cache = store
    for i, (name, stage) in enumerate(STAGES.items(), 1):
        start, started_at = time.perf_counter(), time.time()
        ctx.cache_parent = parent
        say(f"  [{i}/{len(STAGES)}] {name} ...", end="", flush=True)
        run = getattr(stage, "run", stage)
        config = stage.cache_config(ctx) if store and hasattr(stage, "cache_config") else None
        if config is None:
            run(ctx)
            status, key = "ran", None
        else:
            key = cache.stage_key(name, parent, config, versions)

            def build(name: str = name, run: Any = run) -> tuple[list[Path], dict[str, Any]]:
                run(ctx)
                data = {"onnx": ctx.onnx_path.name, "metrics": ctx.metrics.get(name), "runtime": ctx.runtime}
                return onnx_files(ctx.onnx_path), data

            folder, data, reused = store.get_or_build(name, key, build)
            if reused:
                ctx.onnx_path = folder / data["onnx"]
                ctx.metrics[name] = data["metrics"]
                ctx.runtime.update(data["runtime"])
            status = "reused" if reused else "built"
            parent = key
        seconds = round(time.perf_counter() - start, 3)
        record[name] = {"status": status, "key": key, "seconds": seconds, "window": [started_at, time.time()]}
        say(f" {seconds:.1f}s" + (" (reused)" if status == "reused" else ""), flush=True)
    return record


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


def _assemble(
    ctx: BuildContext,
    folder: Path,
    resolved: dict[str, Any],
    bid: str,
    name: str,
    overrides: list[str],
    choices: dict[str, Any],
) -> None:
    for src in onnx_files(ctx.onnx_path):
        shutil.copyfile(src, folder / src.name.replace(ctx.onnx_path.stem, "model", 1))
    if len(onnx_files(ctx.onnx_path)) > 1 and ctx.onnx_path.stem != "model":
        # External data is referenced by file name from inside the graph: re-save under the bundle's name.
        import onnx

        from builder.stages.common import save_onnx

        for p in folder.glob("model.onnx*"):
            p.unlink()
        save_onnx(onnx.load(str(ctx.onnx_path)), folder / "model.onnx")
    for item in ctx.files_dir().iterdir():
        shutil.copyfile(item, folder / item.name)
    fp32 = ctx.metrics["export"]["size_bytes"]
    size = onnx_size(folder / "model.onnx")
    ctx.metrics["size"] = {"fp32_model_bytes": fp32, "bundle_model_bytes": size, "ratio_to_fp32": size / fp32}
    versions = bundle.tool_versions()
    # Honesty: numbers measured on a host that cannot run the profile (no GPU, missing instruction set) say so.
    ctx.metrics["host"] = host_facts() | {
        "versions": versions,
        "runs_profile": host_can_run(ctx.cfg.hardware),
    }
    for stage in ("fidelity", "evaluation"):
        if ctx.metrics.get(stage, {}).get("measured", True) and stage in ctx.metrics:
            ctx.metrics[stage]["on_profile_hardware"] = ctx.metrics["host"]["runs_profile"]
    runtime = ctx.runtime_info()
    build_record = {"config": resolved, "overrides": overrides, "choices": choices}
    (folder / "build.yaml").write_text(yaml.safe_dump(build_record, sort_keys=False), encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(ctx.metrics, indent=2) + "\n", encoding="utf-8")
    extra = {"versions": versions, "source": ctx.source.identity, "runtime": runtime}
    (folder / "README.md").write_text(bundle.model_card(resolved, ctx.metrics, extra, name), encoding="utf-8")
    bundle.write_manifest(folder, bid, name, extra)
