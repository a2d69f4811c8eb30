"""What a task declares: the build side of a task. Its runtime pipeline is one torch-free module in
builder/runtime/pipelines, named here by `pipeline`.

A task module defines one Task subclass and the registry (builder/tasks/__init__.py) lists an instance of it.
Nothing here imports torch or transformers at import time: config validation, the CLI and the tests read the
registry, and methods that need PyTorch import it themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from builder.tasks.inputs import SENTENCES


@dataclass(frozen=True)
class Output:
    name: str
    per_token: bool  # one row per token: a dynamic sequence axis, compared on unpadded positions only
    logits: bool = False  # scores over classes: fidelity also counts argmax agreement
    cache: bool = False  # a key/value cache [batch, heads, positions, dim]: compared on its real positions
    # The input whose 1s mark this output's real positions (a cache's; a per-token output's last ones, as a decoder's
    # mask also covers its past); None: every position is real (a sequence-to-sequence decoder's own tokens)
    mask: str | None = "attention_mask"


@dataclass(frozen=True)
class Graph:
    """One ONNX graph of a bundle. `role` names it in the manifest (runtime.graphs) and in the stage cache.
    `inputs` None: the model's text inputs (ModelFacts.input_names); `axes` None: batch and sequence axes on every
    input and per-token output."""

    role: str
    outputs: tuple[Output, ...]
    inputs: tuple[str, ...] | None = None
    axes: Mapping[str, Mapping[int, str]] | None = None
    # export adds an optional `logits_to_keep` input (builder.make.logits_to_keep): the last positions' logits only
    logits_to_keep: bool = False

    @property
    def file(self) -> str:
        return f"{self.role}.onnx"

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    def input_names(self, facts: ModelFacts) -> tuple[str, ...]:
        return self.inputs if self.inputs is not None else facts.input_names

    def dynamic_axes(self, inputs: Sequence[str]) -> dict[str, dict[int, str]]:
        if self.axes is not None:
            return {name: dict(axes) for name, axes in self.axes.items()}
        axes: dict[str, dict[int, str]] = {n: {0: "batch_size", 1: "sequence_length"} for n in inputs}
        for o in self.outputs:
            axes[o.name] = {0: "batch_size", 1: "sequence_length"} if o.per_token else {0: "batch_size"}
        return axes


@dataclass(frozen=True)
class ModelFacts:
    """What the build knows of the source model, as the task's methods read it."""

    folder: Path
    config: dict[str, Any]  # config.json
    tokenizer: Any  # the transformers fast tokenizer
    input_names: tuple[str, ...]  # what the graphs take, in order
    max_length: int  # longest input, with the task's own limit applied


@dataclass
class Workload:
    """What the benchmark times, one call of each side, interleaved: `items` is what a call yields (examples,
    or generated tokens), so throughput is items per second. `shape` keys the baseline's warm-up memo."""

    name: str  # "forward"; text generation: "prefill" (time to first token), "decode"
    bundle: Callable[[], Any]
    pytorch: Callable[[], Any] | None
    items: int
    shape: tuple


@dataclass
class NoOptions:
    """A task without settings of its own (only `task.name`)."""


