"""What the sequence-to-sequence tasks (text2text-generation, summarization, translation) share: an encoder graph
and a decoder with a key/value cache, in Optimum's three-file layout and names:

- encoder_model.onnx: input_ids, attention_mask -> last_hidden_state;
- decoder_model.onnx (the first step): input_ids, encoder_attention_mask, encoder_hidden_states -> logits,
  present.{i}.decoder.key|value (self-attention), present.{i}.encoder.key|value (cross-attention, computed here once);
- decoder_with_past_model.onnx (every later step): input_ids, encoder_attention_mask,
  past_key_values.{i}.decoder.key|value, past_key_values.{i}.encoder.key|value -> logits, present.{i}.decoder.key|value.

A task sets its pipeline, metric and the task_specific_params entry of the model's config it reads (T5's prefixes
and search settings), as transformers' pipelines do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from builder.tasks.architectures import cache_layout
from builder.tasks.base import Graph, ModelFacts, Output, Task, Workload, greedy_agreement

ENCODER, DECODER, WITH_PAST = "encoder_model", "decoder_model", "decoder_with_past_model"
INPUTS = [  # built-in inputs: export traces them, fidelity compares on them, greedy continuations start from them
    "George Washington was the first president of the United States.",
    "The quick brown fox jumps over the lazy dog.",
    "Café naïve résumé 🙂 — 日本語:",
    "Paris is the capital and largest city of France, and the river Seine runs through it from east to west.",
    "A",
    "Apple Inc. is headquartered in Cupertino, California.",
]


def past_names(layers: int) -> list[str]:
    return [
        f"past_key_values.{i}.{side}.{kv}"
        for i in range(layers)
        for side in ("decoder", "encoder")
        for kv in ("key", "value")
    ]


def decoder_start(config: dict[str, Any], generation: dict[str, Any]) -> int:
    """The token every decoder row starts from (transformers: the generation config's, else the model config's)."""
    for source in (generation, config):
        if source.get("decoder_start_token_id") is not None:
            return int(source["decoder_start_token_id"])
    raise ValueError("the model sets no decoder_start_token_id (generation_config.json or config.json)")


class Seq2SeqTask(Task):
    head = "AutoModelForSeq2SeqLM"
    optimum_class = "ORTModelForSeq2SeqLM"
    outputs = ()  # per model: graphs() names the cache outputs of its layers
    fields = {"text": "text", "target": "text"}
    quantization_methods = ("none", "dynamic", "int4")  # static QDQ calibration of a cache graph is not built

    def task_params_key(self, options: dict[str, Any]) -> str:
        """The key of the model config's task_specific_params this task reads (transformers' pipeline task name)."""
        return self.name

    # ------------------------------------------------------------------------------------------- graphs

    def graphs(self, config: dict[str, Any]) -> tuple[Graph, ...]:
        layers = cache_layout(config)["num_layers"]
        past = past_names(layers)
        present = [n.replace("past_key_values", "present") for n in past]
        own = [n for n in present if ".decoder." in n]
        encoder_axes = {0: "batch_size", 1: "encoder_sequence_length"}
        encoder = Graph(
            ENCODER,
            (Output("last_hidden_state", per_token=True),),
            inputs=("input_ids", "attention_mask"),
            axes={
                "input_ids": encoder_axes,
                "attention_mask": encoder_axes,
                "last_hidden_state": encoder_axes,
            },
        )

        def cache(
            name: str,
        ) -> Output:  # cross-attention positions are the encoder's; a decoder's own are real
            cross = ".encoder." in name
            return Output(name, False, cache=True, mask="encoder_attention_mask" if cross else None)

        def cache_axes(name: str, length: str) -> dict[int, str]:
            return {0: "batch_size", 2: "encoder_sequence_length" if ".encoder." in name else length}

        logits = Output("logits", per_token=True, logits=True, mask=None)
        step = {0: "batch_size", 1: "decoder_sequence_length"}
        first = Graph(
            DECODER,
            (logits, *(cache(n) for n in present)),
            inputs=("input_ids", "encoder_attention_mask", "encoder_hidden_states"),
            axes={
                "input_ids": step,
                "encoder_attention_mask": encoder_axes,
                "encoder_hidden_states": encoder_axes,
                "logits": step,
                **{n: cache_axes(n, "decoder_sequence_length") for n in present},
            },
        )
        later = Graph(
            WITH_PAST,
            (logits, *(cache(n) for n in own)),
            inputs=("input_ids", "encoder_attention_mask", *past),
            axes={
                "input_ids": step,
                "encoder_attention_mask": encoder_axes,
                "logits": step,
                **{n: cache_axes(n, "past_decoder_sequence_length") for n in past},
                **{n: cache_axes(n, "past_decoder_sequence_length + 1") for n in own},
            },
        )
        return encoder, first, later

    def runtime_options(self, options: dict[str, Any], folder: Path) -> dict[str, Any]:
        """The decoder's cache layout, its start token, and the task's own settings from the model's
        task_specific_params (T5: a prefix such as "summarize: ", search settings), as transformers' pipeline
        applies them over the generation config."""
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        saved = _read_json(folder / "generation_config.json") or {}
        params = dict((config.get("task_specific_params") or {}).get(self.task_params_key(options)) or {})
        prefix = params.pop("prefix", None)
        if prefix is None:
            prefix = config.get("prefix")
        return cache_layout(config) | {
            "decoder_start_token_id": decoder_start(config, saved),
            "prefix": prefix or "",
            "generation": params,
        }

    def torch_module(self, model: Any, facts: ModelFacts, options: dict[str, Any], graph: Graph) -> Any:
        from builder.tasks.torch_module import EncoderModule, Seq2SeqDecoderModule

        if graph.role == ENCODER:
            return EncoderModule(model)
        return Seq2SeqDecoderModule(model, cache_layout(facts.config)["num_layers"], graph.role == WITH_PAST)

    # ------------------------------------------------------------------------------------------- inputs

    def sample_batches(
        self, facts: ModelFacts, graph: Graph, batch_size: int = 4
    ) -> list[dict[str, np.ndarray]]:
        """Encoder: the built-in inputs, right-padded, in two batches (export traces the first). Decoders: the
        start token and one more (first step) or two tokens after a past of 3 (later steps), then one token (a trace
        of one token would fix that length), beside a right-padded encoder output of random values (what the decoder
        graphs compute from it is compared, not what it means)."""
        tok, layout = facts.tokenizer, cache_layout(facts.config)
        rng = np.random.default_rng(0)
        if graph.role == ENCODER:
            batches = []
            for chunk in (INPUTS[:batch_size], INPUTS[batch_size:] or INPUTS[:1]):
                enc = tok(list(chunk), padding=True, truncation=True, max_length=min(facts.max_length, 256),
                          return_tensors="np")  # fmt: skip
                batches.append({n: enc[n].astype(np.int64) for n in graph.input_names(facts)})
            return batches
        hidden_size = int(facts.config.get("d_model") or facts.config.get("hidden_size"))
        vocab = int(facts.config.get("vocab_size", 100))
        start = decoder_start(facts.config, _read_json(facts.folder / "generation_config.json") or {})
        batches = []
        for rows, length, ids_len in ((3, 7, 2), (2, 4, 1)):
            mask = np.ones((rows, length), dtype=np.int64)
            mask[-1, length - 2 :] = 0  # a padded encoder row
            feeds = {"encoder_attention_mask": mask}
            if graph.role == DECODER:
                feeds["input_ids"] = np.full((rows, ids_len), start, dtype=np.int64)
                if ids_len > 1:
                    feeds["input_ids"][:, 1:] = rng.integers(3, vocab, size=(rows, ids_len - 1))
                feeds["encoder_hidden_states"] = rng.normal(0, 1, (rows, length, hidden_size)).astype(
                    np.float32
                )
            else:
                feeds["input_ids"] = rng.integers(3, vocab, size=(rows, ids_len), dtype=np.int64)
                for name in past_names(layout["num_layers"]):
                    positions = length if ".encoder." in name else 3
                    shape = (rows, layout["num_kv_heads"], positions, layout["head_dim"])
                    feeds[name] = rng.normal(0, 1, shape).astype(np.float32)
            batches.append(feeds)
        return batches

    def fidelity_batches(
        self, facts: ModelFacts, graph: Graph, baseline: Any = None
    ) -> list[dict[str, np.ndarray]]:
        """The built-in inputs as the runtime runs them: encoded (right-padded); the first decoder step from the
        start token beside PyTorch's own encoder output; the next step from the token PyTorch chose, with the cache
        PyTorch's first step made. (Random encoder outputs, as export traces, leave logits without real margins.)"""
        from builder.tasks.torch_module import torch_outputs

        if baseline is None:
            return self.sample_batches(facts, graph)
        enc = facts.tokenizer(INPUTS, padding=True, truncation=True, max_length=min(facts.max_length, 256),
                              return_tensors="np")  # fmt: skip
        encoder = {
            "input_ids": enc["input_ids"].astype(np.int64),
            "attention_mask": enc["attention_mask"].astype(np.int64),
        }
        if graph.role == ENCODER:
            return [encoder]
        (hidden,) = torch_outputs(baseline[ENCODER], encoder, ("input_ids", "attention_mask"))
        start = decoder_start(facts.config, _read_json(facts.folder / "generation_config.json") or {})
        first = {
            "input_ids": np.full((len(INPUTS), 1), start, dtype=np.int64),
            "encoder_attention_mask": encoder["attention_mask"],
            "encoder_hidden_states": hidden,
        }
        if graph.role == DECODER:
            return [first]
        names = ("input_ids", "encoder_attention_mask", "encoder_hidden_states")
        logits, *present = torch_outputs(baseline[DECODER], first, names)
        past = past_names(cache_layout(facts.config)["num_layers"])
        return [
            {
                "input_ids": logits[:, -1].argmax(-1)[:, None].astype(np.int64),
                "encoder_attention_mask": encoder["attention_mask"],
                **dict(zip(past, present, strict=True)),
            }
        ]

    # ---------------------------------------------------------------------------------------- generation

    def generation_fidelity(self, bundle: Any, baseline: Any, bounds: Any) -> dict[str, Any]:
        """The built-in inputs' greedy continuations (bounds.greedy_tokens, eos ignored) through the runtime's
        loop on the bundle and on PyTorch: the share of tokens that agree up to the first divergence."""
        from builder.runtime.pipelines import PIPELINES

        ours, theirs = PIPELINES[self.pipeline](bundle), PIPELINES[self.pipeline](baseline)
        settings = {**ours.settings({"num_beams": 1}), "max_new_tokens": int(bounds.greedy_tokens)}
        got = ours.generate_ids(INPUTS, settings, ignore_eos=True)
        return greedy_agreement(got, theirs.generate_ids(INPUTS, settings, ignore_eos=True), bounds)

    def benchmark_workloads(
        self,
        engine: Any,
        baseline: Any,
        facts: ModelFacts,
        shape: tuple[int, int],
        settings: Any,
        device: str,
    ) -> list[Workload]:
        """generate: random input ids of `shape` encoded, then settings.new_tokens tokens (greedy, eos ignored), the
        bundle's runtime loop vs PyTorch's generate on the same input."""
        import torch

        from builder.runtime.pipelines import PIPELINES

        batch_size, seq_len = shape
        vocab = int(facts.config.get("vocab_size", 100))
        ids = np.random.default_rng(0).integers(3, vocab, size=(batch_size, seq_len), dtype=np.int64)
        loop = PIPELINES[self.pipeline](engine)
        n = int(settings.new_tokens)
        greedy = {**loop.settings({"num_beams": 1, "do_sample": False}), "max_new_tokens": n}
        rows = ids.tolist()
        model = None if baseline is None else baseline.model
        tensors = torch.from_numpy(ids).to(device)

        def pytorch() -> None:
            with torch.inference_mode():
                model.generate(tensors, attention_mask=torch.ones_like(tensors), max_new_tokens=n, min_new_tokens=n,
                               do_sample=False, num_beams=1)  # fmt: skip

        return [
            Workload("generate", lambda: loop.generate_ids(rows, greedy, ignore_eos=True, encoded=True),
                     model and pytorch, batch_size * n, shape),
        ]  # fmt: skip

    # --------------------------------------------------------------------------------------- evaluation

    def predict(self, pipeline: Any, examples: list[dict[str, Any]], ev: Any) -> list[str]:
        results = pipeline([e["text"] for e in examples], batch_size=ev.batch_size, truncation=True)
        return [r[pipeline.output_key] for r in results]

    def references(self, examples: list[dict[str, Any]]) -> list[str]:
        return [e["target"] for e in examples]


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
