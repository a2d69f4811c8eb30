"""Writing a bundle (format 2): its id and name, its files, the manifest, and the atomic publish.

<name>-<id8>/  model.onnx (one file per graph role)  tokenizer.json ...  config.json  build.yaml  metrics.json
               README.md  manifest.json
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from builder.digests import code_digest
from builder.hardware import host_can_run, host_facts
from builder.make.card import model_card
from builder.make.context import BuildContext, runtime_section
from builder.make.files import onnx_files, onnx_size, save_shared
from builder.runtime.manifest import FORMAT_VERSION, MANIFEST, file_table
from builder.version import __version__

# The data file of a bundle of several graphs: their weights, each distinct tensor once.
SHARED_DATA = "model.onnx_data"
# Keys that say where output goes or how it is measured: they do not change what is built.
NOT_IN_ID = ("output_dir", "cache_dir", "benchmark", "fidelity", "evaluation")
TOOLS = ("torch", "transformers", "onnx", "onnxruntime")


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    builder = f"{__version__}+code.{code_digest(Path(__file__).parents[1])[:12]}"
    return (("builder", builder), *((name, metadata.version(name)) for name in TOOLS))


def tool_versions() -> dict[str, str]:
    return dict(_versions())  # a fresh dict each call: callers may extend it


def bundle_id(config: dict[str, Any], source_identity: dict[str, Any]) -> str:
    """sha256 of canonical JSON of everything that determines the bundle's model bytes."""
    content = {
        "format_version": FORMAT_VERSION,
        "config": {k: v for k, v in config.items() if k not in NOT_IN_ID},
        "source": source_identity,
        "versions": tool_versions(),
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def model_slug(config: dict[str, Any]) -> str:
    name = config["model"]["name"]
    if not name:
        src = config["model"]["source"].rstrip("/\\")
        name = re.split(r"[/\\]", src.removeprefix("pkg://"))[-1] or "model"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "model"


def bundle_name(config: dict[str, Any], bid: str) -> str:
    parts = [
        model_slug(config),
        config["task"]["name"],
        config["hardware"]["name"],
        config["optimization"]["level"],
        config["quantization"]["method"],
        bid[:8],
    ]
    return "-".join(parts)


def write_manifest(folder: Path, bid: str, name: str, extra: dict[str, Any]) -> dict[str, Any]:
    manifest = {
        "format_version": FORMAT_VERSION,
        "bundle_id": bid,
        "name": name,
        "files": file_table(folder),
        **extra,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def assemble(
    ctx: BuildContext,
    folder: Path,
    resolved: dict[str, Any],
    bid: str,
    name: str,
    overrides: list[str],
    choices: dict[str, Any],
) -> None:
    """Fill the staging folder: graphs, model files, build record, metrics, card, manifest. A bundle of several
    graphs keeps their weights in one data file, each distinct tensor once (SHARED_DATA)."""
    graphs = ctx.models.graphs
    if len(graphs) > 1:
        save_shared([(ctx.graphs[g.role], folder / g.file) for g in graphs], folder / SHARED_DATA)
    for graph in graphs if len(graphs) == 1 else ():
        source = ctx.graphs[graph.role]
        if source.name != graph.file and len(onnx_files(source)) > 1:
            # External data is referenced by file name from inside the graph: re-save under the bundle's name.
            import onnx

            from builder.make.files import save_onnx

            model = onnx.load(str(source), load_external_data=False)
            save_onnx(model, folder / graph.file, ctx.cfg.export.external_data, weights_from=source.parent)
        else:
            for part in onnx_files(source):
                shutil.copyfile(part, folder / part.name.replace(source.name, graph.file, 1))
    for item in sorted(ctx.model_files.rglob("*")):
        target = folder / item.relative_to(ctx.model_files)
        if item.is_dir():  # sentence-transformers' 1_Pooling/
            target.mkdir(exist_ok=True)
        else:
            shutil.copyfile(item, target)
    metrics = ctx.metrics
    fp32 = metrics["export"].get(
        "stored_bytes", metrics["export"]["size_bytes"]
    )  # each weight once, as bundled
    size = sum(onnx_size(folder / g.file) for g in graphs) + _size(folder / SHARED_DATA)
    metrics["size"] = {"fp32_model_bytes": fp32, "bundle_model_bytes": size, "ratio_to_fp32": size / fp32}
    versions = tool_versions()
    # Honesty: numbers measured on a host that cannot run the profile (no GPU, missing instruction set) say so.
    metrics["host"] = host_facts() | {"versions": versions, "runs_profile": host_can_run(ctx.cfg.hardware)}
    for stage in ("fidelity", "evaluation"):
        if metrics.get(stage, {}).get("measured", True) and stage in metrics:
            metrics[stage]["on_profile_hardware"] = metrics["host"]["runs_profile"]
    build_record = {"config": resolved, "overrides": overrides, "choices": choices}
    (folder / "build.yaml").write_text(yaml.safe_dump(build_record, sort_keys=False), encoding="utf-8")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    extra = {"versions": versions, "source": ctx.source.identity, "runtime": runtime_section(ctx)}
    (folder / "README.md").write_text(model_card(resolved, metrics, extra, name), encoding="utf-8")
    write_manifest(folder, bid, name, extra)


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0
