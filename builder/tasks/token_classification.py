"""token-classification: per-token logits (named entities, part-of-speech tags)."""

from __future__ import annotations

from typing import Any

from builder.tasks.base import Output, Task


class TokenClassification(Task):
    name = "token-classification"
    summary = "per-token labels (named entities, part-of-speech tags)"
    head = "AutoModelForTokenClassification"
    pipeline = "token-classification"
    optimum_class = "ORTModelForTokenClassification"
    outputs = (Output("logits", per_token=True, logits=True),)
    fields = {"tokens": "words", "tags": "tags"}
    metric = "entity_f1"
    gate_metric = "f1"

    def calibration_encodings(
        self, examples: list[dict[str, Any]], tokenizer: Any, options: dict[str, Any]
    ) -> list:
        return tokenizer.encode([e["tokens"] for e in examples], pretokenized=True)

    def predict(self, pipeline: Any, examples: list[dict[str, Any]], ev: Any) -> list[list[str]]:
        """Word-level tags from each word's first sub-token (as transformers' NER examples score)."""
        import numpy as np

        engine = pipeline.engine
        id2label = pipeline.id2label
        encodings = engine.tokenizer.encode([e["tokens"] for e in examples], pretokenized=True)
        (logits,) = engine.infer(encodings, ["logits"], ev.batch_size)
        predictions = []
        for example, encoding, rows in zip(examples, encodings, logits, strict=True):
            tags = ["O"] * len(example["tokens"])
            seen = set()
            for position, word in enumerate(encoding.word_ids):
                if word is not None and word not in seen:
                    seen.add(word)
                    tags[word] = id2label[int(np.argmax(rows[position]))]
            predictions.append(tags)
        return predictions

    def references(self, examples: list[dict[str, Any]]) -> list[list[str]]:
        return [e["tags"] for e in examples]


TASK = TokenClassification()
