"""question-answering with the call shape and outputs of transformers 4.57's QuestionAnsweringPipeline
(removed in transformers 5): long contexts split into windows with doc_stride, span scores, answers aligned
to words, `handle_impossible_answer`."""

from __future__ import annotations

from typing import Any

import numpy as np

from builder.runtime.pipelines import checks
from builder.runtime.pipelines.base import Pipeline


class QuestionAnswering(Pipeline):
    def __init__(self, engine: Any):
        super().__init__(engine)
        self.tok = engine.tokenizer

    def __call__(
        self,
        *args: Any,
        question: str | list[str] | None = None,
        context: str | list[str] | None = None,
        top_k: int = 1,
        doc_stride: int | None = None,
        max_answer_len: int = 15,
        max_seq_len: int | None = None,
        max_question_len: int = 64,  # accepted for compatibility; like transformers' fast path, unused
        handle_impossible_answer: bool = False,
        align_to_words: bool = True,
        batch_size: int = 32,
    ) -> Any:
        examples = _examples(args, question, context)
        checks.integer("top_k", top_k, 1)
        checks.integer("max_answer_len", max_answer_len, 1)
        checks.flag("handle_impossible_answer", handle_impossible_answer)
        checks.flag("align_to_words", align_to_words)
        limit = self.tok.max_length
        max_seq_len = checks.optional_integer("max_seq_len", max_seq_len, 8, limit) or min(limit, 384)
        doc_stride = min(max_seq_len // 2, 128) if doc_stride is None else doc_stride
        checks.integer("doc_stride", doc_stride, 0)
        if doc_stride > max_seq_len:
            raise ValueError(f"`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})")
        question_first = self.tok.padding_side == "right"
        first, second = ("question", "context") if question_first else ("context", "question")
        windows: list[tuple[int, Any]] = []
        for i, ex in enumerate(examples):
            self._check_fits(ex["question"], max_seq_len, doc_stride)
            encodings = self.tok.encode(
                [ex[first]],
                [ex[second]],
                max_length=max_seq_len,
                stride=doc_stride,
                strategy="only_second" if question_first else "only_first",
                overflow=True,
            )
            windows += [(i, e) for e in encodings]
        starts, ends = self.engine.infer([e for _, e in windows], ["start_logits", "end_logits"], batch_size)
        per_example: list[list[tuple[Any, np.ndarray, np.ndarray]]] = [[] for _ in examples]
        for (i, enc), s, e in zip(windows, starts, ends, strict=True):
            per_example[i].append((enc, s, e))
        results = [
            self._answers(
                ex, spans, top_k, handle_impossible_answer, max_answer_len, align_to_words, question_first
            )
            for ex, spans in zip(examples, per_example, strict=True)
        ]
        return results[0] if len(results) == 1 else results

    def _check_fits(self, question: str, max_seq_len: int, doc_stride: int) -> None:
        """The question goes into every window whole: it and the stride must leave room for the context
        (the tokenizer fails otherwise)."""
        (encoding,) = self.tok.encode([question], max_length=1_000_000)
        room = max_seq_len - len(encoding.ids) - 2  # the pair's separator(s)
        if room <= 0:
            raise ValueError(
                f"question of {len(encoding.ids)} tokens: with max_seq_len={max_seq_len} no room is left for the "
                f"context. Ask a shorter question or raise max_seq_len (up to {self.tok.max_length})"
            )
        if doc_stride >= room:
            raise ValueError(
                f"doc_stride={doc_stride}: with this question ({len(encoding.ids)} tokens) and "
                f"max_seq_len={max_seq_len}, give a doc_stride below {room}"
            )

    takes_text = False  # a question and a context

    def request_parts(self, item: Any) -> tuple[Any, dict[str, Any]] | None:
        if (
            isinstance(item, dict)
            and isinstance(item.get("question"), str)
            and isinstance(item.get("context"), str)
        ):
            params = {k: v for k, v in item.items() if k not in ("question", "context")}
            return {"question": item["question"], "context": item["context"]}, params
        return None

    def _as_results(self, value: Any, n: int, params: dict[str, Any]) -> list[Any]:
        return [value] if n == 1 else super()._as_results(value, n, params)  # one example: its answer

    def predict_request(self, item: Any) -> Any:
        if isinstance(item, dict) and "inputs" not in item:  # {"question": ..., "context": ..., "top_k": 2}
            return self(**item)
        return super().predict_request(item)

    def _answers(
        self,
        example: dict[str, str],
        spans: list[tuple[Any, np.ndarray, np.ndarray]],
        top_k: int,
        handle_impossible: bool,
        max_answer_len: int,
        align_to_words: bool,
        question_first: bool,
    ) -> Any:
        min_null_score = 1000000.0
        answers: list[dict[str, Any]] = []
        sequence_index = 1 if question_first else 0
        for enc, start, end in spans:
            p_mask = np.array([sid != sequence_index if question_first else 0 for sid in enc.sequence_ids])
            if self.tok.cls_id is not None:
                p_mask[np.array(enc.ids) == self.tok.cls_id] = 0
            pre_topk = top_k * 2 + 10 if align_to_words else top_k
            s_idx, e_idx, scores, min_null_score = _select_starts_ends(
                np.asarray(start, dtype=np.float32)[None],
                np.asarray(end, dtype=np.float32)[None],
                p_mask,
                np.array(enc.attention_mask)[None],
                min_null_score,
                pre_topk,
                handle_impossible,
                max_answer_len,
            )
            for s, e, score in zip(s_idx, e_idx, scores, strict=True):
                start_char, end_char = _char_span(enc, int(s), int(e), sequence_index, align_to_words)
                text = example["context"][start_char:end_char]
                same = next((a for a in answers if a["answer"].lower() == text.lower()), None)
                if same:
                    same["score"] += float(score)
                else:
                    answers.append(
                        {"score": float(score), "start": start_char, "end": end_char, "answer": text}
                    )
        if handle_impossible:
            answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda x: x["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers


def _examples(args: tuple[Any, ...], question: Any, context: Any) -> list[dict[str, str]]:
    """Every call shape transformers accepts: (question, context), question=/context= (str or lists),
    a {"question", "context"} dict, or a list of dicts."""
    if args:
        if len(args) == 2 and all(isinstance(a, str) for a in args):
            items: Any = [{"question": args[0], "context": args[1]}]
        elif len(args) == 1:
            items = args[0]
        else:
            items = list(args)
    elif question is not None and context is not None:
        if isinstance(question, list) and isinstance(context, str):
            items = [{"question": q, "context": context} for q in question]
        elif isinstance(question, list) and isinstance(context, list):
            if len(question) != len(context):
                raise ValueError("Questions and contexts don't have the same lengths")
            items = [{"question": q, "context": c} for q, c in zip(question, context, strict=True)]
        elif isinstance(question, str) and isinstance(context, str):
            items = [{"question": question, "context": context}]
        else:
            raise ValueError(
                f"question={checks.shown(question)}, context={checks.shown(context)}: give texts, or lists of "
                "texts of the same length"
            )
    else:
        raise ValueError("question-answering needs question= and context= (or a {question, context} dict)")
    if isinstance(items, str):
        raise ValueError(
            'question-answering: each input needs a question and a context, e.g. {"question": "Where?", '
            '"context": "..."}; got a text alone'
        )
    items = [items] if isinstance(items, dict) else list(items)
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"{item!r} argument needs to be a dict with question and context")
        for key in ("question", "context"):
            if key not in item:
                raise KeyError("You need to provide a dictionary with keys {question:..., context:...}")
            if item[key] is None:
                raise ValueError(f"`{key}` cannot be None")
            if not isinstance(item[key], str):
                raise ValueError(
                    f"{key}={checks.shown(item[key])}: give a text, not {type(item[key]).__name__}"
                )
            if isinstance(item[key], str) and len(item[key]) == 0:
                raise ValueError(f"`{key}` cannot be empty")
    return items


def _select_starts_ends(
    start: np.ndarray,
    end: np.ndarray,
    p_mask: np.ndarray,
    attention_mask: np.ndarray,
    min_null_score: float,
    top_k: int,
    handle_impossible_answer: bool,
    max_answer_len: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    undesired = np.abs(p_mask.astype(np.int64) - 1) & attention_mask
    masked = undesired == 0
    start = np.where(masked, -10000.0, start).astype(np.float32)
    end = np.where(masked, -10000.0, end).astype(np.float32)
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    if handle_impossible_answer:
        min_null_score = min(min_null_score, float(start[0, 0] * end[0, 0]))
    start[0, 0] = end[0, 0] = 0.0
    starts, ends, scores = _decode_spans(start, end, top_k, max_answer_len, undesired)
    return starts, ends, scores, min_null_score


def _decode_spans(
    start: np.ndarray, end: np.ndarray, top_k: int, max_answer_len: int, undesired: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    outer = np.matmul(np.expand_dims(start, -1), np.expand_dims(end, 1))
    candidates = np.tril(np.triu(outer), max_answer_len - 1)
    flat = candidates.flatten()
    if top_k == 1:
        order = np.array([np.argmax(flat)])
    elif len(flat) < top_k:
        order = np.argsort(-flat)
    else:
        idx = np.argpartition(-flat, top_k)[0:top_k]
        order = idx[np.argsort(-flat[idx])]
    starts, ends = np.unravel_index(order, candidates.shape)[1:]
    allowed = undesired.nonzero()
    keep = np.isin(starts, allowed) & np.isin(ends, allowed)
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[0, starts, ends]


def _char_span(enc: Any, s: int, e: int, sequence_index: int, align_to_words: bool) -> tuple[int, int]:
    if align_to_words:
        try:
            start_word, end_word = enc.token_to_word(s), enc.token_to_word(e)
            return (
                enc.word_to_chars(start_word, sequence_index)[0],
                enc.word_to_chars(end_word, sequence_index)[1],
            )
        except Exception:  # noqa: BLE001 - transformers falls back to token offsets on any failure
            pass
    return enc.offsets[s][0], enc.offsets[e][1]
