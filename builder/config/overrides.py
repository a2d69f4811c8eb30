"""Command-line `key=value` overrides checked against the schemas before Hydra composes anything, so a misspelled
key or a value of the wrong type gets one plain message (all of them at once)."""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from typing import Any

from builder.config.schemas import TASK_SCHEMAS, BuildConfig


def override_problems(args: list[str]) -> list[str]:
    problems = []
    sweeping = "-m" in args or "--multirun" in args
    tasks = _named_tasks(args, sweeping)
    for i, arg in enumerate(args):
        if arg.startswith("-") or "=" not in arg:
            continue
        if i and args[i - 1] in ("-sc", "--shell-completion"):  # Hydra's own: install=bash, query=...
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key.startswith("hydra") or "@" in key or "/" in key:
            continue
        if ("{" in value or "}" in value) and value.lstrip()[:1] not in ("{", "[", "'", '"', "$"):
            problems.append(
                f"{key}={value}: Hydra reads braces as syntax; quote the value: '{key}=\"{value}\"'"
            )
            continue
        parts = key.split(".")
        if parts[0] == "task" and len(parts) > 1:
            schema, problem = _task_schema(parts[1], tasks, key)
            if problem:
                problems.append(problem)
                continue
            parts, path = parts[1:], ["task"]
        else:
            schema, path = BuildConfig, []
        problems += _key_problems(schema, parts, path, key, value, arg, sweeping)
    return problems


def _named_tasks(args: list[str], sweeping: bool) -> list[str]:
    """The tasks `task=...` chooses on this command line (each swept value under -m); none if it does not."""
    named: list[str] = []
    for arg in args:
        if arg.startswith("task="):
            value = arg.split("=", 1)[1]
            named = _sweep_items(value) if sweeping else [value]
    return [t for t in named if t in TASK_SCHEMAS]


def _task_schema(setting: str, tasks: list[str], key: str) -> tuple[Any, str | None]:
    """The schema that has task.<setting>: the named tasks' (all must have it), or any task's."""
    candidates = tasks or list(TASK_SCHEMAS)
    having = [t for t in candidates if setting in {f.name for f in dataclasses.fields(TASK_SCHEMAS[t])}]
    if tasks and len(having) < len(tasks):
        without = [t for t in tasks if t not in having]
        known = ", ".join(f.name for f in dataclasses.fields(TASK_SCHEMAS[without[0]]))
        return None, f"{key}: not a setting of task={without[0]} (its settings: {known})"
    if not having:
        every = sorted({f.name for s in TASK_SCHEMAS.values() for f in dataclasses.fields(s)})
        close = difflib.get_close_matches(setting, every, n=1)
        hint = f" Did you mean task.{close[0]}?" if close else ""
        return None, f"{key}: unknown key (no task has {setting!r}).{hint} Known: {', '.join(every)}"
    return TASK_SCHEMAS[having[0]], None


def _key_problems(
    schema: Any, parts: list[str], path: list[str], key: str, value: str, arg: str, sweeping: bool
) -> list[str]:
    for depth, part in enumerate(parts):
        fields = {f.name: f for f in dataclasses.fields(schema)}
        if part not in fields:
            where = ".".join([*path, *parts[:depth]]) or "the top level"
            close = difflib.get_close_matches(part, fields, n=1)
            hint = f"Did you mean {'.'.join([*path, *parts[:depth], close[0]])}?" if close else ""
            return [
                f"{key}: unknown key ({part!r} is not in {where}). {hint} Known: {', '.join(fields)}".replace(
                    "  ", " "
                )
            ]
        kind = typing.get_type_hints(schema)[part]
        if dataclasses.is_dataclass(kind):
            schema = kind
            continue
        # Any: chosen at compose time; dict and list: Hydra's own syntax checks them
        if kind is Any or typing.get_origin(kind) in (dict, list):
            return []
        if depth != len(parts) - 1:
            return [f"{key}: {'.'.join([*path, *parts[: depth + 1]])} is a value, it has no keys below it"]
        if arg.startswith("~"):
            return []
        items = _sweep_items(value) if sweeping else [value]
        return [f"{key}={item}: {err}" for item in items if (err := _type_problem(kind, item)) is not None]
    return []


def _sweep_items(value: str) -> list[str]:
    """The values a `-m` override sweeps over: `a,b,c` gives each; Hydra's sweep functions (range(...),
    choice(...), ...), lists and quoted strings are left to Hydra's own parser."""
    if re.match(r"\s*\w+\(", value) or value.lstrip()[:1] in ("[", "{", "'", '"'):
        return []
    return [item.strip() for item in value.split(",")]


def _type_problem(kind: Any, value: str) -> str | None:
    options = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
    if type(None) in typing.get_args(kind) and value in ("null", "None"):
        return None
    base = options[0]
    try:
        if base is bool and value.lower() not in ("true", "false"):
            return "expected true or false"
        if base is int:
            int(value)
        elif base is float:
            float(value)
    except ValueError:
        return f"expected {'an integer' if base is int else 'a number'}"
    return None
