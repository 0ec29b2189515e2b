"""group_sparse: dynamic structured pruning with a neuron-importance group-sparse regularizer
(Su, Li, Xu, Kang, Niyato, Xie, IEEE Trans. Vehicular Technology 2024; arXiv:2402.05146).

Algorithm (policypress/group_sparse.py has the formulas):
1. Warm start from the teacher. Train with the distillation loss plus
   R = λ Σ_j ‖g_j‖₂ / (Î_j + ε): g_j a hidden unit's incoming weights and bias, Î_j its
   importance (running mean of mean|a_j| · ‖outgoing weights‖) relative to its layer.
   Distillation (KL at τ = 0.01 on Q-values, τ = 1 on logits, MSE on continuous actions)
   spends env steps, teacher queries and updates. With `rl_loss: true`, a DQN teacher's
   network is trained with DQN's own TD loss and the teacher's hyperparameters instead
   (policypress/td.py), which spends env steps and updates and no teacher query.
2. A dynamic threshold rises between 10% and 70% of the updates: units whose relative group
   norm falls below it are switched off by binary masks that never switch back on; the
   threshold rises at least as fast as needed for the size to follow the Zhu-Gupta cubic from
   the teacher's size to the level's ceiling (it may go below the ceiling).
3. Train the masked network for the remaining updates, then slice the surviving units into a
   dense smaller network.

Deviations from the paper, and why:
- The paper's regularizer formula, importance measure and threshold rule are not public; the
  ones above are the reference's reconstruction (../shared/reference/methods.md, marked [I]).
- The paper trains the agent with the regularizer from the start; here training starts from
  the teacher's weights, like every method of the benchmark.
- The training loss is distillation by default, not the paper's RL loss. The RL loss can be
  rebuilt only for DQN (PPO, A2C, SAC and TD3 need the critic, which the policy format does
  not keep), and measured on the quick CartPole teacher (seed 0, commit ec866b6, before TD
  updates came in SB3-style bursts) it destroyed the teacher before any pruning: with the
  teacher's zoo hyperparameters (lr 2.3e-3, target update every 10 steps), fine-tuning with
  the TD loss alone, penalty 0 and no pruning, took the mean return from 500 to about 10
  within 3,000 updates (likely because the replay holds only the converged teacher's play,
  which never terminates, so nothing anchors the bootstrapped targets). `rl_loss: true` keeps
  the RL-loss variant available for DQN teachers.
- The threshold is tied to the level's ceiling so that every level gets a network at or
  below its size; the paper's threshold was free and found its own sparsity.
"""

from policypress.distillation import DistillConfig, distill
from policypress.group_sparse import GROUP_SPARSE_HYPERPARAMETERS, DynamicGroupPruning
from policypress.policy import Policy
from policypress.registry import MethodInfo
from policypress.slicing import sliced
from policypress.task import Task
from policypress.td import DQNSettings, train_td

INFO = MethodInfo(
    name="group_sparse",
    summary="Neuron-importance group-lasso training with a rising threshold that removes whole neurons/filters.",
    citation="Su, Li, Xu, Kang, Niyato, Xie. Compressing Deep Reinforcement Learning Networks with a Dynamic "
             "Structured Pruning Method for Autonomous Driving. IEEE Trans. Vehicular Technology, 2024 "
             "(arXiv:2402.05146).",
    hyperparameters={**GROUP_SPARSE_HYPERPARAMETERS, "rl_loss": False},
    deviations="Regularizer, importance and threshold reconstructed (not public); warm start from the teacher; "
               "distillation loss by default (DQN's TD loss with rl_loss: true; measured to collapse the converged "
               "CartPole teacher even without pruning); the threshold follows a cubic size schedule to the ceiling.",
)


def compress(task: Task) -> Policy:
    student = task.teacher.clone()
    pruning = DynamicGroupPruning(task, student)
    hooks = {"regularizer": pruning.regularizer, "after_update": pruning.after_update}
    hp = task.hyperparameters
    if hp["rl_loss"] and task.teacher_training["algo"] == "dqn":
        train_td(task, student, DQNSettings.of_teacher(task.teacher_training), hp["buffer_size"], **hooks)
    else:
        distill(task, student, DistillConfig.from_hyperparameters(hp, student.output), **hooks)
    if pruning.progress < 1.0:  # a budget too small to reach the schedule's end still ends at the ceiling
        pruning.prune(1.0)
    return sliced(student, pruning.alive)
