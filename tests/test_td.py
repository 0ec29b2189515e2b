"""DQN's TD loss on a Policy: the formula, the teacher's settings, and training through the counted
resources with masks held, the whole update budget spent and no teacher query."""

import numpy as np
import pytest
import torch
from torch import nn

from policypress.compress.distillation import DISTILL_HYPERPARAMETERS
from policypress.compress.pruning import layerwise_magnitude_masks
from policypress.compress.td import SB3_DQN_DEFAULTS, DQNSettings, td_loss, train_td
from policypress.core.budget import Budget, Meter
from policypress.core.harness import build_task, compress_run
from policypress.core.policy import ActionHead, Policy, Preprocess
from policypress.core.registry import load_method
from tests.conftest import check, with_smoke_budget


def identity_q_policy() -> Policy:
    """Q(s) = s: a bias-free identity layer, so every Q-value in the test can be read off."""
    layer = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))
    return Policy(Preprocess((2,)), nn.Sequential(layer), ActionHead("argmax", 2), "q_values")


def test_td_loss_equals_the_huber_loss_of_the_one_step_targets():
    policy = identity_q_policy()
    batch = (torch.tensor([[1.0, 2.0], [0.5, 0.0]]), torch.tensor([1, 0]), torch.tensor([1.0, 1.0]),
             torch.tensor([[3.0, 0.5], [9.0, 9.0]]), torch.tensor([0.0, 1.0]))
    # Sample 1: Q = 2, target 1 + 0.9·3 = 3.7, error 1.7 -> 1.7 - 0.5 = 1.2.
    # Sample 2: terminated, so no bootstrap: Q = 0.5, target 1, error 0.5 -> 0.5·0.5² = 0.125.
    loss = td_loss(policy, policy, batch, gamma=0.9)
    torch.testing.assert_close(loss, torch.tensor((1.2 + 0.125) / 2))


def test_settings_are_the_teachers_with_sb3_defaults(cartpole_spec):
    settings = DQNSettings.of_teacher(cartpole_spec["teacher"])
    hp = cartpole_spec["teacher"]["hyperparameters"]
    assert (settings.learning_rate, settings.batch_size, settings.gamma) == (hp["learning_rate"], hp["batch_size"],
                                                                               hp["gamma"])
    assert settings.target_update_interval == hp["target_update_interval"]
    assert settings.max_grad_norm == SB3_DQN_DEFAULTS["max_grad_norm"]  # not in the spec: SB3's default
    with pytest.raises(ValueError, match="not DQN"):
        DQNSettings.of_teacher({"algo": "ppo", "hyperparameters": {}})


def test_training_spends_the_budget_holds_the_masks_and_asks_no_teacher(cartpole_spec, cartpole_teacher, tmp_path):
    teacher = Policy.load(cartpole_teacher / "policy")
    meter = Meter(Budget(env_steps=300, teacher_queries=100, gradient_updates=120))
    task = build_task(teacher, cartpole_spec, meter, 1.0, 0, DISTILL_HYPERPARAMETERS, tmp_path)
    student = teacher.clone()
    student.masks = layerwise_magnitude_masks(student, 0.8)
    student.apply_masks()
    seen = []
    train_td(task, student, DQNSettings.of_teacher(cartpole_spec["teacher"]), 1000,
             after_update=lambda update, updates: seen.append((update, updates)))
    assert meter.used == {"env_steps": 300, "teacher_queries": 0, "gradient_updates": 120}
    assert seen == [(u, 120) for u in range(1, 121)]
    weights = dict(student.net.named_parameters())
    for name, mask in student.masks.items():
        assert not np.any(weights[name].detach().numpy()[~mask.numpy()])  # masked entries stayed zero


def test_group_sparse_can_train_a_dqn_teacher_with_its_td_loss(cartpole_spec, cartpole_teacher, tmp_path):
    method = load_method("group_sparse")
    hyperparameters = method.resolve_hyperparameters({"rl_loss": True}, "test")
    spec = with_smoke_budget(cartpole_spec, 600, 200)
    result = compress_run(method, spec, "smoke", cartpole_teacher, 0.25, 0, hyperparameters, tmp_path)
    check(result, tmp_path, True)
    assert result["budget"]["used"] == {"env_steps": 600, "teacher_queries": 0, "gradient_updates": 200}


def test_td_learns_from_the_reward_the_teacher_learned_from_and_counts_every_step(cartpole_spec, cartpole_teacher,
                                                                                   tmp_path):
    """The spec's `teacher.train_wrappers` (Atari's reward clipping) wrap the counted env: CartPole's
    reward of 1 clipped to [0, 0.5] is what the replay holds, and every step is still charged."""
    from policypress.compress.td import play_and_update

    clipped = {**cartpole_spec, "teacher": {**cartpole_spec["teacher"], "train_wrappers": [
        {"name": "ClipReward", "kwargs": {"min_reward": 0.0, "max_reward": 0.5}}]}}
    teacher = Policy.load(cartpole_teacher / "policy")
    meter = Meter(Budget(env_steps=200, teacher_queries=0, gradient_updates=20))
    task = build_task(teacher, clipped, meter, 1.0, 0, {}, tmp_path)
    rewards = []
    play_and_update(task, teacher.act, DQNSettings.of_teacher(clipped["teacher"]), 1000, steps=200, slots=20,
                    update=lambda batch, slot, step: rewards.append(batch[2]))
    assert len(rewards) == 20 and torch.all(torch.cat(rewards) == 0.5)
    assert meter.used["env_steps"] == 200
