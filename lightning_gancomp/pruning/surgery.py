"""Surgery: apply a :class:`~lightning_gancomp.pruning.plan.PruningPlan` to a network.

Surgery is state-dict slicing driven by the channel groups the network declares: for every
member tensor of every planned group, keep the planned channels along the member's ``dim``
(``block`` consecutive entries per channel), then rebuild the *same class* with the new widths
(``type(net)(**net.config_for_group_sizes(sizes))``) and load the sliced weights strictly.
Nothing here knows an architecture: StyleGAN2, SN-GAN, BigGAN/SAGAN and Pix2Pix/CycleGAN all
work through their declared groups (a residual stream is one group, so every block reading or
writing it is cut consistently). When several groups own windows of the same tensor along the
same dim (a U-Net up conv reads ``cat([skip, up_path])``), that tensor is cut once with one
combined index: the kept entries of every window plus every entry no group owns, in order.

Equalized learning rate. StyleGAN2 layers multiply their stored weight by ``1/sqrt(fan_in)`` at
run time. Slicing an input dimension changes ``fan_in``, so the student's runtime scale grows
by ``sqrt(size/kept)``. Two behaviours are offered:

* ``rescale_equalized=True`` (default): multiply the sliced weight by ``sqrt(kept/total)``
  (entries kept along the input dim over all its entries: the fan-in counts every part of a
  concatenated input, owned by a group or fixed) so the student computes exactly what the
  teacher computes with the dropped channels' consumer weights zeroed (function-preserving;
  the property our equivalence tests check).
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
    check_disjoint_windows,
    load_state_dict_strict,
)
from lightning_gancomp.pruning.plan import PruningPlan


def _entry_index(channels: torch.Tensor, member: TensorSlice) -> torch.Tensor:
    """Indices along the member dim of ``channels``, each spanning ``block`` entries, shifted
    to the member's window."""
    if member.block == 1:
        return channels + member.offset
    offsets = torch.arange(member.block, dtype=torch.long)
    return (channels[:, None] * member.block + offsets[None, :]).reshape(-1) + member.offset


def _dropped_channels(group: ChannelGroup, keep: torch.Tensor) -> torch.Tensor:
    dropped = torch.ones(group.size, dtype=torch.bool)
    dropped[keep] = False
    return torch.nonzero(dropped).flatten()


def _planned_groups(net: GanNet, plan: PruningPlan) -> list[tuple[ChannelGroup, torch.Tensor]]:
    plan.validate(net)
    return [(g, plan.keep_index(g.name)) for g in net.channel_groups() if g.name in plan.groups]


def _kept_entries(
    state: Mapping[str, torch.Tensor], planned: list[tuple[ChannelGroup, torch.Tensor]]
) -> dict[tuple[str, int], tuple[torch.Tensor, bool]]:
    """One index per cut ``(key, dim)``: every entry except the dropped channels of every
    group's window (entries no group owns are kept), with whether the cut changes an
    equalized-lr fan-in."""
    dropped_masks: dict[tuple[str, int], torch.Tensor] = {}
    equalized: dict[tuple[str, int], bool] = {}
    for group, keep in planned:
        drop = _dropped_channels(group, keep)
        for member in group.members:
            where = (member.key, member.dim)
            if equalized.setdefault(where, member.equalized_fan_in) != member.equalized_fan_in:
                raise ValueError(f"{member.key} dim {member.dim}: members disagree on equalized_fan_in")
            if drop.numel() == 0:
                continue
            if where not in dropped_masks:
                dropped_masks[where] = torch.zeros(state[member.key].shape[member.dim], dtype=torch.bool)
            dropped_masks[where][_entry_index(drop, member)] = True
    return {
        where: (torch.nonzero(~mask).flatten(), equalized[where]) for where, mask in dropped_masks.items()
    }


def slice_state_dict(
    net: GanNet, plan: PruningPlan, *, rescale_equalized: bool = True
) -> dict[str, torch.Tensor]:
    """The teacher's state dict with every planned group cut down to its kept channels."""
    planned = _planned_groups(net, plan)
    check_disjoint_windows(net.channel_groups())
    state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    for (key, dim), (index, equalized) in _kept_entries(state, planned).items():
        state[key] = _slice_tensor(state[key], dim, index, equalized and rescale_equalized)
    return state


def _slice_tensor(tensor: torch.Tensor, dim: int, index: torch.Tensor, rescale: bool) -> torch.Tensor:
    total = tensor.shape[dim]
    sliced = tensor.index_select(dim, index.to(tensor.device))
    if rescale:
        # runtime scale 1/sqrt(fan_in), fan_in ∝ entries along the input dim (all parts of a
        # concatenation): keep W/sqrt(total) = W'/sqrt(kept)
        sliced = sliced * math.sqrt(index.numel() / total)
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
        drop_channels = _dropped_channels(group, keep)
        if drop_channels.numel() == 0:
            continue
        for member in group.members:
            if member.role not in roles:
                continue
            tensor = state[member.key]
            index = _entry_index(drop_channels, member).to(tensor.device)
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
