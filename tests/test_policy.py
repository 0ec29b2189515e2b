"""The policy format: safe round trip, allowed layers only, masks that hold."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from policypress.core.policy import SPEC_FILE, ActionHead, Policy, PolicyFormatError, Preprocess


def small_policy(head: str = "argmax") -> Policy:
    net = nn.Sequential(nn.Flatten(), nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))
    preprocess = Preprocess((3,), normalize={"clip": 5.0, "epsilon": 1e-8})
    preprocess.mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
    preprocess.var.copy_(torch.tensor([4.0, 1.0, 0.25]))
    policy = Policy(preprocess, net, ActionHead(head, 2), "q_values" if head == "argmax" else "action")
    if head != "argmax":
        policy.head.low.copy_(torch.tensor([-2.0, 0.0]))
        policy.head.high.copy_(torch.tensor([2.0, 1.0]))
    return policy


@pytest.mark.parametrize("head", ["argmax", "rescale", "clip"])
def test_round_trip_keeps_outputs_and_actions(head, tmp_path):
    policy = small_policy(head)
    mask = torch.rand(6, 3, generator=torch.Generator().manual_seed(0)) > 0.5
    policy.masks = {"1.weight": mask}
    policy.apply_masks()
    policy.save(tmp_path / "p")
    loaded = Policy.load(tmp_path / "p")
    obs = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    torch.testing.assert_close(loaded(torch.as_tensor(obs)), policy(torch.as_tensor(obs)))
    np.testing.assert_array_equal(loaded.act(obs), policy.act(obs))
    assert torch.equal(loaded.masks["1.weight"], mask)
    assert loaded.spec() == policy.spec()


def test_preprocessing_normalizes_and_clips():
    obs = torch.tensor([[2.5, -1.0, 100.0]])
    expected = torch.tensor([[1.0, 0.0, 5.0]])  # (2.5-0.5)/2, (−1+1)/1, clipped at 5
    torch.testing.assert_close(small_policy().preprocess(obs), expected, atol=1e-6, rtol=0)


def test_rescale_head_maps_unit_interval_to_bounds():
    head = small_policy("rescale").head
    torch.testing.assert_close(head(torch.tensor([[-1.0, 1.0], [0.0, 0.0]])), torch.tensor([[-2.0, 1.0], [0.0, 0.5]]))


def test_masks_hold_after_optimizer_steps_and_kept_weights_still_learn():
    policy = small_policy()
    mask = torch.rand(6, 3, generator=torch.Generator().manual_seed(0)) > 0.5
    policy.masks = {"1.weight": mask}
    policy.apply_masks()
    before = policy.net[1].weight.detach().clone()
    optimizer = torch.optim.Adam(policy.parameters(), lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        policy(torch.randn(4, 3, generator=torch.Generator().manual_seed(1))).sum().backward()
        optimizer.step()  # Adam's momentum moves masked weights away from zero...
        assert torch.count_nonzero(policy.net[1].weight[~mask]) > 0
        policy.apply_masks()  # ...and re-applying the mask puts them back
        assert torch.count_nonzero(policy.net[1].weight[~mask]) == 0
    assert not torch.equal(policy.net[1].weight[mask], before[mask])


def test_disallowed_layer_is_rejected():
    with pytest.raises(PolicyFormatError, match="layer type 'Sigmoid' is not allowed"):
        Policy(Preprocess((3,)), nn.Sequential(nn.Linear(3, 2), nn.Sigmoid()), ActionHead("argmax", 2), "q_values")


def test_spec_with_unknown_layer_is_rejected(tmp_path):
    small_policy().save(tmp_path / "p")
    spec = json.loads((tmp_path / "p" / SPEC_FILE).read_text())
    spec["layers"][2]["type"] = "GELU"
    (tmp_path / "p" / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(PolicyFormatError, match="'GELU' is not allowed"):
        Policy.load(tmp_path / "p")


def test_weights_that_do_not_match_the_spec_are_rejected(tmp_path):
    small_policy().save(tmp_path / "p")
    spec = json.loads((tmp_path / "p" / SPEC_FILE).read_text())
    spec["layers"][1]["out_features"] = 7
    spec["layers"][3]["in_features"] = 7
    (tmp_path / "p" / SPEC_FILE).write_text(json.dumps(spec))
    with pytest.raises(PolicyFormatError, match="tensors do not match the spec"):
        Policy.load(tmp_path / "p")


def test_mask_for_a_missing_parameter_is_rejected():
    with pytest.raises(PolicyFormatError, match="mask '9.weight'"):
        Policy(Preprocess((3,)), nn.Sequential(nn.Linear(3, 2)), ActionHead("argmax", 2), "q_values",
               masks={"9.weight": torch.ones(2, 3)})


def test_a_failed_save_keeps_the_previous_policy_and_leaves_nothing_behind(tmp_path, monkeypatch):
    old = small_policy()
    old.save(tmp_path / "p")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("policypress.core.policy.save_file", fail)
    with pytest.raises(OSError, match="disk full"):
        small_policy("rescale").save(tmp_path / "p")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
    assert Policy.load(tmp_path / "p").spec() == old.spec()
