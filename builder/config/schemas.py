"""Typed schemas of a build config. Hydra checks the YAML files and command-line values against them at
compose time (every node is a struct: unknown keys and wrong types fail there).

The task node's schema is the chosen task's own: `name` plus the task's Options (builder/tasks), stored as
`schema/task/<name>` and named by each conf/task/*.yaml. The evaluation column map has one key per field that
any task reads."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from builder.tasks import TASKS


@dataclass
class ModelConfig:
    name: str | None = None  # short name for the bundle folder; derived from source when null
    source: str = MISSING  # Hub id, local folder, or pkg://<package>/<folder> (a model shipped in a package)
    revision: str | None = None  # Hub commit to pin; null = main, resolved to its commit sha
    base_model: str | None = None  # Hub id for the model card when the source is a copy
    trust_remote_code: bool = False


def task_schema(name: str) -> type:
    """The task node of `task=<name>`: its name and the task's own settings."""
    options = TASKS[name].Options
    types = typing.get_type_hints(options)
    fields = [("name", str, dataclasses.field(default=MISSING))]
    fields += [
        (f.name, types[f.name], dataclasses.field(default=f.default)) for f in dataclasses.fields(options)
    ]
    return dataclasses.make_dataclass(f"TaskConfig_{name.replace('-', '_')}", fields)


TASK_SCHEMAS: dict[str, type] = {name: task_schema(name) for name in TASKS}


@dataclass
class QuantizationPreset:
    activation_type: str = "uint8"
    weight_type: str = "int8"
    per_channel: bool = True
    reduce_range: bool = False
    # int4 MatMulNBits: what it computes in (0 as the input type, 1 fp32, 2 fp16, 3 bf16, 4 int8)
    int4_accuracy_level: int = 4


@dataclass
class HardwareConfig:
    name: str = MISSING
    device: str = "cpu"
    cpu_flags: list[str] = field(default_factory=list)  # the host must have all of these
    priority: int = 0  # hardware=auto picks the highest-priority profile the host can run
    providers: list[str] = field(default_factory=lambda: ["CPUExecutionProvider"])
    intra_op_threads: int = 0
    # graph optimizations ONNX Runtime applies when it loads the model: disable | basic | extended | all
    session_optimization: str = "all"
    # CPU sessions: the weights collapsed into transparent huge pages after loading (Linux; runtime/huge_pages.py)
    huge_pages: bool = True
    quantization: QuantizationPreset = field(default_factory=QuantizationPreset)


@dataclass
class OptimizationConfig:
    level: str = MISSING
    ort_level: int = 0  # ONNX Runtime graph optimizations saved into the graph: 0 none, 1 basic (portable)
    fuse_transformers: bool = False
    gelu_approximation: bool = False
    fp16: bool = False
    fuse_embed_layer_norm: bool = False  # off: EmbedLayerNormalization blocks int8 quantization of embeddings


@dataclass
class CalibrationConfig:
    """Static quantization: activation ranges measured on real inputs."""

    dataset: str | None = None  # null = evaluation.dataset (the shipped set by default); same formats
    n: int = 128  # examples
    seed: int = 1
    method: str = "minmax"  # minmax | entropy | percentile
    percentile: float = 99.999
    num_bins: int = 2048  # histogram bins (entropy, percentile)
    num_quantized_bins: int = (
        255  # entropy: candidate thresholds; ONNX Runtime's default (128) leaves just one
    )
    batch_size: int = 8
    chunk_batches: int = 4  # batches per collection pass: bounds the memory held for intermediate outputs


@dataclass
class Int4Config:
    """int4 weight-only quantization (MatMulNBits): each weight in blocks along its input axis."""

    block_size: int = 32  # weights per scale: a power of two, 16 to 256
    symmetric: bool = True  # no zero points
    accuracy_level: int | None = None  # null = the hardware profile's int4_accuracy_level


@dataclass
class QuantizationConfig:
    method: str = MISSING
    op_types: list[str] = field(default_factory=lambda: ["MatMul", "Attention"])
    exclude_op_types: list[str] = field(default_factory=list)
    exclude_nodes: list[str] = field(default_factory=list)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    int4: Int4Config = field(default_factory=Int4Config)
    # null = take the hardware profile's preset
    activation_type: str | None = None
    weight_type: str | None = None
    per_channel: bool | None = None
    reduce_range: bool | None = None


