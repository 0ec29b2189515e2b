"""Importing outside agents: models trained with plain stable-baselines3 (and rl-baselines3-zoo's own
training script) become teachers that act exactly like SB3's `predict(deterministic=True)`."""

import copy
import json
import os
import pickle
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from sb3_contrib import QRDQN
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

import tests.blink_env  # noqa: F401  (registers PolicyPressTest/Blink-v0)
from policypress.cli import main
from policypress.core.envs import make_env
from policypress.core.harness import compress_run
from policypress.core.policy import Policy
from policypress.core.registry import load_method
from policypress.core.sb3 import count_optimizer_steps
from policypress.core.specs import SpecError, load_env_spec
from policypress.measure.run import measure_run
from policypress.submit.conformance import pendulum_spec
from policypress.teachers.imported import import_teacher
from tests.conftest import ppo_spec, sb3_cnn_spec, tiny_spec
from tests.test_export import assert_same_computation, c_run, onnx_run

N = 1000  # played states, and as many random ones


def played_states(model, env_id: str, env_kwargs: dict, normalize=None, n: int = N) -> np.ndarray:
    """States the agent itself visits, acting deterministically (resetting with new seeds as episodes end)."""
    env = gym.make(env_id, **env_kwargs)
    obs, _ = env.reset(seed=0)
    states = []
    while len(states) < n:
        states.append(obs)
        seen = obs if normalize is None else normalize.normalize_obs(obs)
        obs, _, terminated, truncated, _ = env.step(model.predict(seen, deterministic=True)[0])
        if terminated or truncated:
            obs, _ = env.reset(seed=len(states))
    return np.asarray(states)


def random_states(space: gym.spaces.Box, n: int = N) -> np.ndarray:
    rng = np.random.default_rng(1)
    if space.dtype == np.uint8:
        return rng.integers(0, 256, (n, *space.shape), dtype=np.uint8)
    return rng.uniform(np.clip(space.low, -5, 5), np.clip(space.high, -5, 5), (n, *space.shape)).astype(np.float32)


def assert_same_actions(policy: Policy, model, states: np.ndarray, normalize=None) -> None:
    expected, _ = model.predict(states if normalize is None else normalize.normalize_obs(states), deterministic=True)
    if isinstance(model.action_space, gym.spaces.Discrete):
        np.testing.assert_array_equal(policy.act(states), expected)
    else:
        np.testing.assert_allclose(policy.act(states), expected, rtol=1e-5, atol=1e-5)


def cartpole_ppo_normalized():
    venv = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    return PPO("MlpPolicy", venv, n_steps=128, batch_size=64, n_epochs=2, seed=0,
               policy_kwargs={"net_arch": [32, 32]}).learn(1024), venv


def spec_with(make_spec, algo: str):
    """An env spec whose teacher algorithm is `algo` (an imported agent must share it)."""
    spec = make_spec()
    spec["teacher"]["algo"] = algo
    return spec


def small() -> dict:
    """A small net and a seed; a fresh dict each time (SB3 adds its own keys to policy_kwargs)."""
    return {"policy_kwargs": {"net_arch": [32, 32]}, "seed": 0}



AGENTS = {  # name: (its env spec, how plain SB3 trains it: the model and its VecNormalize, if any)
    "dqn-cartpole": (tiny_spec, lambda: (DQN("MlpPolicy", "CartPole-v1", learning_starts=100, **small()).learn(1000),
                                         None)),
    "qrdqn-cartpole": (tiny_spec, lambda: (QRDQN("MlpPolicy", "CartPole-v1", learning_starts=100,
                                                 **small()).learn(1000), None)),
    "ppo-cartpole-vecnormalize": (ppo_spec, cartpole_ppo_normalized),
    "a2c-cartpole": (lambda: spec_with(ppo_spec, "a2c"), lambda: (A2C("MlpPolicy", "CartPole-v1", **small()).learn(500),
                                                                  None)),
    "sac-pendulum": (pendulum_spec, lambda: (SAC("MlpPolicy", "Pendulum-v1", learning_starts=100, **small()).learn(300),
                                             None)),
    "td3-pendulum": (lambda: spec_with(pendulum_spec, "td3"),
                     lambda: (TD3("MlpPolicy", "Pendulum-v1", learning_starts=100, **small()).learn(300), None)),
    "dqn-cnn-blink": (sb3_cnn_spec, lambda: (DQN("CnnPolicy", gym.make("PolicyPressTest/Blink-v0", size=36),
                                                 learning_starts=50, buffer_size=500, batch_size=16,
                                                 seed=0).learn(200), None)),
}


