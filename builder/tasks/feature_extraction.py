"""feature-extraction: sentence embeddings pooled in the graph as the model's sentence-transformers config says
(mean, CLS or max; mean when there is none) and L2-normalized, beside the last hidden states."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.tasks.base import Graph, Output, Task

POOLING_MODES = ("auto", "mean", "cls", "max")


@dataclass
class Options:
    pooling: str = (
        "auto"  # auto = the sentence-transformers pooling config shipped with the model; mean if none
    )
    normalize: bool = True  # L2-normalize the sentence embedding, as sentence-transformers' Normalize module


class FeatureExtraction(Task):
    name = "feature-extraction"
    summary = "sentence embeddings (pooled, normalized) and token features"
    head = "AutoModel"
    pipeline = "feature-extraction"
    outputs = (Output("last_hidden_state", per_token=True), Output("sentence_embedding", per_token=False))
    fields = {"sentence1": "text", "sentence2": "text", "score": "number"}
    metric = "similarity"
    gate_metric = "spearman"
    Options = Options

    def option_problems(self, options: dict[str, Any]) -> list[str]:
        if options["pooling"] not in POOLING_MODES:
            return [f"task.pooling={options['pooling']!r} is not one of: {', '.join(POOLING_MODES)}"]
        return []

    def max_length(self, folder: Path, model_limit: int) -> int:
        config = folder / "sentence_bert_config.json"  # sentence-transformers' own limit
        if config.is_file():
            limit = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
            return min(model_limit, int(limit)) if limit else model_limit
        return model_limit

    def runtime_options(self, options: dict[str, Any], folder: Path) -> dict[str, Any]:
        return {
            "pooling": resolve_pooling(options["pooling"], folder),
            "normalize": bool(options["normalize"]),
        }

    def forward(self, outputs: Any, inputs: dict[str, Any], options: dict[str, Any], graph: Graph) -> tuple:
        import torch

        hidden, mask = outputs.last_hidden_state, inputs["attention_mask"]
        mode = options["pooling"]
        if mode == "cls":
            emb = hidden[:, 0]
        else:
            m = mask.unsqueeze(-1).to(hidden.dtype)
            if mode == "max":
                emb = (hidden - (1 - m) * 1e9).max(dim=1).values
            else:
                emb = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)
        if options["normalize"]:
            emb = torch.nn.functional.normalize(emb, p=2, dim=1)
        return hidden, emb

    def calibration_encodings(
        self, examples: list[dict[str, Any]], tokenizer: Any, options: dict[str, Any]
    ) -> list:
        return tokenizer.encode([e["sentence1"] for e in examples] + [e["sentence2"] for e in examples])

    def predict(self, pipeline: Any, examples: list[dict[str, Any]], ev: Any) -> list[float]:
        import numpy as np

        a = pipeline([e["sentence1"] for e in examples], batch_size=ev.batch_size)
        b = pipeline([e["sentence2"] for e in examples], batch_size=ev.batch_size)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        return [float(c) for c in (a * b).sum(axis=1) / np.maximum(norms, 1e-12)]

    def references(self, examples: list[dict[str, Any]]) -> list[float]:
        return [e["score"] for e in examples]


def resolve_pooling(pooling: str, folder: Path) -> str:
    """`auto` follows the sentence-transformers Pooling module (located through modules.json); mean otherwise."""
    if pooling != "auto":
        return pooling
    where = "1_Pooling"
    modules = folder / "modules.json"
    if modules.is_file():
        for module in json.loads(modules.read_text(encoding="utf-8")):
            if str(module.get("type", "")).endswith("Pooling"):
                where = module.get("path") or where
    config = folder / where / "config.json"
    if config.is_file():
        modes = json.loads(config.read_text(encoding="utf-8"))
        if modes.get("pooling_mode_cls_token"):
            return "cls"
        if modes.get("pooling_mode_max_tokens"):
            return "max"
    return "mean"


TASK = FeatureExtraction()
