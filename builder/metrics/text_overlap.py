"""Text-overlap metrics of generated text against references, builder's own (evaluate.load of Hub metrics fails
offline), written to the reference implementations' definitions:

- ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum as Google's rouge_score computes them (what evaluate's "rouge" wraps,
  with its defaults: no stemming): lower-cased, every run of characters other than a-z and 0-9 a separator; n-gram
  overlap F1, longest-common-subsequence F1, and for Lsum the union LCS over newline-separated sentences. The mean
  F1 over examples (evaluate's bootstrap aggregate centres on it).
- BLEU as sacrebleu's corpus_bleu computes it by default: the 13a tokenizer, n-grams 1-4 clipped by the reference
  and summed over the corpus, the brevity penalty, "exp" smoothing of empty orders; 0-100.
- chrF as sacrebleu's CHRF() by default (chrF2): character n-grams 1-6 of each text without whitespace, statistics
  summed over the corpus, precision and recall averaged over the orders, F-beta with beta 2; 0-100."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def rouge_tokens(text: str) -> list[str]:
    """rouge_score's default tokenizer (no stemming)."""
    return _NON_ALNUM.sub(" ", text.lower()).split()


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _f1(overlap: int, predicted: int, reference: int) -> float:
    precision = overlap / predicted if predicted else 0.0
    recall = overlap / reference if reference else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _lcs_table(a: Sequence[str], b: Sequence[str]) -> list[list[int]]:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a, 1):
        for j, y in enumerate(b, 1):
            table[i][j] = table[i - 1][j - 1] + 1 if x == y else max(table[i - 1][j], table[i][j - 1])
    return table


def _lcs_positions(reference: Sequence[str], candidate: Sequence[str]) -> set[int]:
    """Indices of the reference tokens on one longest common subsequence (rouge_score's backtrack)."""
    table = _lcs_table(reference, candidate)
    i, j, hits = len(reference), len(candidate), set()
    while i > 0 and j > 0:
        if reference[i - 1] == candidate[j - 1]:
            hits.add(i - 1)
            i, j = i - 1, j - 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return hits


