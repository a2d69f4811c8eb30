"""The encoder families beyond BERT (DeBERTa-v3, MPNet, ModernBERT): feature extraction follows the model's
sentence-transformers pooling and equals sentence-transformers' own encode; text classification equals
transformers' pipeline. (Every head of every family is exported and checked against PyTorch, fp32 and int8, in
test_build.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import FAMILIES, same
from tiny_models import MAX_POSITIONS, sentence_transformers_folder

import builder

TEXTS = [
    "George Washington visited Apple Inc. in Cupertino, California.",
    "I absolutely loved this film; the acting was superb!",
    "Café naïve résumé — ümlauts, ß, emoji 🙂 and 日本語.",
    " ".join(["A long text that goes past the model's maximum length."] * 30),
]
POOLING = {"deberta-v2": "mean", "mpnet": "mean", "modernbert": "cls"}  # gte-modernbert pools CLS


@pytest.mark.parametrize("arch", FAMILIES)
def test_feature_extraction_follows_sentence_transformers(
    tiny_models: dict, tmp_path: Path, arch: str
) -> None:
    from sentence_transformers import SentenceTransformer

    source = tiny_models[(arch, "feature-extraction")]
    st = sentence_transformers_folder(
        source, tmp_path / "st", POOLING[arch], max_seq_length=MAX_POSITIONS // 2
    )
    folder = builder.build(
        overrides=[
            f"model.source={st}",
            "quantization=none",
            "benchmark=none",
            "evaluation=none",
            f"output_dir={tmp_path}",
        ],
        quiet=True,
    )
    embed = builder.load(folder)
    assert embed.runtime["options"]["pooling"] == POOLING[arch]
    assert embed.runtime["max_length"] == MAX_POSITIONS // 2  # sentence-transformers' max_seq_length
    reference = SentenceTransformer(str(st), device="cpu").encode(TEXTS)
    np.testing.assert_allclose(embed(TEXTS), reference, atol=1e-5)


@pytest.mark.parametrize("arch", FAMILIES)
def test_text_classification_matches_transformers(tiny_models: dict, tmp_path: Path, arch: str) -> None:
    from transformers import pipeline

    source = tiny_models[(arch, "text-classification")]
    folder = builder.build(
        overrides=[
            f"model.source={source}",
            "task=text-classification",
            "quantization=none",
            "benchmark=none",
            "evaluation=none",
            f"output_dir={tmp_path}",
        ],
        quiet=True,
    )
    ours = builder.load(folder)
    theirs = pipeline("text-classification", model=str(source), device="cpu")
    for inputs, kwargs in [
        (TEXTS, {}),
        (TEXTS, {"top_k": None}),
        ({"text": TEXTS[0], "text_pair": TEXTS[1]}, {}),
    ]:
        same(ours(inputs, **kwargs), theirs(inputs, truncation=True, **kwargs), f"{arch} {kwargs}")


def test_deberta_v3_takes_no_token_types(tiny_models: dict, tmp_path: Path) -> None:
    """DeBERTa-v3 (type_vocab_size 0) ignores token types, though its tokenizer returns them: the graph has no
    such input, and pairs still answer as transformers does (above)."""
    folder = builder.build(
        overrides=[
            f"model.source={tiny_models[('deberta-v2', 'question-answering')]}",
            "task=question-answering",
            "benchmark=none",
            "evaluation=none",
            f"output_dir={tmp_path}",
        ],
        quiet=True,
    )
    qa = builder.load(folder)
    assert qa.runtime["graphs"]["model"]["inputs"] == ["input_ids", "attention_mask"]
    answer = qa(question="Who visited Apple?", context=TEXTS[0])
    assert (
        set(answer) == {"score", "start", "end", "answer"}
        and TEXTS[0][answer["start"] : answer["end"]] == answer["answer"]
    )
