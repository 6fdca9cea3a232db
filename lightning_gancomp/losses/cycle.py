"""CycleGAN terms (Zhu et al. 2017, Eq. 2 cycle consistency, Sec. 5.2 identity mapping loss).

Official ``junyanz/pytorch-CycleGAN-and-pix2pix`` ``models/cycle_gan_model.py``: both are L1;
``lambda_A = lambda_B = 10`` and the identity weight is ``lambda_identity * lambda`` = 0.5 · 10.
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor

from lightning_gancomp.losses.base import LossContext, LossTerm


class CycleConsistencyLoss(LossTerm):
    """``|| G_BA(G_AB(a)) - a ||_1`` (weight 10 in CycleGAN)."""

    requires: ClassVar[tuple[str, ...]] = ("reconstructed_img", "reconstruction_target")
    default_name: ClassVar[str] = "cycle"

    def __init__(self, weight: float = 10.0, name: str | None = None) -> None:
        super().__init__(weight, name)

    def forward(self, ctx: LossContext) -> Tensor:
        return F.l1_loss(self.fetch(ctx, "reconstructed_img"), self.fetch(ctx, "reconstruction_target"))


class IdentityLoss(LossTerm):
    """``|| G_AB(b) - b ||_1`` (weight 0.5 · 10 = 5 in CycleGAN)."""

    requires: ClassVar[tuple[str, ...]] = ("identity_img", "identity_target")
    default_name: ClassVar[str] = "identity"

    def __init__(self, weight: float = 5.0, name: str | None = None) -> None:
        super().__init__(weight, name)

    def forward(self, ctx: LossContext) -> Tensor:
        return F.l1_loss(self.fetch(ctx, "identity_img"), self.fetch(ctx, "identity_target"))
