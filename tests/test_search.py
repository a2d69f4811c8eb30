"""The search module's own parts, on plain arrays: the top-k of beam search (a stable descending sort's first k,
without sorting the whole row) and the logits processors' bookkeeping that generate()'s parity tests reach only in
part (no-repeat n-grams, bad words, forced and suppressed tokens, sampling filters)."""

from __future__ import annotations

import numpy as np
import pytest

from builder.runtime.generation import Processors, resolve, top_k


def test_top_k_is_a_stable_descending_sorts_first_k() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        scores = rng.integers(0, 4, size=(3, 30)).astype(np.float32)  # many ties, at the k-th place too
        k = int(rng.integers(1, 31))
        assert (top_k(scores, k) == np.argsort(-scores, axis=-1, kind="stable")[:, :k]).all()
    scores = np.array([[1.0, -np.inf, 3.0, 3.0]], dtype=np.float32)
    assert top_k(scores, 2).tolist() == [[2, 3]] and top_k(scores, 9).tolist() == [[2, 3, 0, 1]]


def _process(history: list[int], new: int, **settings: object) -> np.ndarray:
    s = resolve({}, {"do_sample": False, **settings})
    return Processors(s, eos=[0], budget=10)(np.zeros(8, dtype=np.float32), history, new)


def test_processors_ban_what_transformers_bans() -> None:
    banned = np.isneginf
    # no_repeat_ngram_size=2: after "3 4 ... 3", 4 would repeat the bigram (3, 4)
    assert banned(_process([3, 4, 5, 3], 1, no_repeat_ngram_size=2)).nonzero()[0].tolist() == [4]
    # a bad word of several tokens bans its last one only right after the rest of it
    assert banned(_process([5, 6], 1, bad_words_ids=[[6, 7], [2]])).nonzero()[0].tolist() == [2, 7]
    assert banned(_process([6, 5], 1, bad_words_ids=[[6, 7]])).nonzero()[0].tolist() == []
    assert banned(_process([1], 0, bad_words_ids=[[5, 6, 7]])).nonzero()[0].tolist() == []  # shorter history
    assert (
        banned(_process([1, 2], 1, min_length=3))[0] and not banned(_process([1, 2, 3], 1, min_length=3))[0]
    )
    assert banned(_process([1], 1, min_new_tokens=2))[0] and not banned(_process([1], 2, min_new_tokens=2))[0]
    forced = _process([1], 0, forced_bos_token_id=5)  # a one-token decoder history: the first new token
    assert forced.argmax() == 5 and banned(forced).sum() == 7
    assert _process([1, 2], 9, forced_eos_token_id=0).argmax() == 0  # the budget's last token
    assert banned(_process([1], 0, suppress_tokens=[3], begin_suppress_tokens=[4])).nonzero()[0].tolist() == [
        3,
        4,
    ]
    assert banned(_process([1, 2], 1, begin_suppress_tokens=[4])).sum() == 0  # only at the first new token


def test_sampling_filters_keep_the_top_tokens() -> None:
    s = resolve({}, {"do_sample": True, "top_k": 3, "top_p": 1.0, "temperature": 1.0})
    scores = np.arange(8, dtype=np.float32)
    assert np.isfinite(Processors(s, [0], 10)(scores, [1], 0)).nonzero()[0].tolist() == [5, 6, 7]
    s = resolve({}, {"do_sample": True, "top_k": 0, "top_p": 0.5})
    kept = np.isfinite(Processors(s, [0], 10)(np.array([0.0, 0.0, 5.0, 4.0], dtype=np.float32), [1], 0))
    assert kept.nonzero()[0].tolist() == [2]
    with pytest.raises(ValueError, match="num_return_sequences=3 > num_beams=2"):
        resolve({}, {"num_beams": 2, "num_return_sequences": 3})
    with pytest.raises(ValueError, match="early_stopping='sometimes'"):
        resolve({}, {"early_stopping": "sometimes"})
    assert resolve({"temperature": None, "num_beams": 4}, {})["num_beams"] == 4  # None in a config: not set