class Task:
    name: ClassVar[str]
    summary: ClassVar[str]  # one line for `builder tasks`
    head: ClassVar[str]  # transformers Auto class that loads the model with this task's head
    pipeline: ClassVar[str]  # runtime pipeline (builder.runtime.pipelines.PIPELINES)
    # Optimum's class that loads the bundle into a transformers pipeline of the same name (tests/test_peers.py)
    optimum_class: ClassVar[str | None] = None
    # The outputs of the single graph `model`; a task of several graphs overrides graphs().
    outputs: ClassVar[tuple[Output, ...]]
    # Built-in inputs are single texts (None) or pairs truncated with this strategy ("only_first"/"only_second").
    pair_truncation: ClassVar[str | None] = None
    # Evaluation: the dataset fields (field -> kind, see builder/make/eval_data.py), the metric module, the gated key.
    fields: ClassVar[dict[str, str]]
    optional_fields: ClassVar[dict[str, str]] = {}
    metric: ClassVar[str]
    gate_metric: ClassVar[str]
    higher_is_better: ClassVar[bool] = True  # of the gated metric (perplexity: lower)
    # task.* settings beyond `name`: a dataclass, registered as this task's config schema.
    Options: ClassVar[type] = NoOptions
    quantization_methods: ClassVar[tuple[str, ...]] = ("none", "dynamic", "static", "int4")

    # ------------------------------------------------------------------------------------------ checks

    def option_problems(self, options: dict[str, Any]) -> list[str]:
        """Values of task.* settings that are not allowed (types are checked by the schema)."""
        return []

    def model_problems(
        self, model_config: dict[str, Any], source: str, folder: Path, options: dict[str, Any]
    ) -> list[str]:
        """What this model lacks for the task (checked with the config, before any work); `options` are the
        task.* settings as given."""
        return []

    # ------------------------------------------------------------------------------------------- graphs

    def graphs(self, config: dict[str, Any]) -> tuple[Graph, ...]:
        """The task's graphs for a model (its config.json)."""
        return (Graph("model", self.outputs),)

    def max_length(self, folder: Path, model_limit: int) -> int:
        """The longest input, from the model's own limit (positions, tokenizer)."""
        return model_limit

    def runtime_options(self, options: dict[str, Any], folder: Path) -> dict[str, Any]:
        """What the runtime pipeline reads from the manifest (runtime.options)."""
        return dict(options)

    def prepare_tokenizer(self, tokenizer: Any, options: dict[str, Any]) -> None:
        """Set what the task changes in the transformers tokenizer before the bundle's copy is saved (translation:
        mBART's source language, whose code its special tokens carry); `options` are the task.* settings."""

    def companion_files(self, facts: ModelFacts, options: dict[str, Any], device: str) -> dict[str, Any]:
        """JSON files (path in the bundle -> content) that let other libraries load the bundle the way they load
        the source model; `options` are the runtime options (resolved), `device` where the bundle runs (cpu, cuda)."""
        return {}

    def forward(self, outputs: Any, inputs: dict[str, Any], options: dict[str, Any], graph: Graph) -> tuple:
        """The graph's outputs from the transformers model's outputs (PyTorch tensors); `options` are the
        runtime options (resolved)."""
        return tuple(outputs[name] for name in graph.output_names)

    def torch_module(self, model: Any, facts: ModelFacts, options: dict[str, Any], graph: Graph) -> Any:
        """The transformers model as a module with the graph's positional inputs and outputs."""
        from builder.tasks.torch_module import GraphModule

        resolved = self.runtime_options(options, facts.folder)
        return GraphModule(
            model, graph.input_names(facts), lambda out, kw: self.forward(out, kw, resolved, graph)
        )

    def export_module(
        self, module: Any, attention: str, settings_problem: str | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """What export traces for a graph's module (torch_module()), and how its attention was written (recorded
        in metrics). `attention`: export.attention; `settings_problem`: why the build's settings rule out a fused
        attention operator, if they do. Encoders trace the module as it is: optimization fuses their attention."""
        return module, {}

    def reference_batch(self, batch: dict[str, np.ndarray], fused: bool) -> dict[str, np.ndarray]:
        """A batch as export's check and fidelity feed it to the graph and to PyTorch; `fused`: the graph has a
        decoder attention operator (GroupQueryAttention)."""
        return batch

    def check_batches(self, batch: dict[str, np.ndarray], fused: bool) -> list[dict[str, np.ndarray]]:
        """What export's check runs for one sample batch (the trace ran it whole): reference_batch's."""
        return [self.reference_batch(batch, fused)]

    # ------------------------------------------------------------------------------------------- inputs

    def sample_items(self) -> list[Any]:
        """Built-in inputs for export checks and fidelity: texts, or (first, second) pairs."""
        return list(SENTENCES)

    def sample_batches(
        self, facts: ModelFacts, graph: Graph, batch_size: int = 4
    ) -> list[dict[str, np.ndarray]]:
        """Built-in inputs in padded batches: right padding, and one batch with left padding. Export traces the
        first."""
        tok, items = facts.tokenizer, self.sample_items()
        max_length = min(facts.max_length, 256)
        batches = []
        try:
            for side, start in (("right", 0), ("right", batch_size), ("right", 2 * batch_size), ("left", 1)):
                chunk = items[start : start + batch_size] or items[:batch_size]
                tok.padding_side = side
                common = dict(padding=True, max_length=max_length, return_tensors="np")
                if self.pair_truncation:
                    first, second = zip(*chunk, strict=True)
                    enc = tok(list(first), list(second), truncation=self.pair_truncation, **common)
                else:
                    enc = tok(list(chunk), truncation=True, **common)
                batches.append({name: enc[name].astype(np.int64) for name in graph.input_names(facts)})
        finally:
            tok.padding_side = "right"
        return batches

    def fidelity_batches(
        self, facts: ModelFacts, graph: Graph, baseline: Any = None
    ) -> list[dict[str, np.ndarray]]:
        """What fidelity compares the built graph and PyTorch on (the built-in inputs). `baseline`: the PyTorch
        modules by graph role, for batches made of the model's own outputs (a decoder reads its encoder's)."""
        return self.sample_batches(facts, graph)

    def calibration_encodings(
        self, examples: list[dict[str, Any]], tokenizer: Any, options: dict[str, Any]
    ) -> list:
        """Encodings of evaluation-format examples for static quantization, as the runtime encodes them."""
        raise NotImplementedError

    def benchmark_workloads(
        self,
        engine: Any,
        baseline: Any,
        facts: ModelFacts,
        shape: tuple[int, int],
        settings: Any,
        device: str,
    ) -> list[Workload]:
        """One forward of random token ids of `shape` (batch, tokens) through the `model` graph (the bundle's
        engine) and through PyTorch (baseline None: not timed); `settings` is the benchmark config."""
        import torch

        from builder.tasks.torch_module import torch_call

        batch_size, seq_len = shape
        graph = self.graphs(facts.config)[0]
        vocab = int(facts.config.get("vocab_size", 1000))
        rng = np.random.default_rng(0)
        feeds = {
            "input_ids": rng.integers(min(5, vocab - 1), vocab, size=(batch_size, seq_len), dtype=np.int64),
            "attention_mask": np.ones((batch_size, seq_len), dtype=np.int64),
            "token_type_ids": np.zeros((batch_size, seq_len), dtype=np.int64),
        }
        session = engine.sessions["model"]
        taken = {i.name: feeds[i.name] for i in session.get_inputs()}
        tensors = tuple(torch.from_numpy(feeds[n]) for n in graph.input_names(facts))
        return [
            Workload(
                "forward",
                lambda: session.run(None, taken),
                None if baseline is None else lambda: torch_call(baseline, tensors, device),
                batch_size,
                (batch_size, seq_len),
            )
        ]

    def generation_fidelity(self, bundle: Any, baseline: Any, bounds: Any) -> dict[str, Any] | None:
        """Checks beyond comparing graph outputs (text generation: greedy continuations), on the bundle's and the
        PyTorch model's engines; None when the task has none. Returns a record with `failures`."""
        return None

    # --------------------------------------------------------------------------------------- evaluation

    def check_examples(self, pipeline: Any, examples: list[dict[str, Any]]) -> None:
        """Refuse examples the model cannot be scored on (raise StageError)."""

    def predict(self, pipeline: Any, examples: list[dict[str, Any]], ev: Any) -> list[Any]:
        raise NotImplementedError

    def references(self, examples: list[dict[str, Any]]) -> list[Any]:
        raise NotImplementedError

    def evaluate(
        self, pipeline: Any, examples: list[dict[str, Any]], ev: Any, chunks: Callable[[list], Any]
    ) -> dict[str, float]:
        """The task metric of a pipeline on the examples; `chunks` splits them for a progress bar."""
        from builder.metrics import load_metric

        self.check_examples(pipeline, examples)
        predictions: list[Any] = []
        for chunk in chunks(examples):
            predictions += self.predict(pipeline, chunk, ev)
        return load_metric(self.metric).compute(predictions=predictions, references=self.references(examples))


def greedy_agreement(got: list[list[int]], want: list[list[int]], bounds: Any) -> dict[str, Any]:
    """Generation fidelity: per row, the share of the bundle's greedy tokens (`got`) that agree with PyTorch's
    (`want`) up to the first divergence; `bounds` is the fidelity config (greedy_tokens, min_greedy_match)."""
    agreed = []
    for a, b in zip(got, want, strict=True):
        same = next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(b))
        agreed.append(same / max(len(b), 1))
    record = {
        "prompts": len(want),
        "tokens": int(bounds.greedy_tokens),
        "greedy_match": float(np.mean(agreed)),
        "exact": float(np.mean([a == 1.0 for a in agreed])),
        "failures": [],
    }
    if bounds.min_greedy_match is not None and record["greedy_match"] < bounds.min_greedy_match:
        record["failures"].append(
            f"greedy match {differs(record['greedy_match'], bounds.min_greedy_match)} < "
            f"fidelity.min_greedy_match={bounds.min_greedy_match}"
        )
    return record


def differs(value: float, bound: float) -> str:
    """The value with as many digits as it takes to look different from the bound it broke."""
    for digits in range(3, 12):
        text = f"{value:.{digits}f}"
        if float(text) != float(f"{bound:.{digits}f}"):
            return text
    return repr(value)
