"""Choosing a decoder's next tokens as transformers' generate() chooses them, for any model: the logits processors
in its order, then greedy search, sampling or beam search. The model side is a `Steps` object (a decoder-only graph
with its cache, or a sequence-to-sequence decoder beside its encoder's output); this module sees only logits, and
asks the steps to reorder their rows (beam search) or repeat them (several sequences per input).

Settings are transformers' GenerationConfig keys, resolved by `resolve()` as its pipelines do: the global
defaults, then the bundle's generation_config.json, then the call's arguments (and a pipeline's own defaults where
none of those set them). Where transformers reads a padded batch's length (min_length, max_length), each row here
counts its own tokens, so a batch gives what each input gives alone. Sampling draws from numpy's generator:
reproducible with `seed`, not torch's random stream."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np

GLOBAL_DEFAULTS: dict[str, Any] = {  # transformers' GenerationConfig defaults, for the keys builder reads
    "max_length": 20,
    "max_new_tokens": None,
    "min_length": 0,
    "min_new_tokens": None,
    "do_sample": False,
    "num_beams": 1,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "length_penalty": 1.0,
    "early_stopping": False,
    "num_return_sequences": 1,
    "bad_words_ids": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
}
TOKEN_KEYS = ("eos_token_id", "pad_token_id", "bos_token_id", "decoder_start_token_id")
KEYS = (*GLOBAL_DEFAULTS, *TOKEN_KEYS)
SAMPLING = ("temperature", "top_k", "top_p")  # read only when sampling
EXTRA = ("stop", "seed", "truncate")  # builder's own call arguments
NEG = -1.0e9  # transformers' "never" score in beam search


class Steps(Protocol):
    """A model under generation. Its rows start as the inputs' prompts; `first()` runs them, `next()` feeds each
    row one token; both return each row's logits for the next token [rows, vocab]."""

    def first(self) -> np.ndarray: ...

    def next(self, tokens: np.ndarray) -> np.ndarray: ...

    def reorder(self, rows: np.ndarray) -> None:
        """Row i continues what row rows[i] was (a gather: beam search, or every row repeated)."""


