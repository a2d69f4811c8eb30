"""What every runtime pipeline is: a task's pre- and post-processing around an engine (runtime/engine.py),
with onnxruntime, tokenizers and numpy only."""

from __future__ import annotations

import json
from typing import Any


class Pipeline:
    # `builder predict --text`: each line is one input text (False: the task needs more than a text).
    takes_text = True
    # `builder predict` batches lines: the pipeline takes a list of inputs and gives one result per input.
    takes_lists = True

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

    def request_parts(self, item: Any) -> tuple[Any, dict[str, Any]] | None:
        """(one input, its parameters) when a predict line can join a batch of lines with the same parameters;
        None to run it alone."""
        if isinstance(item, str):
            return item, {}
        if (
            isinstance(item, dict)
            and set(item) <= {"inputs", "parameters"}
            and isinstance(item.get("inputs"), str)
        ):
            parameters = item.get("parameters") or {}
            return (item["inputs"], parameters) if isinstance(parameters, dict) else None
        return None

    def predict_many(self, items: list[Any]) -> list[Any]:
        """The results of many predict lines, in order: runs of lines with the same parameters go through the
        pipeline as one list (one padded batch per `batch_size`), others alone."""
        if not self.takes_lists:
            return [self.predict_request(item) for item in items]
        results: list[Any] = []
        run: list[Any] = []
        key: str | None = None
        for item in [*items, None]:
            parts = None if item is None else self.request_parts(item)
            this = None if parts is None else json.dumps(parts[1], sort_keys=True, default=str)
            if run and (this is None or this != key):
                params = json.loads(key)  # type: ignore[arg-type]
                results += self._as_results(self(list(run), **params), len(run), params)
                run = []
            if item is None:
                break
            if parts is None:
                results.append(self.predict_request(item))
            else:
                run.append(parts[0])
                key = this
        return results

    def _as_results(self, value: Any, n: int, params: dict[str, Any]) -> list[Any]:
        """One result per input of a list call, each as the line alone would have given it."""
        results = list(value)
        if len(results) != n:
            raise ValueError(f"expected {n} results from a list of {n} inputs, got {len(results)}")
        return results
