"""feature-extraction: sentence embeddings pooled and normalized in the graph (as sentence-transformers does),
or the last hidden states per token on request."""

from __future__ import annotations

from typing import Any

import numpy as np

from builder.runtime.pipelines import checks
from builder.runtime.pipelines.base import Pipeline


class FeatureExtraction(Pipeline):
    def __init__(self, engine: Any):
        super().__init__(engine)

    def __call__(
        self, inputs: str | list[str], *, token_features: bool = False, batch_size: int = 32
    ) -> np.ndarray | list[np.ndarray]:
        """[n, hidden] embeddings ([hidden] for one text); token_features=True: one [tokens, hidden] per text."""
        texts, single = checks.texts(inputs, "feature-extraction")
        checks.flag("token_features", token_features)
        encodings = self.engine.tokenizer.encode(texts)
        output = "last_hidden_state" if token_features else "sentence_embedding"
        (values,) = self.engine.infer(encodings, [output], batch_size)
        if token_features:
            return values[0] if single else values
        embeddings = np.stack(values) if values else np.zeros((0, 0), dtype=np.float32)
        return embeddings[0] if single else embeddings
