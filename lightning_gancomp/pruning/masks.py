"""From a mask-trained network to a plain, smaller one (PPCD-GAN Sec. 3.2: "all redundant
parameters as well as the mask layers are discarded" after training).

A *masked network* is a GanNet with ``mask_layers() -> {channel group name: LearnableMask}`` and
``plain() -> GanNet`` (the same weights in the plain class, masks dropped), e.g.
:class:`~lightning_gancomp.nets.ppsagan.PPSAGANGenerator`. :func:`mask_plan` turns its masks into
a :class:`~lightning_gancomp.pruning.plan.PruningPlan` for the plain class (kept channels: mask 1
once eq. 3 froze the layer; ``m > pivot`` for a layer that never froze, i.e. eq. 3's rule applied
at the end of training), and :func:`materialise` applies it with the ordinary surgery.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch

from lightning_gancomp.nets.base import GanNet
from lightning_gancomp.nets.masks import PIVOT, LearnableMask
from lightning_gancomp.pruning.plan import GroupPlan, PruningPlan
from lightning_gancomp.pruning.surgery import apply_plan


class MaskedNet(Protocol):
    def mask_layers(self) -> dict[str, LearnableMask]: ...

    def plain(self) -> GanNet: ...


def mask_plan(net: MaskedNet, pivot: float = PIVOT, min_keep: int = 1) -> PruningPlan:
    """Kept channels of every masked group, as a plan for ``net.plain()``'s class."""
    layers = net.mask_layers()
    groups = {
        name: GroupPlan(mask.weight.numel(), tuple(int(i) for i in mask.kept(pivot, min_keep)))
        for name, mask in layers.items()
    }
    frozen: dict[str, Any] = {name: mask.is_frozen for name, mask in layers.items()}
    plain_class = _plain_class_name(net)
    return PruningPlan(
        plain_class, groups, scorer={"name": "learnable_masks", "pivot": pivot, "frozen": frozen}
    )


def _plain_class_name(net: MaskedNet) -> str:
    # the plain class is the nearest GanNet base without masks (PPSAGANGenerator -> BigGANGenerator)
    for cls in type(net).__mro__[1:]:
        if issubclass(cls, GanNet) and "mask_layers" not in cls.__dict__:
            return cls.__name__
    raise TypeError(f"{type(net).__name__}: no plain GanNet base class")


@torch.no_grad()
def materialise(net: MaskedNet, pivot: float = PIVOT, min_keep: int = 1) -> GanNet:
    """The plain network with every masked channel cut (same outputs when the masks are in
    {0, 1}; see ``nets.ppsagan`` for why spectral norm needs no correction)."""
    return apply_plan(net.plain(), mask_plan(net, pivot, min_keep))