def resolve(
    saved: dict[str, Any], kwargs: dict[str, Any], pipeline_defaults: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A call's settings: global defaults < the bundle's generation config (`saved`) < the call, then the pipeline's
    own defaults for what neither set (sampling settings only when sampling), checked."""
    unknown = set(kwargs) - {*KEYS, *EXTRA}
    if unknown:
        raise ValueError(f"unknown argument(s) {', '.join(sorted(unknown))}")
    given = {  # None is "not set", as in a GenerationConfig
        **{k: v for k, v in saved.items() if k in KEYS and v is not None},
        **{k: v for k, v in kwargs.items() if k in KEYS and v is not None},
    }
    added = {
        k: v
        for k, v in (pipeline_defaults or {}).items()
        if k not in given and not (k == "max_new_tokens" and "max_length" in given)
    }
    if not {**given, **added}.get("do_sample"):
        added = {k: v for k, v in added.items() if k not in SAMPLING}
    s = {**GLOBAL_DEFAULTS, **given, **added}
    for key, low in (
        ("max_new_tokens", 0),
        ("max_length", 0),
        ("min_length", 0),
        ("min_new_tokens", 0),
        ("num_return_sequences", 1),
        ("num_beams", 1),
        ("top_k", 0),
        ("no_repeat_ngram_size", 0),
    ):
        if s[key] is not None and (not isinstance(s[key], int) or isinstance(s[key], bool) or s[key] < low):
            raise ValueError(f"{key}={s[key]!r}: give an integer >= {low}")
    for key in ("temperature", "repetition_penalty"):
        if not isinstance(s[key], (int, float)) or isinstance(s[key], bool) or s[key] <= 0:
            raise ValueError(f"{key}={s[key]!r}: give a number > 0")
    if not isinstance(s["top_p"], (int, float)) or not 0 < s["top_p"] <= 1:
        raise ValueError(f"top_p={s['top_p']!r}: give a number in (0, 1]")
    if not isinstance(s["length_penalty"], (int, float)) or isinstance(s["length_penalty"], bool):
        raise ValueError(f"length_penalty={s['length_penalty']!r}: give a number")
    if s["early_stopping"] not in (True, False, "never"):
        raise ValueError(f"early_stopping={s['early_stopping']!r}: give true, false or 'never'")
    if s["num_beams"] == 1 and s["num_return_sequences"] > 1 and not s["do_sample"]:
        raise ValueError(
            f"num_return_sequences={s['num_return_sequences']} with greedy search gives the same sequence each "
            "time: pass do_sample=True, or num_beams >= num_return_sequences"
        )
    if s["num_beams"] > 1 and s["num_return_sequences"] > s["num_beams"]:
        raise ValueError(
            f"num_return_sequences={s['num_return_sequences']} > num_beams={s['num_beams']}: beam search returns "
            "at most num_beams sequences"
        )
    stop = kwargs.get("stop") or []
    s["stop"] = [stop] if isinstance(stop, str) else list(stop)
    s["seed"], s["truncate"] = kwargs.get("seed"), bool(kwargs.get("truncate", False))
    return s


def token_ids(value: Any) -> list[int]:
    """An id or a list of ids (eos_token_id may be either) as a list."""
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


class Processors:
    """transformers' logits processors for the settings builder reads, in generate()'s order: repetition penalty,
    no-repeat n-grams, bad words, min length, min new tokens, forced BOS, forced EOS, suppressed tokens (always, and at
    the first new token); then, when sampling, temperature, top-k, top-p."""

    def __init__(self, s: dict[str, Any], eos: list[int], budget: int):
        self.s, self.eos, self.budget = s, eos, budget
        self.bad = [token_ids(w) for w in (s["bad_words_ids"] or []) if token_ids(w)]
        self.suppress = token_ids(s["suppress_tokens"])
        self.begin_suppress = token_ids(s["begin_suppress_tokens"])
        # no processor at all, whatever the step (the min-length and first-step ones are checked per step)
        self.greedy_as_is = not (
            s["do_sample"]
            or s["repetition_penalty"] != 1.0
            or s["no_repeat_ngram_size"]
            or self.bad
            or s["forced_bos_token_id"] is not None
            or s["forced_eos_token_id"] is not None
            or self.suppress
        )

    def _past_minimum(self, length: int, new: int) -> bool:
        return length >= self.s["min_length"] and new >= (self.s["min_new_tokens"] or 0)

    def __call__(self, scores: np.ndarray, history: list[int], new: int, keep: int = 1) -> np.ndarray:
        """One row's scores (logits, or log-probs in beam search) for its next token. history: what the row holds
        (prompt or decoder start, then its new tokens); new: how many of those are new; keep: tokens sampling
        filters keep at least (beam search keeps one more than there are eos tokens)."""
        s = self.s
        if self.greedy_as_is and new > 0 and (not self.eos or self._past_minimum(len(history), new)):
            return scores  # nothing below would change them (plain greedy search: most steps)
        scores = np.array(scores, dtype=np.float32)
        if s["repetition_penalty"] != 1.0 and history:
            seen = np.unique(np.asarray(history, dtype=np.int64))
            values = scores[seen]
            penalty = s["repetition_penalty"]
            scores[seen] = np.where(values < 0, values * penalty, values / penalty)
        n = s["no_repeat_ngram_size"]
        if n and len(history) + 1 >= n:
            tail = tuple(history[len(history) - n + 1 :]) if n > 1 else ()
            banned = {
                history[i + n - 1]
                for i in range(len(history) - n + 1)
                if tuple(history[i : i + n - 1]) == tail
            }
            scores[list(banned)] = -np.inf
        for word in self.bad:  # banned where the row ends with all of the word but its last token
            prefix = word[:-1]
            if not prefix or history[len(history) - len(prefix) :] == prefix:
                scores[word[-1]] = -np.inf
        length = len(history)
        if self.eos and not self._past_minimum(length, new):
            scores[self.eos] = -np.inf
        if s["forced_bos_token_id"] is not None and length == 1:
            scores[:] = -np.inf
            scores[int(s["forced_bos_token_id"])] = 0.0
        if s["forced_eos_token_id"] is not None and new == self.budget - 1:
            forced = token_ids(s["forced_eos_token_id"])
            scores[:] = -np.inf
            scores[forced] = 0.0
        if self.suppress:
            scores[self.suppress] = -np.inf
        if self.begin_suppress and new == 0:
            scores[self.begin_suppress] = -np.inf
        if not s["do_sample"]:
            return scores
        if s["temperature"] != 1.0:
            scores = scores / np.float32(s["temperature"])
        if s["top_k"]:
            k = min(max(int(s["top_k"]), keep), scores.size)
            kth = np.partition(scores, -k)[-k]
            scores = np.where(scores < kth, -np.inf, scores)
        if s["top_p"] < 1.0:
            order = np.argsort(scores, kind="stable")  # ascending, as transformers sorts
            cumulative = np.cumsum(softmax(scores[order]))
            remove = cumulative <= (1 - s["top_p"])
            remove[-keep:] = False  # keep at least `keep`
            scores[order[remove]] = -np.inf
        return scores


def generate(
    steps: Steps,
    histories: Sequence[list[int]],
    s: dict[str, Any],
    eos: list[int],
    pad: int,
    budget: int,
    ignore_eos: bool = False,
    stop: Any = None,
) -> Iterator[list[list[int]]]:
    """Each input's new tokens: num_return_sequences rows per input, input by input. Greedy search and sampling
    yield every row's tokens after each step; beam search yields once, at the end. histories: per input, what
    its row holds before the first new token; budget: the most new tokens; ignore_eos: run to the budget; stop(row's
    new ids) -> True ends a row (stop strings)."""
    if s["num_beams"] > 1:
        yield _beam_search(steps, histories, s, eos, budget, ignore_eos)
        return
    n = s["num_return_sequences"]
    rows = [list(h) for h in histories for _ in range(n)]
    new: list[list[int]] = [[] for _ in rows]
    if budget <= 0:
        yield new
        return
    process = Processors(s, [] if ignore_eos else eos, budget)
    rng = np.random.default_rng(s["seed"])
    logits = steps.first()
    if n > 1:  # the same prompt for each of an input's sequences: run once, then repeated
        repeat = np.repeat(np.arange(len(histories)), n)
        steps.reorder(repeat)
        logits = logits[repeat]
    finished = np.zeros(len(rows), dtype=bool)
    for step in range(budget):
        chosen = np.full(len(rows), pad, dtype=np.int64)  # a finished row gets the pad token
        for i in np.flatnonzero(~finished):
            scores = process(logits[i], rows[i], len(new[i]))
            if s["do_sample"]:
                probs = softmax(scores).astype(np.float64)
                token = int(rng.choice(scores.size, p=probs / probs.sum()))
            else:
                token = int(np.argmax(scores))
            chosen[i] = token
            new[i].append(token)
            rows[i].append(token)
            if (not ignore_eos and token in eos) or (stop is not None and stop(new[i])):
                finished[i] = True
        yield new
        if finished.all() or step == budget - 1:
            return
        logits = steps.next(chosen)


def _beam_search(
    steps: Steps,
    histories: Sequence[list[int]],
    s: dict[str, Any],
    eos: list[int],
    budget: int,
    ignore_eos: bool,
) -> list[list[int]]:
    """transformers 5's vectorized beam search (generation/utils.py `_beam_search`), in numpy: the top
    2 x num_beams continuations of every input's beams, finished ones scored by length ** length_penalty, the
    early-stopping heuristic, the cache reordered by the surviving beams. Returns the best num_return_sequences
    sequences of each input."""
    beams, n_ret = s["num_beams"], s["num_return_sequences"]
    batch = len(histories)
    stopping_eos = [] if ignore_eos else eos
    keep_k = max(2, 1 + len(stopping_eos)) * beams
    top_mask = np.arange(keep_k) < beams
    penalty, early = float(s["length_penalty"]), s["early_stopping"]
    process = Processors(s, stopping_eos, budget)
    rng = np.random.default_rng(s["seed"])

    running = np.zeros((batch, beams, max(budget, 1)), dtype=np.int64)  # new tokens of each running beam
    running_scores = np.zeros((batch, beams), dtype=np.float32)
    running_scores[:, 1:] = NEG  # identical beams at first: only the first one's continuations count
    finished_seq = np.zeros_like(running)
    finished_len = np.zeros((batch, beams), dtype=np.int64)
    finished_scores = np.full((batch, beams), NEG, dtype=np.float32)
    is_finished = np.zeros((batch, beams), dtype=bool)
    improvable = np.ones((batch, 1), dtype=bool)
    if budget <= 0:
        return [[] for _ in range(batch * n_ret)]

    logits = steps.first()
    repeat = np.repeat(np.arange(batch), beams)
    steps.reorder(repeat)
    logits = logits[repeat]
    for t in range(budget):
        vocab = logits.shape[-1]
        log_probs = np.empty((batch * beams, vocab), dtype=np.float32)
        for r in range(batch * beams):
            b, k = divmod(r, beams)
            history = histories[b] + running[b, k, :t].tolist()
            log_probs[r] = process(log_softmax(logits[r]), history, t, keep=len(stopping_eos) + 1)
        accumulated = (log_probs.reshape(batch, beams, vocab) + running_scores[:, :, None]).reshape(batch, -1)
        if s["do_sample"]:  # K continuations drawn without replacement, then ordered by score
            picks = []
            for row in accumulated:
                probs = softmax(row).astype(np.float64)
                picks.append(rng.choice(row.size, size=keep_k, replace=False, p=probs / probs.sum()))
            top = np.stack([p[np.argsort(-accumulated[i, p], kind="stable")] for i, p in enumerate(picks)])
        else:
            top = top_k(accumulated, keep_k)
        top_scores = np.take_along_axis(accumulated, top, axis=-1)
        source, tokens = top // vocab, top % vocab
        candidates = np.take_along_axis(running, source[:, :, None], axis=1)
        candidates[:, :, t] = tokens
        hits = np.isin(tokens, stopping_eos) | (t + 1 >= budget)

        # the best num_beams candidates that did not finish run on
        live_scores = top_scores + hits.astype(np.float32) * NEG
        order = np.argsort(-live_scores, axis=-1, kind="stable")[:, :beams]
        running = np.take_along_axis(candidates, order[:, :, None], axis=1)
        running_scores = np.take_along_axis(live_scores, order, axis=-1)
        rows = (np.take_along_axis(source, order, axis=-1) + np.arange(batch)[:, None] * beams).reshape(-1)

        # candidates among the top num_beams that finished join the finished ones if they score better
        done_now = hits & top_mask[None, :]
        scored = top_scores / float(t + 1) ** penalty
        full = is_finished.all(axis=-1, keepdims=True) & (early is True)
        scored = scored + full * NEG + (~improvable) * NEG + (~done_now) * NEG
        merged_seq = np.concatenate([finished_seq, candidates], axis=1)
        merged_len = np.concatenate([finished_len, np.full(candidates.shape[:2], t + 1)], axis=1)
        merged_scores = np.concatenate([finished_scores, scored.astype(np.float32)], axis=1)
        merged_done = np.concatenate([is_finished, done_now], axis=1)
        best = np.argsort(-merged_scores, axis=-1, kind="stable")[:, :beams]
        finished_seq = np.take_along_axis(merged_seq, best[:, :, None], axis=1)
        finished_len = np.take_along_axis(merged_len, best, axis=-1)
        finished_scores = np.take_along_axis(merged_scores, best, axis=-1)
        is_finished = np.take_along_axis(merged_done, best, axis=-1)

        generated = t + 1
        hypothetical = budget if early == "never" and penalty > 0.0 else generated
        best_running = running_scores[:, :1] / float(hypothetical) ** penalty
        worst = np.where(is_finished, finished_scores.min(axis=1, keepdims=True), NEG)
        improvable = improvable & (best_running > worst).any(axis=-1, keepdims=True)
        go_on = improvable.any() and not (is_finished.all() and early is True) and not hits.all()
        if not go_on or generated >= budget:
            break
        steps.reorder(rows)
        logits = steps.next(running[:, :, t].reshape(-1))
    return [finished_seq[b, k, : finished_len[b, k]].tolist() for b in range(batch) for k in range(n_ret)]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, the indices of the k highest scores, highest first, the lower index first among equals (a stable
    descending sort's first k), without sorting the whole row: beam search ranks beams x vocabulary scores a step."""
    if k >= scores.shape[-1]:
        return np.argsort(-scores, axis=-1, kind="stable")
    kth = np.partition(scores, -k, axis=-1)[:, -k][:, None]  # the k-th highest score of each row
    rows = []
    for row, bound in zip(scores, kth, strict=True):
        candidates = np.flatnonzero(row >= bound)  # every score tied with the k-th too, in index order
        rows.append(candidates[np.argsort(-row[candidates], kind="stable")[:k]])
    return np.stack(rows)


def pieces(texts: Iterator[str]) -> Iterator[str]:
    """The new text of a growing sequence (its whole text after each step), piece by piece; a piece never ends
    inside a character (byte-level tokens that split one wait for the rest)."""
    sent = text = ""
    for text in texts:
        if len(text) > len(sent) and text.startswith(sent) and not text.endswith("\ufffd"):
            yield text[len(sent) :]
            sent = text
    if len(text) > len(sent) and text.startswith(sent):  # the end: what generation left unfinished, too
        yield text[len(sent) :]


def softmax(x: np.ndarray) -> np.ndarray:
    finite = x[np.isfinite(x)]
    shifted = np.exp(x - (finite.max() if finite.size else 0.0))
    return shifted / shifted.sum()


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    shifted = x - x.max()
    return shifted - np.log(np.exp(shifted).sum())
