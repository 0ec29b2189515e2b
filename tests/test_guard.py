"""The guard in a method's process: the routes around the counters are refused or charged, the
teacher's copy runs only through the oracle, and the rules lapse when the run ends. The cheating
plugins themselves, through the harness, are in tests/test_harness.py."""

import gymnasium as gym
import pytest
import torch

from policypress.core.budget import Budget, BudgetExceeded, CountedEnv, Meter, UncountedUse, optimizer_factory
from policypress.core.guard import ANALYSIS_PASSES, PASSES_PER_UPDATE, Observed, enforced, permitted, seal
from policypress.core.policy import Policy


def meter(updates: int = 10) -> Meter:
    return Meter(Budget(env_steps=10, teacher_queries=10, gradient_updates=updates))


def test_the_teacher_copy_runs_only_through_the_oracle_and_its_clone_is_free(cartpole_teacher):
    counter = meter()
    teacher = seal(Policy.load(cartpole_teacher / "policy"), counter)
    obs = torch.zeros(3, *teacher.obs_shape)
    routes = (lambda: teacher(obs), lambda: teacher.net(obs), lambda: teacher.net[0](obs), lambda: teacher.act(obs))
    for route in routes:
        with pytest.raises(UncountedUse, match=r"ran task.teacher's network: .* task.oracle\(observations\)"):
            route()
    assert teacher.head(torch.tensor([[0.0, 1.0]])).tolist() == [1]  # outputs to actions is no teacher query
    student = teacher.clone()
    assert student(obs).shape == (3, 2)  # the method's own copy runs, and the teacher stays sealed
    with pytest.raises(UncountedUse):
        teacher(obs)
    assert counter.uncounted.startswith("uncounted use: ran task.teacher's network")


def test_envs_come_only_from_the_task_and_their_inner_env_refuses_uncounted_steps():
    counter = meter()
    with enforced(counter):
        env = permitted(lambda: CountedEnv(gym.make("CartPole-v1"), counter, 1_000_000))()
        env.reset(seed=0)
        env.step(0)
        wrapped = gym.wrappers.RecordEpisodeStatistics(env)  # a wrapper steps the counted env: free to make
        wrapped.step(0)
        for route in (lambda: gym.make("CartPole-v1"), lambda: gym.make_vec("CartPole-v1", 2),
                      lambda: gym.make_vec("CartPole-v1", 2, vectorization_mode="sync"),
                      lambda: gym.envs.classic_control.CartPoleEnv()):
            with pytest.raises(UncountedUse, match=r"created an environment \(\w+\) outside task.make_env\(\)"):
                route()
        for route in (lambda: env.unwrapped.step(0), lambda: env.env.step(0)):
            with pytest.raises(UncountedUse, match="stepped a task env around its counter"):
                route()
        with pytest.raises(ValueError, match="held out for evaluation"):
            env.unwrapped.reset(seed=1_000_000)
    assert counter.used["env_steps"] == 2
    gym.make("CartPole-v1").close()  # outside a run the rules lapse


class NoOpsOnReset(gym.Wrapper):
    """Steps its env inside reset, as Atari's no-op starts do."""

    def reset(self, **kwargs):
        self.env.reset(**kwargs)
        return self.env.step(0)[0], {}


def test_steps_a_wrapper_takes_inside_a_reset_are_part_of_the_reset():
    counter = meter()
    with enforced(counter):
        env = permitted(lambda: CountedEnv(NoOpsOnReset(gym.make("CartPole-v1")), counter, 1_000_000))()
        env.reset(seed=0)
        env.step(0)
    assert counter.used["env_steps"] == 1 and counter.uncounted is None


def test_every_optimizer_step_is_charged_once_whoever_made_the_optimizer():
    counter = meter(updates=5)
    weight = torch.nn.Parameter(torch.ones(2))
    with enforced(counter) as observed:
        counted = optimizer_factory(counter)([weight], "sgd", lr=0.1)
        counted.step()  # charged by the task's hook only
        own = torch.optim.SGD([weight], lr=0.1)
        for _ in range(4):
            own.step()
        with pytest.raises(BudgetExceeded, match=r"would reach 6 > limit 5 \(a step of an optimizer not made by "
                                                 r"task.make_optimizer\)"):
            own.step()
    assert counter.used["gradient_updates"] == 5 and observed.optimizer_steps == 6
    torch.optim.SGD([weight], lr=0.1).step()  # outside a run: not charged
    assert counter.used["gradient_updates"] == 5


def test_gradient_passes_are_observed_and_judged_against_the_counted_updates():
    weight = torch.nn.Parameter(torch.ones(2))
    with enforced(meter()) as observed:
        (weight ** 2).sum().backward()
        torch.autograd.grad((weight ** 2).sum(), weight)
    assert observed.gradient_passes == 2
    (weight ** 2).sum().backward()  # after the run: not observed
    assert observed.gradient_passes == 2
    updates = 7
    limit = Observed()
    limit.gradient_passes = PASSES_PER_UPDATE * updates + ANALYSIS_PASSES
    assert limit.overuse({"gradient_updates": updates}) is None
    limit.gradient_passes += 1
    assert limit.overuse({"gradient_updates": updates}) == (
        "115 gradient passes, but 7 counted gradient updates explain at most 114 "
        "(parameters updated without a counted optimizer step)")
