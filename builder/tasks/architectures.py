"""The architectures builder exports: one table entry each (model_type in config.json -> what the build needs).

Pure data: the runtime and config validation may import it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENCODER_HEADS = (
    "AutoModel",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoModelForQuestionAnswering",
)


@dataclass(frozen=True)
class Architecture:
    family: str  # encoder | decoder | encoder-decoder
    optimizer_type: str  # onnxruntime.transformers optimizer model_type (its fusions)
    heads_key: str  # config key: attention heads
    hidden_key: str  # config key: hidden size
    heads: tuple[str, ...]  # the transformers Auto classes it has; its tasks are the tasks of those heads
    inputs: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")  # what forward() accepts
    # Position ids start after the padding id (RoBERTa, MPNet): pad_token_id + 1 positions are not usable.
    positions_after_pad: bool = False

    @property
    def tasks(self) -> tuple[str, ...]:
        from builder.tasks import TASKS

        return tuple(name for name, task in TASKS.items() if task.head in self.heads)


_NO_TYPES = ("input_ids", "attention_mask")
ARCHITECTURES: dict[str, Architecture] = {
    "bert": Architecture("encoder", "bert", "num_attention_heads", "hidden_size", ENCODER_HEADS),
    "roberta": Architecture(
        "encoder", "bert", "num_attention_heads", "hidden_size", ENCODER_HEADS, positions_after_pad=True
    ),
    "xlm-roberta": Architecture(
        "encoder", "bert", "num_attention_heads", "hidden_size", ENCODER_HEADS, positions_after_pad=True
    ),
    "distilbert": Architecture("encoder", "bert", "n_heads", "dim", ENCODER_HEADS, inputs=_NO_TYPES),
    "electra": Architecture("encoder", "bert", "num_attention_heads", "hidden_size", ENCODER_HEADS),
    # DeBERTa-v3: disentangled attention, which ONNX Runtime does not fuse; token types only if type_vocab_size > 0.
    "deberta-v2": Architecture("encoder", "bert", "num_attention_heads", "hidden_size", ENCODER_HEADS),
    # MPNet: BERT layers plus a relative position bias on the attention scores (so no Attention fusion).
    "mpnet": Architecture(
        "encoder",
        "bert",
        "num_attention_heads",
        "hidden_size",
        ENCODER_HEADS,
        inputs=_NO_TYPES,
        positions_after_pad=True,
    ),
    # ModernBERT: rotary positions, GeGLU, alternating local and global attention.
    "modernbert": Architecture(
        "encoder", "bert", "num_attention_heads", "hidden_size", ENCODER_HEADS, inputs=_NO_TYPES
    ),
}


def read_config(folder: Path) -> dict[str, Any]:
    with open(folder / "config.json", encoding="utf-8") as f:
        return json.load(f)


def architecture_problems(folder: Path, task: str, source: str) -> list[str]:
    try:
        config = read_config(folder)
    except (OSError, ValueError) as e:
        return [f"model.source={source}: cannot read config.json ({e})"]
    model_type = config.get("model_type", "?")
    arch = ARCHITECTURES.get(model_type)
    if arch is None:
        return [
            f"model.source={source}: architecture {model_type!r} has no export in builder "
            f"(supported: {', '.join(ARCHITECTURES)}). Choose a model of a supported architecture."
        ]
    from builder.tasks import TASKS

    if task not in TASKS:  # reported with the other values
        return []
    if task not in arch.tasks:
        return [f"task={task}: not available for {model_type!r} (available: {', '.join(arch.tasks)})"]
    return TASKS[task].model_problems(config, source)


def input_names(config: dict[str, Any], tokenizer_inputs: list[str]) -> tuple[str, ...]:
    """The inputs the graphs take: what the architecture accepts and the tokenizer produces."""
    arch = ARCHITECTURES[config["model_type"]]
    names = set(tokenizer_inputs) | {"input_ids", "attention_mask"}
    if config.get("type_vocab_size", 1) == 0:  # e.g. DeBERTa-v3: token types are ignored
        names.discard("token_type_ids")
    return tuple(n for n in arch.inputs if n in names)


def position_limit(config: dict[str, Any]) -> int:
    """Longest input the position embeddings allow."""
    positions = int(config.get("max_position_embeddings", 512))
    if ARCHITECTURES[config["model_type"]].positions_after_pad:
        positions -= int(config.get("pad_token_id", 1)) + 1
    return positions
