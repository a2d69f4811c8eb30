"""Config composition, and validation that reports every problem before any work starts (schemas in
builder/schemas.py).

Hydra checks types and unknown keys of the YAML files at compose time (the schemas below make every node
a struct). `validate` adds what types cannot say: allowed values, keys added with `+key=`, unsupported
combinations, a missing model folder, an unwritable output folder.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from builder.errors import ConfigError
from builder.schemas import (
    BenchmarkConfig,
    BuildConfig,
    CalibrationConfig,
    ColumnsConfig,
    EvaluationConfig,
    ExportConfig,
    FidelityConfig,
    GateConfig,
    HardwareConfig,
    ModelConfig,
    OptimizationConfig,
    QuantizationConfig,
    QuantizationPreset,
    TaskConfig,
)

CONF_DIR = str(resources.files("builder.conf"))

TASK_NAMES = ("feature-extraction", "text-classification", "token-classification", "question-answering")
OPTIMIZATION_LEVELS = ("none", "O1", "O2", "O3", "O4")
QUANTIZATION_METHODS = ("none", "dynamic", "static")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
DEVICES = ("cpu", "cuda")
INT8_TYPES = ("int8", "uint8")
POOLING_MODES = ("auto", "mean", "cls", "max")


# ---------------------------------------------------------------------------------------------- compose


def compose_config(overrides: list[str] | tuple[str, ...] = (), config_dir: str | None = None) -> DictConfig:
    """Compose a build config as the CLI would (library entry point; resolves hardware=auto)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir or CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
        return finalize(cfg, list(overrides))


def finalize(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Steps that need the composed config and Hydra's config loader: a name for a model given by
    source only, and the concrete hardware profile for hardware=auto. Raises ConfigError."""
    cfg = cfg.copy()
    keys = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    if "model.source" in keys and "model.name" not in keys and "model" not in keys:
        # The model group's name belongs to its own source, not to the one given on the command line.
        with _writable(cfg):
            cfg.model.name = None
            cfg.model.base_model = None
            if "model.revision" not in keys:
                cfg.model.revision = None
    if cfg.hardware.name == "auto":
        profile = pick_auto_hardware(cfg, overrides)
        with _writable(cfg):
            cfg.hardware = profile
    return cfg


def override_problems(args: list[str]) -> list[str]:
    """Check `key=value` command-line overrides against the schemas before Hydra composes anything, so
    a misspelled key or a value of the wrong type gets one plain message (all of them at once)."""
    import difflib
    import typing

    problems = []
    sweeping = "-m" in args or "--multirun" in args
    for arg in args:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if key.startswith("hydra") or "@" in key or "/" in key:
            continue
        schema: Any = BuildConfig
        parts = key.split(".")
        for depth, part in enumerate(parts):
            fields = {f.name: f for f in dataclasses.fields(schema)}
            if part not in fields:
                where = ".".join(parts[:depth]) or "the top level"
                close = difflib.get_close_matches(part, fields, n=1)
                hint = f"Did you mean {'.'.join([*parts[:depth], close[0]])}?" if close else ""
                problems.append(
                    f"{key}: unknown key ({part!r} is not in {where}). {hint} "
                    f"Known: {', '.join(fields)}".replace("  ", " ")
                )
                break
            hints = typing.get_type_hints(schema)
            kind = hints[part]
            if dataclasses.is_dataclass(kind):
                schema = kind
                continue
            if typing.get_origin(kind) is dict:  # free-form mapping (e.g. evaluation.columns.<field>)
                break
            if depth != len(parts) - 1:
                problems.append(f"{key}: {'.'.join(parts[: depth + 1])} is a value, it has no keys below it")
            elif arg.startswith("~"):
                pass
            else:
                for item in _sweep_items(value) if sweeping else [value]:
                    if (err := _type_problem(kind, item)) is not None:
                        problems.append(f"{key}={item}: {err}")
            break
    return problems


def _sweep_items(value: str) -> list[str]:
    """The values a `-m` override sweeps over: `a,b,c` gives each; Hydra's sweep functions (range(...),
    choice(...), ...), lists and quoted strings are left to Hydra's own parser."""
    if re.match(r"\s*\w+\(", value) or value.lstrip()[:1] in ("[", "{", "'", '"'):
        return []
    return [item.strip() for item in value.split(",")]


def _type_problem(kind: Any, value: str) -> str | None:
    import typing

    options = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
    if type(None) in typing.get_args(kind) and value in ("null", "None"):
        return None
    base = options[0]
    try:
        if base is bool and value.lower() not in ("true", "false"):
            return "expected true or false"
        if base is int:
            int(value)
        elif base is float:
            float(value)
    except ValueError:
        return f"expected {'an integer' if base is int else 'a number'}"
    return None


