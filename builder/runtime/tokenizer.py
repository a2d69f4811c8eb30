"""Tokenization for bundles with the `tokenizers` library alone (no transformers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer


def load_tokenizer(folder: Path, max_length: int) -> Tokenizer:
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    config_path = folder / "tokenizer_config.json"
    config: dict[str, Any] = (
        json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    )
    pad = config.get("pad_token")
    pad = pad.get("content") if isinstance(pad, dict) else pad
    pad_id = tok.token_to_id(pad) if pad else None
    tok.enable_truncation(max_length=max_length)
    tok.enable_padding(
        pad_id=pad_id or 0, pad_token=pad or "[PAD]", pad_type_id=config.get("pad_token_type_id", 0)
    )
    return tok


def encode(tok: Tokenizer, texts: list[str], input_names: list[str]) -> dict[str, np.ndarray]:
    encodings = tok.encode_batch(texts)
    arrays = {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }
    return {name: arrays[name] for name in input_names}
