"""PPCD-GAN learnable channel masks (Vo, Sugimoto, Nakayama, "PPCD-GAN: Progressive Pruning and
Class-Aware Distillation for Large-Scale Conditional GANs Compression", WACV 2022, Sec. 3.2/3.4).

There is no public code; the paper text (Vo et al., WACV 2022, Sec. 3) is the specification:

* eq. 1: one parameter ``w_i`` per output channel, mask ``m_i = sigmoid(δ · w_i)``, δ = 1e3;
* eq. 2: sparsity ``ℓ_PP = Σ_i |w_i + 1|`` drives every ``w_i`` towards -1, i.e. ``m_i`` to 0;
* eq. 3: "binarization trick": ``ratio`` = share of ``m_i <= pivot`` (pivot 0.005); once
  ``ratio > α`` (strictly), ``m_i`` becomes 1 where ``m_i > pivot`` and 0 elsewhere and the mask
  stops updating (frozen). At ``ratio == α`` nothing happens;
* eq. 5: ``L_PP`` = mean of ``ℓ_PP`` over the 2N masks of the N PP-Res blocks.

What the paper leaves open, and the choice made here:

* initial value: not stated; ``init_value`` (default 0.99) is the initial mask value, so the
  student starts as the unmasked network and the sigmoid is still responsive
  (``w = logit(0.99)/δ ≈ 0.0046``; δ·m(1-m) ≈ 9.9).
* a frozen layer whose every mask is ≤ pivot would delete the whole feature map; eq. 3 as
  written allows it, but the network then loses the block's path, so ``min_keep`` (default 1)
  channels with the largest mask values stay (they are the ones eq. 3 would keep first).
* a frozen mask's ``ℓ_PP`` is a constant (it no longer depends on anything trained), so it still
  enters the mean of eq. 5 but carries no gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

#: δ of eq. 1 (paper Sec. 4.2).
DELTA = 1e3
#: pivot of eq. 3 (paper Sec. 3.2: "we choose 0.005").
PIVOT = 0.005


def mask_value(weight: Tensor, delta: float = DELTA) -> Tensor:
    """Eq. 1: ``m = 1 / (1 + exp(-δ w))``."""
    return torch.sigmoid(delta * weight)


def pp_sparsity(weight: Tensor) -> Tensor:
    """Eq. 2: ``ℓ_PP = Σ_i |w_i + 1|``."""
    return (weight + 1.0).abs().sum()


def masked_share(values: Tensor, pivot: float = PIVOT) -> Tensor:
    """``ratio = c / n`` of eq. 3: share of mask values ``<= pivot``."""
    return (values <= pivot).float().mean()


def binarize(values: Tensor, alpha: float, pivot: float = PIVOT, min_keep: int = 1) -> Tensor | None:
    """Eq. 3: the {0, 1} mask when ``ratio > α``, else None (the mask stays continuous).

    ``min_keep`` channels with the largest values stay 1 even when eq. 3 would zero them all
    (see the module docstring)."""
    ratio = int((values <= pivot).sum()) / values.numel()  # exact c/n (float32 would round 4/5 up)
    if ratio <= alpha:
        return None
    return keep_indicator(values, pivot, min_keep)


def keep_indicator(values: Tensor, pivot: float = PIVOT, min_keep: int = 1) -> Tensor:
    """``1[m > pivot]`` as floats, with at least ``min_keep`` ones (the largest values)."""
    keep = (values > pivot).to(values.dtype)
    short = min(min_keep, values.numel()) - int(keep.sum())
    if short > 0:
        order = torch.argsort(values, descending=True, stable=True)
        keep[order[: min(min_keep, values.numel())]] = 1.0
    return keep


class LearnableMask(nn.Module):
    """Per-channel learnable mask of a PP-Res block (eq. 1), with eq. 3's freeze.

    State: parameter ``weight`` (the ``w_i``), buffers ``frozen`` (bool scalar) and ``binary``
    (the frozen {0, 1} values; all ones until frozen). Saved and restored with the network.

    Args:
        channels: number of channels it masks.
        delta: δ of eq. 1.
        init_value: initial mask value (``w = logit(init_value) / δ``).
    """

    def __init__(self, channels: int, delta: float = DELTA, init_value: float = 0.99) -> None:
        super().__init__()
        if not 0.0 < init_value < 1.0:
            raise ValueError(f"LearnableMask: init_value must be in (0, 1), got {init_value}")
        self.delta = float(delta)
        self.weight = nn.Parameter(torch.full((channels,), math.log(init_value / (1 - init_value)) / delta))
        self.register_buffer("frozen", torch.tensor(False))
        self.register_buffer("binary", torch.ones(channels))

    @property
    def is_frozen(self) -> bool:
        return bool(self.frozen)

    def values(self) -> Tensor:
        """``m`` of eq. 1, or the frozen ``m*`` of eq. 3 (no gradient to ``weight`` then)."""
        return self.binary if self.is_frozen else mask_value(self.weight, self.delta)

    def forward(self, x: Tensor) -> Tensor:
        """``x [B, C, H, W] * m`` per channel."""
        return x * self.values().view(1, -1, 1, 1).to(x.dtype)

    def sparsity(self) -> Tensor:
        """Eq. 2 on this mask (a constant once frozen)."""
        return pp_sparsity(self.weight.detach() if self.is_frozen else self.weight)

    def masked_share(self, pivot: float = PIVOT) -> float:
        return float(masked_share(self.values().detach(), pivot))

    @torch.no_grad()
    def maybe_freeze(self, alpha: float, pivot: float = PIVOT, min_keep: int = 1) -> bool:
        """Apply eq. 3; True when this call froze the mask."""
        if self.is_frozen:
            return False
        binary = binarize(self.values(), alpha, pivot, min_keep)
        if binary is None:
            return False
        self.set_binary(binary)
        return True

    @torch.no_grad()
    def set_binary(self, binary: Tensor) -> None:
        """Freeze to the given {0, 1} values (eq. 3's ``m*``; also used by tests and ablations)."""
        self.binary.copy_(binary.to(self.binary))
        # ``weight`` keeps requires_grad (the optimizer's parameter list must not change across a
        # resume); it simply receives no gradient any more, so optimizers skip it.
        self.frozen.fill_(True)

    def kept(self, pivot: float = PIVOT, min_keep: int = 1) -> Tensor:
        """Indices of the channels that survive removal: the frozen ones, or ``m > pivot``."""
        values = self.values().detach()
        return torch.nonzero(keep_indicator(values, pivot, min_keep) > 0.5).flatten()

    def extra_repr(self) -> str:
        return f"channels={self.weight.numel()}, delta={self.delta:g}"


def progressive_pruning_loss(masks: Sequence[LearnableMask]) -> Tensor:
    """Eq. 5: ``L_PP = (1 / 2N) Σ_k ℓ_PP_k`` over every mask layer."""
    if not masks:
        raise ValueError("progressive_pruning_loss: no mask layers")
    return torch.stack([mask.sparsity() for mask in masks]).mean()
