"""Surgery: apply a :class:`~lightning_gancomp.pruning.plan.PruningPlan` to a network.

Surgery is state-dict slicing driven by the channel groups the network declares: for every
member tensor of every planned group, keep the planned channels along the member's ``dim``
(``block`` consecutive entries per channel), then rebuild the *same class* with the new widths
(``type(net)(**net.config_for_group_sizes(sizes))``) and load the sliced weights strictly.
Nothing here knows an architecture: StyleGAN2, SN-GAN, BigGAN/SAGAN and Pix2Pix/CycleGAN all
work through their declared groups (a residual stream is one group, so every block reading or
writing it is cut consistently).

Equalized learning rate. StyleGAN2 layers multiply their stored weight by ``1/sqrt(fan_in)`` at
run time. Slicing an input dimension changes ``fan_in``, so the student's runtime scale grows
by ``sqrt(size/kept)``. Two behaviours are offered:

* ``rescale_equalized=True`` (default): multiply the sliced weight by ``sqrt(kept/size)`` so
  the student computes exactly what the teacher computes with the dropped channels' consumer
  weights zeroed (function-preserving; the property our equivalence tests check).
* ``rescale_equalized=False``: plain slicing, as CAGAN's official code does
  (lychenyoko/content-aware-gan-compression ``Util/mask_util.py`` ``Mask_the_Generator`` slices
  ``[:, out_mask][:, :, in_mask]`` and loads into a smaller Generator whose EqualConv scale is
  recomputed from the smaller ``in_channel``; DCP-GAN reuses that file). The student's
  activations are then scaled up by ``sqrt(size/kept)`` at every pruned input (StyleGAN2's
  demodulation cancels most of it for modulated convs, but not for ToRGB).

The papers do not discuss the point; the function-preserving choice is the default because it
makes "pruned teacher init" mean what it says.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from lightning_gancomp.nets.base import (
    ChannelGroup,
    GanNet,
    TensorSlice,
    load_state_dict_strict,
)
from lightning_gancomp.pruning.plan import PruningPlan


def _entry_index(keep: torch.Tensor, block: int) -> torch.Tensor:
    """Indices along the member dim of the kept channels, each spanning ``block`` entries."""
    if block == 1:
        return keep
    offsets = torch.arange(block, dtype=torch.long)
    return (keep[:, None] * block + offsets[None, :]).reshape(-1)


def _planned_groups(net: GanNet, plan: PruningPlan) -> list[tuple[ChannelGroup, torch.Tensor]]:
    plan.validate(net)
    return [(g, plan.keep_index(g.name)) for g in net.channel_groups() if g.name in plan.groups]


def _check_disjoint_members(planned: list[tuple[ChannelGroup, torch.Tensor]]) -> None:
    # Two groups may cut the same tensor along different dims (a conv's in and out), never
    # along the same dim.
    seen: dict[tuple[str, int], str] = {}
    for group, _ in planned:
        for member in group.members:
            where = (member.key, member.dim)
            if where in seen and seen[where] != group.name:
                raise ValueError(
                    f"{member.key} dim {member.dim} is a member of both {seen[where]} and {group.name}"
                )
            seen[where] = group.name


def slice_state_dict(
    net: GanNet, plan: PruningPlan, *, rescale_equalized: bool = True
) -> dict[str, torch.Tensor]:
    """The teacher's state dict with every planned group cut down to its kept channels."""
    planned = _planned_groups(net, plan)
    _check_disjoint_members(planned)
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    for group, keep in planned:
        if keep.numel() == group.size:
            continue
        for member in group.members:
            state[member.key] = _slice_member(state[member.key], member, keep, group.size, rescale_equalized)
    return state


def _slice_member(
    tensor: torch.Tensor, member: TensorSlice, keep: torch.Tensor, size: int, rescale_equalized: bool
) -> torch.Tensor:
    index = _entry_index(keep, member.block).to(tensor.device)
    sliced = tensor.index_select(member.dim, index)
    if member.equalized_fan_in and rescale_equalized:
        # runtime scale 1/sqrt(fan_in) with fan_in ∝ channels: keep W/sqrt(size) = W'/sqrt(kept)
        sliced = sliced * math.sqrt(keep.numel() / size)
    return sliced.contiguous()


def student_config(net: GanNet, plan: PruningPlan) -> dict:
    """Constructor arguments of the pruned network (widths only; no weights needed)."""
    plan.validate(net)
    return net.config_for_group_sizes(plan.sizes())


def apply_plan(net: GanNet, plan: PruningPlan, *, rescale_equalized: bool = True) -> GanNet:
    """A new, smaller network of the same class holding the kept teacher weights.

    Every tensor that no group names (mapping network, noise strengths, RGB biases, ...) is
    copied unchanged. The result is in the same train/eval mode as ``net``.
    """
    state = slice_state_dict(net, plan, rescale_equalized=rescale_equalized)
    student = type(net)(**student_config(net, plan))
    load_state_dict_strict(student, state, f"pruned {type(net).__name__}")
    first = next(iter(net.state_dict().values()), None)
    if first is not None:
        student = student.to(device=first.device)
    return student.train(net.training)


@torch.no_grad()
def zero_dropped_channels(
    net: GanNet, plan: PruningPlan, roles: tuple[str, ...] = ("out", "in", "aux")
) -> GanNet:
    """Zero, in place, the dropped channels' slices of every member with one of ``roles``.

    The reference for surgery equivalence: the teacher with its dropped channels zeroed in
    producers *and* consumers computes what the sliced student computes (for StyleGAN2 the
    consumer zeroing is what matters: demodulation then sums over the same weights; for
    spectral-norm nets zeroed rows/columns leave sigma equal to the sliced matrix's). Also the
    masking primitive for mask-based methods. Returns ``net``.
    """
    planned = _planned_groups(net, plan)
    state = net.state_dict(keep_vars=True)
    for group, keep in planned:
        dropped = torch.ones(group.size, dtype=torch.bool)
        dropped[keep] = False
        if not dropped.any():
            continue
        drop_channels = torch.nonzero(dropped).flatten()
        for member in group.members:
            if member.role not in roles:
                continue
            tensor = state[member.key]
            index = _entry_index(drop_channels, member.block).to(tensor.device)
            tensor.data.index_fill_(member.dim, index, 0.0)
    return net


def group_sizes(net: GanNet) -> dict[str, int]:
    return {g.name: g.size for g in net.channel_groups()}


def describe_widths(before: Mapping[str, int], after: Mapping[str, int]) -> str:
    """One line per group: ``name: 512 -> 154``."""
    width = max((len(n) for n in before), default=0)
    return "\n".join(
        f"{name:<{width}}  {before[name]:>5} -> {after.get(name, before[name]):>5}" for name in before
    )
