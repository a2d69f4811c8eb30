"""Built-in inputs for export checks, fidelity and calibration fallbacks: varied lengths, empty and blank
texts, accents, emoji, other scripts, and a text longer than any model's maximum."""

from __future__ import annotations

SENTENCES = [
    "Hello world.",
    "The quick brown fox jumps over the lazy dog.",
    "",
    "   ",
    "Café naïve résumé: accents, ümlauts, ß, and emoji 🙂 — plus 日本語 and Ελληνικά.",
    "George Washington was the first president of the United States, serving from 1789 to 1797.",
    "I absolutely loved this film; the acting was superb and the story moving.",
    "Terrible service. I will never come back here again!",
    "Apple Inc. is headquartered in Cupertino, California, and was founded by Steve Jobs.",
    " ".join(["A very long text that goes beyond the maximum length of the model."] * 60),
]
QUESTIONS = [
    ("Who was the first president?", SENTENCES[5]),
    ("Where is Apple headquartered?", SENTENCES[8]),
    ("What did the reviewer think?", SENTENCES[6]),
    ("What is the capital of France?", "Paris is the capital and largest city of France."),
    ("", "An empty question still has a context."),
    ("When did he serve?", SENTENCES[9] + " " + SENTENCES[5]),
    ("What is unrelated?", "The weather today is sunny with a light breeze."),
    ("Qui est le président?", "Café naïve — 日本語 — " + SENTENCES[5]),
]
