"""Validation that reports every problem before any work starts. Hydra checks types and unknown keys of the
YAML files at compose time (the schemas make every node a struct); this adds what types cannot say: allowed
values, keys added with `+key=`, unsupported combinations, a missing model folder, an unwritable output folder."""

from __future__ import annotations

import dataclasses
import tempfile
import typing
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from builder.config.schemas import TASK_SCHEMAS, BuildConfig
from builder.errors import ConfigError
from builder.tasks import TASKS
from builder.tasks.text_generation import fused_attention_problem

OPTIMIZATION_LEVELS = ("none", "O1", "O2", "O3", "O4")
QUANTIZATION_METHODS = ("none", "dynamic", "static", "int4")
INT4_OP_TYPES = ("MatMul", "Gather")  # MatMulNBits, GatherBlockQuantized
INT4_ACCURACY_LEVELS = (0, 1, 2, 3, 4)
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
DEVICES = ("cpu", "cuda")
EXTERNAL_DATA = ("auto", "always")
ATTENTION = ("auto", "fused", "plain")
INT8_TYPES = ("int8", "uint8")
MIN_GATE_EXAMPLES = 20  # a quality gate over fewer examples than this is refused


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError listing every problem found, or return None."""
    problems: list[str] = []
    problems += [
        f"{key}: no value (`???`). Set it, e.g. {key}=..." for key in sorted(OmegaConf.missing_keys(cfg))
    ]
    problems += _unknown_keys(cfg, BuildConfig, "")
    if problems:  # the checks below read values that must exist
        raise ConfigError(problems)
    problems += _value_problems(cfg)
    problems += combination_problems(cfg)
    problems += _output_dir_problems(cfg.output_dir)
    if cfg.cache_dir:
        problems += [p.replace("output_dir", "cache_dir") for p in _output_dir_problems(cfg.cache_dir)]
    from builder.source import source_problems

    problems += source_problems(cfg)
    if problems:
        raise ConfigError(problems)


def _choice(problems: list[str], key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        problems.append(f"{key}={value!r} is not one of: {', '.join(allowed)}")


def _value_problems(cfg: DictConfig) -> list[str]:
    p: list[str] = []
    _choice(p, "task.name", cfg.task.name, tuple(TASKS))
    if cfg.task.name in TASKS:
        task = TASKS[cfg.task.name]
        options = {k: v for k, v in OmegaConf.to_container(cfg.task).items() if k != "name"}
        p += task.option_problems(options)
        if cfg.quantization.method not in task.quantization_methods:
            p.append(
                f"quantization={cfg.quantization.method} with task={task.name}: not built for this task "
                f"(it has: {', '.join(task.quantization_methods)})"
            )
    _choice(p, "optimization.level", cfg.optimization.level, OPTIMIZATION_LEVELS)
    _choice(p, "quantization.method", cfg.quantization.method, QUANTIZATION_METHODS)
    _choice(p, "hardware.device", cfg.hardware.device, DEVICES)
    if cfg.optimization.ort_level not in (0, 1):
        p.append(
            f"optimization.ort_level={cfg.optimization.ort_level}: only 0 or 1 (basic) is saved into "
            "bundles; higher levels are device-specific and applied by the session at load time"
        )
    for key in ("activation_type", "weight_type"):
        _choice(p, f"hardware.quantization.{key}", cfg.hardware.quantization[key], INT8_TYPES)
        if cfg.quantization[key] is not None:
            _choice(p, f"quantization.{key}", cfg.quantization[key], INT8_TYPES)
    p += _int4_problems(cfg)
    cal = cfg.quantization.calibration
    _choice(p, "quantization.calibration.method", cal.method, CALIBRATION_METHODS)
    if cal.n < 1 or cal.batch_size < 1 or cal.chunk_batches < 1:
        p.append("quantization.calibration.n, .batch_size and .chunk_batches must be >= 1")
    if not 0 < cal.percentile <= 100:
        p.append(f"quantization.calibration.percentile={cal.percentile}: between 0 and 100")
    from builder.runtime.session import SESSION_OPTIMIZATIONS

    _choice(
        p, "hardware.session_optimization", cfg.hardware.session_optimization, tuple(SESSION_OPTIMIZATIONS)
    )
    if cfg.hardware.intra_op_threads < 0:
        p.append(f"hardware.intra_op_threads={cfg.hardware.intra_op_threads}: use 0 (default) or more")
    if not 14 <= cfg.export.opset <= 21:
        p.append(f"export.opset={cfg.export.opset}: use an ONNX opset between 14 and 21")
    _choice(p, "export.external_data", cfg.export.external_data, EXTERNAL_DATA)
    _choice(p, "export.attention", cfg.export.attention, ATTENTION)
    b = cfg.benchmark
    for key in ("batch_sizes", "sequence_lengths"):
        if not b[key] or any(v < 1 for v in b[key]):
            p.append(f"benchmark.{key}={list(b[key])}: give one or more positive integers")
    if b.new_tokens < 1:
        p.append(f"benchmark.new_tokens={b.new_tokens}: give a positive number of tokens")
    if b.iterations < 1 or b.baseline_iterations < 1 or b.rounds < 1 or b.warmup < 0:
        p.append(
            f"benchmark.iterations={b.iterations}, benchmark.baseline_iterations={b.baseline_iterations}, "
            f"benchmark.rounds={b.rounds}, benchmark.warmup={b.warmup}: iterations and rounds must be >= 1, "
            "the warm-up >= 0"
        )
    if b.max_seconds is not None and b.max_seconds <= 0:
        p.append(
            f"benchmark.max_seconds={b.max_seconds}: give a positive number of seconds, or null for the full "
            "iteration counts"
        )
    ev = cfg.evaluation
    if ev.batch_size < 1:
        p.append(f"evaluation.batch_size={ev.batch_size}: give a positive number of examples per batch")
    if ev.max_samples is not None and ev.max_samples < 1:
        p.append(f"evaluation.max_samples={ev.max_samples}: give a positive number, or null for all")
    drop = ev.gate.max_relative_drop
    if drop is not None and not -1 < drop < 1:
        p.append(
            f"evaluation.gate.max_relative_drop={drop}: a fraction, e.g. 0.01 to keep 99% of the baseline"
        )
    if ev.enabled and drop is not None and not ev.dataset:
        p.append("evaluation.gate needs evaluation.dataset")
    if drop is not None and not ev.enabled:
        p.append(
            f"evaluation.gate.max_relative_drop={drop} with evaluation=none: the gate reads the evaluation, so it "
            "would check nothing. Choose an evaluation (e.g. evaluation=builtin) or remove the gate"
        )
    if ev.enabled and drop is not None and ev.max_samples is not None and ev.max_samples < MIN_GATE_EXAMPLES:
        p.append(
            f"evaluation.max_samples={ev.max_samples} with evaluation.gate: a gate over fewer than "
            f"{MIN_GATE_EXAMPLES} examples decides on noise. Use evaluation.max_samples>={MIN_GATE_EXAMPLES} "
            "(or null for all) or remove the gate"
        )
    f = cfg.fidelity
    greedy = 0.0 if f.min_greedy_match is None else f.min_greedy_match
    if not (0 <= f.min_cosine <= 1 and 0 <= f.min_agreement <= 1 and 0 <= greedy <= 1):
        p.append(
            "fidelity.min_cosine, fidelity.min_agreement and fidelity.min_greedy_match are fractions between 0 and 1"
        )
    if f.greedy_tokens < 1:
        p.append(f"fidelity.greedy_tokens={f.greedy_tokens}: give a positive number of tokens")
    return p


def _int4_problems(cfg: DictConfig) -> list[str]:
    p: list[str] = []
    q, preset = cfg.quantization, cfg.hardware.quantization
    for key, level in (
        ("hardware.quantization.int4_accuracy_level", preset.int4_accuracy_level),
        ("quantization.int4.accuracy_level", q.int4.accuracy_level),
    ):
        if level is not None and level not in INT4_ACCURACY_LEVELS:
            p.append(f"{key}={level}: 0 (the input's type), 1 (fp32), 2 (fp16), 3 (bf16) or 4 (int8)")
    size = q.int4.block_size
    if size < 16 or size > 256 or size & (size - 1):
        p.append(
            f"quantization.int4.block_size={size}: MatMulNBits takes a power of two from 16 to 256 (e.g. 32)"
        )
    if q.method == "int4":
        wrong = [op for op in q.op_types if op not in INT4_OP_TYPES]
        if wrong:
            p.append(
                f"quantization.op_types={list(q.op_types)} with quantization=int4: int4 weight-only quantization "
                f"takes {' and '.join(INT4_OP_TYPES)} (not {', '.join(wrong)})"
            )
        if "Gather" in q.op_types and "Gather" not in q.exclude_op_types and cfg.export.opset < 21:
            p.append(
                f"quantization.op_types with Gather and export.opset={cfg.export.opset}: int4 embedding tables "
                "(GatherBlockQuantized) need int4 tensors, which start at opset 21. Add export.opset=21, or "
                "leave Gather out"
            )
    return p


def combination_problems(cfg: DictConfig) -> list[str]:
    """Settings that are valid alone but not together."""
    p: list[str] = []
    hw, opt, quant = cfg.hardware, cfg.optimization, cfg.quantization
    if hw.name == "auto":
        return p
    if quant.method == "dynamic" and hw.device == "cuda":
        p.append(
            "quantization=dynamic with hardware=cuda: dynamic int8 runs on CPUs only. "
            "For GPUs use optimization=O4 quantization=none (fp16)."
        )
    activations = quant.activation_type or hw.quantization.activation_type
    if quant.method == "dynamic" and hw.device != "cuda" and activations != "uint8":
        p.append(
            f"quantization.activation_type={activations} with quantization=dynamic: dynamic quantization "
            "computes activations as uint8. Leave quantization.activation_type unset (null)."
        )
    if opt.fp16 and hw.device != "cuda":
        p.append(
            f"optimization={opt.level} (fp16) with hardware={hw.name}: fp16 is fast on GPUs only. "
            "Use hardware=cuda, or optimization=O3 on CPUs."
        )
    fused = fused_attention_problem(hw.device)
    if cfg.task.name == "text-generation" and cfg.export.attention == "fused" and fused:
        p.append(
            f"export.attention=fused with hardware={hw.name}: {fused}. Use export.attention=auto or plain"
        )
    if opt.fp16 and quant.method != "none":
        p.append(
            f"optimization={opt.level} (fp16) with quantization={quant.method}: pick one; use quantization=none"
        )
    return p


def _unknown_keys(node: Any, schema: Any, path: str) -> list[str]:
    """Keys added with `+key=value` that no schema knows (Hydra's struct mode lets those through)."""
    if not isinstance(node, DictConfig) or not dataclasses.is_dataclass(schema):
        return []
    fields = typing.get_type_hints(schema)
    p: list[str] = []
    for key in node:
        if key == "hydra":
            continue
        full = f"{path}{key}"
        if key not in fields:
            known = ", ".join(f"{path}{k}" for k in fields)
            p.append(f"{full}: unknown key. Known keys here: {known}")
            continue
        sub = fields[key]
        if full == "task":  # the chosen task's own schema
            sub = TASK_SCHEMAS.get(node[key].get("name"))
        p += _unknown_keys(node[key], sub, f"{full}.")
    return p


def _output_dir_problems(output_dir: str) -> list[str]:
    root = Path(output_dir).expanduser()
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return [f"output_dir={output_dir}: {probe} is a file, not a folder. Choose another output_dir=PATH"]
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as e:
        return [f"output_dir={output_dir}: cannot write there ({e.strerror}). Choose another output_dir=PATH"]
    return []


def model_fit_problems(cfg: DictConfig, max_length: int, examples: int | None) -> list[str]:
    """Settings that only the model and the dataset can refute: found after the source is read, before any
    model work."""
    p: list[str] = []
    b = cfg.benchmark
    too_long = [n for n in b.sequence_lengths if n > max_length]
    if b.enabled and too_long:
        p.append(
            f"benchmark.sequence_lengths={list(b.sequence_lengths)}: {too_long} exceed the model's longest input "
            f"({max_length} tokens). Use lengths up to {max_length}"
        )
    if b.enabled and cfg.task.name == "text-generation":
        longest = max(b.sequence_lengths) + b.new_tokens
        if longest > max_length:
            p.append(
                f"benchmark.sequence_lengths={list(b.sequence_lengths)} with benchmark.new_tokens={b.new_tokens}: "
                f"{longest} tokens exceed the model's context ({max_length}). Shorten either"
            )
    drop = cfg.evaluation.gate.max_relative_drop
    if examples is not None and drop is not None and examples < MIN_GATE_EXAMPLES:
        p.append(
            f"evaluation.dataset={cfg.evaluation.dataset} gives {examples} example(s) and evaluation.gate is set: "
            f"a gate needs at least {MIN_GATE_EXAMPLES}. Use a larger dataset or remove the gate"
        )
    return p
