"""evaluation: the task metric of the PyTorch baseline and of the built graph on the same examples, their
retention (bundle / baseline), and the quality gate (`evaluation.gate.max_relative_drop`).

Both run through builder's own pipelines, the baseline on a PyTorch engine with the same pre- and
post-processing (transformers 5 has no question-answering pipeline; for the other tasks builder's pipelines
are tested equal to transformers')."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from builder.errors import StageError
from builder.eval_data import load_examples
from builder.metrics import load_metric
from builder.runtime.engine import Engine, OnnxEngine
from builder.runtime.feature_extraction import FeatureExtraction
from builder.runtime.question_answering import QuestionAnswering
from builder.runtime.text_classification import TextClassification
from builder.runtime.tokenizer import BundleTokenizer
from builder.stages.common import BuildContext

PRIMARY = {
    "question-answering": "f1",
    "text-classification": "accuracy",
    "token-classification": "f1",
    "feature-extraction": "spearman",
}
CHUNK = 64  # examples per progress-bar step


class TorchEngine(Engine):
    """The PyTorch model (transformers' default attention) behind the runtime's engine interface."""

    def __init__(self, ctx: BuildContext):
        self.module = ctx.torch_model(eager=False)
        self.tokenizer = BundleTokenizer(ctx.files_dir(), ctx.max_length)
        self.model_config = ctx.model_config
        self.input_names = list(ctx.input_names)
        self.token_outputs = set(ctx.runtime_info()["token_outputs"])
        self.outputs = list(ctx.task.outputs)

    def run(self, outputs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode():
            values = self.module(*(torch.from_numpy(feeds[n]) for n in self.input_names))
        by_name = dict(zip(self.outputs, values, strict=True))
        return [by_name[name].float().numpy() for name in outputs]


def run(ctx: BuildContext) -> None:
    ev = ctx.cfg.evaluation
    if not ev.enabled:
        ctx.metrics["evaluation"] = {"skipped": True}
        return
    examples, origin = ctx.evaluation_data or load_examples(ctx.cfg)
    engines = {
        "baseline": _Lazy(lambda: TorchEngine(ctx)),
        "bundle": OnnxEngine(ctx.onnx_path, ctx.files_dir(), ctx.runtime_info(), session=ctx.session()),
    }
    task = ctx.task.name
    results = {
        "baseline": _baseline(
            ctx, examples, origin, lambda: EVALUATORS[task](engines["baseline"], examples, ev, "baseline")
        )
    }
    from_cache = bool(results["baseline"].pop("_from_cache", False))
    results["bundle"] = EVALUATORS[task](engines["bundle"], examples, ev, "bundle")
    primary = PRIMARY[task]
    base, ours = results["baseline"][primary], results["bundle"][primary]
    retention = 100.0 * ours / base if base else None
    record: dict[str, Any] = origin | {
        "task": task,
        "metric": primary,
        "baseline": results["baseline"],
        "bundle": results["bundle"],
        "retention_percent": retention,
        "baseline_from_cache": from_cache,
    }
    drop = ev.gate.max_relative_drop
    if drop is not None:
        needed = base * (1 - drop)
        record["gate"] = {"max_relative_drop": drop, "required": needed, "passed": ours >= needed}
    ctx.metrics["evaluation"] = record
    if drop is not None and not record["gate"]["passed"]:
        raise StageError(
            f"quality gate: the bundle's {primary} is {ours:.4g}, below {needed:.4g} = (1 - "
            f"evaluation.gate.max_relative_drop={drop}) x the baseline's {base:.4g}"
            + (f" ({retention:.2f}% kept)" if retention is not None else "")
            + ". No bundle was published. Use less aggressive settings or loosen the gate."
        )


class _Lazy:
    """An engine made on first use (a cached baseline result needs no PyTorch model)."""

    def __init__(self, make: Any):
        self._make, self._engine = make, None

    def __getattr__(self, name: str) -> Any:
        if self._engine is None:
            self._engine = self._make()
        return getattr(self._engine, name)


def _baseline(
    ctx: BuildContext, examples: list[dict[str, Any]], origin: dict[str, Any], compute: Any
) -> dict:
    """The PyTorch baseline's score depends only on the model, the examples and the tool versions: kept in the
    stage cache, so a sweep evaluates the baseline once (the bundle's side is always measured)."""
    if not ctx.cfg.cache_dir:
        return compute()
    from builder import bundle, cache

    versions = bundle.tool_versions()
    parent = cache.stage_key("source", "", ctx.source.identity, versions)
    content = {
        "task": ctx.task.name,
        "examples": examples,
        "origin": origin,
        "max_length": ctx.max_length,
        "pooling": ctx.pooling,
        "handle_impossible_answer": ctx.cfg.evaluation.handle_impossible_answer,
    }
    key = cache.stage_key("baseline-evaluation", parent, content, versions)
    store = cache.StageCache(ctx.cfg.cache_dir)
    _, result, reused = store.get_or_build("baseline-evaluation", key, lambda: ([], compute()))
    return result | {"_from_cache": reused}


def _progress(examples: list[dict[str, Any]], name: str) -> Any:
    chunks = [examples[i : i + CHUNK] for i in range(0, len(examples), CHUNK)]
    return tqdm(chunks, desc=f"evaluate {name}", unit="batch", leave=False, disable=None)


def _question_answering(
    engine: Engine, examples: list[dict[str, Any]], ev: Any, name: str
) -> dict[str, float]:
    qa = QuestionAnswering(engine)
    predictions = []
    for chunk in _progress(examples, name):
        answers = qa(
            [{"question": e["question"], "context": e["context"]} for e in chunk],
            handle_impossible_answer=ev.handle_impossible_answer,
            batch_size=ev.batch_size,
        )
        answers = [answers] if isinstance(answers, dict) else answers
        predictions += [a["answer"] for a in answers]
    return load_metric("squad_v2").compute(
        predictions=predictions, references=[e["answers"] for e in examples]
    )


def _text_classification(
    engine: Engine, examples: list[dict[str, Any]], ev: Any, name: str
) -> dict[str, float]:
    classify = TextClassification(engine)
    model_labels = {label.lower() for label in classify.id2label.values()}
    gold = [str(e["label"]).lower() for e in examples]
    if not set(gold) & model_labels:
        raise StageError(
            f"evaluation: the dataset's labels ({', '.join(sorted(set(gold)))}) are none of the model's "
            f"({', '.join(sorted(model_labels))}). Use a dataset labelled with the model's label names."
        )
    predictions = []
    for chunk in _progress(examples, name):
        inputs = [
            {"text": e["text"], "text_pair": e["text_pair"]} if e.get("text_pair") else e["text"]
            for e in chunk
        ]
        predictions += [r["label"].lower() for r in classify(inputs, batch_size=ev.batch_size)]
    return load_metric("classification").compute(predictions=predictions, references=gold)


def _token_classification(
    engine: Engine, examples: list[dict[str, Any]], ev: Any, name: str
) -> dict[str, float]:
    """Word-level tags from each word's first sub-token (as transformers' NER examples score), entity F1."""
    id2label = {int(k): v for k, v in engine.model_config.get("id2label", {}).items()}
    predictions = []
    for chunk in _progress(examples, name):
        encodings = engine.tokenizer.encode([e["tokens"] for e in chunk], pretokenized=True)
        (logits,) = engine.infer(encodings, ["logits"], ev.batch_size)
        for example, encoding, rows in zip(chunk, encodings, logits, strict=True):
            tags = ["O"] * len(example["tokens"])
            seen = set()
            for position, word in enumerate(encoding.word_ids):
                if word is not None and word not in seen:
                    seen.add(word)
                    tags[word] = id2label[int(np.argmax(rows[position]))]
            predictions.append(tags)
    return load_metric("entity_f1").compute(predictions=predictions, references=[e["tags"] for e in examples])


def _feature_extraction(
    engine: Engine, examples: list[dict[str, Any]], ev: Any, name: str
) -> dict[str, float]:
    embed = FeatureExtraction(engine)
    cosines = []
    for chunk in _progress(examples, name):
        a = embed([e["sentence1"] for e in chunk], batch_size=ev.batch_size)
        b = embed([e["sentence2"] for e in chunk], batch_size=ev.batch_size)
        norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cosines += list((a * b).sum(axis=1) / np.maximum(norms, 1e-12))
    scores = [e["score"] for e in examples]
    return load_metric("similarity").compute(predictions=[float(c) for c in cosines], references=scores)


EVALUATORS = {
    "question-answering": _question_answering,
    "text-classification": _text_classification,
    "token-classification": _token_classification,
    "feature-extraction": _feature_extraction,
}
