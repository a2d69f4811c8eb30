"""text-classification: one logits row per text or text pair."""

from __future__ import annotations

from typing import Any

from builder.tasks.base import Output, Task


class TextClassification(Task):
    name = "text-classification"
    summary = "sequence classification of a text or a text pair (sentiment, topics, NLI)"
    head = "AutoModelForSequenceClassification"
    pipeline = "text-classification"
    optimum_class = "ORTModelForSequenceClassification"
    outputs = (Output("logits", per_token=False, logits=True),)
    fields = {"text": "text", "label": "label"}
    optional_fields = {"text_pair": "text"}
    metric = "classification"
    gate_metric = "accuracy"

    def calibration_encodings(
        self, examples: list[dict[str, Any]], tokenizer: Any, options: dict[str, Any]
    ) -> list:
        return [
            tokenizer.encode([e["text"]], [e["text_pair"]])[0]
            if e.get("text_pair")
            else tokenizer.encode([e["text"]])[0]
            for e in examples
        ]

    def check_examples(self, pipeline: Any, examples: list[dict[str, Any]]) -> None:
        from builder.errors import StageError

        model_labels = {label.lower() for label in pipeline.id2label.values()}
        gold = {str(e["label"]).lower() for e in examples}
        if not gold & model_labels:
            raise StageError(
                f"evaluation: the dataset's labels ({', '.join(sorted(gold))}) are none of the model's "
                f"({', '.join(sorted(model_labels))}). Use a dataset labelled with the model's label names."
            )

    def predict(self, pipeline: Any, examples: list[dict[str, Any]], ev: Any) -> list[str]:
        inputs = [
            {"text": e["text"], "text_pair": e["text_pair"]} if e.get("text_pair") else e["text"]
            for e in examples
        ]
        return [r["label"].lower() for r in pipeline(inputs, batch_size=ev.batch_size)]

    def references(self, examples: list[dict[str, Any]]) -> list[str]:
        return [str(e["label"]).lower() for e in examples]


TASK = TextClassification()