@pytest.mark.parametrize("name", AGENTS)
def test_an_imported_sb3_model_acts_like_sb3_predict_on_played_and_random_states(name, tmp_path):
    make_spec, train = AGENTS[name]
    spec = make_spec()
    zip_path = tmp_path / f"{name}.zip"
    with count_optimizer_steps() as updates:
        model, normalize = train()
    model.save(zip_path)
    if normalize is not None:
        normalize.save(zip_path.with_suffix(".pkl"))

    info = import_teacher(spec, tmp_path / "teacher", "smoke", 0, zip_path,
                          zip_path.with_suffix(".pkl") if normalize is not None else None)

    policy = Policy.load(tmp_path / "teacher" / "policy")
    loaded = type(model).load(zip_path)  # what the user's own SB3 code would load
    assert_same_actions(policy, loaded, played_states(loaded, spec["gym_id"], spec.get("env_kwargs", {}), normalize),
                        normalize)
    assert_same_actions(policy, loaded, random_states(loaded.observation_space), normalize)
    assert info["source"]["kind"] == "imported" and len(info["source"]["model_sha256"]) == 64
    assert info["training_cost"] == {"env_steps": model.num_timesteps, "gradient_updates": updates.count}
    assert updates.count > 0 and info["algo"] == name.split("-")[0]  # read from the zip
    for name_ in ("model.zip", "policy.onnx", "teacher.json"):
        assert (tmp_path / "teacher" / name_).is_file()


def test_an_imported_teacher_is_compressed_and_measured_through_the_pipeline(tmp_path):
    spec = load_env_spec("cartpole")
    DQN("MlpPolicy", "CartPole-v1", learning_starts=100, seed=0,
        policy_kwargs={"net_arch": [32, 32]}).learn(1000).save(tmp_path / "agent.zip")
    assert main(["import-teacher", "--env", "cartpole", "--model", str(tmp_path / "agent.zip"),
                 "--out", str(tmp_path / "teacher"), "--profile", "smoke"]) == 0
    teacher = tmp_path / "teacher"
    distill = load_method("distill")
    run = compress_run(distill, spec, "smoke", teacher, 0.1, 0, distill.resolve_hyperparameters(None, "test"),
                       tmp_path / "run")
    assert run["status"] == "valid", run["reason"]
    latency = {"warmup": 1, "windows": 2, "window_ms": 1}
    metrics = measure_run(tmp_path / "run", teacher, spec, latency, tmp_path / "m.json")
    assert metrics["params_nonzero"] <= 0.1 * metrics["teacher_params_nonzero"]
    assert len(metrics["returns"]) == len(json.loads((teacher / "teacher.json").read_text())["eval_returns"])


def test_a_zoo_run_folder_made_by_rl_zoo3_is_imported_with_its_vecnormalize(tmp_path):
    subprocess.run([sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "CartPole-v1", "-n", "512",
                    "-f", str(tmp_path / "logs"), "--seed", "0", "--eval-freq", "-1", "--vec-env", "dummy",
                    "--hyperparams", "normalize:True", "n_envs:2", "n_steps:64", "batch_size:32"],
                   check=True, capture_output=True)
    run = tmp_path / "logs" / "ppo" / "CartPole-v1_1"
    info = import_teacher(ppo_spec(), tmp_path / "teacher", "smoke", 0, zoo_run=run)

    normalize = VecNormalize.load(run / "CartPole-v1" / "vecnormalize.pkl", make_vec_env("CartPole-v1"))
    model = PPO.load(run / "CartPole-v1.zip")
    policy = Policy.load(tmp_path / "teacher" / "policy")
    assert_same_actions(policy, model, played_states(model, "CartPole-v1", {}, normalize), normalize)
    assert_same_actions(policy, model, random_states(model.observation_space), normalize)
    assert info["source"]["zoo_config"]["normalize"] is True and info["algo"] == "ppo"
    assert info["source"]["vecnormalize_sha256"]


