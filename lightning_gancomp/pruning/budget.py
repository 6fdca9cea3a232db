"""MAC-budget policy: the uniform removal ratio whose student meets a MAC target.

CAGAN/DCP prune every feature map by the same ratio; a user asking for "at most 4.2 GMACs"
wants the smallest such ratio whose student fits. MACs are monotone in the ratio (every width
only shrinks), so a bisection over the ratio finds it; candidate students are built on the
``meta`` device when the MAC counter allows it (no weights allocated), otherwise on CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from lightning_gancomp.nets.base import GanNet
from lightning_gancomp.pruning.plan import (
    PlanError,
    PruningPlan,
    PruningPolicy,
    Scores,
    kept_count,
    uniform_plan,
)

MacCounter = Callable[[GanNet], int]


def default_mac_counter(net: GanNet) -> int:
    """MACs in the family's convention (``metrics.complexity.mac_convention``)."""
    from lightning_gancomp.metrics import complexity  # metrics depend on nets only; import on use

    return complexity.default_macs(net)[0]


def _build(net: GanNet, config: Mapping[str, Any], on_meta: bool) -> GanNet:
    if on_meta:
        with torch.device("meta"):
            return type(net)(**config)
    return type(net)(**config)


def macs_at_ratio(net: GanNet, ratio: float, count: MacCounter, on_meta: bool = True) -> int:
    """MACs of the student that removes ``int(C·ratio)`` channels from every group."""
    sizes = {g.name: kept_count(g.size, ratio, g.min_size) for g in net.channel_groups()}
    config = net.config_for_group_sizes(sizes)
    if on_meta:
        try:
            return count(_build(net, config, True))
        except (RuntimeError, NotImplementedError, TypeError, ValueError):
            pass  # the counter needs real tensors
    return count(_build(net, config, False))


def ratio_for_budget(
    net: GanNet,
    target_macs: int,
    count: MacCounter = default_mac_counter,
    *,
    max_ratio: float = 0.99,
    steps: int = 30,
) -> float:
    """Smallest uniform removal ratio (to ~1e-9) whose student has ≤ ``target_macs`` MACs."""
    if count(net) <= target_macs:
        return 0.0
    if macs_at_ratio(net, max_ratio, count) > target_macs:
        raise PlanError(
            f"MAC budget {target_macs:,} is unreachable: even removing {max_ratio:.0%} of every group "
            f"leaves {macs_at_ratio(net, max_ratio, count):,} MACs"
        )
    low, high = 0.0, max_ratio  # macs(low) > target >= macs(high)
    for _ in range(steps):
        mid = (low + high) / 2
        if macs_at_ratio(net, mid, count) <= target_macs:
            high = mid
        else:
            low = mid
    return high


def budget_plan(
    net: GanNet,
    scores: Scores,
    *,
    target_macs: int | None = None,
    target_fraction: float | None = None,
    count: MacCounter = default_mac_counter,
    scorer: Mapping[str, Any] | None = None,
) -> PruningPlan:
    """Uniform-ratio plan meeting a MAC budget (absolute, or a fraction of the teacher's MACs)."""
    if (target_macs is None) == (target_fraction is None):
        raise PlanError("MAC budget policy needs exactly one of target_macs or target_fraction")
    teacher_macs = count(net)
    target = int(target_macs if target_macs is not None else teacher_macs * float(target_fraction))
    ratio = ratio_for_budget(net, target, count)
    plan = uniform_plan(net, scores, ratio, scorer)
    plan.policy = {
        "name": "mac_budget",
        "target_macs": target,
        "teacher_macs": teacher_macs,
        "ratio": ratio,
        "student_macs": macs_at_ratio(net, ratio, count),
    }
    return plan


class MacBudgetPolicy(PruningPolicy):
    """Uniform-ratio plan that meets a MAC budget: ``target_macs`` or ``target_fraction`` of the teacher."""

    def __init__(self, target_macs: int | None = None, target_fraction: float | None = None) -> None:
        if (target_macs is None) == (target_fraction is None):
            raise PlanError("MacBudgetPolicy needs exactly one of target_macs or target_fraction")
        self.target_macs, self.target_fraction = target_macs, target_fraction

    def __call__(self, net: GanNet, scores: Scores, scorer: Mapping[str, Any] | None = None) -> PruningPlan:
        return budget_plan(
            net, scores, target_macs=self.target_macs, target_fraction=self.target_fraction, scorer=scorer
        )
