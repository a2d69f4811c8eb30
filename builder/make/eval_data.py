"""Evaluation examples: the set shipped for the task, a local file, or a Hub dataset, mapped onto the task's
fields and checked row by row, so a bad file fails with the row and column at fault."""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path
from typing import Any

from builder.errors import ConfigError, SourceError
from builder.tasks import TASKS

LOCAL_FORMATS = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


def load_examples(cfg: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(examples with the task's fields, a description of where they came from)."""
    ev, task = cfg.evaluation, cfg.task.name
    rows, names, origin = _rows(ev, task)
    key = "evaluation.dataset"
    if not rows:
        raise ConfigError(
            [f"{key}={ev.dataset}: no rows in split {ev.split!r}. Give a file or split with examples."]
        )
    total = len(rows)
    if ev.max_samples and total > ev.max_samples:
        picked = sorted(random.Random(ev.seed).sample(range(total), ev.max_samples))
        rows = [rows[i] for i in picked]
    columns = {k: v for k, v in dict(ev.columns).items() if v}
    examples = [_map_row(row, i, task, columns, names, f"{key}={ev.dataset}") for i, row in enumerate(rows)]
    return examples, origin | {"rows_available": total, "examples": len(examples), "seed": ev.seed}


def _rows(ev: Any, task: str) -> tuple[list[dict[str, Any]], dict[str, list[str]], dict[str, Any]]:
    source = ev.dataset
    if source == "builtin":
        path = resources.files("builder.data") / f"{task}.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return rows, {}, {"dataset": "builtin", "file": f"builder/data/{task}.jsonl"}
    path = Path(source).expanduser()
    if path.suffix.lower() in LOCAL_FORMATS or path.exists() or source.startswith((".", "/", "~")):
        return _local_rows(path, source)
    return _hub_rows(ev)


def _local_rows(path: Path, source: str) -> tuple[list[dict[str, Any]], dict[str, list[str]], dict[str, Any]]:
    key = f"evaluation.dataset={source}"
    if not path.is_file():
        raise ConfigError(
            [f"{key}: no such file. Give a .json, .jsonl, .csv or .parquet file, or a Hub dataset id."]
        )
    fmt = LOCAL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            [f"{key}: unknown format {path.suffix!r}; use .json, .jsonl, .csv, .parquet or .txt"]
        )
    if path.stat().st_size == 0:
        raise ConfigError([f"{key}: the file is empty"])
    if fmt == "text":  # plain text: one example per paragraph (blank lines between), in a `text` column
        try:
            paragraphs = [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
        except UnicodeDecodeError as e:
            raise ConfigError([f"{key}: not UTF-8 text ({e.reason} at byte {e.start})"]) from e
        return [{"text": p} for p in paragraphs], {}, {"dataset": str(path.resolve()), "format": fmt}
    import datasets

    datasets.disable_progress_bars()
    try:
        data = datasets.load_dataset(fmt, data_files=str(path), split="train")
    except Exception as e:  # malformed JSON/CSV/parquet
        raise ConfigError(
            [f"{key}: cannot read it as {fmt} ({type(e).__name__}: {str(e).splitlines()[0][:200]})"]
        ) from e
    return list(data), _class_names(data), {"dataset": str(path.resolve()), "format": fmt}


def _hub_rows(ev: Any) -> tuple[list[dict[str, Any]], dict[str, list[str]], dict[str, Any]]:
    from huggingface_hub import constants

    from builder.runtime.loader import hub_reachable

    key = f"evaluation.dataset={ev.dataset}"
    hint = (
        "Point evaluation.dataset at a local .jsonl/.json/.csv/.parquet file with the task's fields "
        "(map other column names with evaluation.columns.<field>=<column>), or use evaluation=builtin."
    )
    if constants.HF_HUB_OFFLINE or not hub_reachable(constants.ENDPOINT):
        raise SourceError(f"{key}: the Hugging Face Hub is unreachable from this machine. {hint}")
    import datasets

    try:
        data = datasets.load_dataset(ev.dataset, ev.config_name, revision=ev.revision, split=ev.split)
    except Exception as e:
        raise SourceError(
            f"{key}: cannot load it ({type(e).__name__}: {str(e).splitlines()[0][:200]}). {hint}"
        ) from e
    origin = {
        "dataset": ev.dataset,
        "config_name": ev.config_name,
        "revision": ev.revision,
        "split": ev.split,
    }
    return list(data), _class_names(data), origin


def _class_names(data: Any) -> dict[str, list[str]]:
    """ClassLabel columns (also inside sequences): their id -> name tables."""
    names = {}
    for column, feature in data.features.items():
        inner = getattr(feature, "feature", feature)
        if hasattr(inner, "names") and inner.names:
            names[column] = list(inner.names)
    return names


def _map_row(
    row: dict[str, Any],
    index: int,
    task: str,
    columns: dict[str, str],
    names: dict[str, list[str]],
    where: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    required = TASKS[task].fields
    for field, kind in {**required, **TASKS[task].optional_fields}.items():
        column = columns.get(field, field)
        if column not in row:
            if field in required:
                raise ConfigError(
                    [
                        f"{where}: no column {column!r} for the {task} field {field!r} (columns: "
                        f"{', '.join(row)}). Map one with evaluation.columns.{field}=<column>"
                    ]
                )
            continue
        out[field] = _check(
            row[column], kind, names.get(column), f"{where}: row {index + 1} column {column!r}"
        )
    return out


def _check(value: Any, kind: str, class_names: list[str] | None, where: str) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError([f"{where}: expected {expected}, got {value!r}"[:300]])

    if kind == "text":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise bad("text")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if kind == "label":
        if isinstance(value, int) and class_names:
            return class_names[value]
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
        raise bad("a label name or id")
    if kind == "words":
        if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
            raise bad("a list of words")
        return value
    if kind == "tags":
        if not isinstance(value, list):
            raise bad("a list of IOB2 tags")
        if class_names and all(isinstance(t, int) for t in value):
            return [class_names[t] for t in value]
        if not all(isinstance(t, str) for t in value):
            raise bad("a list of IOB2 tag names (or class ids of a ClassLabel column)")
        return value
    if kind == "labels":  # candidate labels: a list, or a comma-separated string (as the zero-shot pipeline)
        if isinstance(value, str):
            value = [label.strip() for label in value.split(",") if label.strip()]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise bad("a non-empty list of label names (or a comma-separated string)")
        return value
    if kind == "answers":  # SQuAD: {"text": [...], "answer_start": [...]}, or a list of answer strings
        if isinstance(value, dict) and isinstance(value.get("text"), list):
            return [str(t) for t in value["text"]]
        if isinstance(value, list) and all(isinstance(t, str) for t in value):
            return value
        raise bad('SQuAD answers ({"text": [...], "answer_start": [...]}) or a list of answer strings')
    raise AssertionError(kind)
