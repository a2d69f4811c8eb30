"""Spearman and Pearson correlation of predicted similarities (e.g. embedding cosine) with gold scores. Offline."""

import datasets
import evaluate

from builder.metrics.functions import similarity_correlation


class Similarity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="predictions: similarities; references: gold scores",
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions, references):
        return similarity_correlation(predictions, references)
