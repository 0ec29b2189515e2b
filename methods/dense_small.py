"""dense_small: a small dense network trained from scratch, the control for every compressor.

The teacher's own algorithm and hyperparameters (stable-baselines3 itself), from random weights,
with the deployed actor's hidden widths those of the teacher scaled by one factor so that it fits
the level's ceiling (as PoPS's and distillation's uniform shrink), and the same total interaction
as every during-training method: the teacher's training cost plus the compression budget. It tells
whether compressing a big network beats training a small one for as long. Like the teacher, the
result is the best of the spec's checkpoints (and the end) on the validation episodes.

The critic (PPO's value net, SAC's and TD3's Q-networks) keeps the teacher's size: it is not
deployed. DQN's Q-network is the actor, so it is the small one. MLP actors only: SB3's CNN
extractor's widths are not its `net_arch`.
"""

from policypress.compress.architecture import hidden_widths, uniformly_shrunk
from policypress.compress.rl_training import deployed, train_agent
from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo
from policypress.core.sb3 import actor_net_arch, build_model, to_policy
from policypress.core.task import Task

INFO = MethodInfo(
    name="dense_small",
    summary="The teacher's algorithm trained from scratch at the student's size, with the same total interaction.",
    citation="Raffin et al., Stable-Baselines3: Reliable Reinforcement Learning Implementations, JMLR 22(268), 2021; "
             "the small-dense control of Zhu & Gupta, To prune, or not to prune, 2017.",
    track="during-training",
    layer_types=("Linear", "ReLU", "Tanh", "Flatten"),
)


def compress(task: Task) -> Policy:
    spec = task.teacher_training
    full = build_model(spec, task.make_env, 0)  # untrained: only its architecture is read
    widths = hidden_widths(uniformly_shrunk(to_policy(full), task.max_params))
    task.log.info("actor hidden widths %s (the teacher's %s)", widths, hidden_widths(to_policy(full)))
    net_arch = actor_net_arch(full, widths)
    model, live, guard = train_agent(task, policy_kwargs={"net_arch": net_arch})
    policy = guard.result(deployed(model, live))  # the best checkpoint, as the teacher's
    policy.metadata["engagement"] = {"dense_small_width": widths[0]}
    return policy
