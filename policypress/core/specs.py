"""Configuration as data: load YAML/JSON documents and validate them against the schemas.

Every error is one line that names the file and the field, e.g.
``envs/cartpole.yaml: teacher.algo: 'dqnx' is not one of ['dqn', 'ppo', ...]``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]  # the repository: envs/, methods/, workflow/schemas/
SCHEMA_DIR = ROOT / "workflow" / "schemas"
ENVS_DIR = ROOT / "envs"
PROFILES = ("smoke", "quick", "full")


class SpecError(ValueError):
    """Invalid input: the message is one line naming the file and the field."""


@cache
def schema(name: str) -> dict:
    return yaml.safe_load((SCHEMA_DIR / f"{name}.schema.yaml").read_text())


def field_path(path: Any) -> str:
    """jsonschema's deque path as `teacher.hyperparameters[0]`; `(top level)` when empty."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def validate(data: Any, schema_name: str, source: str | Path) -> None:
    """Raise SpecError for the most relevant schema violation, naming file and field."""
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema(schema_name)).iter_errors(data)
    )
    if error is not None:
        raise SpecError(f"{source}: {field_path(error.absolute_path)}: {error.message}")


def load_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: file not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(parse)"
        raise SpecError(f"{path}: {where}: not valid YAML ({getattr(err, 'problem', err)})") from err


def load_env_spec(name: str, envs_dir: str | Path = ENVS_DIR) -> dict:
    path = Path(envs_dir) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in Path(envs_dir).glob("*.yaml"))
        raise SpecError(f"{path}: unknown environment {name!r} (known: {', '.join(known)})")
    spec = load_yaml(path)
    validate(spec, "env", path)
    if spec["name"] != name:
        raise SpecError(f"{path}: name: {spec['name']!r} must equal the file's stem {name!r}")
    return spec


def latency_defaults() -> dict:
    """The ONNX Runtime timing protocol's defaults (warmup, windows, window_ms), from the config schema."""
    return {key: field["default"] for key, field in schema("config")["properties"]["latency"]["properties"].items()}


def check_config(config: dict, source: str | Path, envs_dir: str | Path = ENVS_DIR) -> dict:
    """Validate a run configuration and the env specs it names; fill in defaults."""
    validate(config, "config", source)
    config = dict(config)
    config.setdefault("method_dirs", ["methods"])
    config.setdefault("device", "auto")
    config.setdefault("baselines", [])
    for index, name in enumerate(config["baselines"]):
        if name not in config["methods"]:
            raise SpecError(f"{source}: baselines[{index}]: {name!r} is not one of the configured methods")
    config["latency"] = latency_defaults() | config.get("latency", {})
    for index, env in enumerate(config["envs"]):
        if not (Path(envs_dir) / f"{env}.yaml").is_file():
            raise SpecError(f"{source}: envs[{index}]: unknown environment {env!r} (no {envs_dir}/{env}.yaml)")
        load_env_spec(env, envs_dir)
    check_imported_teachers(config.setdefault("imported_teachers", {}), config, source)
    return config


def check_imported_teachers(imported: dict, config: dict, source: str | Path) -> None:
    """Every imported teacher stands for a configured env and seed, and its files exist."""
    for env, seeds in imported.items():
        if env not in config["envs"]:
            raise SpecError(f"{source}: imported_teachers.{env}: not one of the configured envs")
        for seed, files in seeds.items():
            where = f"{source}: imported_teachers.{env}[{seed}]"
            if str(seed) not in {str(s) for s in config["seeds"]}:
                raise SpecError(f"{where}: not one of the configured seeds")
            if ("model" in files) == ("zoo_run" in files) or ("zoo_run" in files and "vecnormalize" in files):
                raise SpecError(f"{where}: name either model (and vecnormalize, if any) or zoo_run")
            for key in ("model", "vecnormalize", "zoo_run"):
                if key in files and not Path(files[key]).exists():
                    raise SpecError(f"{where}.{key}: {files[key]} does not exist")
