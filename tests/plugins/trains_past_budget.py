"""Test plugin: a during-training method that runs SB3's DQN on the counted env for ten times its budget."""

from stable_baselines3 import DQN

from policypress.core.registry import MethodInfo

INFO = MethodInfo(name="trains_past_budget", summary="Ignores its env-step budget.", citation="test plugin",
                  track="during-training", uses_level=False)


def compress(task):
    model = DQN("MlpPolicy", task.make_env(), learning_starts=10_000_000, seed=0)
    model.learn(10 * task.budget.env_steps)
    raise AssertionError("unreachable: the counted env stops it")
