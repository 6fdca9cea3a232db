"""Progressive-pruning loss of PPCD-GAN (Vo et al., WACV 2022, eq. 2 and 5): the mean over every
learnable mask layer of ``ℓ_PP = Σ_i |w_i + 1|``, weighted 0.01 in the total loss (eq. 8).

The masks come from the method as the context extra ``pp_masks`` (a list of
:class:`~lightning_gancomp.nets.masks.LearnableMask`); frozen masks contribute a constant.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from lightning_gancomp.losses.base import LossContext, LossTerm
from lightning_gancomp.nets.masks import progressive_pruning_loss


class ProgressivePruningLoss(LossTerm):
    """``L_PP`` (eq. 5) over the masks in the context extra ``pp_masks``.

    Args:
        weight: multiplier (PPCD-GAN eq. 8: 0.01).
        name: log key suffix.
    """

    requires: ClassVar[tuple[str, ...]] = ("pp_masks",)
    default_name: ClassVar[str] = "l_pp"

    def __init__(self, weight: float = 0.01, name: str | None = None) -> None:
        super().__init__(weight, name)

    def forward(self, ctx: LossContext) -> Tensor:
        return progressive_pruning_loss(list(self.fetch(ctx, "pp_masks")))
