"""Loading a bundle: verify its manifest, open an ONNX Runtime session as its hardware profile says,
and give back a callable pipeline for its task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from builder.errors import BuilderError
from builder.runtime.manifest import verify
from builder.runtime.session import create_session
from builder.runtime.tokenizer import encode, load_tokenizer


class Bundle:
    """A loaded bundle. `bundle(texts)` runs its task pipeline."""

    def __init__(self, path: str | Path, *, check: bool = True, intra_op_threads: int | None = None):
        self.path = Path(path)
        self.manifest = verify(self.path) if check else json.loads((self.path / "manifest.json").read_text())
        self.runtime: dict[str, Any] = self.manifest["runtime"]
        self.task: str = self.runtime["task"]
        metrics = self.path / "metrics.json"
        self.metrics: dict[str, Any] = (
            json.loads(metrics.read_text(encoding="utf-8")) if metrics.is_file() else {}
        )
        hardware = dict(self.runtime["hardware"])
        if intra_op_threads is not None:
            hardware["intra_op_threads"] = intra_op_threads
        self.session = create_session(self.path / "model.onnx", hardware)
        self.tokenizer = load_tokenizer(self.path, self.runtime["max_length"])
        self.input_names: list[str] = self.runtime["inputs"]

    def __call__(self, inputs: str | list[str], **kwargs: Any) -> Any:
        if self.task == "feature-extraction":
            return self.embed(inputs, **kwargs)
        raise BuilderError(f"{self.path}: no pipeline for task {self.task!r} in this builder version yet.")

    def embed(
        self, texts: str | list[str], *, token_features: bool = False, batch_size: int = 32
    ) -> np.ndarray:
        """Sentence embeddings, pooled and normalized as the build says ([n, hidden], or [hidden] for one
        text); token_features=True gives the last hidden states instead (one [tokens, hidden] per text)."""
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        output = "last_hidden_state" if token_features else "sentence_embedding"
        results: list[Any] = []
        for start in range(0, len(batch), batch_size):
            feeds = encode(self.tokenizer, batch[start : start + batch_size], self.input_names)
            (out,) = self.session.run([output], feeds)
            if token_features:
                lengths = feeds["attention_mask"].sum(1)
                results += [o[: int(n)] for o, n in zip(out, lengths, strict=True)]
            else:
                results.append(out)
        if token_features:
            return results[0] if single else results
        embeddings = np.concatenate(results) if results else np.zeros((0, 0), dtype=np.float32)
        return embeddings[0] if single else embeddings


def load(path: str | Path, *, intra_op_threads: int | None = None) -> Bundle:
    """Load and verify a bundle folder. intra_op_threads overrides the hardware profile's thread count."""
    return Bundle(path, intra_op_threads=intra_op_threads)
