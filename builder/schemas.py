"""Typed schemas of a build config. Hydra checks the YAML files and command-line values against them at
compose time (every node is a struct: unknown keys and wrong types fail there)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class ModelConfig:
    name: str | None = None  # short name for the bundle folder; derived from source when null
    source: str = MISSING  # Hub id, local folder, or pkg://<package>/<folder> (a model shipped in a package)
    revision: str | None = None  # Hub commit to pin; null = main, resolved to its commit sha
    base_model: str | None = None  # Hub id for the model card when the source is a copy
    trust_remote_code: bool = False


@dataclass
class TaskConfig:
    name: str = MISSING
    pooling: str = "auto"  # feature-extraction only
    normalize: bool = True  # feature-extraction only


@dataclass
class QuantizationPreset:
    activation_type: str = "uint8"
    weight_type: str = "int8"
    per_channel: bool = True
    reduce_range: bool = False


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
class QuantizationConfig:
    method: str = MISSING
    op_types: list[str] = field(default_factory=lambda: ["MatMul", "Attention"])
    exclude_op_types: list[str] = field(default_factory=list)
    exclude_nodes: list[str] = field(default_factory=list)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
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
    # Time with the host to ourselves: wait for other builds on this host (parallel sweep jobs) to pause their
    # work, and make them wait meanwhile. false: time regardless (the numbers then include their load).
    exclusive: bool = True


@dataclass
class GateConfig:
    # Fail the build when the bundle's task metric is below (1 - max_relative_drop) x the baseline's.
    # e.g. 0.01 = keep at least 99%; null = no gate.
    max_relative_drop: float | None = None


@dataclass
class ColumnsConfig:
    """Dataset column for each task field; null = a column of the field's own name."""

    question: str | None = None
    context: str | None = None
    answers: str | None = None
    text: str | None = None
    text_pair: str | None = None
    label: str | None = None
    tokens: str | None = None
    tags: str | None = None
    sentence1: str | None = None
    sentence2: str | None = None
    score: str | None = None


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
    atol: float = 1e-4
    rtol: float = 1e-3


@dataclass
class FidelityConfig:
    min_cosine: float = 0.99
    min_agreement: float = 0.9
    max_abs_diff: float | None = None


@dataclass
class BuildConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
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
    ConfigStore.instance().store(name="build_schema", node=BuildConfig)


register_schemas()
