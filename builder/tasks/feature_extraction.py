"""feature-extraction: sentence embeddings pooled in the graph as the model's sentence-transformers config says
(mean, CLS or max; mean when there is none) and L2-normalized, beside the last hidden states."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.tasks.base import Graph, ModelFacts, Output, Task

POOLING_MODES = ("auto", "mean", "cls", "max")
# sentence-transformers modules the graph reproduces; any other (Dense, a second Pooling...) changes the embedding.
ST_MODULES = ("Transformer", "Pooling", "Normalize")
ST_POOLING = {
    "mean": "pooling_mode_mean_tokens",
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
}
ST_OTHER_POOLING = (
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)


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
    optimum_class = "ORTModelForFeatureExtraction"
    outputs = (Output("last_hidden_state", per_token=True), Output("sentence_embedding", per_token=False))
    fields = {"sentence1": "text", "sentence2": "text", "score": "number"}
    metric = "similarity"
    gate_metric = "spearman"
    Options = Options

    def option_problems(self, options: dict[str, Any]) -> list[str]:
        if options["pooling"] not in POOLING_MODES:
            return [f"task.pooling={options['pooling']!r} is not one of: {', '.join(POOLING_MODES)}"]
        return []

    def model_problems(
        self, model_config: dict[str, Any], source: str, folder: Path, options: dict[str, Any]
    ) -> list[str]:
        """pooling=auto promises the embedding sentence-transformers computes from the source: refuse what the
        graph would silently compute differently."""
        if options.get("pooling") != "auto":
            return []
        problems = []
        modules = _read_json(folder / "modules.json") or []
        others = [str(m.get("type", "?")) for m in modules if _module_kind(m) not in ST_MODULES]
        if others:
            problems.append(
                f"model.source={source}: its sentence-transformers modules.json has module(s) builder does not "
                f"build ({', '.join(others)}): the bundle's embedding would differ from the model's. Set "
                "task.pooling=mean|cls|max to build the transformer and that pooling alone"
            )
        modes = _read_json(folder / _pooling_folder(folder) / "config.json") or {}
        unsupported = [k for k in ST_OTHER_POOLING if modes.get(k)]
        if unsupported:
            problems.append(
                f"model.source={source}: its pooling config sets {', '.join(unsupported)}, which builder does not "
                "build (it builds mean, cls and max pooling). Set task.pooling=mean|cls|max to choose one"
            )
        return problems

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

    def companion_files(self, facts: ModelFacts, options: dict[str, Any], device: str) -> dict[str, Any]:
        """sentence-transformers' files (`SentenceTransformer(bundle, backend="onnx")` runs model.onnx's
        last_hidden_state through them): the bundle's own length limit, pooling and normalization, so both
        libraries compute the same embedding."""
        c = facts.config
        width = c.get("hidden_size") or c.get("dim") or c.get("d_model")
        modules = [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ]
        if options["normalize"]:
            modules.append(
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                }
            )
        source_config = _read_json(facts.folder / "sentence_bert_config.json") or {}
        files = {
            "modules.json": modules,
            "sentence_bert_config.json": {
                "max_seq_length": facts.max_length,
                "do_lower_case": bool(source_config.get("do_lower_case", False)),
            },
            "1_Pooling/config.json": {
                "word_embedding_dimension": width,
                **{key: options["pooling"] == mode for mode, key in ST_POOLING.items()},
                **dict.fromkeys(ST_OTHER_POOLING, False),
            },
        }
        prompts = _read_json(facts.folder / "config_sentence_transformers.json")
        if prompts is not None:  # prompts and the similarity function, as the model ships them
            files["config_sentence_transformers.json"] = prompts
        return files

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
    modes = _read_json(folder / _pooling_folder(folder) / "config.json") or {}
    if modes.get("pooling_mode_cls_token"):
        return "cls"
    if modes.get("pooling_mode_max_tokens"):
        return "max"
    return "mean"


def _pooling_folder(folder: Path) -> str:
    for module in _read_json(folder / "modules.json") or []:
        if _module_kind(module) == "Pooling":
            return str(module.get("path") or "1_Pooling")
    return "1_Pooling"


def _module_kind(module: Any) -> str:
    """'Pooling' for sentence_transformers.models.Pooling (and the class paths later versions write)."""
    return str(module.get("type", "")).rsplit(".", 1)[-1] if isinstance(module, dict) else "?"


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


TASK = FeatureExtraction()
