"""Kept-channel rounding (``round_to``): counts, which channels, policy record, default unchanged."""

import pytest
import torch

from lightning_gancomp.nets.stylegan2 import StyleGAN2Generator
from lightning_gancomp.pruning.plan import (
    GlobalPolicy,
    PerGroupPolicy,
    PlanError,
    UniformPolicy,
    round_kept,
)


def test_round_kept_values():
    assert [round_kept(k, 512, 16) for k in (154, 77, 39, 8, 24)] == [160, 80, 32, 16, 32]
    assert [round_kept(k, 512, 8) for k in (154, 77, 39)] == [152, 80, 40]
    assert round_kept(154, 512, 1) == 154
    assert round_kept(12, 12, 16) == 12  # a group smaller than the multiple stays as it is
    assert round_kept(30, 36, 16) == 32 and round_kept(35, 36, 16) == 32  # 35/16 = 2.19 → 32
    assert round_kept(40, 40, 16) == 40  # 48 would exceed the group: capped at its size
    with pytest.raises(PlanError, match="round_to must be >= 1"):
        UniformPolicy(0.5, round_to=0)


def scored_generator():
    with torch.device("meta"):
        g = StyleGAN2Generator(32, z_dim=8, w_dim=8, n_mapping=1, channels=[64, 64, 64, 64, 48, 48, 40, 40])
    torch.manual_seed(0)
    return g, {group.name: torch.randn(group.size) for group in g.channel_groups()}


def test_uniform_round_to_keeps_the_best_channels_at_multiples():
    g, scores = scored_generator()
    official = UniformPolicy(0.7)(g, scores)
    rounded = UniformPolicy(0.7, round_to=16)(g, scores)
    # 0.7 keeps 20 of 64, 15 of 48, 12 of 40 → 16, 16, 16 with round_to=16
    assert [grp.kept for grp in official.groups.values()] == [20, 20, 20, 20, 15, 15, 12, 12]
    assert [grp.kept for grp in rounded.groups.values()] == [16, 16, 16, 16, 16, 16, 16, 16]
    for name, grp in rounded.groups.items():
        best = torch.argsort(scores[name], descending=True)[: grp.kept]
        assert set(grp.keep) == set(best.tolist())
    assert rounded.policy["round_to"] == 16 and "round_to" not in official.policy


def test_per_group_and_global_policies_round_too():
    g, scores = scored_generator()
    per_group = PerGroupPolicy({"map0_4px": 0.5}, default_ratio=0.0, round_to=8)(g, scores)
    assert per_group.groups["map0_4px"].kept == 32 and per_group.groups["map7_32px"].kept == 40
    glob = GlobalPolicy(ratio=0.6, normalise="max", round_to=8)(g, scores)
    assert all(grp.kept % 8 == 0 for grp in glob.groups.values())
