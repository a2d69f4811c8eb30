"""Perplexity of a language model over texts, from per-text sums of negative log-likelihood. Offline."""

import datasets
import evaluate

from builder.metrics.functions import perplexity


class Perplexity(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="predictions: each text's summed negative log-likelihood (nats); references: its "
            "number of predicted tokens",
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references):
        return perplexity(predictions, references)
