"""text-generation: a causal language model as one decoder graph with a key/value cache, used for the prompt (an
empty past) and for every later token. Inputs input_ids, attention_mask, position_ids,
past_key_values.{i}.key|value; outputs logits, present.{i}.key|value; the dynamic axes Optimum and
transformers.js read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from builder.tasks.architectures import ARCHITECTURES, cache_layout
from builder.tasks.base import Graph, ModelFacts, Output, Task, Workload, greedy_agreement

PROMPTS = [
    "Hello, my name is",
    "The quick brown fox",
    "Café naïve résumé 🙂 — 日本語:",
    "Once upon a time, in a land far away, there lived a king who had three daughters. The youngest",
    "A",
    "def fibonacci(n):",
]


# onnxruntime-genai's model type per architecture, where it is not the model_type itself
GENAI_TYPES = {"gpt2": "llama"}


def fused_attention_problem(device: str) -> str | None:
    """Why the build's settings rule GroupQueryAttention out whatever the model (None: they don't). ONNX Runtime's
    CUDA kernel refuses the operator's attention_bias input (and takes float16 only), and the fused graph masks
    left-padded rows with that bias (builder.tasks.decoder_attention): on a GPU the graph would not run."""
    if device == "cuda":
        return (
            "ONNX Runtime's CUDA GroupQueryAttention refuses the attention bias the fused graph masks padding "
            "with, so a cuda bundle exports attention as transformers writes it"
        )
    return None


def past_names(layers: int) -> list[str]:
    return [f"past_key_values.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]


def left_padded(tok: Any, prompts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Prompts as one left-padded batch (input ids, attention mask), as batched generation runs them."""
    encoded = [tok(p, add_special_tokens=True)["input_ids"] for p in prompts]
    longest = max(len(e) for e in encoded)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = np.full((len(prompts), longest), pad, dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, e in enumerate(encoded):
        ids[i, longest - len(e) :], mask[i, longest - len(e) :] = e, 1
    return ids, mask


class TextGeneration(Task):
    name = "text-generation"
    summary = "text continuation with a key/value cache (greedy or sampled), chat templates, streaming"
    head = "AutoModelForCausalLM"
    pipeline = "text-generation"
    optimum_class = "ORTModelForCausalLM"
    outputs = ()  # per model: graphs() names the cache outputs of its layers
    fields = {"text": "text"}
    metric = "perplexity"
    gate_metric = "perplexity"
    higher_is_better = False
    quantization_methods = ("none", "dynamic", "int4")  # static QDQ calibration of a cache graph is not built

    def graphs(self, config: dict[str, Any]) -> tuple[Graph, ...]:
        layers = cache_layout(config)["num_layers"]
        past = past_names(layers)
        present = [n.replace("past_key_values", "present") for n in past]
        axes: dict[str, dict[int, str]] = {
            "input_ids": {0: "batch_size", 1: "sequence_length"},
            "attention_mask": {0: "batch_size", 1: "past_sequence_length + sequence_length"},
            "position_ids": {0: "batch_size", 1: "sequence_length"},
            "logits": {0: "batch_size", 1: "sequence_length"},
        }
        axes |= {n: {0: "batch_size", 2: "past_sequence_length"} for n in past}
        axes |= {n: {0: "batch_size", 2: "past_sequence_length + sequence_length"} for n in present}
        outputs = (
            Output("logits", per_token=True, logits=True),
            *(Output(n, False, cache=True) for n in present),
        )
        inputs = ("input_ids", "attention_mask", "position_ids", *past)
        return (Graph("model", outputs, inputs=inputs, axes=axes, logits_to_keep=True),)

    def runtime_options(self, options: dict[str, Any], folder: Path) -> dict[str, Any]:
        return cache_layout(json.loads((folder / "config.json").read_text(encoding="utf-8")))

    def companion_files(self, facts: ModelFacts, options: dict[str, Any], device: str) -> dict[str, Any]:
        """onnxruntime-genai's genai_config.json: `og.Model(bundle)` runs model.onnx with genai's own loop. The
        graph returns the whole cache each step (present = past + new), so genai must not share one buffer for
        past and present; the search defaults are the ones transformers takes from generation_config.json. A cuda
        bundle asks genai for its CUDA provider (without it genai runs the fp16 graph on the CPU)."""
        config, layout = facts.config, options
        saved = _read_json(facts.folder / "generation_config.json") or {}

        def setting(key: str, default: Any) -> Any:
            value = saved.get(key, config.get(key))
            return default if value is None else value

        eos = setting("eos_token_id", None)
        first_eos = eos[0] if isinstance(eos, list) and eos else eos
        pad = setting("pad_token_id", first_eos)
        arch = ARCHITECTURES[config["model_type"]]
        decoder = {
            "session_options": {
                "log_id": "onnxruntime-genai",
                "provider_options": [{"cuda": {}}] if device == "cuda" else [],
            },
            "filename": "model.onnx",
            "head_size": layout["head_dim"],
            "hidden_size": int(config[arch.hidden_key]),
            "inputs": {
                "input_ids": "input_ids",
                "attention_mask": "attention_mask",
                "position_ids": "position_ids",
                "past_key_names": "past_key_values.%d.key",
                "past_value_names": "past_key_values.%d.value",
            },
            "outputs": {
                "logits": "logits",
                "present_key_names": "present.%d.key",
                "present_value_names": "present.%d.value",
            },
            "num_attention_heads": int(config[arch.heads_key]),
            "num_hidden_layers": layout["num_layers"],
            "num_key_value_heads": layout["num_kv_heads"],
        }
        model = {
            "bos_token_id": setting("bos_token_id", first_eos),
            "context_length": facts.max_length,
            "decoder": decoder,
            "eos_token_id": eos,
            "pad_token_id": pad,
            # genai's GPT-2 model reads the old stacked past_i cache; its generic decoder reads this graph's
            "type": GENAI_TYPES.get(config["model_type"], config["model_type"]),
            "vocab_size": int(config["vocab_size"]),
        }
        search = {
            "diversity_penalty": 0.0,
            "do_sample": bool(setting("do_sample", False)),
            "early_stopping": True,
            "length_penalty": float(setting("length_penalty", 1.0)),
            "max_length": facts.max_length,
            "min_length": 0,
            "no_repeat_ngram_size": int(setting("no_repeat_ngram_size", 0)),
            "num_beams": int(setting("num_beams", 1)),
            "num_return_sequences": 1,
            "past_present_share_buffer": False,
            "repetition_penalty": float(setting("repetition_penalty", 1.0)),
            "temperature": float(setting("temperature", 1.0)),
            "top_k": int(setting("top_k", 50)),
            "top_p": float(setting("top_p", 1.0)),
        }
        return {"genai_config.json": {"model": model, "search": search}}

    def torch_module(self, model: Any, facts: ModelFacts, options: dict[str, Any], graph: Graph) -> Any:
        from builder.tasks.torch_module import DecoderModule

        return DecoderModule(model, cache_layout(facts.config)["num_layers"])

    def export_module(
        self, module: Any, attention: str, settings_problem: str | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """The fused module (builder.tasks.decoder_attention) unless export.attention=plain or, under auto, the
        model or the build's settings (`settings_problem`, fused_attention_problem) rule it out (the reason is
        recorded); export.attention=fused refuses what cannot be fused."""
        from builder.tasks.decoder_attention import FusedDecoderModule, unfused_reason

        if attention == "plain":
            return module, {"attention": "plain", "why": "export.attention=plain"}
        reason = settings_problem or unfused_reason(module.model)
        if reason is None:
            fused = FusedDecoderModule(module.model, module.num_layers).eval()
            return fused, {"attention": "GroupQueryAttention", "layers": module.num_layers}
        if attention == "fused":
            raise ValueError(
                f"export.attention=fused: the attention cannot be fused here ({reason}); use "
                "export.attention=auto or plain"
            )
        return module, {"attention": "plain", "why": reason}

    def reference_batch(self, batch: dict[str, np.ndarray], fused: bool) -> dict[str, np.ndarray]:
        """A fused graph's rotary positions are cache positions, padding included (builder.tasks.decoder_attention):
        PyTorch gets those as position ids, so a left-padded row's keys and a random past compare like for like.
        (Its scores are the same either way, up to rounding: rotary attention reads only the distance between
        positions. The greedy continuations check the runtime's loop end to end.)"""
        if not fused:
            return batch
        total, new = batch["attention_mask"].shape[1], batch["input_ids"].shape[1]
        positions = np.broadcast_to(np.arange(total - new, total), batch["input_ids"].shape)
        # a copy: torch warns of a read-only array (a one-row broadcast view stays one)
        return {**batch, "position_ids": np.array(positions, dtype=np.int64)}

    def check_batches(self, batch: dict[str, np.ndarray], fused: bool) -> list[dict[str, np.ndarray]]:
        """A fused graph runs several new tokens after a past one row at a time (builder.tasks.decoder_attention):
        such a batch is checked row by row."""
        after_past = batch["attention_mask"].shape[1] > batch["input_ids"].shape[1] > 1
        if not (fused and after_past):
            return super().check_batches(batch, fused)
        rows = range(batch["input_ids"].shape[0])
        return [self.reference_batch({n: v[i : i + 1] for n, v in batch.items()}, fused) for i in rows]

    def sample_batches(
        self, facts: ModelFacts, graph: Graph, batch_size: int = 4
    ) -> list[dict[str, np.ndarray]]:
        """Two tokens after a past of 3, one row's past partly padding (first: export traces it; a trace with an
        empty past or one token would fix shapes the other calls change); a left-padded batch of prompts with
        an empty past; one decode step after a past of 6."""
        layout = cache_layout(facts.config)
        rng = np.random.default_rng(0)
        ids, mask = left_padded(facts.tokenizer, PROMPTS[:batch_size])
        vocab = int(facts.config.get("vocab_size", 100))

        def batch(ids: np.ndarray, mask: np.ndarray, past_len: int) -> dict[str, np.ndarray]:
            n = ids.shape[0]
            shape = (n, layout["num_kv_heads"], past_len, layout["head_dim"])
            position = np.maximum(mask.cumsum(-1) - 1, 0)[:, -ids.shape[1] :]
            feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": position}
            feeds |= {
                name: rng.normal(0, 1, shape).astype(np.float32) for name in past_names(layout["num_layers"])
            }
            return feeds

        two = rng.integers(3, vocab, size=(2, 2), dtype=np.int64)
        two_mask = np.ones((2, 5), dtype=np.int64)
        two_mask[1, :2] = 0
        one = rng.integers(3, vocab, size=(3, 1), dtype=np.int64)
        return [batch(two, two_mask, 3), batch(ids, mask, 0), batch(one, np.ones((3, 7), dtype=np.int64), 6)]

    def fidelity_batches(
        self, facts: ModelFacts, graph: Graph, baseline: Any = None
    ) -> list[dict[str, np.ndarray]]:
        """The built-in prompts, left-padded, with an empty past: teacher-forced logits at every prompt position.
        (A random past, as export traces, gives logits of no real margin, so no real top-1 agreement; the cache
        path is checked with real caches by the greedy continuations.)"""
        layout = cache_layout(facts.config)
        batches = []
        for chunk in (PROMPTS[:3], PROMPTS[3:]):
            ids, mask = left_padded(facts.tokenizer, chunk)
            empty = np.zeros((len(chunk), layout["num_kv_heads"], 0, layout["head_dim"]), dtype=np.float32)
            feeds = {
                "input_ids": ids,
                "attention_mask": mask,
                "position_ids": np.maximum(mask.cumsum(-1) - 1, 0),
            }
            batches.append(feeds | {name: empty for name in past_names(layout["num_layers"])})
        return batches

    def benchmark_workloads(
        self,
        engine: Any,
        baseline: Any,
        facts: ModelFacts,
        shape: tuple[int, int],
        settings: Any,
        device: str,
    ) -> list[Workload]:
        """Time to first token (the prompt, one token out) and decode (settings.new_tokens tokens, eos ignored),
        the bundle's runtime loop vs PyTorch's generate on the same random prompt."""
        import torch

        from builder.runtime.pipelines import PIPELINES

        batch_size, seq_len = shape
        vocab = int(facts.config.get("vocab_size", 100))
        prompt = np.random.default_rng(0).integers(3, vocab, size=(batch_size, seq_len), dtype=np.int64)
        loop = PIPELINES[self.pipeline](engine)
        greedy = {**loop.settings({"do_sample": False}), "max_new_tokens": 1}
        rows = prompt.tolist()
        model = None if baseline is None else baseline.model
        tensors = torch.from_numpy(prompt).to(device)

        def pytorch(n: int) -> Any:
            def call() -> None:
                with torch.inference_mode():
                    model.generate(
                        tensors,
                        attention_mask=torch.ones_like(tensors),
                        max_new_tokens=n,
                        min_new_tokens=n,
                        do_sample=False,
                        pad_token_id=0,
                    )

            return call

        n = int(settings.new_tokens)
        decode = {**greedy, "max_new_tokens": n}
        return [
            Workload("prefill", lambda: loop.generate_ids(rows, greedy, ignore_eos=True), model and pytorch(1),
                     batch_size, shape),
            Workload("decode", lambda: loop.generate_ids(rows, decode, ignore_eos=True), model and pytorch(n),
                     batch_size * n, shape),
        ]  # fmt: skip

    def generation_fidelity(self, bundle: Any, baseline: Any, bounds: Any) -> dict[str, Any]:
        """The built-in prompts' greedy continuations (bounds.greedy_tokens, eos ignored) through the runtime's
        loop on the bundle and on PyTorch: the share of tokens that agree up to the first divergence."""
        from builder.runtime.pipelines import PIPELINES

        ours, theirs = PIPELINES[self.pipeline](bundle), PIPELINES[self.pipeline](baseline)
        settings = {**ours.settings({"do_sample": False}), "max_new_tokens": int(bounds.greedy_tokens)}
        rows = [ours.tok.base.encode(p).ids or [ours.pad] for p in PROMPTS]
        got = ours.generate_ids(rows, settings, ignore_eos=True)
        return greedy_agreement(got, theirs.generate_ids(rows, settings, ignore_eos=True), bounds)

    def evaluate(
        self, pipeline: Any, examples: list[dict[str, Any]], ev: Any, chunks: Any
    ) -> dict[str, float]:
        from builder.metrics import load_metric

        nll, counts = [], []
        for chunk in chunks(examples):
            scored = pipeline.score([e["text"] for e in chunk], batch_size=ev.batch_size)
            nll += [s for s, _ in scored]
            counts += [n for _, n in scored]
        return load_metric(self.metric).compute(predictions=nll, references=counts)


TASK = TextGeneration()


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
