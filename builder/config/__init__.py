"""Build configs: schemas, composition (Hydra over conf/), command-line checks, validation, resolution."""

from __future__ import annotations

from builder.config.compose import CONF_DIR, compose_config, config_from_hydra, finalize, to_container
from builder.config.overrides import override_problems
from builder.config.resolve import quantization_settings
from builder.config.validate import combination_problems, model_fit_problems, validate
from builder.errors import ConfigError

__all__ = [
    "CONF_DIR",
    "ConfigError",
    "combination_problems",
    "compose_config",
    "config_from_hydra",
    "finalize",
    "override_problems",
    "quantization_settings",
    "to_container",
    "model_fit_problems",
    "validate",
]
