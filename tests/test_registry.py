"""Method discovery from folders and from installed packages' entry points; metadata checks."""

import sys
import textwrap

import pytest

from policypress.core.registry import MethodInfo, available_methods, load_method
from policypress.core.specs import SpecError


def test_shipped_methods_are_discovered_and_load():
    found = available_methods()
    for name in ("dense", "magnitude", "distill"):
        assert name in found
        method = load_method(name)
        assert method.info.name == name and method.info.citation


def test_entry_point_plugin_from_an_installed_package(tmp_path, monkeypatch):
    """A package on sys.path whose dist-info declares the policypress.methods group."""
    package = tmp_path / "ext_method_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        from policypress.core.registry import MethodInfo
        INFO = MethodInfo(name="external", summary="From a package.", citation="nobody 2026")
        def compress(task):
            return task.teacher
    """))
    dist_info = tmp_path / "ext_method_pkg-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: ext-method-pkg\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[policypress.methods]\nexternal = ext_method_pkg\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert available_methods()["external"] == "entry point ext_method_pkg"
    method = load_method("external")
    assert method.info.summary == "From a package." and method.source == "entry point ext_method_pkg"
    sys.modules.pop("ext_method_pkg", None)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(SpecError, match=r"unknown method 'nope' \(known: .*dense.*\)"):
        load_method("nope")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "Bad Name"}, "must be lowercase"),
        ({"action_spaces": ("discrete", "tokens")}, "action_spaces"),
        ({"layer_types": ("Linear", "LSTM")}, "layer_types"),
        ({"hyperparameters": {"schedule": [1, 2]}}, "hyperparameter 'schedule'"),
        ({"citation": " "}, "must not be empty"),
    ],
)
def test_method_info_is_validated(kwargs, message):
    fields = {"name": "ok", "summary": "s", "citation": "c", **kwargs}
    with pytest.raises(SpecError, match=message):
        MethodInfo(**fields)


def test_hyperparameter_overrides_are_typed():
    method = load_method("magnitude")
    values = method.resolve_hyperparameters({"learning_rate": 1, "rounds": 3}, "cfg.yaml")
    assert values["learning_rate"] == 1.0 and isinstance(values["learning_rate"], float)
    assert values["rounds"] == 3
    assert values["batch_size"] == method.info.hyperparameters["batch_size"]


def test_an_ablation_builds_on_its_method_and_reruns_when_that_method_changes(tmp_path):
    plugin = ('from policypress.core.registry import MethodInfo\n'
              'INFO = MethodInfo(name="{name}", summary="s", citation="c")\n')
    base = "RATE = 1\n\ndef compress(task):\n    return task.teacher\n"
    (tmp_path / "base.py").write_text(plugin.format(name="base") + base)
    (tmp_path / "ablation.py").write_text(plugin.format(name="ablation") + textwrap.dedent(f"""
        from policypress.core.registry import load_method
        base = load_method("base", [{str(tmp_path)!r}]).module

        def compress(task):
            return base.compress(task)
        """))
    ablation = load_method("ablation", [str(tmp_path)])
    assert ablation.module.base.RATE == 1
    before, own = ablation.fingerprint(), load_method("base", [str(tmp_path)]).fingerprint()
    (tmp_path / "base.py").write_text((tmp_path / "base.py").read_text().replace("RATE = 1", "RATE = 2"))
    assert load_method("base", [str(tmp_path)]).fingerprint() != own
    assert ablation.fingerprint() != before
