"""The method plugin registry.

A method is a module with `INFO = MethodInfo(...)` and `compress(task) -> Policy`. It is found
either as `<method_dir>/<name>.py` (the repository's `methods/` folder by default) or through
the entry point group `policypress.methods` of an installed package. Each method is imported
only when it is needed; one that fails to import stops config validation with one line
naming its file, before any job runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from policypress.core.policy import LAYER_ARGS
from policypress.core.specs import ROOT, SpecError

ENTRY_POINT_GROUP = "policypress.methods"
PLUGIN_PACKAGE = "policypress_methods."  # where plugin files are imported as modules
ACTION_SPACES = ("discrete", "continuous")
TEACHER_ALGOS = ("dqn", "ppo", "a2c", "sac", "td3")
TRACKS = ("post-training", "during-training")
HYPERPARAMETER_TYPES = (bool, int, float, str)


@dataclasses.dataclass(frozen=True)
class MethodInfo:
    """What a method declares about itself; checked when the plugin is loaded."""

    name: str
    summary: str
    citation: str
    hyperparameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    action_spaces: tuple[str, ...] = ACTION_SPACES
    layer_types: tuple[str, ...] = tuple(LAYER_ARGS)
    teacher_algos: tuple[str, ...] = TEACHER_ALGOS  # what the teacher may have been trained with
    teacher_algos_reason: str = ""  # why the others are not supported (shown with n/a)
    # post-training: starts from the trained teacher, with the teacher oracle and the env's compression
    # budget. during-training: trains from random weights with the teacher's algorithm, without the
    # teacher, on the teacher's training cost plus the compression budget (harness.run_budget).
    track: str = "post-training"
    uses_level: bool = True  # False: it chooses its own size (or keeps the teacher's) and runs once, at level 1.0
    deviations: str = ""  # every deviation from the paper, and why

    def __post_init__(self) -> None:
        problems = []
        if not re.fullmatch(r"[a-z][a-z0-9_]*", self.name):
            problems.append(f"name {self.name!r} must be lowercase letters, digits and underscores")
        if not self.summary.strip() or not self.citation.strip():
            problems.append("summary and citation must not be empty")
        if not set(self.action_spaces) <= set(ACTION_SPACES) or not self.action_spaces:
            problems.append(f"action_spaces {self.action_spaces} must be a non-empty subset of {ACTION_SPACES}")
        if not set(self.teacher_algos) <= set(TEACHER_ALGOS) or not self.teacher_algos:
            problems.append(f"teacher_algos {self.teacher_algos} must be a non-empty subset of {TEACHER_ALGOS}")
        if self.track not in TRACKS:
            problems.append(f"track {self.track!r} must be one of {TRACKS}")
        if not set(self.layer_types) <= set(LAYER_ARGS):
            problems.append(f"layer_types {self.layer_types} must be a subset of {tuple(LAYER_ARGS)}")
        for key, value in self.hyperparameters.items():
            if not isinstance(value, HYPERPARAMETER_TYPES):
                problems.append(f"hyperparameter {key!r} default must be bool, int, float or str")
        if problems:
            raise SpecError(f"method {self.name!r}: INFO: " + "; ".join(problems))


@dataclasses.dataclass(frozen=True)
class Method:
    info: MethodInfo
    compress: Callable
    source: str  # the file or entry point it came from

    @property
    def module(self) -> ModuleType | None:
        """The plugin's module: an ablation builds on its method's, e.g. `load_method("pops", [here]).module`."""
        return sys.modules.get(getattr(self.compress, "__module__", ""), None)

    @property
    def description(self) -> str:
        """The plugin module's docstring: the algorithm, the hyperparameters, the deviations."""
        return (getattr(self.module, "__doc__", None) or self.info.summary).strip()

    @property
    def source_file(self) -> Path:
        """The plugin's file (its module's file, for an entry point); it may not exist (a built module)."""
        return Path(self.source) if Path(self.source).is_file() else Path(getattr(self.module, "__file__", "") or "")

    def fingerprint(self) -> str:
        """sha256 of the plugin's file (or of its module's file, for an entry point), followed by the
        files of the plugins it builds on (an ablation's method), so that changing those reruns it too."""
        path = self.source_file
        if not path.is_file():
            return "unknown"
        names = vars(self.module) if self.module else {}
        builds_on = sorted(value.__file__ for value in names.values()
                           if isinstance(value, ModuleType) and value.__name__.startswith(PLUGIN_PACKAGE))
        digest = hashlib.sha256(path.read_bytes())
        for other in builds_on:
            digest.update(Path(other).read_bytes())
        return digest.hexdigest()

    def resolve_hyperparameters(self, overrides: dict | None, source: str) -> dict:
        """Defaults updated by the config's overrides; unknown names and wrong types are errors."""
        values = dict(self.info.hyperparameters)
        for key, value in (overrides or {}).items():
            field = f"{source}: methods.{self.info.name}.hyperparameters.{key}"
            if key not in values:
                raise SpecError(f"{field}: unknown hyperparameter (known: {', '.join(sorted(values)) or 'none'})")
            default = values[key]
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if type(value) is not type(default):
                raise SpecError(f"{field}: expected {type(default).__name__}, got {value!r}")
            values[key] = value
        return values


