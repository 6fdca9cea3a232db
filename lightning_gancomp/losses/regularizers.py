"""Lazy regularisers of StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality
of StyleGAN", Sec. 3.1 lazy regularisation, Sec. 3.2 path length regularisation, Eq. 4).

- :class:`R1Penalty` — Mescheder et al. 2018, Eq. 9: ``gamma/2 * E||grad_x D(x)||^2`` on reals.
  Official: NVlabs/stylegan2-ada-pytorch ``training/loss.py`` (``loss_Dr1 = r1_penalty *
  (r1_gamma / 2)``), rosinality ``train.py`` ``d_r1_loss``.
- :class:`PathLengthPenalty` — ``E(||J_w^T y||_2 - a)^2`` with ``y ~ N(0, I)/sqrt(HW)`` and ``a``
  an exponential moving average of the lengths (decay 0.01). Official: rosinality ``train.py``
  ``g_path_regularize``; NVlabs ``loss.py`` ``pl_lengths``/``pl_mean``.

Lazy regularisation (every ``k`` minibatches) multiplies the penalty by ``k``; the method does
that and applies the optimizer correction ``lr*c, beta^c`` with ``c = k/(k+1)`` (paper App. B).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class R1Penalty(nn.Module):
    """R1 gradient penalty on real images.

    Args:
        gamma: regularisation strength; the loss is ``gamma / 2 * penalty``
            (StyleGAN2 FFHQ-256: 10 in rosinality/CAGAN; NVlabs paper config uses 1 at 256).
        name: log key suffix (``train/d/<name>``).
    """

    def __init__(self, gamma: float = 10.0, name: str = "r1") -> None:
        super().__init__()
        self.gamma = float(gamma)
        self.name = name

    @staticmethod
    def penalty(real_img: Tensor, d_real: Tensor) -> Tensor:
        """Mean over the batch of ``||dD(x)/dx||^2``; ``real_img`` must require grad."""
        (grad,) = torch.autograd.grad(outputs=d_real.sum(), inputs=real_img, create_graph=True)
        return grad.square().reshape(grad.shape[0], -1).sum(1).mean()

    def forward(self, real_img: Tensor, d_real: Tensor) -> tuple[Tensor, Tensor]:
        """(weighted loss ``gamma/2 * penalty``, unweighted penalty for logging)."""
        value = self.penalty(real_img, d_real)
        return 0.5 * self.gamma * value, value


class PathLengthPenalty(nn.Module):
    """Path length regulariser; keeps the running mean ``a`` in a buffer (saved in checkpoints,
    so a resumed run continues with the same target).

    Args:
        weight: ``pl_weight`` (StyleGAN2: 2).
        decay: EMA decay of the mean path length (0.01).
        batch_shrink: the regularisation batch is ``batch // batch_shrink`` (2).
        name: log key suffix (``train/g/<name>``).
    """

    def __init__(
        self, weight: float = 2.0, decay: float = 0.01, batch_shrink: int = 2, name: str = "pl"
    ) -> None:
        super().__init__()
        if batch_shrink < 1:
            raise ValueError(f"PathLengthPenalty: batch_shrink must be >= 1, got {batch_shrink}")
        self.weight = float(weight)
        self.decay = float(decay)
        self.batch_shrink = int(batch_shrink)
        self.name = name
        self.register_buffer("mean_path_length", torch.zeros(()))

    def forward(self, fake_img: Tensor, latents: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(weighted loss, unweighted penalty, mean path length of this batch).

        ``latents`` [B, n_latent, w_dim] must be the W+ tensor ``fake_img`` was generated from.
        The running mean is updated here (with the all-rank mean under DDP, as rosinality does).
        """
        height, width = fake_img.shape[-2:]
        noise = torch.randn_like(fake_img) / math.sqrt(height * width)
        (grad,) = torch.autograd.grad(outputs=(fake_img * noise).sum(), inputs=latents, create_graph=True)
        path_lengths = grad.square().sum(2).mean(1).sqrt()  # [B]
        # Both official versions keep the gradient through the batch mean inside the target
        # (rosinality ``path_mean``, NVlabs ``pl_mean.lerp(pl_lengths.mean(), decay)``).
        target = self.mean_path_length + self.decay * (path_lengths.mean() - self.mean_path_length)
        value = (path_lengths - target).square().mean()
        new_mean = target.detach().clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            # rosinality averages the running mean over ranks so every rank keeps the same target.
            torch.distributed.all_reduce(new_mean)
            new_mean /= torch.distributed.get_world_size()
        self.mean_path_length.copy_(new_mean)
        return self.weight * value, value, path_lengths.mean().detach()
