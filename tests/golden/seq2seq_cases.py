"""Sequence-to-sequence cases for the golden outputs of transformers 4.57's summarization, translation and
text2text-generation pipelines (transformers 5 removed them). Shared by make_seq2seq_golden.py (which runs them
there) and test_seq2seq.py (which runs the bundles)."""

LONG = " ".join(["George Washington was the first president of the United States."] * 12)
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital and largest city of France.",
    "Café naïve résumé 🙂 — 日本語:",
    "A",
    "",
]
# (task, model, inputs, call arguments): greedy, 2 and 4 beams, length penalty, n-gram blocking, early stopping,
# several sequences, a long input truncated, a batch; T5's task prefixes and settings come from its config
CASES = [
    *[("summarization", m, t, {"num_beams": 1, "max_new_tokens": 12}) for m in ("t5", "bart") for t in TEXTS],
    *[("summarization", m, t, {"max_new_tokens": 12}) for m in ("t5", "bart") for t in TEXTS[:3]],
    ("summarization", "bart", TEXTS[0], {"num_beams": 2, "max_new_tokens": 10}),
    ("summarization", "bart", TEXTS[1], {"num_beams": 4, "length_penalty": 2.0, "max_new_tokens": 12}),
    ("summarization", "bart", TEXTS[1], {"num_beams": 4, "no_repeat_ngram_size": 2, "early_stopping": True,
                                         "max_new_tokens": 12}),
    ("summarization", "t5", TEXTS[0], {"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 8}),
    ("summarization", "t5", TEXTS[1], {"num_beams": 4, "min_length": 6, "max_new_tokens": 10}),
    ("summarization", "bart", LONG, {"truncation": True, "num_beams": 2, "max_new_tokens": 10}),
    ("summarization", "t5", TEXTS[:3], {"num_beams": 2, "max_new_tokens": 10}),
    ("translation_en_to_de", "t5", TEXTS[0], {"max_new_tokens": 10}),
    ("translation_en_to_de", "t5", TEXTS[:2], {"num_beams": 1, "max_new_tokens": 10}),
    ("text2text-generation", "bart", TEXTS[1], {"num_beams": 2, "max_new_tokens": 10}),
    ("text2text-generation", "t5", TEXTS[0], {"do_sample": False, "num_beams": 1, "max_new_tokens": 10}),
    # Marian: MarianTokenizer (SentencePiece) on 4.57's side, builder's converted tokenizer.json on the bundle's
    *[("translation", "marian", t, {"num_beams": 1, "max_new_tokens": 12}) for t in TEXTS],
    *[("translation", "marian", t, {"max_new_tokens": 12}) for t in TEXTS[:3]],
    ("translation", "marian", TEXTS[1], {"num_beams": 4, "length_penalty": 2.0, "no_repeat_ngram_size": 2,
                                         "early_stopping": True, "max_new_tokens": 12}),
    ("translation", "marian", LONG, {"truncation": True, "num_beams": 2, "max_new_tokens": 10}),
    ("translation", "marian", TEXTS[:3], {"num_beams": 2, "max_new_tokens": 10}),
    ("text2text-generation", "marian", TEXTS[2], {"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 8}),
]  # fmt: skip
