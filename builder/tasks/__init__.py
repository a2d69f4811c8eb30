"""The task registry: every task builder builds, listed once. Config validation, the CLI, the stages and the
tests' tiny models read it. A task is one module here (its build side) and one in builder/runtime/pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from builder.tasks import (
    feature_extraction,
    question_answering,
    summarization,
    text2text_generation,
    text_classification,
    text_generation,
    token_classification,
    translation,
    zero_shot_classification,
)
from builder.tasks.architectures import ARCHITECTURES, read_config
from builder.tasks.base import Graph, ModelFacts, Output, Task

TASKS: dict[str, Task] = {
    module.TASK.name: module.TASK
    for module in (
        feature_extraction,
        text_classification,
        token_classification,
        question_answering,
        zero_shot_classification,
        text_generation,
        text2text_generation,
        summarization,
        translation,
    )
}


def tasks_of(model_type: str) -> tuple[str, ...]:
    """The tasks an architecture has: those whose head it has."""
    heads = ARCHITECTURES[model_type].heads
    return tuple(name for name, task in TASKS.items() if task.head in heads)


def model_problems(folder: Path, task: str, source: str, options: dict[str, Any]) -> list[str]:
    """What a model folder lacks for a task: a known architecture, the task's head, what the task needs;
    `options` are the task.* settings as given."""
    try:
        config = read_config(folder)
    except (OSError, ValueError) as e:
        return [f"model.source={source}: cannot read config.json ({e})"]
    model_type = config.get("model_type", "?")
    if model_type not in ARCHITECTURES:
        return [
            f"model.source={source}: architecture {model_type!r} has no export in builder "
            f"(supported: {', '.join(ARCHITECTURES)}). Choose a model of a supported architecture."
        ]
    if task not in TASKS:  # reported with the other values
        return []
    if task not in tasks_of(model_type):
        return [
            f"task={task}: not available for {model_type!r} (available: {', '.join(tasks_of(model_type))})"
        ]
    return _file_problems(folder, source) + TASKS[task].model_problems(config, source, folder, options)


# A fast tokenizer is made from one of these (tokenizer.json as is; the others converted by transformers).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "spm.model", "tokenizer.model",
                   "sentencepiece.bpe.model")  # fmt: skip
WEIGHT_FILES = (
    "*.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def _file_problems(folder: Path, source: str) -> list[str]:
    """A folder without the model's tokenizer would build a bundle that turns every word into an unknown token
    (and fidelity would not see it: both sides share the tokenizer); one without weights cannot build."""
    problems = []
    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        problems.append(
            f"model.source={source}: {folder} has no tokenizer files (one of {', '.join(TOKENIZER_FILES)}); a "
            "bundle needs the model's own tokenizer. Save it beside the model (tokenizer.save_pretrained(FOLDER))"
        )
    if not any(next(folder.glob(pattern), None) for pattern in WEIGHT_FILES):
        problems.append(
            f"model.source={source}: {folder} has no weights (model.safetensors). Save the model there "
            "(model.save_pretrained(FOLDER))"
        )
    return problems


__all__ = ["TASKS", "Graph", "ModelFacts", "Output", "Task", "model_problems", "tasks_of"]
