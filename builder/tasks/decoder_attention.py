"""A decoder's attention exported as ONNX Runtime's fused GroupQueryAttention: the key/value cache append, rotary
embedding, grouped-query heads and the causal (and sliding-window) mask in one operator per layer, Q/K/V in one
MatMul. Export traces `FusedDecoderModule`; the rest of the model (norms, MLP, embeddings, head) is transformers'.

The graph keeps the plain export's contract (inputs, outputs, left padding from the attention mask):
- the mask becomes an additive bias on the scores (finite, so a row of padding stays a number, in fp16 too), and
  every row counts as `past + new` long (`seqlens_k` = T - 1), padding included;
- rotary positions are cache positions (padding included): rotary attention depends only on the distance between
  query and key, and a row's padding all comes before its tokens, so a left-padded row scores as it does alone.
  The `position_ids` input therefore only feeds learned position embeddings (GPT-2);
- several new tokens after a past run one row at a time (the operator's inputs stop at attention_bias, so the
  graph loads on ONNX Runtime releases before 1.32); generation never does that: a prompt has an empty past,
  each later step one token per row.

Imports torch: build code only."""

from __future__ import annotations

from typing import Any

import torch

from builder.tasks.architectures import ARCHITECTURES

MASKED = -10000.0  # added to a padding key's score: exp() of it is 0 in fp32 and fp16, and fp16 can hold it
ROTARY_TYPES = ("default", "linear", "llama3", "yarn")  # cos/sin that depend on the position only


def unfused_reason(model: torch.nn.Module) -> str | None:
    """Why this model's attention cannot become GroupQueryAttention (None: it can)."""
    config = model.config
    arch = ARCHITECTURES.get(config.model_type)
    if arch is None or arch.family != "decoder":
        return f"model_type {config.model_type!r} is not a decoder builder fuses"
    layers = _attention_modules(model)
    if not layers:
        return "no attention modules with a known projection layout"
    if config.model_type == "gpt2" and (
        config.reorder_and_upcast_attn or getattr(config, "add_cross_attention", False)
    ):
        return "GPT-2 with reorder_and_upcast_attn or cross-attention"
    if _head_dim(model) % 16:
        return f"head size {_head_dim(model)} (GroupQueryAttention takes multiples of 16)"
    rotary = _rotary_module(model)
    if rotary is not None:
        kind = getattr(rotary, "rope_type", "default")
        if kind not in ROTARY_TYPES:
            return f"rope type {kind!r} (its cos/sin change with the sequence length)"
        cos, _ = _rotary_tables(rotary, 2, _head_dim(model))
        if cos.shape[-1] * 2 != _head_dim(model):
            return "partial rotary embedding (rotary dimension below the head size)"
    return None


