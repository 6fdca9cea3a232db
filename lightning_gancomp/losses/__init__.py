"""Loss terms chosen by ``class_path`` in YAML (see ``losses.base`` for the contract)."""

from lightning_gancomp.losses.adversarial import AdversarialLoss, HingeLoss, LSGANLoss, NonSaturatingLoss
from lightning_gancomp.losses.attention import AttentionDistillation
from lightning_gancomp.losses.base import LossContext, LossTerm, MissingLossInputError, masked
from lightning_gancomp.losses.cycle import CycleConsistencyLoss, IdentityLoss
from lightning_gancomp.losses.distillation import (
    FeatureDistillation,
    IntermediateRGBLoss,
    LPIPSLoss,
    PixelLoss,
    build_lpips,
)
from lightning_gancomp.losses.regularizers import PathLengthPenalty, R1Penalty
from lightning_gancomp.losses.sparsity import ProgressivePruningLoss

__all__ = [
    "AdversarialLoss",
    "AttentionDistillation",
    "CycleConsistencyLoss",
    "FeatureDistillation",
    "HingeLoss",
    "IdentityLoss",
    "LPIPSLoss",
    "LSGANLoss",
    "LossContext",
    "LossTerm",
    "MissingLossInputError",
    "NonSaturatingLoss",
    "PathLengthPenalty",
    "IntermediateRGBLoss",
    "PixelLoss",
    "ProgressivePruningLoss",
    "R1Penalty",
    "build_lpips",
    "masked",
]
