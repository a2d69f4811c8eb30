"""token-classification with the call shape and outputs of transformers' TokenClassificationPipeline:
aggregation strategies none/simple/first/average/max, ignore_labels, character offsets, stride windows."""

from __future__ import annotations

from typing import Any

import numpy as np

from builder.runtime.pipelines import checks
from builder.runtime.pipelines.base import Pipeline

STRATEGIES = ("none", "simple", "first", "average", "max")


class TokenClassification(Pipeline):
    def __init__(self, engine: Any):
        super().__init__(engine)
        self.tok = engine.tokenizer
        self.id2label = {int(k): v for k, v in engine.model_config.get("id2label", {}).items()}

    def __call__(
        self,
        inputs: str | list[str],
        aggregation_strategy: str = "none",
        ignore_labels: list[str] | None = None,
        stride: int | None = None,
        batch_size: int = 32,
    ) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        strategy = str(getattr(aggregation_strategy, "value", aggregation_strategy)).lower()
        if strategy not in STRATEGIES:
            raise ValueError(
                f"aggregation_strategy={aggregation_strategy!r}: use one of {', '.join(STRATEGIES)}"
            )
        if stride is not None and strategy == "none":
            raise ValueError('stride needs an aggregation_strategy other than "none"')
        checks.optional_integer("stride", stride, 0, self.tok.max_length - 1)
        ignore = ["O"] if ignore_labels is None else checks.text_list("ignore_labels", ignore_labels)
        sentences, single = checks.texts(inputs, "token-classification")
        windows: list[tuple[int, Any]] = []  # (sentence index, encoding)
        for i, sentence in enumerate(sentences):
            encodings = self.tok.encode([sentence], stride=stride or 0, overflow=stride is not None)
            windows += [(i, e) for e in encodings]
        (logits,) = self.engine.infer([e for _, e in windows], ["logits"], batch_size)
        results: list[list[dict[str, Any]]] = [[] for _ in sentences]
        chunks = [0] * len(sentences)
        for (i, encoding), window_logits in zip(windows, logits, strict=True):
            scores = _softmax(np.asarray(window_logits, dtype=np.float32))
            pre = self._pre_entities(sentences[i], encoding, scores)
            grouped = self._aggregate(pre, strategy)
            results[i] += [
                e for e in grouped if e.get("entity") not in ignore and e.get("entity_group") not in ignore
            ]
            chunks[i] += 1
        results = [_merge_overlaps(r) if n > 1 else r for r, n in zip(results, chunks, strict=True)]
        return results[0] if single else results

    def _pre_entities(self, sentence: str, encoding: Any, scores: np.ndarray) -> list[dict[str, Any]]:
        out = []
        for idx, (token_id, special, (start, end)) in enumerate(
            zip(encoding.ids, encoding.special_tokens_mask, encoding.offsets, strict=True)
        ):
            if special:
                continue
            word = self.tok.id_to_token(token_id)
            word_ref = sentence[start:end]
            if self.tok.continuing_subword_prefix:
                is_subword = len(word) != len(word_ref)
            else:  # transformers' fallback heuristic for tokenizers without a subword prefix
                is_subword = start > 0 and " " not in sentence[start - 1 : start + 1]
            if token_id == self.tok.unk_id:
                word, is_subword = word_ref, False
            out.append(
                {
                    "word": word,
                    "scores": scores[idx],
                    "start": start,
                    "end": end,
                    "index": idx,
                    "is_subword": is_subword,
                }
            )
        return out

    def _aggregate(self, pre: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
        if strategy in ("none", "simple"):
            entities = []
            for p in pre:
                best = int(p["scores"].argmax())
                entities.append(
                    {
                        "entity": self.id2label[best],
                        "score": float(p["scores"][best]),
                        "index": p["index"],
                        "word": p["word"],
                        "start": p["start"],
                        "end": p["end"],
                    }
                )
        else:
            entities = self._aggregate_words(pre, strategy)
        return entities if strategy == "none" else self._group(entities)

    def _aggregate_words(self, pre: list[dict[str, Any]], strategy: str) -> list[dict[str, Any]]:
        words, group = [], None
        for p in pre:
            if group is None:
                group = [p]
            elif p["is_subword"]:
                group.append(p)
            else:
                words.append(self._aggregate_word(group, strategy))
                group = [p]
        if group is not None:
            words.append(self._aggregate_word(group, strategy))
        return words

    def _aggregate_word(self, tokens: list[dict[str, Any]], strategy: str) -> dict[str, Any]:
        if strategy == "first":
            scores = tokens[0]["scores"]
        elif strategy == "max":
            scores = max(tokens, key=lambda t: t["scores"].max())["scores"]
        else:  # average
            scores = np.nanmean(np.stack([t["scores"] for t in tokens]), axis=0)
        best = int(scores.argmax())
        return {
            "entity": self.id2label[best],
            "score": float(scores[best]),
            "word": self.tok.tokens_to_string([t["word"] for t in tokens]),
            "start": tokens[0]["start"],
            "end": tokens[-1]["end"],
        }

    def _group(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Adjacent tokens (or words) with the same entity type, B- starting a new group."""
        groups, current = [], []
        for entity in entities:
            if current:
                bi, tag = _tag(entity["entity"])
                _, last_tag = _tag(current[-1]["entity"])
                if not (tag == last_tag and bi != "B"):
                    groups.append(self._group_of(current))
                    current = []
            current.append(entity)
        if current:
            groups.append(self._group_of(current))
        return groups

    def _group_of(self, entities: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "entity_group": entities[0]["entity"].split("-", 1)[-1],
            "score": float(np.nanmean([e["score"] for e in entities])),
            "word": self.tok.tokens_to_string([e["word"] for e in entities]),
            "start": entities[0]["start"],
            "end": entities[-1]["end"],
        }


def _tag(name: str) -> tuple[str, str]:
    if name.startswith(("B-", "I-")):
        return name[0], name[2:]
    return "I", name


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _merge_overlaps(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities found in overlapping stride windows: keep the longer (then higher-scoring) one."""
    if not entities:
        return entities
    entities = sorted(entities, key=lambda x: x["start"])
    merged, previous = [], entities[0]
    for entity in entities:
        if previous["start"] <= entity["start"] < previous["end"]:
            longer = entity["end"] - entity["start"] - (previous["end"] - previous["start"])
            if longer > 0 or (longer == 0 and entity["score"] > previous["score"]):
                previous = entity
        else:
            merged.append(previous)
            previous = entity
    merged.append(previous)
    return merged
