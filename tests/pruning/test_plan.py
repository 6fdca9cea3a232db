"""Plans: JSON round trip, validation, policies (uniform/per-group/global/MAC budget)."""

import json

import pytest
import torch
from pruning_toys import ResidualChain, ToyStyleGenerator

from lightning_gancomp.nets.stylegan2 import StyleGAN2Generator
from lightning_gancomp.pruning.budget import MacBudgetPolicy, macs_at_ratio, ratio_for_budget
from lightning_gancomp.pruning.importance import L1Scorer, RandomScorer
from lightning_gancomp.pruning.plan import (
    GlobalPolicy,
    PerGroupPolicy,
    PlanError,
    PruningPlan,
    UniformPolicy,
    kept_count,
    top_indices,
    uniform_plan,
)
from lightning_gancomp.pruning.surgery import student_config


def test_kept_count_follows_the_official_int_rule():
    assert [kept_count(c, 0.7) for c in (512, 256, 128, 64, 32)] == [154, 77, 39, 20, 10]
    assert [kept_count(c, 0.5) for c in (512, 256, 128)] == [256, 128, 64]
    assert kept_count(3, 0.9) == 1  # never below min_size
    with pytest.raises(PlanError, match="removal ratio"):
        kept_count(10, 1.0)


def test_top_indices_removes_the_lowest_scores():
    score = torch.tensor([0.3, 0.1, 0.9, 0.5, 0.2])
    assert top_indices(score, 3) == (0, 2, 3)


def test_plan_json_round_trip_and_human_readable(tmp_path):
    net = ToyStyleGenerator()
    scorer = L1Scorer()
    plan = uniform_plan(net, scorer(net), 0.5, scorer.describe())
    path = tmp_path / "plan.json"
    plan.save(path)
    text = path.read_text()
    data = json.loads(text)
    assert data["format"] == "lightning_gancomp.plan" and data["scorer"]["name"] == "l1"
    assert data["policy"] == {"name": "uniform", "ratio": 0.5}
    assert data["summary"]["widths_after"] == [3, 3, 4, 2]
    assert text.count("\n") == (len(data) - 1) + len(data["groups"]) + 4  # one field / group per line
    loaded = PruningPlan.load(path, net)
    assert loaded.groups == plan.groups and loaded.net_class == "ToyStyleGenerator"


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["groups"].update({"ghost": {"size": 3, "keep": [0]}}), "unknown channel group 'ghost'"),
        (lambda d: d["groups"]["map0"].update({"keep": [0, 9]}), "index 9 out of range for size 6"),
        (lambda d: d["groups"]["map0"].update({"size": 7}), "size 6 in the net, 7 in the plan"),
        (lambda d: d["groups"]["map0"].update({"keep": [2, 1]}), "sorted and unique"),
        (lambda d: d.update({"format": "other"}), "not a lightning_gancomp plan"),
    ],
)
def test_bad_plan_files_are_one_line_errors(tmp_path, edit, message):
    net = ToyStyleGenerator()
    data = uniform_plan(net, RandomScorer()(net), 0.5).to_dict()
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(PlanError, match=message) as info:
        PruningPlan.load(path, net)
    assert "\n" not in str(info.value)


def test_per_group_and_global_policies():
    net = ResidualChain(stream=8, hidden=[6, 5])
    scores = L1Scorer()(net)
    plan = PerGroupPolicy({"stream": 0.5}, default_ratio=0.0)(net, scores)
    assert plan.sizes() == {"stream": 4, "block0.hidden": 6, "block1.hidden": 5}
    with pytest.raises(PlanError, match="unknown channel groups"):
        PerGroupPolicy({"nope": 0.5})(net, scores)
    # global ratio: exactly int(total * ratio) channels go, the lowest normalised scores
    plan = GlobalPolicy(ratio=0.5, normalise="none")(net, scores)
    assert sum(plan.sizes().values()) == 19 - int(19 * 0.5)
    everything = torch.cat([scores[g] for g in ("stream", "block0.hidden", "block1.hidden")])
    threshold = torch.sort(everything).values[int(19 * 0.5)]
    kept = torch.cat([scores[name][list(g.keep)] for name, g in plan.groups.items()])
    assert kept.min() >= threshold
    plan = GlobalPolicy(threshold=1e9, normalise="max")(net, scores)
    assert all(size == 1 for size in plan.sizes().values())  # min_size keeps the best channel
    with pytest.raises(PlanError, match="exactly one of threshold or ratio"):
        GlobalPolicy()(net, scores)


def test_mac_budget_policy_hits_the_cagan_student():
    teacher = StyleGAN2Generator(256)
    from lightning_gancomp.metrics.complexity import cagan_stylegan2_macs

    assert macs_at_ratio(teacher, 0.7, cagan_stylegan2_macs) == 4_123_578_080
    ratio = ratio_for_budget(teacher, 4_123_578_080, cagan_stylegan2_macs)
    assert macs_at_ratio(teacher, ratio, cagan_stylegan2_macs) <= 4_123_578_080
    assert macs_at_ratio(teacher, ratio - 1e-3, cagan_stylegan2_macs) > 4_123_578_080
    plan = MacBudgetPolicy(target_fraction=4_123_578_080 / 45_124_673_536)(teacher, RandomScorer()(teacher))
    assert student_config(teacher, plan)["channels"] == [154] * 10 + [77, 77, 39, 39]
    assert plan.policy["student_macs"] == 4_123_578_080
    with pytest.raises(PlanError, match="unreachable"):
        ratio_for_budget(teacher, 1000, cagan_stylegan2_macs)


def test_uniform_policy_object_and_score_checks():
    net = ToyStyleGenerator()
    with pytest.raises(PlanError, match="no score for channel group"):
        UniformPolicy(0.5)(net, {})
    bad = {g.name: torch.zeros(g.size + 1) for g in net.channel_groups()}
    with pytest.raises(PlanError, match="expected \\(6,\\)"):
        UniformPolicy(0.5)(net, bad)
