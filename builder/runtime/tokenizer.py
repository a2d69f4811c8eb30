"""Tokenization for bundles with the `tokenizers` library alone (no transformers).

A `tokenizers.Tokenizer` keeps its truncation settings as mutable state, so a shared one is unsafe across
threads. BundleTokenizer keeps one configured copy per truncation setting, never changed after creation, and
pads in numpy itself.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Encoding, Tokenizer


def _token(value: Any) -> str | None:
    return value.get("content") if isinstance(value, dict) else value


class BundleTokenizer:
    def __init__(self, folder: Path, max_length: int):
        self._json = (folder / "tokenizer.json").read_text(encoding="utf-8")
        path = folder / "tokenizer_config.json"
        self.config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self.max_length = max_length
        self.base = Tokenizer.from_str(self._json)
        self.base.no_truncation()
        self.base.no_padding()
        self._variants: dict[tuple, Tokenizer] = {}
        self._lock = threading.Lock()
        self.padding_side = self.config.get("padding_side", "right")
        self.pad_id = self.token_id(self.config.get("pad_token")) or 0
        self.pad_type_id = int(self.config.get("pad_token_type_id", 0))
        self.cls_id = self.token_id(self.config.get("cls_token"))
        self.unk_id = self.token_id(self.config.get("unk_token"))
        model = json.loads(self._json).get("model", {})
        self.continuing_subword_prefix: str | None = model.get("continuing_subword_prefix")

    def token_id(self, token: Any) -> int | None:
        token = _token(token)
        return self.base.token_to_id(token) if token else None

    def id_to_token(self, token_id: int) -> str:
        return self.base.id_to_token(int(token_id))

    def tokens_to_string(self, tokens: list[str]) -> str:
        """As transformers' convert_tokens_to_string for fast tokenizers."""
        decoder = self.base.decoder
        return decoder.decode(tokens) if decoder is not None else " ".join(tokens)

    def _variant(self, max_length: int, stride: int, strategy: str) -> Tokenizer:
        key = (max_length, stride, strategy)
        tok = self._variants.get(key)
        if tok is None:
            with self._lock:
                tok = self._variants.get(key)
                if tok is None:
                    tok = Tokenizer.from_str(self._json)
                    tok.no_padding()
                    direction = self.config.get("truncation_side", "right")
                    tok.enable_truncation(
                        max_length=max_length, stride=stride, strategy=strategy, direction=direction
                    )
                    self._variants[key] = tok
        return tok

    def encode(
        self,
        texts: Sequence[str],
        pairs: Sequence[str] | None = None,
        *,
        max_length: int | None = None,
        stride: int = 0,
        strategy: str = "longest_first",
        overflow: bool = False,
        pretokenized: bool = False,
    ) -> list[Encoding]:
        """One Encoding per text (or pair); with overflow=True, each input's windows in order instead.
        pretokenized=True: each text is a list of words (Encoding.word_ids then index those words)."""
        tok = self._variant(max_length or self.max_length, stride, strategy)
        inputs = list(zip(texts, pairs, strict=True)) if pairs is not None else list(texts)
        encodings = tok.encode_batch(inputs, is_pretokenized=pretokenized)
        if not overflow:
            return encodings
        return [window for e in encodings for window in [e, *e.overflowing]]


def pad(
    encodings: Sequence[Encoding],
    input_names: Sequence[str],
    pad_id: int,
    pad_type_id: int = 0,
    length: int | None = None,
) -> dict[str, np.ndarray]:
    """Right-pad encodings into the session's input arrays (to `length`, or the longest encoding)."""
    length = length or max((len(e.ids) for e in encodings), default=0)
    n = len(encodings)
    arrays = {
        "input_ids": np.full((n, length), pad_id, dtype=np.int64),
        "attention_mask": np.zeros((n, length), dtype=np.int64),
        "token_type_ids": np.full((n, length), pad_type_id, dtype=np.int64),
    }
    for i, e in enumerate(encodings):
        k = len(e.ids)
        arrays["input_ids"][i, :k] = e.ids
        arrays["attention_mask"][i, :k] = e.attention_mask
        arrays["token_type_ids"][i, :k] = e.type_ids
    return {name: arrays[name] for name in input_names}
