"""Entity-level precision, recall and F1 over IOB2 tag sequences, with seqeval's (default) semantics. Offline."""

import datasets
import evaluate

from builder.metrics.functions import entity_f1


class EntityF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="seqeval: https://github.com/chakki-works/seqeval",
            inputs_description="predictions and references: one list of tags per sentence",
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("string")),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
        )

    def _compute(self, predictions, references):
        return entity_f1(predictions, references)