def test_a_zoo_run_whose_preprocessing_the_spec_does_not_reproduce_is_refused(tmp_path):
    params = tmp_path / "run" / "CartPole-v1"
    params.mkdir(parents=True)
    (params / "args.yml").write_text("!!python/object/apply:collections.OrderedDict\n- - - algo\n    - dqn\n"
                                     "  - - env\n    - CartPole-v1\n")
    (params / "config.yml").write_text("!!python/object/apply:collections.OrderedDict\n- - - frame_stack\n    - 4\n")
    DQN("MlpPolicy", "CartPole-v1").save(tmp_path / "run" / "CartPole-v1.zip")
    with pytest.raises(SpecError, match=r"config.yml: frame_stack: the zoo run used 4, while envs/cartpole.yaml"):
        import_teacher(tiny_spec(), tmp_path / "teacher", "smoke", 0, zoo_run=tmp_path / "run")
    assert not (tmp_path / "teacher").exists()


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_model_for_another_env_or_algorithm_is_refused_naming_the_file_and_field(tmp_path):
    DQN("MlpPolicy", "Acrobot-v1").save(tmp_path / "acrobot.zip")
    with pytest.raises(SpecError, match=r"acrobot.zip: observation_space: the model takes \(6,\), envs/cartpole.yaml"):
        import_teacher(tiny_spec(), tmp_path / "teacher", "smoke", 0, tmp_path / "acrobot.zip")
    PPO("MlpPolicy", "CartPole-v1").save(tmp_path / "ppo.zip")
    with pytest.raises(SpecError, match=r"ppo.zip: algo: a ppo agent, while envs/cartpole.yaml's teacher is dqn"):
        import_teacher(tiny_spec(), tmp_path / "teacher", "smoke", 0, tmp_path / "ppo.zip")
    DQN("MlpPolicy", "CartPole-v1").save(tmp_path / "dqn.zip")
    (tmp_path / "stats.pkl").write_bytes(b"not a pickle")
    with pytest.raises(SpecError, match=r"stats.pkl: cannot read VecNormalize statistics"):
        import_teacher(tiny_spec(), tmp_path / "teacher", "smoke", 0, tmp_path / "dqn.zip", tmp_path / "stats.pkl")
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Payload(tmp_path / "pwned")))  # a pickle that would run a command
    with pytest.raises(SpecError, match=r"evil.pkl: .*system is not part of VecNormalize statistics"):
        import_teacher(tiny_spec(), tmp_path / "teacher", "smoke", 0, tmp_path / "dqn.zip", tmp_path / "evil.pkl")
    assert not (tmp_path / "pwned").exists()
    (tmp_path / "not.zip").write_text("not a zip")
    with pytest.raises(SpecError, match="not.zip: not a stable-baselines3 model zip"):
        import_teacher(tiny_spec(), tmp_path / "teacher", "smoke", 0, tmp_path / "not.zip")


def test_the_dag_imports_the_teachers_a_config_names_instead_of_training_them(tmp_path):
    from tests.test_workflow import snakemake

    DQN("MlpPolicy", "CartPole-v1", learning_starts=100, seed=0,
        policy_kwargs={"net_arch": [32, 32]}).learn(1000).save(tmp_path / "agent.zip")
    config = {"profile": "smoke", "envs": ["cartpole"], "seeds": [0], "levels": [0.1],
              "methods": {"dense": None, "distill": None},
              "imported_teachers": {"cartpole": {0: {"model": str(tmp_path / "agent.zip")}}}}
    result = snakemake(tmp_path / "dag", config)
    assert result.returncode == 0, result.stderr[-3000:]
    info = json.loads((tmp_path / "dag/results/teachers/cartpole/0/teacher.json").read_text())
    assert info["source"]["model"] == str(tmp_path / "agent.zip") and info["training_cost"]["env_steps"] == 1000
    table = (tmp_path / "dag/results/table.csv").read_text()
    assert table.count("\ncartpole,") == 2  # dense and distill, on the imported teacher


def test_compress_model_imports_compresses_measures_and_prints_a_table(tmp_path, capsys):
    DQN("MlpPolicy", "CartPole-v1", learning_starts=100, seed=0,
        policy_kwargs={"net_arch": [32, 32]}).learn(1000).save(tmp_path / "agent.zip")
    assert main(["compress-model", "--env", "cartpole", "--model", str(tmp_path / "agent.zip"), "--profile", "smoke",
                 "--methods", "distill", "int8", "--levels", "0.3", "0.1", "--out", str(tmp_path / "out"),
                 "--windows", "2", "--window-ms", "1"]) == 0
    printed = capsys.readouterr().out
    assert "[1/3] distill at level 0.3" in printed and "[3/3] int8 at level 1" in printed  # int8 keeps its size
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert list(summary["method"]) == ["distill", "distill", "int8"] and set(summary["status"]) == {"valid"}
    for row in summary.itertuples():
        metrics = json.loads((tmp_path / "out" / "runs" / row.method / f"{row.level:g}" / "metrics.json").read_text())
        assert row.params_nonzero == metrics["params_nonzero"] and row.flash_bytes == metrics["flash_bytes"]
        assert row.score_low <= row.score <= row.score_high
        assert row.score == pytest.approx(metrics["retention"])
        assert f"{row.score:.3f} [{row.score_low:.3f}, {row.score_high:.3f}]" in printed