class GroupQueryAttention(torch.autograd.Function):
    """com.microsoft GroupQueryAttention: forward computes what the operator computes (so the traced model runs in
    PyTorch too); symbolic writes the operator."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        query: torch.Tensor,
        key: torch.Tensor | None,
        value: torch.Tensor | None,
        past_key: torch.Tensor,
        past_value: torch.Tensor,
        seqlens_k: torch.Tensor,
        total_length: torch.Tensor,
        cos: torch.Tensor | None,
        sin: torch.Tensor | None,
        bias: torch.Tensor,
        heads: int,
        kv_heads: int,
        scale: float,
        window: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, s, _ = query.shape
        d = past_key.shape[-1]
        if (
            torch.jit.is_tracing()
        ):  # export writes the operator (symbolic) and keeps none of the values traced
            # here; TorchScript's peephole pass fails on a trace of the body below when there is one key/value head
            cache = (b, kv_heads, past_key.shape[2] + s, d)
            return query.new_zeros(b, s, heads * d), past_key.new_zeros(cache), past_value.new_zeros(cache)
        if key is None:  # packed Q/K/V
            query, key, value = query.split([heads * d, kv_heads * d, kv_heads * d], dim=-1)
        q = query.reshape(b, s, heads, d).transpose(1, 2)
        k = key.reshape(b, s, kv_heads, d).transpose(1, 2)
        v = value.reshape(b, s, kv_heads, d).transpose(1, 2)
        past = past_key.shape[2]
        if cos is not None:
            c, n = cos[past : past + s], sin[past : past + s]
            q, k = _rotate(q, c, n), _rotate(k, c, n)
        present_key, present_value = torch.cat([past_key, k], 2), torch.cat([past_value, v], 2)
        total = past + s
        group = (b, kv_heads, heads // kv_heads, total, d)
        keys = present_key[:, :, None].expand(group).reshape(b, heads, total, d)
        values = present_value[:, :, None].expand(group).reshape(b, heads, total, d)
        scores = q @ keys.transpose(-1, -2) * scale + bias
        i = torch.arange(s)[:, None] + past
        j = torch.arange(total)[None, :]
        allowed = j <= i
        if window >= 0:
            allowed = allowed & (j > i - window)
        scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
        out = (scores.softmax(-1) @ values).transpose(1, 2).reshape(b, s, heads * d)
        return out, present_key, present_value

    @staticmethod
    def symbolic(  # type: ignore[no-untyped-def]
        g, query, key, value, past_key, past_value, seqlens_k, total_length, cos, sin, bias, heads, kv_heads, scale,
        window,
    ):  # fmt: skip
        from torch.onnx._internal.torchscript_exporter import symbolic_helper

        absent = symbolic_helper._optional_input_placeholder_tensor

        inputs = [
            query, key if key is not None else absent(g), value if value is not None else absent(g),
            past_key, past_value, seqlens_k, total_length,
            cos if cos is not None else absent(g), sin if sin is not None else absent(g),
            absent(g),  # position_ids: positions come from the cache length (see the module's docstring)
            bias,
            # The inputs after attention_bias are newer: ONNX Runtime 1.32 added a 17th that lets several new
            # tokens follow a past at batch > 1, which no generation step does. Left out, the graph loads on the
            # ONNX Runtime releases before it too (onnxruntime-gpu's latest is 1.31).
        ]  # fmt: skip
        out, present_key, present_value = g.op(
            "com.microsoft::GroupQueryAttention",
            *inputs,
            num_heads_i=heads,
            kv_num_heads_i=kv_heads,
            scale_f=scale,
            local_window_size_i=window,
            do_rotary_i=int(cos is not None),
            outputs=3,
        )
        # Output types for the exporter's shape inference (it has none for a com.microsoft operator)
        head_dim = symbolic_helper._get_tensor_sizes(past_key)[-1]
        out.setType(query.type().with_sizes([None, None, heads * head_dim]))
        for present in (present_key, present_value):
            present.setType(past_key.type().with_sizes([None, kv_heads, None, head_dim]))
        return out, present_key, present_value


class FusedDecoderModule(torch.nn.Module):
    """DecoderModule's signature and outputs, with every attention layer as one GroupQueryAttention (see the module
    docstring). The model's own attention forwards are swapped in only for the duration of a call."""

    def __init__(self, model: torch.nn.Module, num_layers: int):
        super().__init__()
        reason = unfused_reason(model)
        if reason:
            raise ValueError(f"attention cannot be fused: {reason}")
        self.model, self.num_layers = model, num_layers
        config = model.config
        arch = ARCHITECTURES[config.model_type]
        self.heads = int(getattr(config, arch.heads_key))
        self.kv_heads = (
            int(getattr(config, arch.kv_heads_key, None) or self.heads) if arch.kv_heads_key else self.heads
        )
        self.head_dim = _head_dim(model)
        self.layers = _attention_modules(model)
        self.window_from = arch.window_from
        rotary = _rotary_module(model)
        if rotary is not None:
            positions = int(getattr(config, arch.positions_key))
            cos, sin = _rotary_tables(rotary, positions, self.head_dim)
            # Persistent buffers: the exporter makes them initializers, one table for every layer (a non-persistent
            # one becomes a Constant node per use: a copy per layer, and past 2 GB a data file of its own each)
            self.register_buffer("cos", cos)
            self.register_buffer("sin", sin)
        else:
            self.cos = self.sin = None
        for i, attn in enumerate(self.layers):  # one Q/K/V projection: one MatMul (one MatMulNBits) per layer
            if hasattr(attn, "q_proj"):
                parts = (attn.q_proj, attn.k_proj, attn.v_proj)
                self.register_buffer(f"qkv_weight_{i}", torch.cat([p.weight for p in parts]).detach())
                biases = [p.bias for p in parts]
                packed_bias = torch.cat(biases).detach() if all(b is not None for b in biases) else None
                self.register_buffer(f"qkv_bias_{i}", packed_bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        *past: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        dtype = past[0].dtype
        ones = torch.ones_like(attention_mask)
        seqlens_k = (ones.sum(-1) - 1).to(torch.int32)  # every row is the whole mask long (see the docstring)
        total_length = ones.sum(-1).max().to(torch.int32)
        bias = ((1 - attention_mask.to(dtype)) * MASKED)[:, None, None, :]
        bias = bias.expand(-1, -1, input_ids.shape[1], -1)
        present: list[torch.Tensor | None] = [None] * (2 * self.num_layers)
        shared = (seqlens_k, total_length, bias)
        saved = []
        for i, attn in enumerate(self.layers):
            saved.append(attn.forward)
            attn.forward = self._layer_forward(i, attn, past, present, shared)
        try:
            inputs = {"input_ids": input_ids, "use_cache": False}
            if ARCHITECTURES[self.model.config.model_type].learned_positions:
                inputs["position_ids"] = position_ids
            out = self.model(**inputs)
        finally:
            for attn, forward in zip(self.layers, saved, strict=True):
                attn.forward = forward
        return (out.logits, *present)

    def _layer_forward(self, i: int, attn: Any, past: tuple, present: list, shared: tuple) -> Any:
        def forward(hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, None]:
            b, s, _ = hidden_states.shape
            d, heads, kv_heads = self.head_dim, self.heads, self.kv_heads
            key = value = None
            if hasattr(attn, "q_proj"):
                query = torch.nn.functional.linear(
                    hidden_states, getattr(self, f"qkv_weight_{i}"), getattr(self, f"qkv_bias_{i}")
                )
                if hasattr(attn, "q_norm"):  # Qwen3: an RMS norm per head before rotary
                    query, key, value = query.split([heads * d, kv_heads * d, kv_heads * d], dim=-1)
                    query = attn.q_norm(query.reshape(b, s, heads, d)).reshape(b, s, heads * d)
                    key = attn.k_norm(key.reshape(b, s, kv_heads, d)).reshape(b, s, kv_heads * d)
            elif hasattr(attn, "qkv_proj"):
                query = attn.qkv_proj(hidden_states)
            else:  # GPT-2's Conv1D c_attn
                query = attn.c_attn(hidden_states)
            out, k, v = GroupQueryAttention.apply(
                query, key, value, past[2 * i], past[2 * i + 1], *shared[:2], self.cos, self.sin, shared[2],
                heads, kv_heads, self._scale(attn), self._window(attn),
            )  # fmt: skip
            present[2 * i], present[2 * i + 1] = k, v
            projection = attn.o_proj if hasattr(attn, "o_proj") else attn.c_proj
            return projection(out), None

        return forward

    def _scale(self, attn: Any) -> float:
        if hasattr(attn, "scaling"):
            return float(attn.scaling)
        scale = self.head_dim**-0.5 if attn.scale_attn_weights else 1.0  # GPT-2
        return scale / (attn.layer_idx + 1) if attn.scale_attn_by_inverse_layer_idx else scale

    def _window(self, attn: Any) -> int:
        """GroupQueryAttention's local_window_size: how many positions a query sees, its own included (as
        transformers counts a sliding window; measured on ONNX Runtime 1.32's CPU kernel), -1 for none."""
        if self.window_from == "layer":
            window = getattr(attn, "sliding_window", None)
        elif self.window_from == "config":
            window = getattr(self.model.config, "sliding_window", None)
        else:
            window = None
        return int(window) if window else -1


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def _attention_modules(model: torch.nn.Module) -> list[Any]:
    found = [
        m
        for m in model.modules()
        if hasattr(m, "layer_idx")
        and (hasattr(m, "q_proj") or hasattr(m, "qkv_proj") or hasattr(m, "c_attn"))
        and not getattr(m, "is_cross_attention", False)
    ]
    return sorted(found, key=lambda m: m.layer_idx)


def _rotary_module(model: torch.nn.Module) -> Any:
    base = getattr(model, "model", None)
    return getattr(base, "rotary_emb", None)


def _head_dim(model: torch.nn.Module) -> int:
    config = model.config
    arch = ARCHITECTURES[config.model_type]
    return int(
        getattr(config, "head_dim", None)
        or getattr(config, arch.hidden_key) // getattr(config, arch.heads_key)
    )


def _rotary_tables(rotary: Any, positions: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin per position, (positions, rotary dim / 2), as transformers computes them (scaling included)."""
    with torch.no_grad():
        x = torch.zeros(1, 1, head_dim, dtype=torch.float32)
        cos, sin = rotary(x, torch.arange(positions)[None, :])
    half = cos.shape[-1] // 2
    return cos[0, :, :half].contiguous(), sin[0, :, :half].contiguous()
