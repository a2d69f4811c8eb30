"""SQuAD v2 exact match and F1 (official normalization), with HasAns / NoAns breakdowns. Offline."""

import datasets
import evaluate

from builder.metrics.functions import squad_v2


class SquadV2(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="Rajpurkar et al., Know What You Don't Know: Unanswerable Questions for SQuAD (2018)",
            inputs_description="predictions: answer strings ('' = no answer); references: lists of gold answers",
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references):
        return squad_v2(predictions, references)
