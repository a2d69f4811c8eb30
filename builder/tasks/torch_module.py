"""A transformers model as a module with positional inputs and a task's outputs: what export traces and what
fidelity, evaluation and benchmark run as the PyTorch side. Imports torch: only build code loads it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


class GraphModule(torch.nn.Module):
    """forward(*inputs) -> the graph's outputs; `outputs(model_outputs, named_inputs)` picks or computes them."""

    def __init__(
        self, model: torch.nn.Module, input_names: tuple[str, ...], outputs: Callable[[Any, dict], tuple]
    ):
        super().__init__()
        self.model, self.input_names, self._outputs = model, input_names, outputs

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        kwargs = dict(zip(self.input_names, inputs, strict=True))
        return self._outputs(self.model(**kwargs), kwargs)
