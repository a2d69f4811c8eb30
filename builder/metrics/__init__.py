"""Metrics as evaluate modules shipped in the package: `load_metric("squad_v2")` works offline."""

from __future__ import annotations

from importlib import resources
from typing import Any

METRICS = ("squad_v2", "classification", "entity_f1", "similarity", "perplexity", "rouge", "bleu")


def load_metric(name: str) -> Any:
    import evaluate

    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; builder ships {', '.join(METRICS)}")
    return evaluate.load(str(resources.files("builder.metrics") / name))