def config_from_hydra(cfg: DictConfig) -> tuple[DictConfig, list[str], dict[str, Any]]:
    """Within a Hydra app: the finalized config, the command-line overrides, and the group choices."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    choices = {
        k: v for k, v in OmegaConf.to_container(hc.runtime.choices).items() if not k.startswith("hydra")
    }
    final = finalize(cfg, overrides)
    if choices.get("hardware") == "auto":
        choices["hardware"] = f"auto ({final.hardware.name})"
    return final, overrides, choices


def pick_auto_hardware(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    from builder import hardware

    host = hardware.host_capabilities()
    loader = GlobalHydra.instance().config_loader()
    base = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != "hardware"]
    usable: list[DictConfig] = []
    for option in loader.get_group_options("hardware"):
        if option == "auto":
            continue
        candidate = compose(config_name="config", overrides=[*base, f"hardware={option}"])
        if hardware.host_can_run(candidate.hardware, host) and not combination_problems(candidate):
            usable.append(candidate.hardware)
    if not usable:
        raise ConfigError(
            [
                "hardware=auto: no hardware profile both runs on this host and supports "
                f"optimization={cfg.optimization.level} quantization={cfg.quantization.method}. "
                "Name one explicitly, e.g. hardware=avx2."
            ]
        )
    return max(usable, key=lambda h: h.priority)


class _writable:
    """Temporarily lift struct/readonly flags to set values that the schema already allows."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg

    def __enter__(self) -> DictConfig:
        OmegaConf.set_readonly(self.cfg, False)
        OmegaConf.set_struct(self.cfg, False)
        return self.cfg

    def __exit__(self, *exc: object) -> None:
        OmegaConf.set_struct(self.cfg, True)


# --------------------------------------------------------------------------------------------- validate


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
    _choice(p, "task.name", cfg.task.name, TASK_NAMES)
    _choice(p, "task.pooling", cfg.task.pooling, POOLING_MODES)
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
    b = cfg.benchmark
    for key in ("batch_sizes", "sequence_lengths"):
        if not b[key] or any(v < 1 for v in b[key]):
            p.append(f"benchmark.{key}={list(b[key])}: give one or more positive integers")
    if b.iterations < 1 or b.baseline_iterations < 1 or b.rounds < 1 or b.warmup < 0:
        p.append(
            f"benchmark.iterations={b.iterations}, benchmark.baseline_iterations={b.baseline_iterations}, "
            f"benchmark.rounds={b.rounds}, benchmark.warmup={b.warmup}: iterations and rounds must be >= 1, "
            "the warm-up >= 0"
        )
    ev = cfg.evaluation
    if ev.max_samples is not None and ev.max_samples < 1:
        p.append(f"evaluation.max_samples={ev.max_samples}: give a positive number, or null for all")
    drop = ev.gate.max_relative_drop
    if drop is not None and not -1 < drop < 1:
        p.append(
            f"evaluation.gate.max_relative_drop={drop}: a fraction, e.g. 0.01 to keep 99% of the baseline"
        )
    if ev.enabled and drop is not None and not ev.dataset:
        p.append("evaluation.gate needs evaluation.dataset")
    if not 0 <= cfg.fidelity.min_cosine <= 1 or not 0 <= cfg.fidelity.min_agreement <= 1:
        p.append("fidelity.min_cosine and fidelity.min_agreement are fractions between 0 and 1")
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
    if opt.fp16 and quant.method != "none":
        p.append(
            f"optimization={opt.level} (fp16) with quantization={quant.method}: pick one; use quantization=none"
        )
    return p


def _unknown_keys(node: Any, schema: type, path: str) -> list[str]:
    """Keys added with `+key=value` that no schema knows (Hydra's struct mode lets those through)."""
    if not isinstance(node, DictConfig) or not dataclasses.is_dataclass(schema):
        return []
    fields = {f.name: f for f in dataclasses.fields(schema)}
    p: list[str] = []
    for key in node:
        if key == "hydra":
            continue
        full = f"{path}{key}"
        if key not in fields:
            known = ", ".join(f"{path}{k}" for k in fields)
            p.append(f"{full}: unknown key. Known keys here: {known}")
            continue
        sub = fields[key].type
        sub_schema = _SCHEMAS.get(sub if isinstance(sub, str) else getattr(sub, "__name__", ""))
        if sub_schema is not None:
            p += _unknown_keys(node[key], sub_schema, f"{full}.")
    return p


_SCHEMAS = {
    c.__name__: c
    for c in (
        ModelConfig,
        TaskConfig,
        HardwareConfig,
        QuantizationPreset,
        OptimizationConfig,
        QuantizationConfig,
        CalibrationConfig,
        BenchmarkConfig,
        EvaluationConfig,
        ColumnsConfig,
        GateConfig,
        ExportConfig,
        FidelityConfig,
    )
}


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


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Plain, resolved dict without Hydra's own node."""
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    data.pop("hydra", None)
    return data
