"""summarization: an encoder-decoder model (BART-cnn, T5 with its "summarize: " prefix) as transformers 4.57's
SummarizationPipeline answered: [{"summary_text": ...}], scored by ROUGE against reference summaries."""

from __future__ import annotations

from builder.tasks.seq2seq import Seq2SeqTask


class Summarization(Seq2SeqTask):
    name = "summarization"
    summary = "summaries with an encoder-decoder (BART, T5): beam search, length penalty, n-gram blocking"
    pipeline = "summarization"
    metric = "rouge"
    gate_metric = "rougeL"


TASK = Summarization()
