"""gmp: gradual magnitude pruning while the agent learns from scratch (Zhu & Gupta 2017; in deep
RL: Graesser, Evci, Elsen & Castro, ICML 2022; Obando-Ceron, Courville & Castro, ICML 2024).

Algorithm, as the papers run it:
1. Train the teacher's algorithm (stable-baselines3's DQN, PPO or SAC itself, the teacher's
   hyperparameters) from random weights on the during-training budget: the teacher's training
   cost plus the compression budget (policypress/compress/rl_training.py).
2. The deployed actor's weight sparsity follows the cubic schedule
   s_t = s_F [1 - (1 - (t - t_0)/(t_1 - t_0))³] between t_0 = 20% and t_1 = 80% of training
   (t: the fraction of the budget spent), where s_F is the sparsity at which weights and biases
   fit the level's ceiling. Every `mask_every` actor updates in that window (and at t_1) the
   masks are recomputed: layer-wise magnitude pruning with per-layer targets from
   Erdős-Rényi-Kernel (JaxPruner's `dist_type='erk'`); every weight tensor is pruned, biases
   never. Masks are re-applied after every optimizer step of the actor; the last 20% trains the
   final sparse network.
3. As for the teacher, the result is the best checkpoint on the validation episodes (the spec's
   evenly spaced checkpoints and the end) among those within the level's ceiling.

Engagement (in the policy's metadata): whether the schedule completed inside the budget, and
how many mask updates it made.

Deviations from the papers, and why:
- The budget is this benchmark's (the teacher's training plus the compression budget), not 40M
  frames; the schedule scales with it, as the papers' does with run length.
- `mask_every` is 100 actor updates (JaxPruner: 1,000 of 2.5M), so that short runs still get
  hundreds of mask updates.
- Only the deployed actor is pruned; SAC's and PPO's critics stay dense (they are not deployed;
  Graesser et al. prune every network), except features they share with the actor (SB3's CNN
  policies), which are pruned with it.
- The papers report the final agent; here the best validated checkpoint, because every teacher
  is chosen that way (rl-baselines3-zoo's practice), and DQN's return swings widely between
  checkpoints (the seed-0 CartPole teacher's: 412, 122, 500, 106, ... 500).
"""

from policypress.compress.pruning import ceiling_weights, erk_masks, polynomial_sparsity, weight_count, weight_layers
from policypress.compress.rl_training import deployed, train_agent
from policypress.core.params import params
from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo
from policypress.core.task import Task

INFO = MethodInfo(
    name="gmp",
    summary="Gradual magnitude pruning (cubic schedule, ERK layer targets) while the teacher's algorithm trains "
            "from scratch.",
    citation="Obando-Ceron, Courville, Castro. In Value-Based Deep Reinforcement Learning, a Pruned Network is a "
             "Good Network. ICML 2024 (arXiv:2402.12479); Graesser, Evci, Elsen, Castro. The State of Sparse "
             "Training in Deep Reinforcement Learning. ICML 2022; Zhu, Gupta. To prune, or not to prune. 2017.",
    hyperparameters={"prune_start": 0.2, "prune_end": 0.8, "mask_every": 100},
    track="during-training",
    teacher_algos=("dqn", "ppo", "sac"),
    teacher_algos_reason="Graesser et al. ran it on DQN, PPO and SAC; A2C and TD3 teachers are not tested here",
    deviations="The benchmark's budget (teacher's training plus the compression budget), not 40M frames; mask "
               "update every 100 actor updates; only the deployed actor is pruned.",
)


class GradualMasks:
    """The `after_update` hook that moves the actor's masks along the cubic schedule."""

    def __init__(self, max_params: int, hp: dict):
        self.max_params, self.hp = max_params, hp
        self.updates, self.mask_updates, self.completed = 0, 0, False
        self.sparsity = 0.0

    def __call__(self, actor: Policy, progress: float) -> None:
        self.updates += 1
        if self.completed or progress < self.hp["prune_start"]:
            return
        if self.updates % self.hp["mask_every"] == 0 or progress >= self.hp["prune_end"]:
            self.prune(actor, polynomial_sparsity(progress, 1.0, self.hp["prune_start"], self.hp["prune_end"]))
            self.completed = progress >= self.hp["prune_end"]

    def prune(self, actor: Policy, schedule: float) -> None:
        """Prune to `schedule` (0 to 1) of the way from dense to the ceiling's sparsity."""
        total, final = weight_count(actor), ceiling_weights(actor, self.max_params)
        if final < len(weight_layers(actor)):
            raise ValueError(f"the biases alone leave no weight under the ceiling of {self.max_params} parameters")
        self.sparsity = schedule * (1.0 - final / total)
        actor.masks = erk_masks(actor, final if schedule >= 1.0 else round((1 - self.sparsity) * total))
        actor.apply_masks()
        self.mask_updates += 1


def compress(task: Task) -> Policy:
    masks = GradualMasks(task.max_params, task.hyperparameters)
    model, live, guard = train_agent(task, after_update=masks)
    completed = masks.completed
    if not completed:  # a budget too short to reach the schedule's end still ends at the ceiling
        masks.prune(live, 1.0)
    policy = guard.result(deployed(model, live))  # the best checkpoint at the ceiling, as the teacher's
    policy.metadata["engagement"] = {"gmp_schedule_completed": completed, "gmp_mask_updates": masks.mask_updates}
    task.log.info("final sparsity %.4f: %d of %d parameters nonzero", masks.sparsity, params(policy)[1],
                  params(policy)[0])
    return policy
