"""Adversarial objectives: each gives the generator's and the discriminator's loss from logits.

- :class:`NonSaturatingLoss` — Goodfellow et al. 2014, Sec. 3 "maximise log D(G(z))"; the form
  StyleGAN2 uses (NVlabs/stylegan2-ada-pytorch ``training/loss.py``: ``softplus(-D(G(z)))`` for G,
  ``softplus(D(G(z))) + softplus(-D(x))`` for D; rosinality ``train.py`` ``g_nonsaturating_loss``
  / ``d_logistic_loss``). With ``discriminator_scale=0.5`` it is pix2pix/CycleGAN's "vanilla"
  ``GANLoss`` (BCE with logits, D loss halved: junyanz ``models/pix2pix_model.py``).
- :class:`HingeLoss` — Lim & Ye 2017 / Miyato et al. 2018 (SN-GAN), used by BigGAN/SAGAN
  (ajbrock ``losses.py``: ``relu(1-D(x)) + relu(1+D(G(z)))``, G: ``-D(G(z))``).
- :class:`LSGANLoss` — Mao et al. 2017 least squares with targets 1/0 (junyanz ``GANLoss('lsgan')``
  = ``MSELoss`` to 1 and 0; D loss halved there, ``discriminator_scale=0.5``).

Logits of any shape (``[B]`` or PatchGAN ``[B, 1, h, w]``) are averaged over all elements.
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn


class AdversarialLoss(nn.Module):
    """Base class.

    Args:
        weight: multiplier of the generator loss.
        discriminator_scale: multiplier of the discriminator loss (pix2pix/CycleGAN use 0.5).
    """

    default_name: ClassVar[str] = "adv"

    def __init__(
        self, weight: float = 1.0, discriminator_scale: float = 1.0, name: str | None = None
    ) -> None:
        super().__init__()
        self.weight = float(weight)
        self.discriminator_scale = float(discriminator_scale)
        self.name = name or self.default_name

    def generator_loss(self, d_fake: Tensor) -> Tensor:
        raise TypeError(f"{type(self).__name__} must implement generator_loss")

    def discriminator_terms(self, d_real: Tensor, d_fake: Tensor) -> tuple[Tensor, Tensor]:
        """Unscaled (real part, fake part) of the discriminator loss."""
        raise TypeError(f"{type(self).__name__} must implement discriminator_terms")

    def discriminator_loss(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        real_part, fake_part = self.discriminator_terms(d_real, d_fake)
        return self.discriminator_scale * (real_part + fake_part)


class NonSaturatingLoss(AdversarialLoss):
    """Logistic non-saturating loss (StyleGAN2 default)."""

    def generator_loss(self, d_fake: Tensor) -> Tensor:
        return F.softplus(-d_fake).mean()

    def discriminator_terms(self, d_real: Tensor, d_fake: Tensor) -> tuple[Tensor, Tensor]:
        return F.softplus(-d_real).mean(), F.softplus(d_fake).mean()


class HingeLoss(AdversarialLoss):
    """Hinge loss (SN-GAN, SAGAN, BigGAN)."""

    def generator_loss(self, d_fake: Tensor) -> Tensor:
        return -d_fake.mean()

    def discriminator_terms(self, d_real: Tensor, d_fake: Tensor) -> tuple[Tensor, Tensor]:
        return F.relu(1.0 - d_real).mean(), F.relu(1.0 + d_fake).mean()


class LSGANLoss(AdversarialLoss):
    """Least-squares GAN loss with targets 1 (real) and 0 (fake) (CycleGAN default)."""

    def generator_loss(self, d_fake: Tensor) -> Tensor:
        return (d_fake - 1.0).square().mean()

    def discriminator_terms(self, d_real: Tensor, d_fake: Tensor) -> tuple[Tensor, Tensor]:
        return (d_real - 1.0).square().mean(), d_fake.square().mean()
