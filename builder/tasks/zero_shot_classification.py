"""zero-shot-classification: an NLI sequence-classification model scores (sequence, hypothesis) pairs, one
hypothesis per candidate label ("This example is {label}."); the entailment logit ranks the labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.runtime.pipelines.zero_shot_classification import entailment_id
from builder.tasks.base import Output, Task
from builder.tasks.inputs import SENTENCES

SAMPLE_LABELS = ("politics", "cooking", "sports and games")


@dataclass
class Options:
    # The bundle's defaults for calls that do not name them (transformers' defaults), used by evaluation too.
    hypothesis_template: str = "This example is {}."
    multi_label: bool = False


class ZeroShotClassification(Task):
    name = "zero-shot-classification"
    summary = "classification into labels chosen at call time, with an NLI model"
    head = "AutoModelForSequenceClassification"
    pipeline = "zero-shot-classification"
    optimum_class = "ORTModelForSequenceClassification"
    outputs = (Output("logits", per_token=False, logits=True),)
    pair_truncation = "only_first"  # the sequence is cut, never the hypothesis
    fields = {"text": "text", "candidate_labels": "labels", "label": "label"}
    metric = "classification"
    gate_metric = "accuracy"
    Options = Options

    def option_problems(self, options: dict[str, Any]) -> list[str]:
        template = options["hypothesis_template"]
        if template.format("x") == template:
            return [
                f"task.hypothesis_template={template!r}: has no {{}} where the label goes. "
                "Use e.g. task.hypothesis_template='This text is about {}.'"
            ]
        return []

    def model_problems(
        self, model_config: dict[str, Any], source: str, folder: Path, options: dict[str, Any]
    ) -> list[str]:
        labels = model_config.get("label2id") or {}
        if entailment_id(labels) == -1:
            return [
                f"model.source={source}: zero-shot-classification needs an NLI model, with an entailment label in "
                f"config.json's label2id (found: {', '.join(labels) or 'none'}). Use an NLI checkpoint, e.g. "
                "model=deberta_v3_zeroshot, or set label2id so that the entailment label's name starts with 'entail'."
            ]
        return []

    def sample_items(self) -> list[Any]:
        template = Options.hypothesis_template
        return [(s, template.format(label)) for s in SENTENCES for label in SAMPLE_LABELS[: 1 + len(s) % 3]]

    def calibration_encodings(
        self, examples: list[dict[str, Any]], tokenizer: Any, options: dict[str, Any]
    ) -> list:
        template = options["hypothesis_template"]
        pairs = [(e["text"], template.format(label)) for e in examples for label in e["candidate_labels"]]
        first, second = zip(*pairs, strict=True)
        return tokenizer.encode(list(first), list(second), strategy="only_first")

    def check_examples(self, pipeline: Any, examples: list[dict[str, Any]]) -> None:
        from builder.errors import StageError

        for i, e in enumerate(examples):
            if e["label"] not in e["candidate_labels"]:
                raise StageError(
                    f"evaluation: example {i + 1}: its label {e['label']!r} is not one of its candidate_labels "
                    f"({', '.join(e['candidate_labels'])}). Each example's gold label must be a candidate."
                )

    def predict(self, pipeline: Any, examples: list[dict[str, Any]], ev: Any) -> list[str]:
        """The top label of each example; examples with the same label set go to the pipeline together."""
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, e in enumerate(examples):
            groups.setdefault(tuple(e["candidate_labels"]), []).append(i)
        predictions: list[str] = [""] * len(examples)
        for labels, indices in groups.items():
            results = pipeline([examples[i]["text"] for i in indices], list(labels), batch_size=ev.batch_size)
            for i, result in zip(indices, results, strict=True):
                predictions[i] = result["labels"][0]
        return predictions

    def references(self, examples: list[dict[str, Any]]) -> list[str]:
        return [e["label"] for e in examples]


TASK = ZeroShotClassification()
