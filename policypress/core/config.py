"""Validate a whole run configuration: schema, env specs, methods and their hyperparameters."""

from __future__ import annotations

from pathlib import Path

from policypress.core.registry import Method, load_method
from policypress.core.specs import SpecError, check_config, load_yaml


def validate_config(config: dict, source: str | Path) -> tuple[dict, dict[str, Method]]:
    """The config with defaults filled in, and each configured method loaded and checked."""
    config = check_config(config, source)
    methods = {}
    for name, options in config["methods"].items():
        try:
            method = load_method(name, config["method_dirs"])
        except SpecError as err:
            raise SpecError(f"{source}: methods.{name}: {err}") from err
        method.resolve_hyperparameters((options or {}).get("hyperparameters"), str(source))
        methods[name] = method
    return config, methods


def load_config(path: str | Path) -> tuple[dict, dict[str, Method]]:
    return validate_config(load_yaml(path), path)
