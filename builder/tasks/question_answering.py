"""question-answering: extractive answers as start and end logits over question + context tokens (SQuAD v2)."""

from __future__ import annotations

from typing import Any

from builder.tasks.base import Output, Task
from builder.tasks.inputs import QUESTIONS


class QuestionAnswering(Task):
    name = "question-answering"
    summary = "extractive answers to questions about a context (SQuAD v2, unanswerable questions included)"
    head = "AutoModelForQuestionAnswering"
    pipeline = "question-answering"
    optimum_class = "ORTModelForQuestionAnswering"
    outputs = (Output("start_logits", per_token=True), Output("end_logits", per_token=True))
    pair_truncation = "only_second"
    fields = {"question": "text", "context": "text", "answers": "answers"}
    metric = "squad_v2"
    gate_metric = "f1"

    def sample_items(self) -> list[Any]:
        return list(QUESTIONS)

    def calibration_encodings(
        self, examples: list[dict[str, Any]], tokenizer: Any, options: dict[str, Any]
    ) -> list:
        return tokenizer.encode(
            [e["question"] for e in examples], [e["context"] for e in examples], strategy="only_second"
        )

    def predict(self, pipeline: Any, examples: list[dict[str, Any]], ev: Any) -> list[str]:
        answers = pipeline(
            [{"question": e["question"], "context": e["context"]} for e in examples],
            handle_impossible_answer=ev.handle_impossible_answer,
            batch_size=ev.batch_size,
        )
        answers = [answers] if isinstance(answers, dict) else answers
        return [a["answer"] for a in answers]

    def references(self, examples: list[dict[str, Any]]) -> list[list[str]]:
        return [e["answers"] for e in examples]


TASK = QuestionAnswering()
