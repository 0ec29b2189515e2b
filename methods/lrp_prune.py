"""lrp_prune: LRP-based structured pruning, each round followed by policy distillation
(Xu, Luan, Gu, Zhao, Chen, ISORC 2022; Luan, Gu, Xu, Zhao, Chen, Concurrency Computat. Pract.
Exper. 2023).

Algorithm (policypress/structured.py has the loop, policypress/lrp.py the rules):
1. The teacher plays (its actions come from the oracle) and its states are labelled.
2. Each round, on the latest `score_states` labelled states, relevance is propagated from the
   chosen action's output (|Q| or |logit| of the argmax action; |a| of every dimension for
   continuous actions) back through the current network: the ε-rule in Linear layers, z⁺ in
   Conv2d layers, passed through activations. A unit's score is the sum over states (and
   spatial positions) of its |relevance|, divided by its layer's total.
3. The lowest-scoring units of all layers are removed until the round's parameter target is
   met (a geometric path from the teacher's size to the level's ceiling over `prune_rounds`
   rounds), the layer and its successor are sliced, and the smaller dense network is
   fine-tuned by Rusu et al. distillation (KL at τ = 0.01 on Q-values) from the teacher.
The result is a dense network at or under the level's ceiling.

Deviations from the papers, and why (the recipe is modelled on Yeom et al.'s "Pruning by
Explaining", which the papers very likely follow; their LRP rule and pruning rates are not
stated):
- Hidden neurons of Linear layers are pruned as well as conv filters, so that MLP policies
  (every classic-control teacher) can be pruned; the papers state only filters.
- The number of rounds and the size of each are fixed by `prune_rounds` and the level's
  ceiling, not by a tolerance on the return: every level needs a network at its size, and
  the budget pays for a fixed number of rounds.
- Distillation data is a DAgger-style teacher/student mix (policypress/distillation.py), not
  teacher play alone; scores use the latest of those states.
- LRP is this project's own ~40-line implementation (tested for conservation), not zennit:
  zennit imports torchvision, whose PyPI wheel does not load with the pinned CPU torch.
"""

from policypress.lrp import unit_scores
from policypress.policy import Policy
from policypress.registry import MethodInfo
from policypress.structured import STRUCTURED_HYPERPARAMETERS, prune_iteratively
from policypress.task import Task

INFO = MethodInfo(
    name="lrp_prune",
    summary="Iterative removal of the least relevant neurons/filters (LRP), each round followed by distillation.",
    citation="Xu, Luan, Gu, Zhao, Chen. LRP-based Policy Pruning and Distillation of Reinforcement Learning Agents "
             "for Embedded Systems. ISORC 2022 (doi:10.1109/ISORC52572.2022.9812837); Luan, Gu, Xu, Zhao, Chen. "
             "Concurrency and Computation: Practice and Experience 35(19):e7351, 2023 (doi:10.1002/cpe.7351).",
    hyperparameters={**STRUCTURED_HYPERPARAMETERS, "lrp_epsilon": 1e-9},
    deviations="Neurons of Linear layers pruned as well as filters; rounds and their sizes follow the level's "
               "ceiling (geometric path) rather than a return tolerance; DAgger-style distillation data; own LRP "
               "implementation (zennit needs torchvision, which does not load with the pinned CPU torch).",
)


def compress(task: Task) -> Policy:
    epsilon = task.hyperparameters["lrp_epsilon"]
    return prune_iteratively(task, lambda policy, obs: unit_scores(policy, obs, epsilon))
