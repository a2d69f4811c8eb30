"""What every runtime pipeline is: a task's pre- and post-processing around an engine (runtime/engine.py),
with onnxruntime, tokenizers and numpy only."""

from __future__ import annotations

from typing import Any


class Pipeline:
    def __init__(self, engine: Any):
        self.engine = engine

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def predict_request(self, item: Any) -> Any:
        """One `builder predict` line: the input itself, or {"inputs": ..., "parameters": {...}}."""
        if isinstance(item, dict) and "inputs" in item:
            parameters = item.get("parameters") or {}
            if not isinstance(parameters, dict):
                raise ValueError(f'"parameters" must be an object, got {parameters!r}')
            return self(item["inputs"], **parameters)
        return self(item)
