"""Tasks and architectures builder can export: one table each, read by every stage.

Pure data and numpy: the runtime may import it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Task:
    name: str
    auto_class: str  # transformers Auto class that loads the model with this task's head
    outputs: tuple[str, ...]  # graph output names, in order
    token_level: tuple[bool, ...]  # per output: one value per token (masked on padding) or per example
    pairs: bool  # inputs are (question, context) pairs


TASKS: dict[str, Task] = {
    "feature-extraction": Task(
        "feature-extraction", "AutoModel", ("last_hidden_state", "sentence_embedding"), (True, False), False
    ),
    "text-classification": Task(
        "text-classification", "AutoModelForSequenceClassification", ("logits",), (False,), False
    ),
    "token-classification": Task(
        "token-classification", "AutoModelForTokenClassification", ("logits",), (True,), False
    ),
    "question-answering": Task(
        "question-answering",
        "AutoModelForQuestionAnswering",
        ("start_logits", "end_logits"),
        (True, True),
        True,
    ),
}


@dataclass(frozen=True)
class Architecture:
    optimizer_type: str  # onnxruntime.transformers optimizer model_type
    heads_key: str
    hidden_key: str
    tasks: tuple[str, ...]


_ENCODER_TASKS = tuple(TASKS)
ARCHITECTURES: dict[str, Architecture] = {
    "bert": Architecture("bert", "num_attention_heads", "hidden_size", _ENCODER_TASKS),
    "roberta": Architecture("bert", "num_attention_heads", "hidden_size", _ENCODER_TASKS),
    "xlm-roberta": Architecture("bert", "num_attention_heads", "hidden_size", _ENCODER_TASKS),
    "distilbert": Architecture("bert", "n_heads", "dim", _ENCODER_TASKS),
    "electra": Architecture("bert", "num_attention_heads", "hidden_size", _ENCODER_TASKS),
}


def architecture_problems(folder: Path, task: str, source: str) -> list[str]:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return [f"model.source={source}: cannot read config.json ({e})"]
    model_type = config.get("model_type", "?")
    arch = ARCHITECTURES.get(model_type)
    if arch is None:
        return [
            f"model.source={source}: architecture {model_type!r} has no export in builder "
            f"(supported: {', '.join(ARCHITECTURES)}). Choose a model of a supported architecture."
        ]
    if task in TASKS and task not in arch.tasks:
        return [f"task={task}: not available for {model_type!r} (available: {', '.join(arch.tasks)})"]
    return []
