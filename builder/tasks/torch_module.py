"""A transformers model as a module with positional inputs and a task's outputs: what export traces and what
fidelity, evaluation and benchmark run as the PyTorch side. Imports torch: only build code loads it."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
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
            hold(cache, layer, past[2 * layer], past[2 * layer + 1])
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


def hold(cache: Any, layer: int, keys: torch.Tensor, values: torch.Tensor) -> None:
    """A past as a cache layer's contents, as they are. Cache.update would append it to an empty tensor, which the
    trace keeps: a Concat copying the whole past of every layer at every step (a seq2seq decoder's cross-attention
    cache, 200 MB a step at bart-large's 512 positions and 4 beams)."""
    cache.update(keys[..., :0, :], values[..., :0, :], layer)  # the layer, made and initialized, still empty
    entry = cache.layers[layer]
    entry.keys, entry.values = keys, values


def _cache_argument(model: torch.nn.Module) -> str:
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class EncoderModule(torch.nn.Module):
    """A sequence-to-sequence model's encoder: forward(input_ids, attention_mask) -> last_hidden_state."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        encoder = self.model.get_encoder()
        return (encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state,)


class Seq2SeqDecoderModule(torch.nn.Module):
    """A sequence-to-sequence model's decoder with a key/value cache, in Optimum's two forms:

    - first step (with_past=False): forward(input_ids, encoder_attention_mask, encoder_hidden_states) -> (logits,
      present.{i}.decoder.key, .decoder.value, present.{i}.encoder.key, .encoder.value for each layer): the
      cross-attention keys and values are computed here, once;
    - later steps (with_past=True): forward(input_ids, encoder_attention_mask, past decoder key 0, value 0, past
      encoder key 0, value 0, ...) -> (logits, present.{i}.decoder.key, .decoder.value ...): the cross-attention
      cache is read, never recomputed, and the encoder's output is not needed.

    transformers 5 takes only Cache objects: the flat tensors become an EncoderDecoderCache (a self-attention and a
    cross-attention DynamicCache) and back; a non-empty cross-attention cache is what tells each layer to reuse it."""

    def __init__(self, model: torch.nn.Module, num_layers: int, with_past: bool):
        super().__init__()
        self.model, self.num_layers, self.with_past = model, num_layers, with_past
        self._cache_arg = _cache_argument(model)

    def forward(
        self, input_ids: torch.Tensor, encoder_attention_mask: torch.Tensor, *rest: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        from transformers import DynamicCache, EncoderDecoderCache

        self_cache, cross_cache = DynamicCache(), DynamicCache()
        if self.with_past:
            past = rest
            for layer in range(self.num_layers):
                k, v, ck, cv = past[4 * layer : 4 * layer + 4]
                hold(self_cache, layer, k, v)
                hold(cross_cache, layer, ck, cv)
            # the layers read the cross-attention cache; the encoder's output only gives them its shape
            ck = past[2]
            hidden = ck.new_zeros(ck.shape[0], ck.shape[2], self.model.config.d_model)
        else:
            (hidden,) = rest
        out = self.model(
            encoder_outputs=(hidden,),
            attention_mask=encoder_attention_mask,
            decoder_input_ids=input_ids,
            use_cache=True,
            **{self._cache_arg: EncoderDecoderCache(self_cache, cross_cache)},
        )
        cache = out.cache if self._cache_arg == "cache" else out.past_key_values
        present = []
        for layer in range(self.num_layers):
            present += [
                cache.self_attention_cache.layers[layer].keys,
                cache.self_attention_cache.layers[layer].values,
            ]
            if not self.with_past:
                cross = cache.cross_attention_cache.layers[layer]
                present += [cross.keys, cross.values]
        return (out.logits, *present)


def torch_outputs(module: Any, batch: dict[str, Any], names: tuple[str, ...]) -> list[Any]:
    """The module's outputs (numpy, float32) on a batch, remembered on the module: sweep jobs in one process
    share the PyTorch model, and its outputs on the built-in inputs are the same for every bundle they compare."""
    digest = hashlib.sha256()
    for n in names:
        digest.update(f"{n}{batch[n].shape}{batch[n].dtype}".encode())
        digest.update(np.ascontiguousarray(batch[n]).tobytes())
    memo: dict[str, list[Any]] = module.__dict__.setdefault("_builder_outputs", {})
    if digest.hexdigest() not in memo:
        with torch.inference_mode():
            out = module(*(torch.from_numpy(batch[n]) for n in names))
        memo[digest.hexdigest()] = [o.float().numpy() for o in out]
    return [o.copy() for o in memo[digest.hexdigest()]]
