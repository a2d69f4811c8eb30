"""Accuracy and macro-averaged F1 of predicted labels. Offline."""

import datasets
import evaluate

from builder.metrics.functions import accuracy_macro_f1


class Classification(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="predictions and references: label names",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        return accuracy_macro_f1(predictions, references)
