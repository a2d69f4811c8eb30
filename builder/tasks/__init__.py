"""The task registry: every task builder builds, listed once. Config validation, the CLI, the stages and the
tests' tiny models read it. A task is one module here (its build side) and one in builder/runtime/pipelines."""

from __future__ import annotations

from builder.tasks import (
    feature_extraction,
    question_answering,
    text_classification,
    token_classification,
    zero_shot_classification,
)
from builder.tasks.base import Graph, ModelFacts, Output, Task

TASKS: dict[str, Task] = {
    module.TASK.name: module.TASK
    for module in (
        feature_extraction,
        text_classification,
        token_classification,
        question_answering,
        zero_shot_classification,
    )
}

__all__ = ["TASKS", "Graph", "ModelFacts", "Output", "Task"]
