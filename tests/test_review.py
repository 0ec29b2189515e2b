"""`check-method`'s review of a plugin's source: each route around the task is pointed out with its
line, and no shipped method has a finding."""

import itertools

from policypress.core.specs import ROOT
from policypress.submit.conformance import check_method
from policypress.submit.review import review
from tests.conftest import PLUGINS

CHEATER = '''\
import gymnasium as gym
import torch
from torch.optim import Adam
from stable_baselines3 import PPO
import urllib.request
from torch.autograd import grad
from policypress.core.guard import env_creation


def compress(task):
    env = gym.make("CartPole-v1")
    optimizer = torch.optim.SGD([], lr=0.1)
    other = Adam([], lr=0.1)
    model = PPO("MlpPolicy", task.make_env())
    weights = torch.load("/data/teacher.pt")
    notes = open(task.scratch / "notes.txt").read()
    with open("results/scratch/table.csv") as table:
        pass
'''


def test_each_route_around_the_task_is_found_with_its_line(tmp_path):
    source = tmp_path / "cheater.py"
    source.write_text(CHEATER)
    findings = review(source)
    assert [line.split(":")[1] for line in findings] == ["5", "6", "7", "11", "12", "13", "14", "15", "17"]
    text = "\n".join(findings)
    for expected in ("imports urllib.request: a method may not use the network",
                     "makes an environment (gymnasium.make)", "makes an optimizer (torch.optim.SGD)",
                     "makes an optimizer (torch.optim.Adam)", "makes an SB3 algorithm (stable_baselines3.PPO)",
                     "reads a file (torch.load)", "reads a file (open)", "imports policypress.core.guard: the guard is",
                     "imports torch.autograd's backward or grad by name"):
        assert expected in text
    assert "cheater.py:16" not in text  # a file in task.scratch is the method's own


def test_no_shipped_method_has_a_finding():
    methods = sorted((ROOT / "methods").glob("*.py"))
    assert len(methods) > 10
    assert {path.name: review(path) for path in methods if review(path)} == {}


def test_check_method_prints_the_findings_as_warnings_before_running_anything():
    lines = list(itertools.islice(check_method("own_env", ["methods", PLUGINS]), 2))  # no teacher trained yet
    assert lines[0][0] == "PASS" and lines[1] == (
        "WARN", "review: own_env.py:12: makes an environment (gymnasium.make): environments come from "
                "task.make_env(), whose steps are charged")
