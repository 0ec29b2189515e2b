"""Distillation: the loss is the stated formula; training stays in budget and keeps masks."""

import math

import numpy as np
import pytest
import torch

from policypress.compress.architecture import hidden_widths, resized, resized_spec, spec_param_count, uniformly_shrunk
from policypress.compress.distillation import (
    DISTILL_HYPERPARAMETERS,
    PARALLEL_ENVS,
    Collector,
    DistillConfig,
    LabelledStates,
    distill,
    distillation_loss,
)
from policypress.core.budget import Budget, BudgetExceeded, Meter
from policypress.core.harness import build_task
from policypress.core.params import params
from policypress.core.policy import Policy
from tests.test_metrics import cnn


def test_kl_loss_equals_the_formula_with_temperature():
    teacher = torch.tensor([[1.0, 1.02, 0.9]])
    student = torch.tensor([[0.2, 0.5, -0.1]])
    tau = 0.01
    p = torch.softmax(teacher / tau, -1)
    expected = (p * (p.log() - torch.log_softmax(student, -1))).sum()
    torch.testing.assert_close(distillation_loss(student, teacher, "q_values", tau), expected)


def test_continuous_actions_use_mse():
    loss = distillation_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 1.0]]), "action", 0.01)
    assert math.isclose(loss.item(), 0.5)


def test_distill_spends_exactly_its_budget_and_keeps_masks(cartpole_spec, cartpole_teacher, tmp_path):
    teacher = Policy.load(cartpole_teacher / "policy")
    budget = Budget(env_steps=300, teacher_queries=250, gradient_updates=40)
    meter = Meter(budget)
    task = build_task(teacher, cartpole_spec, meter, 1.0, 0, DISTILL_HYPERPARAMETERS, tmp_path)
    student = teacher.clone()
    generator = torch.Generator().manual_seed(0)
    student.masks = {"1.weight": torch.rand(student.net[1].weight.shape, generator=generator) > 0.5}
    student.apply_masks()
    config = DistillConfig.from_hyperparameters(task.hyperparameters, student.output)
    distill(task, student, config)
    # states are limited by the smaller of env steps and teacher queries
    assert meter.used == {"env_steps": 250, "teacher_queries": 250, "gradient_updates": 40}
    assert torch.all(student.net[1].weight[~student.masks["1.weight"]] == 0)


def test_side_by_side_collection_charges_each_step_and_query_and_stops_an_overdraft_at_limit_plus_one(
        cartpole_spec, cartpole_teacher, tmp_path):
    teacher = Policy.load(cartpole_teacher / "policy")
    meter = Meter(Budget(env_steps=20, teacher_queries=100, gradient_updates=0))
    task = build_task(teacher, cartpole_spec, meter, 1.0, 0, DISTILL_HYPERPARAMETERS, tmp_path)
    collector, buffer = Collector(task), LabelledStates(100)
    collector.collect(teacher, 11, 0.5, buffer)  # a whole batch of envs, then 3 of them
    assert meter.used["env_steps"] == meter.used["teacher_queries"] == len(buffer) == 11 < PARALLEL_ENVS * 2
    with pytest.raises(BudgetExceeded, match="env_steps would reach 21 > limit 20"):
        collector.collect(teacher, 10, 0.5, buffer)
    assert meter.used["env_steps"] == 20  # charged one by one up to the limit, never past it
    torch.testing.assert_close(buffer.labels[:11], teacher(buffer.obs[:11]).detach())  # each state, its own label


def test_temperature_follows_the_output_kind():
    hp = dict(DISTILL_HYPERPARAMETERS)
    assert DistillConfig.from_hyperparameters(hp, "q_values").temperature == 0.01
    assert DistillConfig.from_hyperparameters(hp, "logits").temperature == 1.0


def test_uniform_shrinking_fits_the_ceiling_and_keeps_the_interface(cartpole_teacher):
    teacher = Policy.load(cartpole_teacher / "policy")
    for max_params in (200, 500, params(teacher)[0] // 3):
        student = uniformly_shrunk(teacher, max_params)
        assert params(student)[0] <= max_params
        wider = resized(teacher, [w + 1 for w in hidden_widths(student)])
        assert params(wider)[0] > max_params  # the bisection found the widest uniform student
        assert student.obs_shape == teacher.obs_shape and student.head.spec() == teacher.head.spec()


def test_resizing_a_cnn_recomputes_the_flatten_fan_in():
    policy = cnn()
    student = resized(policy, [2, 3])
    assert student.net[0].out_channels == 2 and student.net[2].in_channels == 2
    assert student.net[5].in_features == 3 * 4 * 4
    assert student(torch.zeros(1, 3, 10, 10)).shape == (1, 5)
    assert student.preprocess.scale == policy.preprocess.scale


def test_parameter_count_of_a_spec_equals_the_built_network():
    for policy in (cnn(), resized(cnn(), [7, 1])):
        assert spec_param_count(policy.spec()) == params(policy)[0]
    assert spec_param_count(resized_spec(cnn(), [2, 3])) == (3 * 9 + 1) * 2 + (2 * 4 + 1) * 3 + (48 + 1) * 5


def test_labelled_states_keep_the_newest_in_fifo_order():
    from policypress.compress.distillation import LabelledStates

    buffer = LabelledStates(capacity=3)
    buffer.add(np.full((1, 2), 0, dtype=np.float32), torch.tensor([[0.0]]))
    for first in (1, 3):  # batches that wrap around the ring
        buffer.add(np.repeat(np.arange(first, first + 2, dtype=np.float32)[:, None], 2, axis=1),
                   torch.tensor([[float(first)], [float(first + 1)]]))
    assert len(buffer) == 3 and buffer.next == 2
    obs, labels = buffer.sample(200, np.random.default_rng(0))
    assert set(labels[:, 0].tolist()) == {2.0, 3.0, 4.0}
    assert torch.equal(obs[:, 0], labels[:, 0])
