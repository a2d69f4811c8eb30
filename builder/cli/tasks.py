"""`builder tasks`: the task registry as users see it."""

from __future__ import annotations

import argparse
from typing import Any


def tasks(argv: list[str]) -> int:
    """The task registry as users see it: `task=<name>`, its settings (task.*), and who has it."""
    import dataclasses

    from builder.tasks import TASKS, tasks_of
    from builder.tasks.architectures import ARCHITECTURES

    argparse.ArgumentParser(prog="builder tasks", description=tasks.__doc__).parse_args(argv)
    for name, task in TASKS.items():
        settings = ", ".join(f"task.{f.name}={_yaml(f.default)}" for f in dataclasses.fields(task.Options))
        archs = ", ".join(a for a in ARCHITECTURES if name in tasks_of(a))
        print(f"{name}\n  {task.summary}\n  settings: {settings or 'none'}")
        print(f"  evaluation: {', '.join(task.fields)} -> {task.gate_metric}")
        print(f"  architectures: {archs}")
    return 0


def _yaml(value: Any) -> str:
    return (
        str(value).lower()
        if isinstance(value, bool)
        else repr(value)
        if isinstance(value, str)
        else str(value)
    )