def test_the_paired_ratio_is_the_ratio_of_means_and_its_ci_resamples_episodes():
    from policypress.report.stats import paired_ratio_with_ci

    assert paired_ratio_with_ci([2.0, 2.0, 2.0], [4.0, 4.0, 4.0]) == (0.5, 0.5, 0.5)
    student, teacher = np.array([1.0, 3.0, 5.0, 7.0]), np.array([2.0, 2.0, 6.0, 6.0])
    ratio, low, high = paired_ratio_with_ci(student, teacher)
    assert ratio == 16 / 16 and low < ratio < high
    # every bootstrap ratio lies between the smallest and the largest per-episode ratio
    assert min(student / teacher) <= low and high <= max(student / teacher)


def test_a_zoo_atari_agent_plays_the_zoo_preprocessing_and_its_exports_take_its_channels_last_frames(tmp_path):
    """rl_zoo3's own DQN on PongNoFrameskip-v4 (AtariWrapper, channels-last stack of 4), briefly trained,
    imported on the pong_zoo spec: SB3's actions on played and random frames, and the same in C and ONNX."""
    subprocess.run([sys.executable, "-m", "rl_zoo3.train", "--algo", "dqn", "--env", "PongNoFrameskip-v4", "-n", "300",
                    "-f", str(tmp_path / "logs"), "--seed", "0", "--eval-freq", "-1", "--vec-env", "dummy",
                    "--hyperparams", "buffer_size:1000", "learning_starts:100"], check=True, capture_output=True)
    spec = copy.deepcopy(load_env_spec("pong_zoo"))
    spec["env_kwargs"] = {"max_num_frames_per_episode": 800}  # short games: this checks actions, not scores
    import_teacher(spec, tmp_path / "teacher", "smoke", 0, zoo_run=tmp_path / "logs" / "dqn" / "PongNoFrameskip-v4_1")

    policy = Policy.load(tmp_path / "teacher" / "policy")
    model = DQN.load(tmp_path / "logs" / "dqn" / "PongNoFrameskip-v4_1" / "PongNoFrameskip-v4.zip")
    assert policy.obs_shape == (84, 84, 4) and policy.net_input_shape == (4, 84, 84)
    env = make_env(spec)
    obs, _ = env.reset(seed=0)
    played = []
    while len(played) < N:
        played.append(obs)
        obs, _, terminated, truncated, _ = env.step(model.predict(obs, deterministic=True)[0])
        if terminated or truncated:
            obs, _ = env.reset(seed=len(played))
    assert_same_actions(policy, model, np.asarray(played))
    frames = gym.spaces.Box(0, 255, policy.obs_shape, np.uint8)
    assert_same_actions(policy, model, random_states(frames))
    states = np.concatenate([np.asarray(played[::50]), random_states(frames, 20)]).astype(np.float32)
    for run in (c_run, onnx_run):
        outputs, actions = run(policy, states, tmp_path)
        assert_same_computation(policy, states, outputs, actions)


def test_during_training_methods_are_na_beside_an_imported_agent_they_could_not_train(cnn_teacher):
    from policypress.core.harness import not_trainable_here
    from policypress.core.registry import MethodInfo

    during = MethodInfo(name="gmp", summary="s", citation="c", track="during-training")
    post = MethodInfo(name="distill", summary="s", citation="c")
    teacher = Policy.load(cnn_teacher / "policy")
    assert not_trainable_here(during, teacher, "dqn", "dqn") is None
    assert not_trainable_here(during, teacher, None, "dqn") is None  # a teacher trained here
    assert "imported qrdqn agent" in not_trainable_here(during, teacher, "qrdqn", "dqn")
    assert not_trainable_here(post, teacher, "qrdqn", "dqn") is None
    teacher.preprocess.channels_last = True
    assert "channels-last frames" in not_trainable_here(during, teacher, "dqn", "dqn")


def test_the_pong_zoo_spec_gives_the_frames_of_the_zoos_atari_wrapper_and_vecframestack():
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    spec = load_env_spec("pong_zoo")
    ours = make_env(spec)  # registers ALE's ids too
    zoo = VecFrameStack(make_atari_env(spec["gym_id"], n_envs=1, seed=3, wrapper_kwargs=spec["wrappers"][0]["kwargs"]),
                        spec["zoo"]["frame_stack"])
    expected, (obs, _) = zoo.reset(), ours.reset(seed=3)
    actions = np.random.default_rng(0).integers(0, ours.action_space.n, 150)
    for action in actions:
        np.testing.assert_array_equal(obs, expected[0])
        expected, *_ = zoo.step(np.array([action]))
        obs, *_ = ours.step(action)
    np.testing.assert_array_equal(obs, expected[0])
