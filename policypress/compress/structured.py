"""Iterative structured pruning with distillation, shared by `lrp_prune` and `random_structured`.

First the teacher plays (its actions from the oracle) and its states are labelled: the
scoring states. Round r of R then scores every hidden unit (neuron or filter) of the current
network on those teacher-visited states, removes the lowest-scoring units until the network
has at most P_0 (C / P_0)^(r/R) parameters (a geometric path from the teacher's size P_0 to
the level's ceiling C), slices them away (`policypress.compress.slicing`) and fine-tunes the smaller
dense network by distillation from the teacher with 1/(R + 1) of the budget. The last share
fine-tunes the final network. Only the scores differ between the methods.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch

from policypress.compress.architecture import hidden_layers, require_one_unit_fits, resized_spec, spec_param_count
from policypress.compress.distillation import DISTILL_HYPERPARAMETERS, Collector, DistillConfig, LabelledStates, distill
from policypress.compress.slicing import Alive, all_alive, sliced
from policypress.core.params import params
from policypress.core.policy import Policy
from policypress.core.task import Task

STRUCTURED_HYPERPARAMETERS = {
    **DISTILL_HYPERPARAMETERS,
    "prune_rounds": 5,
    "score_states": 1000,  # teacher-visited states the scores are computed on (at most 1/(R+2) of the budget)
}

# (current policy, observations) -> {hidden layer index: one score per unit}; low scores go first.
Scorer = Callable[[Policy, torch.Tensor], dict[int, torch.Tensor]]


def size_with_widths(policy: Policy, widths: dict[int, int]) -> int:
    """Parameters of `policy` with the given hidden widths."""
    return spec_param_count(resized_spec(policy, [widths[index] for index in sorted(widths)]))


def units_to_keep(policy: Policy, scores: dict[int, torch.Tensor], max_params: int, min_width: int = 1) -> Alive:
    """Remove units in ascending order of score (over all layers) until `policy` has at most
    `max_params` parameters; every layer keeps at least `min_width` units."""
    alive = all_alive(policy)
    widths = hidden_layers(policy)
    order = sorted((float(score), index, unit) for index, layer_scores in scores.items()
                   for unit, score in enumerate(layer_scores))
    size = size_with_widths(policy, widths)
    for _, index, unit in order:
        if size <= max_params:
            break
        if widths[index] > min_width:
            alive[index][unit] = False
            widths[index] -= 1
            size = size_with_widths(policy, widths)
    if size > max_params:
        raise ValueError(f"{min_width} unit(s) per hidden layer already exceed the ceiling of {max_params} parameters")
    return alive


def prune_iteratively(task: Task, score: Scorer) -> Policy:
    """The loop of the module docstring, with `score` as the criterion."""
    require_one_unit_fits(task.teacher, task.max_params)  # before any env step is spent on a level no network fits
    hp = task.hyperparameters
    config = DistillConfig.from_hyperparameters(hp, task.teacher.output)
    rounds = hp["prune_rounds"]
    student = task.teacher.clone()
    buffer = LabelledStates(config.buffer_size)
    affordable = min(task.remaining("env_steps"), task.remaining("teacher_queries")) // (rounds + 2)
    Collector(task).collect(task.teacher, min(hp["score_states"], affordable), 1.0, buffer)
    if len(buffer) == 0:
        raise ValueError("the budget affords no state to score the units on")
    teacher_states = buffer.observations()
    start = params(student)[0]
    for round_index in range(1, rounds + 1):
        target = task.max_params if round_index == rounds else int(start * (task.max_params / start) ** (
            round_index / rounds))
        student = sliced(student, units_to_keep(student, score(student, teacher_states), target))
        task.log.info("round %d/%d: widths %s, %d parameters (target %d)", round_index, rounds,
                      list(hidden_layers(student).values()), params(student)[0], target)
        share = dataclasses.replace(config, budget_fraction=1.0 / (rounds - round_index + 2))
        student = distill(task, student, share, buffer=buffer)
    return distill(task, student, config, buffer=buffer)
