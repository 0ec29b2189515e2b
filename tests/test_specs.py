"""Bad input gives one line naming the file and the field."""

import subprocess
import sys

import pytest
import yaml

from policypress.core.config import load_config
from policypress.core.specs import ENVS_DIR, SpecError, load_env_spec
from tests.conftest import PLUGINS


def write(path, data):
    path.write_text(yaml.safe_dump(data))
    return path


def base_config(**overrides):
    config = {"profile": "smoke", "envs": ["cartpole"], "seeds": [0], "levels": [0.1], "methods": {"dense": None}}
    config.update(overrides)
    return config


def test_shipped_env_specs_are_valid():
    for path in ENVS_DIR.glob("*.yaml"):
        assert load_env_spec(path.stem, ENVS_DIR)["name"] == path.stem


@pytest.mark.parametrize("name, shape, actions", [("pong", (4, 84, 84), "Discrete(6)"),
                                                  ("mspacman", (4, 84, 84), "Discrete(9)"),
                                                  ("hopper", (11,), "Box"), ("walker2d", (17,), "Box"),
                                                  ("minatar_breakout", (4, 10, 10), "Discrete(3)"),
                                                  ("minatar_space_invaders", (6, 10, 10), "Discrete(4)"),
                                                  ("highway_fast", (5, 5), "Discrete(5)")])
def test_family_specs_build_their_envs_and_clip_rewards_only_for_the_atari_teacher(name, shape, actions):
    from policypress.core.envs import make_env

    spec = load_env_spec(name, ENVS_DIR)
    env, training = make_env(spec), make_env(spec, teacher_training=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == shape and str(env.action_space).startswith(actions)
    clips = [w for w in spec["teacher"].get("train_wrappers", []) if w["name"] == "ClipReward"]
    assert (type(training).__name__ == "ClipReward") == bool(clips) == (spec["family"] == "atari")
    assert type(env).__name__ != "ClipReward"  # evaluation and methods see the raw score


@pytest.mark.parametrize("config", ["smoke", "quick", "families", "families_smoke", "embedded", "config"])
def test_shipped_configs_are_valid(config):
    from policypress.core.specs import ROOT

    load_config(ROOT / "config" / f"{config}.yaml")


def test_malformed_env_spec_names_file_and_field(tmp_path):
    spec = yaml.safe_load((ENVS_DIR / "cartpole.yaml").read_text())
    spec["teacher"]["algo"] = "dqnx"
    write(tmp_path / "cartpole.yaml", spec)
    with pytest.raises(SpecError, match=r"cartpole\.yaml: teacher\.algo: 'dqnx' is not one of"):
        load_env_spec("cartpole", tmp_path)


def test_missing_budget_field_names_the_profile(tmp_path):
    spec = yaml.safe_load((ENVS_DIR / "cartpole.yaml").read_text())
    del spec["budget"]["quick"]["gradient_updates"]
    write(tmp_path / "cartpole.yaml", spec)
    with pytest.raises(SpecError, match=r"budget\.quick: 'gradient_updates' is a required property"):
        load_env_spec("cartpole", tmp_path)


def test_unparsable_yaml_names_the_line(tmp_path):
    (tmp_path / "cartpole.yaml").write_text("name: cartpole\nteacher: [unclosed\n")
    with pytest.raises(SpecError, match=r"cartpole\.yaml: line \d+: not valid YAML"):
        load_env_spec("cartpole", tmp_path)


@pytest.mark.parametrize(
    "config, message",
    [
        (base_config(envs=["cartpole", "pong_typo"]), r"envs\[1\]: unknown environment 'pong_typo'"),
        (base_config(methods={"dense": None, "prune_typo": None}), r"methods\.prune_typo: unknown method 'prune_typo'"),
        (base_config(levels=[1.5]), r"levels\[0\]: 1\.5 is greater than the maximum of 1"),
        (base_config(profile="huge"), r"profile: 'huge' is not one of"),
        (base_config(baselines=["distill"]), r"baselines\[0\]: 'distill' is not one of the configured methods"),
        (base_config(methods={"magnitude": {"hyperparameters": {"lr": 0.1}}}),
         r"methods\.magnitude\.hyperparameters\.lr: unknown hyperparameter"),
        (base_config(methods={"magnitude": {"hyperparameters": {"rounds": "many"}}}),
         r"methods\.magnitude\.hyperparameters\.rounds: expected int, got 'many'"),
        (base_config(methods={"broken_import": None}, method_dirs=[PLUGINS]),
         r"methods\.broken_import: .*broken_import\.py: cannot be imported: ImportError"),
        (base_config(methods={"mismatched_name": None}, method_dirs=[PLUGINS]),
         r"methods\.mismatched_name: .*mismatched_name\.py: INFO\.name: 'another_name' must equal"),
        (base_config(imported_teachers={"acrobot": {0: {"model": "agent.zip"}}}),
         r"imported_teachers\.acrobot: not one of the configured envs"),
        (base_config(imported_teachers={"cartpole": {7: {"model": "agent.zip"}}}),
         r"imported_teachers\.cartpole\[7\]: not one of the configured seeds"),
        (base_config(imported_teachers={"cartpole": {0: {"model": "/no/agent.zip"}}}),
         r"imported_teachers\.cartpole\[0\]\.model: /no/agent\.zip does not exist"),
        (base_config(imported_teachers={"cartpole": {0: {"algo": "dqn"}}}),
         r"imported_teachers\.cartpole\[0\]: name either model \(and vecnormalize, if any\) or zoo_run"),
    ],
)
def test_bad_config_names_file_and_field(config, message, tmp_path):
    path = write(tmp_path / "bad.yaml", config)
    with pytest.raises(SpecError, match=rf"{tmp_path}/bad\.yaml: {message}"):
        load_config(path)


def test_cli_prints_one_line_and_fails(tmp_path):
    path = write(tmp_path / "bad.yaml", base_config(envs=["nope"]))
    result = subprocess.run([sys.executable, "-m", "policypress.cli", "validate-config", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "bad.yaml: envs[0]: unknown environment 'nope'" in result.stderr
