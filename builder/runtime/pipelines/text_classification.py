"""text-classification with the call shape and outputs of transformers' TextClassificationPipeline."""

from __future__ import annotations

from typing import Any

import numpy as np

from builder.runtime.pipelines import checks
from builder.runtime.pipelines.base import Pipeline

_UNSET = object()


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


FUNCTIONS = {"sigmoid": sigmoid, "softmax": softmax, "none": lambda x: x}


class TextClassification(Pipeline):
    def __init__(self, engine: Any):
        super().__init__(engine)
        config = engine.model_config
        self.id2label = {int(k): v for k, v in config.get("id2label", {}).items()}
        problem, n = config.get("problem_type"), len(self.id2label) or config.get("num_labels", 2)
        if problem == "regression":
            self.default_function = "none"
        elif problem == "multi_label_classification" or n == 1:
            self.default_function = "sigmoid"
        else:
            self.default_function = "softmax"

    def __call__(
        self,
        inputs: str | dict[str, str] | list[str | dict[str, str]],
        top_k: Any = _UNSET,
        function_to_apply: str | None = None,
        batch_size: int = 32,
    ) -> Any:
        legacy = top_k is _UNSET  # transformers: a bare call returns one dict per text
        top_k = 1 if legacy else checks.optional_integer("top_k", top_k, 1)
        function = FUNCTIONS[
            checks.one_of("function_to_apply", function_to_apply or self.default_function, tuple(FUNCTIONS))
        ]
        single = not isinstance(inputs, (list, tuple))
        items = [inputs] if single else list(inputs)
        texts, pairs = [], []
        for item in items:
            if (
                isinstance(item, dict)
                and isinstance(item.get("text"), str)
                and set(item) <= {"text", "text_pair"}
            ):
                texts.append(item["text"])
                pairs.append(item.get("text_pair"))
                if pairs[-1] is not None and not isinstance(pairs[-1], str):
                    raise ValueError(f"text-classification: text_pair={checks.shown(pairs[-1])}: give a text")
            elif isinstance(item, str):
                texts.append(item)
                pairs.append(None)
            else:
                raise ValueError(
                    'text-classification: inputs must be a text, a {"text": ..., "text_pair": ...} dict, or a '
                    f"list of those, got {type(item).__name__} {checks.shown(item)}"
                )
        encodings = [
            (self.engine.tokenizer.encode([t], [p]) if p is not None else self.engine.tokenizer.encode([t]))[
                0
            ]
            for t, p in zip(texts, pairs, strict=True)
        ]
        (logits,) = self.engine.infer(encodings, ["logits"], batch_size)
        results = [
            self._postprocess(np.asarray(row, dtype=np.float32), function, top_k, legacy) for row in logits
        ]
        if single:
            return [results[0]] if isinstance(inputs, str) and legacy else results[0]
        return results

    def _as_results(self, value: Any, n: int, params: dict[str, Any]) -> list[Any]:
        results = super()._as_results(value, n, params)
        # transformers' legacy shape: a text alone (no top_k) gives [result]; in a list, each gives result
        return [[r] for r in results] if "top_k" not in params else results

    def _postprocess(self, logits: np.ndarray, function: Any, top_k: int | None, legacy: bool) -> Any:
        scores = function(logits)
        if top_k == 1 and legacy:
            return {"label": self.id2label[int(scores.argmax())], "score": float(scores.max())}
        ranked = [{"label": self.id2label[i], "score": float(s)} for i, s in enumerate(scores)]
        ranked.sort(key=lambda x: x["score"], reverse=True)
        return ranked if top_k is None else ranked[:top_k]
