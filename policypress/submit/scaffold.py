"""`policypress new-method NAME`: a plugin file and its conformance test, ready to edit.

The plugin is one file, `methods/NAME.py`: its docstring is its documentation (the leaderboard's
method page shows it), `INFO` declares what it is and supports, and `compress(task)` is the
algorithm. The scaffold works as written (a uniformly shrunk student distilled from the teacher),
so it passes `policypress check-method NAME` before the first edit.
"""

from __future__ import annotations

import re
from pathlib import Path

from policypress.core.registry import available_methods
from policypress.core.specs import ROOT, SpecError

PLUGIN = '''"""{name}: one line on what the method does.

Algorithm (what `compress` does, step by step, and how it spends the budget):
1. ...

Hyperparameters: what each entry of INFO.hyperparameters means.

Deviations from the paper, and why: ...
"""

from policypress.compress.architecture import uniformly_shrunk
from policypress.compress.distillation import DISTILL_HYPERPARAMETERS, DistillConfig, distill
from policypress.core.policy import Policy
from policypress.core.registry import MethodInfo
from policypress.core.task import Task

INFO = MethodInfo(
    name="{name}",
    summary="One line for the leaderboard.",
    citation="Authors. Title. Venue Year.",
    hyperparameters=dict(DISTILL_HYPERPARAMETERS),  # defaults; the config may override each one
    # action_spaces=("discrete",), teacher_algos=("dqn",), teacher_algos_reason="...", layer_types=(...):
    # declare what the method cannot handle; its runs there are n/a with your reason.
    # track="during-training": trains from random weights with the teacher's SB3 algorithm (no teacher;
    # policypress.compress.rl_training.train_agent); uses_level=False: it chooses its own size.
    deviations="",
)


def compress(task: Task) -> Policy:
    """Return a Policy with at most task.max_params nonzero parameters, spending only what
    task.make_env(), task.oracle and task.make_optimizer() charge to the budget."""
    student = uniformly_shrunk(task.teacher, task.max_params)  # replace with your method
    return distill(task, student, DistillConfig.from_hyperparameters(task.hyperparameters, student.output))
'''

TEST = '''"""{name} passes the conformance suite (`policypress check-method {name}`)."""

from policypress.submit.conformance import check_method


def test_{name}_conforms():
    failed = [line for passed, line in check_method("{name}") if not passed]
    assert not failed, failed
'''


def new_method(name: str, root: Path = ROOT) -> list[Path]:
    """Write `methods/NAME.py` and `tests/test_method_NAME.py`; refuse a bad or taken name."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise SpecError(f"new-method: name {name!r} must be lowercase letters, digits and underscores")
    plugin, test = root / "methods" / f"{name}.py", root / "tests" / f"test_method_{name}.py"
    if name in available_methods([str(root / "methods")]) or plugin.exists() or test.exists():
        raise SpecError(f"new-method: {name!r} exists already ({plugin})")
    plugin.write_text(PLUGIN.format(name=name))
    test.write_text(TEST.format(name=name))
    return [plugin, test]