def _dirs(method_dirs: list[str] | None) -> list[Path]:
    return [(ROOT / d) if not Path(d).is_absolute() else Path(d) for d in (method_dirs or ["methods"])]


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def available_methods(method_dirs: list[str] | None = None) -> dict[str, str]:
    """Method name -> where it comes from, without importing anything."""
    found = {}
    for directory in _dirs(method_dirs):
        for path in sorted(directory.glob("[!_]*.py")):
            found.setdefault(path.stem, str(path))
    for name, entry_point in _entry_points().items():
        found.setdefault(name, f"entry point {entry_point.value}")
    return found


def _import_file(path: Path) -> ModuleType:
    """Import a plugin file once per content, as Python imports a module once: an ablation and its
    method then share one module (one PoPS class), and an edited file is imported anew."""
    module_name = f"{PLUGIN_PACKAGE}{path.parent.name}.{path.stem}"
    content = hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = sys.modules.get(module_name)
    if loaded is not None and loaded.__file__ == str(path) and getattr(loaded, "__content_sha256__", "") == content:
        return loaded
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    module.__content_sha256__ = content
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        del sys.modules[module_name]
        raise SpecError(f"{path}: cannot be imported: {type(err).__name__}: {err}") from err
    return module


def load_method(name: str, method_dirs: list[str] | None = None) -> Method:
    """Import one method plugin and check its interface; errors name the plugin's file."""
    for directory in _dirs(method_dirs):
        path = directory / f"{name}.py"
        if path.is_file():
            return _check(_import_file(path), name, str(path))
    entry_points = _entry_points()
    if name in entry_points:
        source = f"entry point {entry_points[name].value}"
        try:
            plugin = entry_points[name].load()
        except Exception as err:
            raise SpecError(f"{source}: cannot be imported: {type(err).__name__}: {err}") from err
        return _check(plugin, name, source)
    known = ", ".join(sorted(available_methods(method_dirs)))
    raise SpecError(f"unknown method {name!r} (known: {known})")


def _check(plugin: Any, name: str, source: str) -> Method:
    info = getattr(plugin, "INFO", None)
    compress = getattr(plugin, "compress", None)
    if not isinstance(info, MethodInfo):
        raise SpecError(f"{source}: INFO: must be a policypress.core.registry.MethodInfo")
    if not callable(compress):
        raise SpecError(f"{source}: compress: must be a function compress(task) -> Policy")
    if info.name != name:
        raise SpecError(f"{source}: INFO.name: {info.name!r} must equal the plugin's name {name!r}")
    return Method(info, compress, source)
