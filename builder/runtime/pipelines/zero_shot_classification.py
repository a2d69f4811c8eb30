"""zero-shot-classification with the call shape and outputs of transformers' ZeroShotClassificationPipeline:
each (sequence, "This example is {label}.") pair through an NLI model, the entailment logit ranking the labels.

Unlike transformers, which runs one forward per pair, every sequence x label pair goes to the session in padded
batches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from builder.runtime.pipelines import checks
from builder.runtime.pipelines.base import Pipeline

DEFAULT_TEMPLATE = "This example is {}."


def entailment_id(label2id: Mapping[str, int]) -> int:
    """As transformers finds it: the first label (in config order) whose name starts with "entail"; -1 if none."""
    for label, index in label2id.items():
        if label.lower().startswith("entail"):
            return int(index)
    return -1


def parse_labels(labels: Any) -> list[str]:
    """A comma-separated string is split (parts stripped, empty parts dropped); a list is taken as given."""
    if isinstance(labels, str):
        return [label.strip() for label in labels.split(",") if label.strip()]
    if isinstance(labels, (list, tuple)):
        return checks.text_list("candidate_labels", labels)
    raise ValueError(
        f"candidate_labels={labels!r}: give a list of labels or a comma-separated string, e.g. ['urgent', 'not urgent']"
    )


class ZeroShotClassification(Pipeline):
    def __init__(self, engine: Any):
        super().__init__(engine)
        self.entailment_id = entailment_id(engine.model_config.get("label2id") or {})
        if self.entailment_id == -1:
            raise ValueError("zero-shot-classification: config.json's label2id has no entailment label")
        self.contradiction_id = -1 if self.entailment_id == 0 else 0
        options = engine.options
        self.hypothesis_template = options.get("hypothesis_template", DEFAULT_TEMPLATE)
        self.multi_label = bool(options.get("multi_label", False))

    def __call__(
        self,
        sequences: str | list[str],
        *args: Any,
        candidate_labels: Any = None,
        hypothesis_template: str | None = None,
        multi_label: bool | None = None,
        batch_size: int = 32,
    ) -> dict[str, Any] | list[dict[str, Any]]:
        """{"sequence", "labels", "scores"} for a sequence (a list of those for a list), labels by score."""
        if len(args) == 1 and candidate_labels is None:
            candidate_labels = args[0]
        elif args:
            raise ValueError(f"Unable to understand extra arguments {args}")
        if candidate_labels is None:
            raise ValueError(
                "zero-shot-classification needs candidate_labels, e.g. candidate_labels=['sports', 'politics']"
            )
        labels = parse_labels(candidate_labels)
        template = self.hypothesis_template if hypothesis_template is None else hypothesis_template
        multi = self.multi_label if multi_label is None else multi_label
        texts, single = checks.texts(sequences, "zero-shot-classification", "sequences")
        if not isinstance(template, str):
            raise ValueError(
                f"hypothesis_template={checks.shown(template)}: give a text with {{}} for the label"
            )
        checks.flag("multi_label", multi)
        if not texts:
            return []
        if not labels or any(len(t) == 0 for t in texts):
            raise ValueError("You must include at least one label and at least one sequence.")
        if template.format(labels[0]) == template:
            raise ValueError(
                f'The provided hypothesis_template "{template}" was not able to be formatted with the target labels. '
                "Make sure the passed template includes formatting syntax such as {} where the label should go."
            )
        hypotheses = [template.format(label) for label in labels]
        try:
            encodings = self.engine.tokenizer.encode(
                [t for t in texts for _ in labels],
                [h for _ in texts for h in hypotheses],
                strategy="only_first",
            )
        except Exception as e:  # tokenizers: the hypothesis alone is longer than the model's maximum
            raise ValueError(
                f"a hypothesis is longer than the model's maximum length ({self.engine.tokenizer.max_length} tokens): "
                f"use shorter labels or hypothesis_template ({e})"
            ) from e
        (logits,) = self.engine.infer(encodings, ["logits"], batch_size)
        per_text = np.stack(logits).astype(np.float32).reshape(len(texts), len(labels), -1)
        results = [self._rank(text, labels, rows, multi) for text, rows in zip(texts, per_text, strict=True)]
        return results[0] if single else results

    def _rank(self, text: str, labels: list[str], logits: np.ndarray, multi: bool) -> dict[str, Any]:
        if multi or len(labels) == 1:  # each label alone: entailment vs contradiction
            pair = logits[:, [self.contradiction_id, self.entailment_id]]
            scores = (np.exp(pair) / np.exp(pair).sum(-1, keepdims=True))[:, 1]
        else:  # labels compete: softmax of the entailment logits across labels
            entail = logits[:, self.entailment_id]
            scores = np.exp(entail) / np.exp(entail).sum(-1, keepdims=True)
        order = list(reversed(scores.argsort()))  # transformers' order: on exact ties the later label first
        return {"sequence": text, "labels": [labels[i] for i in order], "scores": scores[order].tolist()}

    takes_text = False  # a text and its candidate labels

    def request_parts(self, item: Any) -> tuple[Any, dict[str, Any]] | None:
        if isinstance(item, dict) and "inputs" not in item and isinstance(item.get("sequences"), str):
            return item["sequences"], {k: v for k, v in item.items() if k != "sequences"}
        return super().request_parts(item) if isinstance(item, dict) else None

    def predict_request(self, item: Any) -> Any:
        if isinstance(item, dict) and "inputs" not in item:
            return self(**item)
        return super().predict_request(item)
