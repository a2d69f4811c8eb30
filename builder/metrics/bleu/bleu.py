"""Corpus BLEU and chrF of generated translations against references, as sacrebleu computes them by default
(builder.metrics.text_overlap). Offline."""

import datasets
import evaluate

from builder.metrics.text_overlap import bleu, chrf


class Bleu(evaluate.Metric):
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
        result = bleu(predictions, references)
        return {"bleu": result["bleu"], "chrf": chrf(predictions, references)}
