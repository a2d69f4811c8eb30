"""The architectures builder exports: one table entry each (model_type in config.json -> what the build needs),
and what a model's config says about its inputs, positions and cache. The tasks an architecture has are the
tasks of its heads (builder.tasks.tasks_of). Pure data: it imports no task."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENCODER_HEADS = (
    "AutoModel",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoModelForQuestionAnswering",
)


DECODER_HEADS = ("AutoModelForCausalLM",)
SEQ2SEQ_HEADS = ("AutoModelForSeq2SeqLM",)


@dataclass(frozen=True)
class Architecture:
    family: str  # encoder | decoder | encoder-decoder
    optimizer_type: str  # onnxruntime.transformers optimizer model_type (its fusions)
    heads_key: str  # config key: attention heads
    hidden_key: str  # config key: hidden size
    heads: tuple[str, ...]  # the transformers Auto classes it has; its tasks are those of these heads
    inputs: tuple[str, ...] = ("input_ids", "attention_mask", "token_type_ids")  # what forward() accepts
    # Position ids start after the padding id (RoBERTa, MPNet): pad_token_id + 1 positions are not usable.
    positions_after_pad: bool = False
    layers_key: str = "num_hidden_layers"  # config key: layers
    kv_heads_key: str | None = None  # config key: key/value heads (grouped-query attention); None: all heads
    positions_key: str = "max_position_embeddings"
    learned_positions: bool = False  # position embeddings read from position_ids (GPT-2), not rotary
    # Where a decoder's sliding attention window is set: "config" (config.sliding_window, every layer), "layer"
    # (the attention module's sliding_window, per layer type), None (no window).
    window_from: str | None = None
    head_dim_key: str | None = None  # config key: head size, where it is not hidden size / heads (T5's d_kv)


_NO_TYPES = ("input_ids", "attention_mask")
_GQA_DECODER: dict[str, Any] = dict(  # grouped-query attention decoders: Llama's config keys
    family="decoder",
    optimizer_type="gpt2",
    heads_key="num_attention_heads",
    hidden_key="hidden_size",
    heads=DECODER_HEADS,
    inputs=_NO_TYPES,
    kv_heads_key="num_key_value_heads",
)
ARCHITECTURES: dict[str, Architecture] = {
    "bert": Architecture("encoder", "bert", "num_attention_heads", "hidden_size", ENCODER_HEADS),
    "roberta": Architecture(
        "encoder", "bert", "num_attention_heads", "hidden_size", ENCODER_HEADS, positions_after_pad=True
    ),
    "xlm-roberta": Architecture(
        "encoder", "bert", "num_attention_heads", "hidden_size", ENCODER_HEADS, positions_after_pad=True
    ),
    "distilbert": Architecture("encoder", "bert", "n_heads", "dim", ENCODER_HEADS, inputs=_NO_TYPES),
    "electra": Architecture("encoder", "bert", "num_attention_heads", "hidden_size", ENCODER_HEADS),
    # DeBERTa-v3: disentangled attention, which ONNX Runtime does not fuse; token types only if type_vocab_size > 0.
    "deberta-v2": Architecture("encoder", "bert", "num_attention_heads", "hidden_size", ENCODER_HEADS),
    # MPNet: BERT layers plus a relative position bias on the attention scores (so no Attention fusion).
    "mpnet": Architecture(
        "encoder",
        "bert",
        "num_attention_heads",
        "hidden_size",
        ENCODER_HEADS,
        inputs=_NO_TYPES,
        positions_after_pad=True,
    ),
    # ModernBERT: rotary positions, GeGLU, alternating local and global attention.
    "modernbert": Architecture(
        "encoder", "bert", "num_attention_heads", "hidden_size", ENCODER_HEADS, inputs=_NO_TYPES
    ),
    # Decoders: ONNX Runtime's optimizer fuses their layer norms (gpt2 patterns), no attention.
    "gpt2": Architecture(
        "decoder", "gpt2", "n_head", "n_embd", DECODER_HEADS, inputs=_NO_TYPES, layers_key="n_layer",
        positions_key="n_positions", learned_positions=True,
    ),
    "llama": Architecture(**_GQA_DECODER),  # Llama 2/3, TinyLlama, SmolLM
    "qwen2": Architecture(**_GQA_DECODER, window_from="layer"),
    "qwen3": Architecture(**_GQA_DECODER, window_from="layer"),  # head_dim set apart from hidden / heads
    "mistral": Architecture(**_GQA_DECODER, window_from="config"),  # sliding-window attention
    "phi3": Architecture(**_GQA_DECODER, window_from="config"),
    # Encoder-decoders: an encoder graph and a decoder with a key/value cache (self-attention grows, cross-attention
    # computed once); the keys below are the decoder's. T5 and mT5: relative positions, no position table.
    "t5": Architecture(
        "encoder-decoder", "t5", "num_heads", "d_model", SEQ2SEQ_HEADS, inputs=_NO_TYPES,
        layers_key="num_decoder_layers", positions_key="n_positions", head_dim_key="d_kv",
    ),
    "mt5": Architecture(
        "encoder-decoder", "t5", "num_heads", "d_model", SEQ2SEQ_HEADS, inputs=_NO_TYPES,
        layers_key="num_decoder_layers", positions_key="n_positions", head_dim_key="d_kv",
    ),
    "bart": Architecture(
        "encoder-decoder", "bart", "decoder_attention_heads", "d_model", SEQ2SEQ_HEADS, inputs=_NO_TYPES,
        layers_key="decoder_layers",
    ),
    "mbart": Architecture(
        "encoder-decoder", "bart", "decoder_attention_heads", "d_model", SEQ2SEQ_HEADS, inputs=_NO_TYPES,
        layers_key="decoder_layers",
    ),
    # Marian (opus-mt): BART's layout with sinusoidal positions; its tokenizer is converted from source.spm.
    "marian": Architecture(
        "encoder-decoder", "bart", "decoder_attention_heads", "d_model", SEQ2SEQ_HEADS, inputs=_NO_TYPES,
        layers_key="decoder_layers",
    ),
}  # fmt: skip


def read_config(folder: Path) -> dict[str, Any]:
    with open(folder / "config.json", encoding="utf-8") as f:
        config = json.load(f)
    if not isinstance(config, dict):
        raise ValueError(f"it holds a JSON {type(config).__name__}, not an object")
    return config


def input_names(config: dict[str, Any], tokenizer_inputs: list[str]) -> tuple[str, ...]:
    """The inputs the graphs take: what the architecture accepts and the tokenizer produces."""
    arch = ARCHITECTURES[config["model_type"]]
    names = set(tokenizer_inputs) | {"input_ids", "attention_mask"}
    if config.get("type_vocab_size", 1) == 0:  # e.g. DeBERTa-v3: token types are ignored
        names.discard("token_type_ids")
    return tuple(n for n in arch.inputs if n in names)


def cache_layout(config: dict[str, Any]) -> dict[str, int]:
    """A decoder's key/value cache: layers, key/value heads, head size, and the longest context (an encoder-decoder's
    decoder: its own layers and heads; T5 has no position table, so its tokenizer's 512)."""
    arch = ARCHITECTURES[config["model_type"]]
    heads = int(config[arch.heads_key])
    kv_heads = int(config.get(arch.kv_heads_key) or heads) if arch.kv_heads_key else heads
    head_dim = int(config.get(arch.head_dim_key or "head_dim") or int(config[arch.hidden_key]) // heads)
    return {
        # older T5 configs leave num_decoder_layers out: as many as the encoder's
        "num_layers": int(config.get(arch.layers_key) or config.get("num_layers") or config[arch.layers_key]),
        "num_kv_heads": kv_heads,
        "head_dim": head_dim,
        "max_positions": int(config.get(arch.positions_key, 2048)),
    }


def position_limit(config: dict[str, Any]) -> int:
    """Longest input the position embeddings allow."""
    arch = ARCHITECTURES[config["model_type"]]
    positions = int(config.get(arch.positions_key, 512))
    if ARCHITECTURES[config["model_type"]].positions_after_pad:
        positions -= int(config.get("pad_token_id", 1)) + 1
    return positions