def rouge_scores(prediction: str, reference: str) -> dict[str, float]:
    """One example's ROUGE F1s."""
    pred, ref = rouge_tokens(prediction), rouge_tokens(reference)
    scores = {}
    for n in (1, 2):
        p, r = _ngrams(pred, n), _ngrams(ref, n)
        scores[f"rouge{n}"] = _f1(sum((p & r).values()), sum(p.values()), sum(r.values()))
    scores["rougeL"] = _f1(_lcs_table(ref, pred)[-1][-1], len(pred), len(ref))
    # Lsum: each reference sentence's union LCS with the candidate's sentences, counted against the tokens left
    pred_sents = [rouge_tokens(s) for s in prediction.split("\n") if s.strip()]
    ref_sents = [rouge_tokens(s) for s in reference.split("\n") if s.strip()]
    p_left = Counter(t for s in pred_sents for t in s)
    r_left = Counter(t for s in ref_sents for t in s)
    hits = 0
    for ref_sent in ref_sents:
        union: set[int] = set()
        for pred_sent in pred_sents:
            union |= _lcs_positions(ref_sent, pred_sent)
        for token in (ref_sent[i] for i in sorted(union)):
            if p_left[token] > 0 and r_left[token] > 0:
                hits += 1
                p_left[token] -= 1
                r_left[token] -= 1
    total_pred, total_ref = sum(len(s) for s in pred_sents), sum(len(s) for s in ref_sents)
    scores["rougeLsum"] = _f1(hits, total_pred, total_ref)
    return scores


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L/Lsum F1 over the examples (0-1)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return {k: float("nan") for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")}
    per = [rouge_scores(p, r) for p, r in zip(predictions, references, strict=True)]
    return {k: sum(s[k] for s in per) / len(per) for k in per[0]}


def tokenize_13a(line: str) -> str:
    """sacrebleu's 13a tokenizer (mteval-v13a): punctuation split off, periods and commas unless in a number."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        for entity, char in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
            line = line.replace(entity, char)
    line = f" {line} "
    line = re.sub(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])", r" \1 ", line)
    line = re.sub(r"([^0-9])([\.,])", r"\1 \2 ", line)
    line = re.sub(r"([\.,])([^0-9])", r" \1 \2", line)
    line = re.sub(r"([0-9])(-)", r"\1 \2 ", line)
    return " ".join(line.split())


def _refs(reference: str | Sequence[str]) -> list[str]:
    return [reference] if isinstance(reference, str) else list(reference)


def bleu(predictions: Sequence[str], references: Sequence[str | Sequence[str]]) -> dict[str, float]:
    """Corpus BLEU, 0-100, with its parts. Each prediction has one reference or several (n-gram counts clipped by
    the most any reference has; the reference length closest to the prediction's, the shorter on a tie)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    matches, totals = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for prediction, reference in zip(predictions, references, strict=True):
        hyp = tokenize_13a(prediction).split()
        refs = [tokenize_13a(r).split() for r in _refs(reference)]
        hyp_len += len(hyp)
        ref_len += min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]
        for n in range(1, 5):
            h = _ngrams(hyp, n)
            most: Counter = Counter()
            for r in refs:
                most |= _ngrams(r, n)
            matches[n - 1] += sum((h & most).values())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    precisions, smooth = [], 1.0
    for m, t in zip(matches, totals, strict=True):
        if t == 0:
            precisions.append(0.0)
        elif m == 0:  # "exp" smoothing: 1 / (2^k * total) for the k-th order without a match
            smooth *= 2
            precisions.append(100.0 / (smooth * t))
        else:
            precisions.append(100.0 * m / t)
    if hyp_len == 0 or min(precisions) <= 0.0:
        score = 0.0
    else:
        penalty = 1.0 if hyp_len >= ref_len else math.exp(1 - ref_len / hyp_len)
        score = penalty * math.exp(sum(math.log(p / 100.0) for p in precisions) / 4) * 100.0
    return {"bleu": score, "precisions": precisions, "hyp_len": float(hyp_len), "ref_len": float(ref_len)}


def _chrf_stats(hyp: str, ref: str, order: int) -> list[list[int]]:
    """Per order: hypothesis n-grams, reference n-grams, matches (characters, whitespace removed)."""
    hyp, ref = "".join(hyp.split()), "".join(ref.split())
    stats = []
    for n in range(1, order + 1):
        h = Counter(hyp[i : i + n] for i in range(len(hyp) - n + 1))
        r = Counter(ref[i : i + n] for i in range(len(ref) - n + 1))
        stats.append([sum(h.values()), sum(r.values()), sum((h & r).values())])
    return stats


def _chrf_score(stats: list[list[int]], beta: float) -> float:
    precision = recall = 0.0
    effective = 0
    for hyp_count, ref_count, match in stats:
        if hyp_count > 0 and ref_count > 0:
            precision += match / hyp_count
            recall += match / ref_count
            effective += 1
    if not effective:
        return 0.0
    precision, recall = precision / effective, recall / effective
    if precision + recall == 0:
        return 0.0
    b2 = beta**2
    return 100.0 * (1 + b2) * precision * recall / (b2 * precision + recall)


def chrf(
    predictions: Sequence[str], references: Sequence[str | Sequence[str]], order: int = 6, beta: float = 2.0
) -> float:
    """Corpus chrF (chrF2 by default), 0-100; with several references, each prediction's best-scoring one."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    total = [[0, 0, 0] for _ in range(order)]
    for prediction, reference in zip(predictions, references, strict=True):
        candidates = [_chrf_stats(prediction, r, order) for r in _refs(reference)]
        best = max(candidates, key=lambda st: _chrf_score(st, beta))  # the first of equals, as sacrebleu
        for row, add in zip(total, best, strict=True):
            for k in range(3):
                row[k] += add[k]
    return _chrf_score(total, beta)