@dataclass
class BenchmarkConfig:
    enabled: bool = True
    batch_sizes: list[int] = field(default_factory=lambda: [1])
    sequence_lengths: list[int] = field(default_factory=lambda: [128])
    warmup: int = 5  # untimed calls of each, first
    iterations: int = 50  # timed calls of the bundle
    baseline: bool = True
    # Timed calls of the PyTorch baseline: it is several times slower, and its median only anchors the
    # speed-up, so fewer calls keep the build quick.
    baseline_iterations: int = 20
    rounds: int = 5  # the timed calls come in this many alternating blocks per side
    # Slow calls get fewer timed calls: a side's count is cut so that its timed calls of a workload take about this
    # many seconds (never below 5 calls), and its warm-up stops after the second call past a fifth of it. Encoder
    # calls of milliseconds keep their full counts; a generation of 128 tokens does not. null: full counts always.
    max_seconds: float | None = 30.0
    new_tokens: int = (
        128  # text generation: tokens each timed decode call generates (prompt: sequence_lengths)
    )
    # Time with the host to ourselves: wait for other builds on this host (parallel sweep jobs) to pause their
    # work, and make them wait meanwhile. false: time regardless (the numbers then include their load).
    exclusive: bool = True


@dataclass
class GateConfig:
    # Fail the build when the bundle's task metric is below (1 - max_relative_drop) x the baseline's.
    # e.g. 0.01 = keep at least 99%; null = no gate.
    max_relative_drop: float | None = None


# Dataset column for each task field; null = a column of the field's own name.
ColumnsConfig = dataclasses.make_dataclass(
    "ColumnsConfig",
    [
        (f, typing.Optional[str], dataclasses.field(default=None))  # noqa: UP045 (a runtime type for OmegaConf)
        for f in dict.fromkeys(f for t in TASKS.values() for f in (*t.fields, *t.optional_fields))
    ],
)


@dataclass
class EvaluationConfig:
    enabled: bool = True
    dataset: str = (
        "builtin"  # builtin (shipped, one per task) | Hub dataset id | local .json/.jsonl/.csv/.parquet
    )
    config_name: str | None = None  # Hub dataset configuration
    revision: str | None = None  # Hub dataset commit to pin
    split: str = "validation"
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)  # task field -> dataset column
    max_samples: int | None = 500
    seed: int = 0  # which max_samples examples are drawn
    batch_size: int = 32
    handle_impossible_answer: bool = True  # question-answering: allow "no answer" (SQuAD v2)
    gate: GateConfig = field(default_factory=GateConfig)


@dataclass
class ExportConfig:
    opset: int = 17
    # auto: a graph's weights go to <file>_data (model.onnx_data) once it passes protobuf's 2 GB limit;
    # always: every graph stores them there (the large-model path, tried on a small model)
    external_data: str = "auto"
    # Decoder attention: auto = ONNX Runtime's fused GroupQueryAttention where the model allows it, else the
    # plain export; fused = that or an error; plain = transformers' attention as traced (no fused operator)
    attention: str = "auto"
    atol: float = 1e-4
    rtol: float = 1e-3


@dataclass
class FidelityConfig:
    min_cosine: float = 0.99
    min_agreement: float = 0.9
    max_abs_diff: float | None = None
    # text generation: greedy continuations of the built-in prompts, bundle vs PyTorch, first greedy_tokens tokens
    greedy_tokens: int = 16
    min_greedy_match: float | None = None  # share of those tokens that must agree (null: measured, not gated)


@dataclass
class BuildConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    task: Any = MISSING  # the chosen task's schema (TASK_SCHEMAS), brought in by conf/task/<name>.yaml
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    optimization: OptimizationConfig = field(default_factory=OptimizationConfig)
    quantization: QuantizationConfig = field(default_factory=QuantizationConfig)
    benchmark: BenchmarkConfig = field(default_factory=BenchmarkConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    fidelity: FidelityConfig = field(default_factory=FidelityConfig)
    output_dir: str = "artifacts"
    cache_dir: str | None = None  # stage cache shared by builds and sweep jobs; null = no cache


def register_schemas() -> None:
    store = ConfigStore.instance()
    store.store(name="build_schema", node=BuildConfig)
    for name, schema in TASK_SCHEMAS.items():
        store.store(group="schema/task", name=name, node=schema)


register_schemas()
