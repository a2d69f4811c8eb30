"""The metrics builder reports, as plain functions (tested against hand-computed values). The evaluate
modules beside this file wrap them so they load offline with `evaluate.load(<local path>)`."""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence
from typing import Any

import numpy as np

# ------------------------------------------------------------------------------------ SQuAD v2 (official)

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower text and remove punctuation, articles and extra whitespace (the official SQuAD v2 script)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _tokens(s: str) -> list[str]:
    return normalize_answer(s).split() if s else []


def exact_match(gold: str, pred: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(pred))


def token_f1(gold: str, pred: str) -> float:
    gold_toks, pred_toks = _tokens(gold), _tokens(pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if not gold_toks or not pred_toks:  # no-answer: 1 if both empty, else 0
        return float(gold_toks == pred_toks)
    if num_same == 0:
        return 0.0
    precision, recall = num_same / len(pred_toks), num_same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def squad_v2(predictions: Sequence[str], gold_answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """Exact match and F1 in percent, overall and split into questions with (HasAns) and without (NoAns) an
    answer. A question without gold answers is answered correctly only by the empty string."""
    exact, f1, has = [], [], []
    for pred, answers in zip(predictions, gold_answers, strict=True):
        golds = [a for a in answers if normalize_answer(a)] or [""]
        exact.append(max(exact_match(a, pred) for a in golds))
        f1.append(max(token_f1(a, pred) for a in golds))
        has.append(golds != [""])
    out: dict[str, float] = {"exact": 0.0, "f1": 0.0, "total": float(len(exact))}
    if exact:
        out |= {"exact": 100.0 * float(np.mean(exact)), "f1": 100.0 * float(np.mean(f1))}
    for name, flag in (("HasAns", True), ("NoAns", False)):
        idx = [i for i, h in enumerate(has) if h == flag]
        if idx:
            out[f"{name}_exact"] = 100.0 * float(np.mean([exact[i] for i in idx]))
            out[f"{name}_f1"] = 100.0 * float(np.mean([f1[i] for i in idx]))
            out[f"{name}_total"] = float(len(idx))
    return out


# --------------------------------------------------------------------------------------- classification


def accuracy_macro_f1(predictions: Sequence[Any], references: Sequence[Any]) -> dict[str, float]:
    """Accuracy, and F1 averaged over every label seen in references or predictions (a label never
    predicted scores 0)."""
    if not references:
        return {"accuracy": 0.0, "macro_f1": 0.0}
    pairs = list(zip(predictions, references, strict=True))
    labels = sorted({*predictions, *references}, key=str)
    f1s = []
    for label in labels:
        tp = sum(p == label and r == label for p, r in pairs)
        fp = sum(p == label and r != label for p, r in pairs)
        fn = sum(p != label and r == label for p, r in pairs)
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return {"accuracy": sum(p == r for p, r in pairs) / len(pairs), "macro_f1": float(np.mean(f1s))}


# ------------------------------------------------------------------------------ entity F1 (seqeval's way)


def _split(tag: str) -> tuple[str, str]:
    return tag[0], (tag[1:].split("-", maxsplit=1)[-1] or "_")


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (
        prev_tag in ("E", "S")
        or (prev_tag in ("B", "I") and tag in ("B", "S", "O"))
        or (prev_tag not in ("O", ".") and prev_type != type_)
    )


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    return (
        tag in ("B", "S")
        or (prev_tag in ("E", "S", "O") and tag in ("E", "I"))
        or (tag not in ("O", ".") and prev_type != type_)
    )


def entities(sequences: Sequence[Sequence[str]]) -> set[tuple[str, int, int]]:
    """(type, first, last) chunks of IOB/IOBES tag sequences, as seqeval's default (lenient) mode finds them:
    an I- after O or after another type starts a new entity."""
    flat = [tag for seq in sequences for tag in [*seq, "O"]]
    chunks, prev_tag, prev_type, begin = set(), "O", "", 0
    for i, chunk in enumerate([*flat, "O"]):
        tag, type_ = _split(chunk)
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            chunks.add((prev_type, begin, i - 1))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def entity_f1(predictions: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision, recall and F1 over entities (seqeval semantics), plus per-type F1."""
    pred, true = entities(predictions), entities(references)
    out = _prf(len(pred & true), len(pred), len(true))
    for type_ in sorted({t for t, _, _ in true | pred}):
        p = {e for e in pred if e[0] == type_}
        t = {e for e in true if e[0] == type_}
        out[f"{type_}_f1"] = _prf(len(p & t), len(p), len(t))["f1"]
    return out


def _prf(correct: int, predicted: int, true: int) -> dict[str, float]:
    precision = correct / predicted if predicted else 0.0
    recall = correct / true if true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


# ------------------------------------------------------------------------------------- similarity


def rank(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / denominator) if denominator else 0.0


def similarity_correlation(predictions: Sequence[float], references: Sequence[float]) -> dict[str, float]:
    """Spearman and Pearson correlation of predicted similarities (cosine) with gold scores."""
    return {
        "spearman": pearson(rank(predictions), rank(references)),
        "pearson": pearson(predictions, references),
    }


# ------------------------------------------------------------------------------------------------ perplexity


def perplexity(nll_sums: Sequence[float], token_counts: Sequence[int]) -> dict[str, float]:
    """Perplexity over all predicted tokens: exp(total negative log-likelihood / total tokens), and the mean
    negative log-likelihood per token (nats)."""
    tokens = int(sum(token_counts))
    if tokens == 0:
        return {"perplexity": float("nan"), "nll_per_token": float("nan"), "tokens": 0.0}
    mean = float(sum(nll_sums)) / tokens
    return {"perplexity": float(np.exp(mean)), "nll_per_token": mean, "tokens": float(tokens)}
