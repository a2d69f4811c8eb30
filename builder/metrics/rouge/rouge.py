"""ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum F1 of generated texts against references, as rouge_score computes them
without stemming (builder.metrics.text_overlap). Offline."""

import datasets
import evaluate

from builder.metrics.text_overlap import rouge


class Rouge(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="predictions: generated texts; references: one reference text each",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        return rouge(predictions, references)
