"""The during-training track: stable-baselines3's own algorithms from random weights, on the teacher's
training cost plus the compression budget, with masks held after every gradient step."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from policypress.compress.pruning import erk_masks, weight_count, weight_layers
from policypress.compress.rl_training import deployed, train_agent
from policypress.core.budget import Budget, Meter
from policypress.core.harness import build_task, interaction, run_budget
from policypress.core.io import read_json
from policypress.core.params import params
from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo, load_method
from policypress.core.sb3 import actor_optimizer
from policypress.core.specs import load_env_spec
from tests.conftest import check, pendulum_spec, plugin
from tests.test_harness import run

DURING = MethodInfo(name="during", summary="s", citation="c", track="during-training")
POST = MethodInfo(name="post", summary="s", citation="c")


def test_a_teacher_records_what_its_training_spent(cartpole_teacher, cartpole_spec):
    # SB3's DQN collects train_freq (256) steps per round, so 1,500 steps end at 1,536; every round
    # after learning_starts (200) makes gradient_steps (128) updates: six rounds.
    assert read_json(cartpole_teacher / "teacher.json")["training_cost"] == {"env_steps": 1536,
                                                                            "gradient_updates": 6 * 128}


def test_the_run_budget_is_the_teachers_cost_plus_the_compression_budget_for_each_network():
    budget, cost = Budget(400, 400, 50), {"env_steps": 1536, "gradient_updates": 768}
    assert run_budget(POST, budget, cost) == budget
    assert run_budget(DURING, budget, cost) == Budget(1936, 0, 818)
    assert run_budget(DURING, budget, cost, networks=5) == Budget(1936, 0, 5 * 818)
    with pytest.raises(ValueError, match="training_cost is missing"):
        run_budget(DURING, budget, None)
    used = {"env_steps": 10, "teacher_queries": 3, "gradient_updates": 7}
    assert interaction(DURING, used, cost) == used  # its own use is all of it
    assert interaction(POST, used, cost) == {"env_steps": 1546, "teacher_queries": 3, "gradient_updates": 775}
    assert interaction(POST, used, None) is None


@pytest.mark.parametrize("method, networks", [("gmp", 1), ("dense_small", 1), ("eaudeqn", 5), ("group_sparse_rl", 1)])
def test_during_training_spends_at_most_the_teachers_cost_plus_the_budget(method, networks, cartpole_spec,
                                                                          cartpole_teacher, tmp_path):
    result = run(method, cartpole_spec, cartpole_teacher, tmp_path / method, level=0.1)
    check(result, tmp_path / method, level_ceiling_structural=method in ("dense_small", "group_sparse_rl"))
    cost, budget = read_json(cartpole_teacher / "teacher.json")["training_cost"], cartpole_spec["budget"]["smoke"]
    limit, used = result["budget"]["limit"], result["budget"]["used"]
    assert limit == {"env_steps": cost["env_steps"] + budget["env_steps"], "teacher_queries": 0,
                     "gradient_updates": networks * (cost["gradient_updates"] + budget["gradient_updates"])}
    assert used["teacher_queries"] == 0 and used["env_steps"] > cost["env_steps"]  # it trained as long as the teacher
    assert result["track"] == "during-training" and result["interaction"] == used
    engagement = Policy.load(tmp_path / method / "policy").metadata["engagement"]
    assert engagement and all(isinstance(value, (bool, int, float)) for value in engagement.values())


def test_a_post_training_run_counts_the_teachers_training_in_its_interaction(cartpole_spec, cartpole_teacher,
                                                                             tmp_path):
    result = run("dense", cartpole_spec, cartpole_teacher, tmp_path / "dense")
    assert result["track"] == "post-training" and result["level_free"]
    teacher_cost = read_json(cartpole_teacher / "teacher.json")["training_cost"]
    assert result["interaction"] == {"teacher_queries": 0, **teacher_cost}


@pytest.mark.parametrize("plugin_name, reason", [
    ("trains_past_budget", "budget exceeded: env_steps would reach "),
    ("asks_the_teacher", "budget exceeded: teacher_queries would reach 1 > limit 0"),
])
def test_a_during_training_method_cannot_spend_more_or_ask_the_teacher(plugin_name, reason, cartpole_spec,
                                                                       cartpole_teacher, tmp_path):
    result = run(plugin_name, cartpole_spec, cartpole_teacher, tmp_path / plugin_name)
    assert result["status"] == "invalid" and result["reason"].startswith(reason)
    assert all(result["budget"]["used"][k] <= v for k, v in result["budget"]["limit"].items())


def tiny_ppo_spec(cartpole_spec: dict) -> dict:
    teacher = {"algo": "ppo", "policy": "MlpPolicy", "timesteps": {"smoke": 256, "quick": 1, "full": 1},
               "hyperparameters": {"n_steps": 64, "batch_size": 32, "n_epochs": 2,
                                   "policy_kwargs": {"net_arch": [16, 16]}}}
    return {**cartpole_spec, "teacher": teacher}


def sb3_task(spec: dict, teacher_dir, tmp_path, env_steps: int, updates: int):
    teacher = Policy.load(teacher_dir / "policy")
    meter = Meter(Budget(env_steps=env_steps, teacher_queries=0, gradient_updates=updates))
    return build_task(teacher, spec, meter, 0.5, 0, {}, tmp_path, track="during-training")


@pytest.mark.parametrize("algo", ["dqn", "ppo", "sac"])
def test_masks_hold_after_every_sb3_gradient_step_and_the_sparse_actor_acts_as_sb3_predicts(
        algo, cartpole_spec, cartpole_teacher, pendulum_teacher, tmp_path):
    spec, teacher_dir = {"dqn": (cartpole_spec, cartpole_teacher), "ppo": (tiny_ppo_spec(cartpole_spec),
                         cartpole_teacher), "sac": (pendulum_spec(), pendulum_teacher)}[algo]
    task = sb3_task(spec, teacher_dir, tmp_path, env_steps=600, updates=10_000)
    checked = []

    def start(model, live):
        live.masks = erk_masks(live, weight_count(live) // 4)

        def masked_weights_are_zero(*_):
            named = dict(live.net.named_parameters())
            checked.append(all(not named[name][~mask].any() for name, mask in live.masks.items()))

        actor_optimizer(model).register_step_post_hook(masked_weights_are_zero)  # after train_agent's own hook

    model, live, _ = train_agent(task, on_start=start)
    assert len(checked) > 10 and all(checked)
    policy = deployed(model, live)
    assert params(policy)[1] <= params(policy)[0] - 3 * weight_count(policy) // 4 + len(weight_layers(policy))
    # 1,000 states the agent met (SB3's buffers), and the deployed actor's actions on them.
    if algo == "ppo":
        states = model.rollout_buffer.observations.reshape(-1, *policy.obs_shape)
        states = np.concatenate([states] * (1000 // len(states) + 1))[:1000]
    else:
        states = model.replay_buffer.observations[:1000, 0]
    assert len(states) == 1000
    expected = model.predict(states, deterministic=True)[0]
    if policy.is_discrete:
        assert np.array_equal(policy.act(states), expected)
    else:
        np.testing.assert_allclose(policy.act(states), expected, atol=1e-5)


def test_training_stops_before_a_round_would_overdraw_the_updates(cartpole_spec, cartpole_teacher, tmp_path):
    task = sb3_task(cartpole_spec, cartpole_teacher, tmp_path, env_steps=5000, updates=300)  # 2 rounds of 128 fit
    train_agent(task)
    assert task.remaining("gradient_updates") == 300 - 2 * 128
    assert task.remaining("env_steps") < 5000 - 2 * 256


def test_the_first_round_is_guarded_too_a_budget_below_one_round_trains_nothing(cartpole_spec, cartpole_teacher,
                                                                                   tmp_path):
    task = sb3_task(cartpole_spec, cartpole_teacher, tmp_path, env_steps=5000, updates=100)  # a round takes 128
    train_agent(task)
    assert task.remaining("gradient_updates") == 100  # before: the first round overdrew, and the meter refused it


@pytest.mark.parametrize("algo, env_id, kwargs, per_round", [
    ("dqn", "CartPole-v1", {"gradient_steps": 3}, 3),
    ("ppo", "CartPole-v1", {"n_steps": 64, "batch_size": 48, "n_epochs": 2}, 2 * 2),
    ("a2c", "CartPole-v1", {}, 1),
    ("sac", "Pendulum-v1", {"gradient_steps": 2}, 2 * 3),
    ("sac", "Pendulum-v1", {"gradient_steps": 2, "ent_coef": 0.1}, 2 * 2),
    ("td3", "Pendulum-v1", {"gradient_steps": 3, "policy_delay": 2}, 3 + 2),
])
def test_a_round_is_predicted_from_the_hyperparameters_as_the_optimizer_steps_it_takes(algo, env_id, kwargs,
                                                                                     per_round):
    from policypress.core.sb3 import ALGORITHMS, count_optimizer_steps, optimizer_steps_per_round

    model = ALGORITHMS[algo]("MlpPolicy", env_id, seed=0, policy_kwargs={"net_arch": [8]},
                             **({"learning_starts": 0, "train_freq": 4} if algo in ("dqn", "sac", "td3") else {}),
                             **kwargs)
    assert optimizer_steps_per_round(model) == per_round
    with count_optimizer_steps() as steps:
        model.learn(model.n_steps if algo in ("ppo", "a2c") else 4)  # exactly one round
    assert steps.count <= per_round and (steps.count == per_round or algo == "td3")  # TD3's actor: every 2nd


def test_gmp_masks_follow_the_cubic_schedule_between_20_and_80_percent(cartpole_teacher):
    actor = Policy.load(cartpole_teacher / "policy")
    module = plugin("gmp")
    ceiling = params(actor)[0] // 10
    masks = module.GradualMasks(ceiling, {**module.INFO.hyperparameters, "mask_every": 1})
    total = weight_count(actor)
    final = 1 - (ceiling - (params(actor)[0] - total)) / total
    for progress in (0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9):
        masks(actor, progress)
        expected = 0.0 if progress <= 0.2 else final * (1 - (1 - (min(progress, 0.8) - 0.2) / 0.6) ** 3)
        assert masks.sparsity == pytest.approx(expected), progress
    assert masks.completed and masks.mask_updates == 5  # from 20% to 80%; after it the masks are final
    assert params(actor)[1] <= ceiling


def test_eaudeqn_makes_the_minimum_loss_network_the_target_and_never_lowers_the_sparsity(cartpole_spec,
                                                                                        cartpole_teacher, tmp_path):
    module = plugin("eaudeqn")
    task = sb3_task(cartpole_spec, cartpole_teacher, tmp_path, env_steps=100, updates=10_000)
    task.hyperparameters.update(module.INFO.hyperparameters, max_speed=0.2)
    model, _, _ = train_agent(task, algo=module.EauDeDQN,
                              on_start=lambda model, live: setattr(model, "search", module.Search(task, model, live)))
    search = model.search
    density = module.weight_density
    search.updates_since = 1
    search.losses = [3.0, 2.0, 1.0, 4.0, 5.0]  # network 2 fits best
    search.select()
    assert search.history == [pytest.approx(0.1, abs=1e-3)] and search.sparser_choices == 1
    assert density(search.online[0]) == pytest.approx(0.9, abs=1e-3)  # network 0 (SB3's, which plays) took it
    assert [density(net) for net in search.online] == pytest.approx([0.9, 0.85, 0.8, 0.75, 0.7], abs=1e-3)
    assert torch.equal(search.online[0].net[1].weight, search.model.q_net.q_net[0].weight)
    search.losses, search.updates_since = [0.5, 1.0, 2.0, 3.0, 4.0], 1  # the densest fits best: the sparsity holds
    search.select()
    search.losses, search.updates_since = [5.0, 4.0, 3.0, 2.0, 1.0], 0  # no update since: no selection
    search.select()
    assert search.history == [pytest.approx(0.1, abs=1e-3)] * 2


def test_the_result_is_the_best_validated_checkpoint_within_the_ceiling_the_later_on_ties(cartpole_spec,
                                                                                          cartpole_teacher, tmp_path):
    spec = {**cartpole_spec, "teacher": {**cartpole_spec["teacher"], "checkpoints": {"count": 4, "episodes": 1}}}
    task = sb3_task(spec, cartpole_teacher, tmp_path, env_steps=1200, updates=10_000)
    scores = iter([10.0, 30.0, 30.0, 5.0])  # the second and third tie: the third wins
    seen = []

    def validate(policy):
        seen.append(policy)
        return next(scores)

    task.validate, task.max_params = validate, 10**9
    model, live, guard = train_agent(task)
    result = guard.result(deployed(model, live))
    assert len(seen) == 4 and result is seen[2]  # 4 evenly spaced checkpoints, the last at the end, as the teacher's
    assert result.metadata["validation_return"] == 30.0 and len(result.metadata["checkpoints"]) == 4
    # A checkpoint over the level's ceiling is never validated, nor chosen.
    task = sb3_task(spec, cartpole_teacher, tmp_path, env_steps=1200, updates=10_000)
    task.max_params, task.validate = 10, validate
    model, live, guard = train_agent(task)
    final = deployed(model, live)
    assert guard.result(final) is final and len(seen) == 4


def test_validation_plays_the_validation_episodes_and_is_capped_at_the_teachers_checkpoints(cartpole_spec,
                                                                                          cartpole_teacher):
    from policypress.core.envs import VALIDATION_SEED_OFFSET, Validator
    from policypress.measure.evaluate import policy_returns

    teacher = Policy.load(cartpole_teacher / "policy")
    validate = Validator(cartpole_spec, episodes=2, calls=2)
    expected = np.mean(policy_returns(teacher, cartpole_spec, [VALIDATION_SEED_OFFSET, VALIDATION_SEED_OFFSET + 1]))
    assert validate(teacher) == validate(teacher) == expected
    with pytest.raises(RuntimeError, match="validation refused"):
        validate(teacher)


def test_ten_checkpoints_make_ten_validations_when_the_budget_runs_out_exactly(cartpole_spec, cartpole_teacher,
                                                                               tmp_path):
    """1/10 does not add up to 1: the checkpoints are counted, so a run that drains its env steps makes
    as many validations as the teacher had checkpoints, and the validator never refuses one."""
    spec = {**cartpole_spec, "teacher": {**cartpole_spec["teacher"], "checkpoints": {"count": 10, "episodes": 1}}}
    task = sb3_task(spec, cartpole_teacher, tmp_path, env_steps=600, updates=10_000)
    task.max_params = 10**9
    model, live, guard = train_agent(task)
    assert task.remaining("env_steps") == 0
    guard.result(deployed(model, live))
    assert len(guard.history) == 10 and task.validate.calls == 0


def test_a_during_training_task_holds_no_teacher_and_its_oracle_refuses(cartpole_spec, cartpole_teacher, tmp_path):
    task = sb3_task(cartpole_spec, cartpole_teacher, tmp_path, env_steps=10, updates=10)
    assert task.teacher is None and not hasattr(task.oracle, "_teacher")
    from policypress.core.budget import BudgetExceeded

    with pytest.raises(BudgetExceeded, match="teacher_queries would reach 1 > limit 0"):
        task.oracle(np.zeros((1, 4), dtype=np.float32))


def test_sb3_schedules_span_the_steps_the_updates_afford_at_the_teachers_ratio(cartpole_spec, cartpole_teacher,
                                                                                tmp_path):
    task = sb3_task(cartpole_spec, cartpole_teacher, tmp_path, env_steps=20_000, updates=1_000)
    task.teacher_cost = {"env_steps": 1536, "gradient_updates": 768}  # the teacher: an update per 2 env steps
    model, _, guard = train_agent(task)
    assert model._total_timesteps == 2000  # 1,000 updates afford 2,000 steps, not the 20,000 of the budget
    assert 0 < guard.spent_steps() <= 2000 and 0.8 < guard.progress() <= 1.0  # stopped a round short of 1,000


def test_group_sparse_rls_centred_rmsprop_is_pytorchs_and_stays_finite_where_pytorchs_turns_nan():
    CenteredRMSprop = load_method("group_sparse_rl").module.CenteredRMSprop
    options = {"lr": 2.5e-4, "alpha": 0.95, "eps": 0.01, "centered": True}  # MinAtar's DQN
    generator = torch.Generator().manual_seed(0)
    start = torch.randn(64, 8, generator=generator)
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    optimizers = CenteredRMSprop([ours], **options), torch.optim.RMSprop([theirs], **options)
    for _ in range(300):  # noisy gradients: the variance stays positive, and every step is PyTorch's, bit for bit
        grad = torch.randn(64, 8, generator=generator)
        for weight, optimizer in zip((ours, theirs), optimizers, strict=True):
            weight.grad = grad.clone()
            optimizer.step()
        assert torch.equal(ours, theirs)
    # The regularizer's gradient on a dead unit: the same direction step after step. Its variance
    # rounds below zero, and PyTorch's square root of it is NaN.
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    optimizers = CenteredRMSprop([ours], **options), torch.optim.RMSprop([theirs], **options)
    for _ in range(500):
        for weight, optimizer in zip((ours, theirs), optimizers, strict=True):
            weight.grad = 1e-2 * weight.detach() / weight.detach().norm()
            optimizer.step()
    assert torch.isfinite(ours).all() and torch.isnan(theirs).any()
    with pytest.raises(ValueError, match="only centered=True"):
        CenteredRMSprop([ours], lr=1e-3, momentum=0.9, centered=True).step()


def test_group_sparse_rl_replaces_only_a_centred_rmsprop():
    module = load_method("group_sparse_rl").module
    for env, replaced in (("minatar_breakout", True), ("minatar_space_invaders", True), ("cartpole", False),
                          ("hopper_ppo", False), ("highway_fast", False)):
        task = SimpleNamespace(teacher_training=load_env_spec(env)["teacher"])
        expected = {"policy_kwargs": {"optimizer_class": module.CenteredRMSprop}} if replaced else {}
        assert module.optimizer_overrides(task) == expected, env
