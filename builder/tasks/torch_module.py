"""A transformers model as a module with positional inputs and a task's outputs: what export traces and what
fidelity, evaluation and benchmark run as the PyTorch side. Imports torch: only build code loads it."""

from __future__ import annotations

import inspect
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


class DecoderModule(torch.nn.Module):
    """A causal language model as one graph with a key/value cache: forward(input_ids, attention_mask,
    position_ids, past key 0, past value 0, ...) -> (logits, present key 0, present value 0, ...). The past is a
    zero-length cache for the prompt. transformers 5 takes only Cache objects: the flat tensors become a
    DynamicCache and back. (Its argument was `past_key_values` before transformers 5.24 named it `cache`.)"""

    def __init__(self, model: torch.nn.Module, num_layers: int):
        super().__init__()
        self.model, self.num_layers = model, num_layers
        self._cache_arg = (
            "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        *past: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        from transformers import DynamicCache

        # A sliding window: full layers (the model masks the window itself), so the cache keeps every position as the
        # graph's contract says (a config's sliding layers would keep only the window's last positions)
        windowed = getattr(self.model.config, "sliding_window", None)
        cache = DynamicCache() if windowed else DynamicCache(config=self.model.config)
        for layer in range(self.num_layers):
            cache.update(past[2 * layer], past[2 * layer + 1], layer)
        name = self._cache_arg
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=True,
            **{name: cache},
        )
        present = []
        for layer in (out.cache if name == "cache" else out.past_key_values).layers:
            present += [layer.keys, layer.values]
        return (out.logits, *present)


def torch_call(module: torch.nn.Module, tensors: tuple[torch.Tensor, ...], device: str = "cpu") -> None:
    """One forward of a graph's module, as the benchmark times it: host inputs in, host outputs back."""
    with torch.inference_mode():
        out = module(*(t.to(device) for t in tensors))
        if device != "cpu":  # also waits for the GPU
            [o.cpu() for o in out]
