"""Teacher conversion: the converted Policy must act exactly like SB3's own predict()."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN, PPO, SAC, TD3
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from policypress.core.envs import make_env
from policypress.core.policy import Policy
from policypress.core.sb3 import to_policy

N_OBS = 1000


def played_states(env: gym.Env, n: int, seed: int = 0) -> list[np.ndarray]:
    """`n` states visited by random play."""
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    states = []
    while len(states) < n:
        states.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    return states


def observations(env_id: str, n: int = N_OBS, seed: int = 0) -> np.ndarray:
    """Real states visited by random play, plus random points of the observation box."""
    env = gym.make(env_id)
    states = played_states(env, n // 2, seed)
    rng = np.random.default_rng(seed)
    low = np.clip(env.observation_space.low, -5, 5)
    high = np.clip(env.observation_space.high, -5, 5)
    states.extend(rng.uniform(low, high, size=(n - len(states), *low.shape)))
    return np.asarray(states, dtype=np.float32)


def briefly_trained(algo, env_id, **kwargs):
    """A tiny model with a few updates, so its weights are not at their initial values."""
    model = algo("MlpPolicy", env_id, seed=0, device="cpu", policy_kwargs={"net_arch": [32, 16]}, **kwargs)
    return model.learn(300)


@pytest.mark.parametrize(
    "algo, env_id, kwargs",
    [
        (DQN, "CartPole-v1", {"learning_starts": 50, "train_freq": 4}),
        (PPO, "CartPole-v1", {"n_steps": 64, "batch_size": 32, "n_epochs": 1}),
        (A2C, "Acrobot-v1", {"n_steps": 8}),
        (PPO, "Pendulum-v1", {"n_steps": 64, "batch_size": 32, "n_epochs": 1}),
        (SAC, "Pendulum-v1", {"learning_starts": 50, "buffer_size": 1000}),
        (TD3, "Pendulum-v1", {"learning_starts": 50, "buffer_size": 1000}),
    ],
    ids=["dqn", "ppo-discrete", "a2c", "ppo-continuous", "sac", "td3"],
)
def test_converted_policy_acts_like_sb3_predict(algo, env_id, kwargs, tmp_path):
    model = briefly_trained(algo, env_id, **kwargs)
    obs = observations(env_id)
    expected, _ = model.predict(obs, deterministic=True)

    policy = to_policy(model)
    policy.save(tmp_path / "policy")
    loaded = Policy.load(tmp_path / "policy")  # the artifact round trip, not just the object

    actions = loaded.act(obs)
    if isinstance(model.action_space, gym.spaces.Discrete):
        np.testing.assert_array_equal(actions, expected)
        assert [loaded.act(o) for o in obs[:20]] == [model.predict(o, deterministic=True)[0] for o in obs[:20]]
    else:
        np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-5)


def test_vecnormalize_statistics_go_into_the_policy():
    venv = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    model = PPO("MlpPolicy", venv, seed=0, n_steps=64, batch_size=32, n_epochs=1, device="cpu").learn(256)
    assert venv.obs_rms.count > 100
    obs = observations("CartPole-v1")
    expected, _ = model.predict(venv.normalize_obs(obs), deterministic=True)
    np.testing.assert_array_equal(to_policy(model, venv).act(obs), expected)


def test_converted_policy_does_not_share_weights_with_the_model():
    model = briefly_trained(DQN, "CartPole-v1", learning_starts=50)
    policy = to_policy(model)
    with torch.no_grad():
        for param in policy.parameters():
            param.zero_()
    assert any(p.abs().sum() > 0 for p in model.q_net.parameters())


@pytest.mark.parametrize("env_name, short_run", [
    ("pong", {"buffer_size": 500, "learning_starts": 100}),
    ("pong_ppo", {"n_steps": 64, "batch_size": 64, "n_epochs": 1}),
])
def test_shipped_atari_specs_build_image_observations_and_their_cnn_teachers_convert_exactly(env_name, short_run):
    """The DQN (Nature CNN Q-network) and PPO (Nature CNN actor) Atari teachers, briefly trained
    with their spec's hyperparameters, act exactly as SB3 predicts on played and random frames."""
    from policypress.core.sb3 import ALGORITHMS, sb3_kwargs
    from policypress.core.specs import load_env_spec

    spec = load_env_spec(env_name)
    env = make_env(spec, teacher_training=True)
    assert env.observation_space.shape == (4, 84, 84)
    hyperparameters = {**spec["teacher"]["hyperparameters"], **short_run}
    model = ALGORITHMS[spec["teacher"]["algo"]](spec["teacher"]["policy"], env, seed=0, device="cpu",
                                                 **sb3_kwargs(hyperparameters))
    model.learn(300)
    obs, _ = env.reset(seed=0)
    states = [obs]
    for _ in range(199):
        obs, *_ = env.step(env.action_space.sample())
        states.append(obs)
    rng = np.random.default_rng(0)
    states = np.concatenate([np.asarray(states), rng.integers(0, 256, size=(800, 4, 84, 84), dtype=np.uint8)])
    expected, _ = model.predict(states, deterministic=True)
    policy = to_policy(model)
    assert policy.preprocess.scale == 1 / 255
    assert [type(m).__name__ for m in policy.net][:4] == ["Conv2d", "ReLU", "Conv2d", "ReLU"]
    np.testing.assert_array_equal(policy.act(states), expected)


