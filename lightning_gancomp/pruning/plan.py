"""Pruning plans: which channels each channel group keeps, as human-readable JSON.

A plan is data, separate from the scorer that ranked the channels and from the surgery that
applies it (Torch-Pruning's split: ``importance`` → plan → ``surgery``). The JSON file records
the scorer and policy that made it, so a student can always be traced back to its recipe:

.. code-block:: json

    {"format": "lightning_gancomp.plan", "version": 1, "net_class": "StyleGAN2Generator",
     "scorer": {"name": "content_aware", "n_samples": 400, ...},
     "policy": {"name": "uniform", "ratio": 0.7},
     "groups": {"map0": {"size": 512, "keep": [3, 17, ...]}, ...}}

Policies (how scores become kept indices) live here too: ``uniform`` (one removal ratio for
every group, CAGAN/DCP: ``int(C * ratio)`` channels with the lowest scores removed, see
lychenyoko/content-aware-gan-compression ``Util/pruning_util.py`` ``Get_Uniform_RmveList`` and
``Generate_Prune_Mask_List``), ``per_group`` ratios, and a ``global`` threshold over
(normalised) scores. The MAC-budget policy is in :mod:`lightning_gancomp.pruning.budget`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from lightning_gancomp.atomic import atomic_write_text
from lightning_gancomp.nets.base import ChannelGroup, GanNet

PLAN_FORMAT = "lightning_gancomp.plan"
PLAN_VERSION = 1

#: Scores: one 1-D float tensor per channel group, indexed like the group's channels.
Scores = dict[str, torch.Tensor]


class PlanError(ValueError):
    """A plan does not fit a network, or a plan file is malformed."""


@dataclass(frozen=True)
class GroupPlan:
    """Kept channels of one group: ``keep`` is sorted, unique, within ``range(size)``."""

    size: int
    keep: tuple[int, ...]

    @property
    def kept(self) -> int:
        return len(self.keep)


@dataclass
class PruningPlan:
    """Kept indices per channel group plus the recipe (scorer, policy) that chose them.

    Groups the network declares but the plan does not list are kept whole.
    """

    net_class: str
    groups: dict[str, GroupPlan]
    scorer: dict[str, Any] = field(default_factory=dict)
    policy: dict[str, Any] = field(default_factory=dict)
    #: ``{"file": name, "sha256": hex}`` of the student checkpoint written with this plan (prune
    #: sets it), so a plan beside another student is detected (:meth:`check_student`).
    student: dict[str, str] | None = None

    # -- views ----------------------------------------------------------------------------------
    def sizes(self) -> dict[str, int]:
        """New size of every group in the plan (the argument of ``config_for_group_sizes``)."""
        return {name: g.kept for name, g in self.groups.items()}

    def keep_index(self, name: str) -> torch.Tensor:
        return torch.tensor(self.groups[name].keep, dtype=torch.long)

    def dropped(self, name: str) -> list[int]:
        group = self.groups[name]
        kept = set(group.keep)
        return [i for i in range(group.size) if i not in kept]

    def is_identity(self) -> bool:
        return all(g.kept == g.size for g in self.groups.values())

    # -- validation ----------------------------------------------------------------------------
    def validate(self, net: GanNet, source: str = "plan") -> None:
        """Raise PlanError (one line) if the plan does not fit ``net``."""
        if self.net_class != type(net).__name__:
            raise PlanError(f"{source}: made for {self.net_class}, not {type(net).__name__}")
        declared = {g.name: g for g in net.channel_groups()}
        for name, group_plan in self.groups.items():
            if name not in declared:
                known = ", ".join(sorted(declared)[:8]) + (" ..." if len(declared) > 8 else "")
                raise PlanError(f"{source}: unknown channel group {name!r} (net has: {known})")
            group = declared[name]
            if group_plan.size != group.size:
                raise PlanError(
                    f"{source}: group {name} has size {group.size} in the net, {group_plan.size} in the plan"
                )
            _check_keep(name, group_plan.keep, group.size, group.min_size, source)

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": PLAN_FORMAT,
            "version": PLAN_VERSION,
            "net_class": self.net_class,
            "scorer": dict(self.scorer),
            "policy": dict(self.policy),
            "summary": {
                "channels_before": sum(g.size for g in self.groups.values()),
                "channels_after": sum(g.kept for g in self.groups.values()),
                "widths_before": [g.size for g in self.groups.values()],
                "widths_after": [g.kept for g in self.groups.values()],
            },
            **({"student": dict(self.student)} if self.student else {}),
            "groups": {name: {"size": g.size, "keep": list(g.keep)} for name, g in self.groups.items()},
        }

    def to_json(self) -> str:
        """Valid JSON, one top-level field and one group per line (readable, diff-friendly)."""
        data = self.to_dict()
        groups = data.pop("groups")
        lines = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in data.items()]
        group_lines = [f"    {json.dumps(name)}: {json.dumps(entry)}" for name, entry in groups.items()]
        return "{\n" + "\n".join(lines) + '\n  "groups": {\n' + ",\n".join(group_lines) + "\n  }\n}\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "plan") -> PruningPlan:
        if not isinstance(data, Mapping) or data.get("format") != PLAN_FORMAT:
            raise PlanError(f"{source}: not a lightning_gancomp plan (missing format {PLAN_FORMAT!r})")
        if data.get("version") != PLAN_VERSION:
            raise PlanError(f"{source}: plan version {data.get('version')!r}, this code reads {PLAN_VERSION}")
        groups: dict[str, GroupPlan] = {}
        raw_groups = data.get("groups")
        if not isinstance(raw_groups, Mapping):
            raise PlanError(f"{source}: 'groups' must be an object of name -> {{size, keep}}")
        for name, entry in raw_groups.items():
            try:
                size = int(entry["size"])
                keep = tuple(int(i) for i in entry["keep"])
            except (KeyError, TypeError, ValueError) as exc:
                raise PlanError(
                    f"{source}: group {name!r} needs integer 'size' and list 'keep' ({exc})"
                ) from exc
            _check_keep(name, keep, size, 1, source)
            groups[str(name)] = GroupPlan(size, keep)
        return cls(
            net_class=str(data.get("net_class", "")),
            groups=groups,
            scorer=dict(data.get("scorer", {})),
            policy=dict(data.get("policy", {})),
            student=dict(data["student"]) if isinstance(data.get("student"), Mapping) else None,
        )

    @classmethod
    def from_json(cls, text: str, source: str = "plan") -> PruningPlan:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanError(f"{source}: invalid JSON ({exc})") from exc
        return cls.from_dict(data, source)

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically (temp file + rename: never half-written)."""
        atomic_write_text(self.to_json(), path)

    @classmethod
    def load(
        cls, path: str | os.PathLike, net: GanNet | None = None, student: str | os.PathLike | None = None
    ) -> PruningPlan:
        """Read a plan file; check it fits ``net`` and was written with the checkpoint ``student``."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise PlanError(f"plan file not found: {path}")
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise PlanError(f"{path}: cannot be read as a plan ({exc})") from exc
        plan = cls.from_json(text, path)
        if net is not None:
            plan.validate(net, path)
        if student is not None:
            plan.check_student(student, path)
        return plan

    def check_student(self, student: str | os.PathLike, source: str = "plan") -> None:
        """PlanError unless ``student``'s bytes are those this plan was written with (plans
        without a recorded checksum, from before it was recorded, are accepted)."""
        if not self.student or "sha256" not in self.student:
            return
        actual = file_sha256(student)
        if actual != self.student["sha256"]:
            raise PlanError(
                f"{source} was written with another student than {os.fspath(student)} (sha256 "
                f"{self.student['sha256'][:12]}… recorded, {actual[:12]}… found): the two files come "
                "from different prune runs; prune again or remove the stale plan"
            )


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_keep(name: str, keep: tuple[int, ...], size: int, min_size: int, source: str) -> None:
    if list(keep) != sorted(set(keep)):
        raise PlanError(f"{source}: group {name}: 'keep' must be sorted and unique")
    if keep and (keep[0] < 0 or keep[-1] >= size):
        bad = keep[0] if keep[0] < 0 else keep[-1]
        raise PlanError(f"{source}: group {name}: index {bad} out of range for size {size}")
    if len(keep) < min_size:
        raise PlanError(f"{source}: group {name}: keeps {len(keep)} channels, minimum is {min_size}")


# -- policies: scores -> plan -------------------------------------------------------------------
def kept_count(size: int, ratio: float, min_size: int = 1) -> int:
    """Channels kept when removing ``int(size * ratio)`` of them (CAGAN/DCP's uniform rule).

    ``ratio`` is the *removal* ratio, as in both official repos: 0.7 keeps 154 of 512.
    """
    if not 0.0 <= ratio < 1.0:
        raise PlanError(f"removal ratio must be in [0, 1), got {ratio}")
    removed = int(size * ratio)
    return max(size - removed, min(min_size, size))


def round_kept(keep: int, size: int, multiple: int = 1) -> int:
    """``keep`` rounded to the nearest multiple of ``multiple`` (ties up), within ``[multiple, size]``.

    A speed option, not in any paper: convolution kernels (oneDNN's SIMD blocks, tensor cores) run
    channel counts that are multiples of 8/16 at full width, so 154 → 160 can be as fast as 154 or
    faster while keeping more channels (docs/speed.md has the measurements). ``multiple=1`` or a
    group smaller than ``multiple`` leaves the count unchanged.
    """
    if multiple < 1:
        raise PlanError(f"round_to must be >= 1, got {multiple}")
    if multiple == 1 or size < multiple:
        return keep
    rounded = int(math.floor(keep / multiple + 0.5)) * multiple
    return min(max(rounded, multiple), size)


def top_indices(score: torch.Tensor, keep: int) -> tuple[int, ...]:
    """Indices of the ``keep`` highest scores, sorted; ties resolved by lower index first.

    Equivalent to removing ``np.argsort(score)[:size-keep]`` when scores are distinct.
    """
    order = torch.argsort(score.detach().double().cpu(), descending=True, stable=True)
    return tuple(sorted(order[:keep].tolist()))


def _check_scores(groups: list[ChannelGroup], scores: Scores) -> None:
    for group in groups:
        if group.name not in scores:
            raise PlanError(f"no score for channel group {group.name}")
        if scores[group.name].shape != (group.size,):
            raise PlanError(
                f"group {group.name}: score has shape {tuple(scores[group.name].shape)}, "
                f"expected ({group.size},)"
            )
        if not torch.isfinite(scores[group.name]).all():
            raise PlanError(f"group {group.name}: scores contain NaN/inf")


def uniform_plan(
    net: GanNet,
    scores: Scores,
    ratio: float,
    scorer: Mapping[str, Any] | None = None,
    round_to: int = 1,
) -> PruningPlan:
    """Remove ``int(C * ratio)`` lowest-scored channels of every group (CAGAN, DCP)."""
    return per_group_plan(
        net, scores, {}, default_ratio=ratio, scorer=scorer, policy_name="uniform", round_to=round_to
    )


def per_group_plan(
    net: GanNet,
    scores: Scores,
    ratios: Mapping[str, float],
    default_ratio: float = 0.0,
    scorer: Mapping[str, Any] | None = None,
    policy_name: str = "per_group",
    round_to: int = 1,
) -> PruningPlan:
    """Per-group removal ratios (groups not named use ``default_ratio``); kept counts rounded by
    :func:`round_kept` to a multiple of ``round_to``."""
    groups = net.channel_groups()
    _check_scores(groups, scores)
    unknown = set(ratios) - {g.name for g in groups}
    if unknown:
        raise PlanError(f"ratios name unknown channel groups: {sorted(unknown)}")
    plan_groups = {}
    for group in groups:
        keep = kept_count(group.size, ratios.get(group.name, default_ratio), group.min_size)
        keep = max(round_kept(keep, group.size, round_to), min(group.min_size, group.size))
        plan_groups[group.name] = GroupPlan(group.size, top_indices(scores[group.name], keep))
    policy: dict[str, Any] = {"name": policy_name, "ratio": default_ratio}
    if ratios:
        policy["ratios"] = dict(ratios)
    if round_to != 1:
        policy["round_to"] = round_to
    return PruningPlan(type(net).__name__, plan_groups, dict(scorer or {}), policy)


Normalisation = Literal["none", "max", "mean", "l2"]


def normalise_scores(scores: Scores, how: Normalisation) -> Scores:
    """Make scores comparable across groups (gradient magnitudes differ by layer)."""
    if how == "none":
        return dict(scores)
    out = {}
    for name, s in scores.items():
        s = s.double()
        denom = {"max": s.abs().max(), "mean": s.abs().mean(), "l2": s.norm()}[how]
        out[name] = s / denom.clamp_min(1e-30)
    return out


def global_plan(
    net: GanNet,
    scores: Scores,
    *,
    threshold: float | None = None,
    ratio: float | None = None,
    normalise: Normalisation = "mean",
    scorer: Mapping[str, Any] | None = None,
    round_to: int = 1,
) -> PruningPlan:
    """One threshold for all groups: keep channels whose normalised score ≥ threshold.

    Give either ``threshold`` or ``ratio`` (fraction of all channels to remove; the threshold is
    then the global quantile). Each group still keeps at least ``min_size`` channels (its best).
    """
    if (threshold is None) == (ratio is None):
        raise PlanError("global policy needs exactly one of threshold or ratio")
    groups = net.channel_groups()
    _check_scores(groups, scores)
    normed = normalise_scores({g.name: scores[g.name] for g in groups}, normalise)
    if ratio is not None:
        if not 0.0 <= ratio < 1.0:
            raise PlanError(f"removal ratio must be in [0, 1), got {ratio}")
        # Rank all channels together; the lowest int(total * ratio) go.
        everything = torch.cat([normed[g.name] for g in groups])
        n_remove = int(everything.numel() * ratio)
        order = torch.argsort(everything, stable=True)
        removed = torch.zeros(everything.numel(), dtype=torch.bool)
        removed[order[:n_remove]] = True
        threshold = float(everything[order[n_remove]]) if n_remove < everything.numel() else math.inf
        passing_masks = torch.split(~removed, [g.size for g in groups])
    else:
        passing_masks = [normed[g.name] >= threshold for g in groups]
    plan_groups = {}
    for group, passing in zip(groups, passing_masks):
        keep = round_kept(int(passing.sum()), group.size, round_to)
        keep = max(keep, min(group.min_size, group.size))
        plan_groups[group.name] = GroupPlan(group.size, top_indices(normed[group.name], keep))
    policy = {"name": "global", "threshold": threshold, "ratio": ratio, "normalise": normalise}
    if round_to != 1:
        policy["round_to"] = round_to
    return PruningPlan(type(net).__name__, plan_groups, dict(scorer or {}), policy)


def plan_from_keep(
    net: GanNet, keep: Mapping[str, list[int]], scorer: Mapping[str, Any] | None = None
) -> PruningPlan:
    """A plan from explicit kept indices (tests, hand-made plans); validated against ``net``."""
    sizes = {g.name: g.size for g in net.channel_groups()}
    plan = PruningPlan(
        type(net).__name__,
        {name: GroupPlan(sizes.get(name, -1), tuple(sorted(idx))) for name, idx in keep.items()},
        dict(scorer or {"name": "manual"}),
        {"name": "manual"},
    )
    plan.validate(net)
    return plan


# -- policy objects (typed constructor arguments: buildable from YAML ``class_path``) -------------
class PruningPolicy:
    """Base of policies: ``policy(net, scores, scorer_description) -> PruningPlan``."""

    def __call__(self, net: GanNet, scores: Scores, scorer: Mapping[str, Any] | None = None) -> PruningPlan:
        raise TypeError(f"{type(self).__name__} must implement __call__(net, scores, scorer)")

    def widths(self, net: GanNet) -> dict[str, int] | None:
        """Group sizes the student will have, when they follow from the policy alone (uniform and
        per-group ratios); None when they depend on the scores (global threshold, MAC budget)."""
        return None


class UniformPolicy(PruningPolicy):
    """Remove ``int(C * ratio)`` lowest-scored channels of every group (CAGAN/DCP default).

    ``round_to`` (every policy): round kept counts to a multiple (8 or 16) for speed; 1 = the
    official counts.
    """

    def __init__(self, ratio: float = 0.7, round_to: int = 1) -> None:
        kept_count(2, ratio)  # validates the range
        round_kept(1, 1, round_to)
        self.ratio, self.round_to = ratio, round_to

    def __call__(self, net: GanNet, scores: Scores, scorer: Mapping[str, Any] | None = None) -> PruningPlan:
        return uniform_plan(net, scores, self.ratio, scorer, round_to=self.round_to)

    def widths(self, net: GanNet) -> dict[str, int]:
        return {g.name: kept_count(g.size, self.ratio, g.min_size) for g in net.channel_groups()}


class PerGroupPolicy(PruningPolicy):
    """Per-group removal ratios; groups not named use ``default_ratio``."""

    def __init__(
        self, ratios: dict[str, float] | None = None, default_ratio: float = 0.0, round_to: int = 1
    ) -> None:
        round_kept(1, 1, round_to)
        self.ratios = dict(ratios or {})
        self.default_ratio, self.round_to = default_ratio, round_to

    def __call__(self, net: GanNet, scores: Scores, scorer: Mapping[str, Any] | None = None) -> PruningPlan:
        return per_group_plan(net, scores, self.ratios, self.default_ratio, scorer, round_to=self.round_to)

    def widths(self, net: GanNet) -> dict[str, int]:
        return {
            g.name: kept_count(g.size, self.ratios.get(g.name, self.default_ratio), g.min_size)
            for g in net.channel_groups()
        }


class GlobalPolicy(PruningPolicy):
    """One threshold over normalised scores of all groups (or the global removal ``ratio``)."""

    def __init__(
        self,
        threshold: float | None = None,
        ratio: float | None = None,
        normalise: Normalisation = "mean",
        round_to: int = 1,
    ) -> None:
        round_kept(1, 1, round_to)
        self.threshold, self.ratio, self.normalise, self.round_to = threshold, ratio, normalise, round_to

    def __call__(self, net: GanNet, scores: Scores, scorer: Mapping[str, Any] | None = None) -> PruningPlan:
        return global_plan(
            net,
            scores,
            threshold=self.threshold,
            ratio=self.ratio,
            normalise=self.normalise,
            scorer=scorer,
            round_to=self.round_to,
        )
