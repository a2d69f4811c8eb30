"""text2text-generation: an encoder-decoder model (T5, BART) generating text from text (builder.tasks.seq2seq),
answered as transformers 4.57's Text2TextGenerationPipeline: [{"generated_text": ...}]."""

from __future__ import annotations

from builder.tasks.seq2seq import Seq2SeqTask


class Text2TextGeneration(Seq2SeqTask):
    name = "text2text-generation"
    summary = "text from text with an encoder-decoder (T5, BART): greedy, sampling or beam search"
    pipeline = "text2text-generation"
    metric = "rouge"
    gate_metric = "rougeL"


TASK = Text2TextGeneration()
