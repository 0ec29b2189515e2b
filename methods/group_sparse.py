"""group_sparse: dynamic structured pruning with a neuron-importance group-sparse regularizer
(Su, Li, Xu, Kang, Niyato, Xie, IEEE Trans. Vehicular Technology 2024; arXiv:2402.05146).

Algorithm (policypress/group_sparse.py has the formulas):
1. Warm start from the teacher. Train with the distillation loss plus
   R = λ Σ_j ‖g_j‖₂ / (Î_j + ε): g_j a hidden unit's incoming weights and bias, Î_j its
   importance (running mean of mean|a_j| · ‖outgoing weights‖) relative to its layer.
2. A dynamic threshold rises between 10% and 70% of the updates: units whose relative group
   norm falls below it are switched off by binary masks that never switch back on; the
   threshold rises at least as fast as needed for the size to follow the Zhu-Gupta cubic from
   the teacher's size to the level's ceiling (it may go below the ceiling).
3. Fine-tune the masked network by distillation for the remaining updates, then slice the
   surviving units into a dense smaller network.

Deviations from the paper, and why:
- The paper's regularizer formula, importance measure and threshold rule are not public; the
  ones above are the reference's reconstruction (../shared/reference/methods.md, marked [I]).
- The training loss is distillation from the teacher (KL at τ = 0.01 on Q-values, τ = 1 on
  logits, MSE on continuous actions), not the RL loss: the benchmark gives every method the
  same teacher-query, env-step and update budget, and the RL losses of the teachers'
  algorithms (TD targets with replay for DQN, the critic for PPO/SAC) are not part of the
  policy format. An RL-loss variant belongs with the RL-loss methods of GMP and EauDeQN.
- The threshold is tied to the level's ceiling so that every level gets a network at or
  below its size; the paper's threshold was free and found its own sparsity.
"""

from policypress.distillation import DistillConfig, distill
from policypress.group_sparse import GROUP_SPARSE_HYPERPARAMETERS, DynamicGroupPruning
from policypress.policy import Policy
from policypress.registry import MethodInfo
from policypress.slicing import sliced
from policypress.task import Task

INFO = MethodInfo(
    name="group_sparse",
    summary="Neuron-importance group-lasso training with a rising threshold that removes whole neurons/filters.",
    citation="Su, Li, Xu, Kang, Niyato, Xie. Compressing Deep Reinforcement Learning Networks with a Dynamic "
             "Structured Pruning Method for Autonomous Driving. IEEE Trans. Vehicular Technology, 2024 "
             "(arXiv:2402.05146).",
    hyperparameters=dict(GROUP_SPARSE_HYPERPARAMETERS),
    deviations="Regularizer, importance and threshold reconstructed (not public); distillation loss instead of "
               "the RL loss; the threshold follows a cubic size schedule to the level's ceiling.",
)


def compress(task: Task) -> Policy:
    student = task.teacher.clone()
    pruning = DynamicGroupPruning(task, student)
    config = DistillConfig.from_hyperparameters(task.hyperparameters, student.output)
    distill(task, student, config, regularizer=pruning.regularizer, after_update=pruning.after_update)
    if pruning.progress < 1.0:  # a budget too small to reach the schedule's end still ends at the ceiling
        pruning.prune(1.0)
    return sliced(student, pruning.alive)