@pytest.mark.parametrize("env_name, shape", [("minatar_breakout", (4, 10, 10)),
                                             ("minatar_space_invaders", (6, 10, 10))])
def test_minatar_teachers_have_the_papers_cnn_convert_exactly_and_export_to_c(env_name, shape, tmp_path):
    """A MinAtar DQN teacher with Young & Tian's CNN (one 3 x 3 convolution of 16 filters, then 128
    units), briefly trained with its spec's hyperparameters, acts as SB3 predicts on played and random
    grids, and its C export computes the same."""
    from policypress.core.sb3 import build_model
    from policypress.core.specs import load_env_spec
    from tests.test_export import assert_same_computation, c_run

    spec = load_env_spec(env_name)
    model = build_model(spec["teacher"], lambda: make_env(spec, teacher_training=True), seed=0,
                        learning_starts=100, buffer_size=1000)
    model.learn(400)
    states = played_states(make_env(spec), N_OBS // 2)
    grids = np.random.default_rng(0).random((N_OBS // 2, *shape)) < 0.1
    states = np.concatenate([np.asarray(states), grids.astype(np.float32)])
    policy = to_policy(model)
    assert policy.obs_shape == shape
    assert [type(m).__name__ for m in policy.net] == ["Conv2d", "ReLU", "Flatten", "Linear", "ReLU", "Linear"]
    assert (policy.net[0].out_channels, policy.net[0].kernel_size, policy.net[3].out_features) == (16, (3, 3), 128)
    np.testing.assert_array_equal(policy.act(states), model.predict(states, deterministic=True)[0])
    assert_same_computation(policy, states, *c_run(policy, states, tmp_path))


def test_highway_teacher_converts_exactly_and_exports_to_c(tmp_path):
    """highway-fast's DQN (256-256 MLP on the 5 x 5 Kinematics observation), briefly trained with its
    spec's hyperparameters, acts as SB3 predicts on played and random observations, and its C export
    computes the same."""
    from policypress.core.sb3 import build_model
    from policypress.core.specs import load_env_spec
    from tests.test_export import assert_same_computation, c_run

    spec = load_env_spec("highway_fast")
    model = build_model(spec["teacher"], lambda: make_env(spec, teacher_training=True), seed=0, learning_starts=50)
    model.learn(100)
    played = np.asarray(played_states(make_env(spec), 100))
    states = np.concatenate([played, np.random.default_rng(0).uniform(-1, 1, (400, 5, 5))]).astype(np.float32)
    policy = to_policy(model)
    assert [type(m).__name__ for m in policy.net] == ["Flatten", "Linear", "ReLU", "Linear", "ReLU", "Linear"]
    np.testing.assert_array_equal(policy.act(states), model.predict(states, deterministic=True)[0])
    assert_same_computation(policy, states, *c_run(policy, states, tmp_path))


def test_mujoco_spec_with_a_td3_teacher_validates():
    from policypress.core.envs import action_space_kind
    from policypress.core.specs import load_env_spec, validate

    teacher = {"algo": "td3", "policy": "MlpPolicy", "timesteps": {"smoke": 1, "quick": 1, "full": 1},
               "hyperparameters": {"policy_kwargs": {"net_arch": [400, 300]}}}
    spec = {**load_env_spec("hopper"), "teacher": teacher}
    validate(spec, "env", "hopper (test)")
    assert action_space_kind(make_env(spec).action_space) == "continuous"


def test_the_teacher_is_the_best_checkpoint_on_validation_seeds(cartpole_spec, cartpole_teacher):
    import json

    from policypress.core.envs import VALIDATION_SEED_OFFSET
    from policypress.measure.evaluate import policy_returns

    info = json.loads((cartpole_teacher / "teacher.json").read_text())
    history = info["checkpoints"]
    count = cartpole_spec["teacher"]["checkpoints"]["count"]
    steps = [h["step"] for h in history]
    assert steps[:-1] == [info["timesteps"] * (i + 1) // count for i in range(count - 1)]
    assert steps[-1] >= info["timesteps"]  # the final model (SB3 may finish its last rollout past the total)
    assert info["validation_return"] == max(h["validation_return"] for h in history)
    policy = Policy.load(cartpole_teacher / "policy")
    seeds = [VALIDATION_SEED_OFFSET + i for i in range(cartpole_spec["teacher"]["checkpoints"]["episodes"])]
    assert np.mean(policy_returns(policy, cartpole_spec, seeds)) == info["validation_return"]
    assert min(info["eval_seeds"]) >= 1_000_000 > max(seeds)


def test_episodes_played_side_by_side_are_the_episodes_played_one_at_a_time(cartpole_spec, cartpole_teacher,
                                                                            monkeypatch):
    """Evaluation batches its episodes (in groups: 3 here), yet each seed plays exactly its own episode."""
    from policypress.measure import evaluate

    monkeypatch.setattr(evaluate, "SIDE_BY_SIDE", 3)
    policy, seeds = Policy.load(cartpole_teacher / "policy"), [1_000_000 + i for i in range(7)]

    def alone(act) -> list[float]:
        returns = []
        for seed in seeds:
            env = make_env(cartpole_spec)
            env.action_space.seed(seed)
            obs, _ = env.reset(seed=seed)
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(act(env, obs))
                total, done = total + reward, terminated or truncated
            returns.append(total)
        return returns

    assert evaluate.policy_returns(policy, cartpole_spec, seeds) == alone(lambda _env, obs: policy.act(obs))
    assert evaluate.random_returns(cartpole_spec, seeds) == alone(lambda env, _obs: env.action_space.sample())


def test_the_device_is_recorded_and_auto_takes_the_cpu_without_a_gpu(cartpole_teacher):
    import json

    info = json.loads((cartpole_teacher / "teacher.json").read_text())  # trained with device="auto"
    assert info["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


def test_a_teacher_below_its_floor_is_recorded_and_logged(caplog):
    from policypress.teachers import floor_check

    spec = {"floor": {"return": 200, "source": "solved"}}
    assert floor_check(spec, 250.0, "lunarlander", 0) == {"floor": 200, "meets_floor": True}
    with caplog.at_level("WARNING", logger="policypress.teachers"):
        assert floor_check(spec, 157.0, "lunarlander", 1) == {"floor": 200, "meets_floor": False}
    assert "lunarlander/1 is below its floor: validation return 157.0 < 200 (solved)" in caplog.text
    assert floor_check({}, 157.0, "lunarlander", 1) == {}  # no floor stated: nothing to check
