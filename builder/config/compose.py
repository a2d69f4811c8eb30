"""Composing a build config as the CLI does: Hydra over conf/, then the steps that need the composed config
(a name for a model given by source only, the concrete hardware profile for hardware=auto)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

import builder.config.schemas  # noqa: F401  (registers the schemas the YAML files name)
from builder.errors import ConfigError

CONF_DIR = str(resources.files("builder.conf"))


def compose_config(overrides: list[str] | tuple[str, ...] = (), config_dir: str | None = None) -> DictConfig:
    """Compose a build config as the CLI would (library entry point; resolves hardware=auto)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir or CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
        return finalize(cfg, list(overrides))


def finalize(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    """Steps that need the composed config and Hydra's config loader. Raises ConfigError."""
    cfg = cfg.copy()
    keys = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    if "model.source" in keys and "model.name" not in keys and "model" not in keys:
        # The model group's name belongs to its own source, not to the one given on the command line.
        with writable(cfg):
            cfg.model.name = None
            cfg.model.base_model = None
            if "model.revision" not in keys:
                cfg.model.revision = None
    if cfg.hardware.name == "auto":
        profile = pick_auto_hardware(cfg, overrides)
        with writable(cfg):
            cfg.hardware = profile
    return cfg


def config_from_hydra(cfg: DictConfig) -> tuple[DictConfig, list[str], dict[str, Any]]:
    """Within a Hydra app: the finalized config, the command-line overrides, and the group choices."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    overrides = list(hc.overrides.task)
    choices = {
        k: v
        for k, v in OmegaConf.to_container(hc.runtime.choices).items()
        if not k.startswith(("hydra", "schema"))
    }
    final = finalize(cfg, overrides)
    if choices.get("hardware") == "auto":
        choices["hardware"] = f"auto ({final.hardware.name})"
    return final, overrides, choices


def pick_auto_hardware(cfg: DictConfig, overrides: list[str]) -> DictConfig:
    from builder import hardware
    from builder.config.validate import combination_problems

    host = hardware.host_capabilities()
    loader = GlobalHydra.instance().config_loader()
    base = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != "hardware"]
    usable: list[DictConfig] = []
    why: dict[str, list[str]] = {}  # each reason a profile was passed over -> those profiles
    for option in loader.get_group_options("hardware"):
        if option == "auto":
            continue
        candidate = compose(config_name="config", overrides=[*base, f"hardware={option}"])
        problems = combination_problems(candidate)
        if not hardware.host_can_run(candidate.hardware, host):
            why.setdefault("this host cannot run it", []).append(option)
        elif problems:
            why.setdefault(problems[0].replace(f" with hardware={option}", "").rstrip("."), []).append(option)
        else:
            usable.append(candidate.hardware)
    if not usable:
        reasons = "; ".join(f"{', '.join(names)}: {reason}" for reason, names in why.items())
        raise ConfigError(
            [
                "hardware=auto: no hardware profile both runs on this host and supports "
                f"optimization={cfg.optimization.level} quantization={cfg.quantization.method} ({reasons})"
            ]
        )
    return max(usable, key=lambda h: h.priority)


class writable:
    """Temporarily lift struct/readonly flags to set values that the schema already allows."""

    def __init__(self, cfg: DictConfig):
        self.cfg = cfg

    def __enter__(self) -> DictConfig:
        OmegaConf.set_readonly(self.cfg, False)
        OmegaConf.set_struct(self.cfg, False)
        return self.cfg

    def __exit__(self, *exc: object) -> None:
        OmegaConf.set_struct(self.cfg, True)


def to_container(cfg: DictConfig) -> dict[str, Any]:
    """Plain, resolved dict without Hydra's own node."""
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    data.pop("hydra", None)
    return data
