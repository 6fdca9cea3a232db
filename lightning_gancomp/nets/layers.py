"""Shared building blocks of the BigGAN/SAGAN and SN-GAN families.

Two spectral-norm flavours exist in the wild and their checkpoints are not interchangeable, so
both are implemented with the key layout of the code that wrote the checkpoints:

* :class:`SNConv2d`, :class:`SNLinear`, :class:`SNEmbedding` follow ajbrock/BigGAN-PyTorch
  ``layers.py`` (``SN``/``power_iteration``): buffers ``u0`` (``u1``... for more singular values,
  shape ``[1, out]``) and ``sv0`` (``[1]``, logging only). Every forward runs ``num_itrs`` power
  iterations starting from the stored ``u`` (Gram-Schmidt against the previous singular vectors)
  and divides the weight by the first singular value estimate. The buffers are written back only
  in train mode, so eval mode is a pure function of the state dict.
* :class:`TorchSNConv2d`, :class:`TorchSNLinear` follow ``torch.nn.utils.spectral_norm`` as used by
  kwotsin/mimicry (``torch_mimicry/modules/layers.py``, ``default=True``): parameter
  ``weight_orig``, buffers ``weight_u`` ``[out]`` and ``weight_v`` ``[in*k*k]``. Train mode runs one
  power iteration ``v = W^T u``, ``u = W v`` (normalised) and stores both; eval mode uses the
  stored vectors without iterating; sigma = ``u^T W v`` (Miyato et al. 2018, Algorithm 1).

Conditional batch norm (BigGAN-PyTorch ``layers.ccbn``): ``BN(x) * (1 + gain(y)) + bias(y)`` with
batch statistics buffers ``stored_mean``/``stored_var`` and no affine parameters of its own.
``gain``/``bias`` are bias-free SN linears fed by ``[shared class embedding, z chunk]`` in BigGAN
(Brock et al. 2019, Sec. 3 "shared embedding", "hierarchical latent space") and plain
``nn.Embedding(num_classes, C)`` in the SAGAN configuration of BigGAN-PyTorch (``G_shared=False``).

Self-attention (Zhang et al. 2019, SAGAN Sec. 3; as released, see the note in BigGAN-PyTorch
``layers.Attention``): 1x1 SN convs without bias ``theta, phi: C -> C/8``, ``g: C -> C/2``,
``o: C/2 -> C``; ``phi`` and ``g`` are max-pooled 2x2; ``out = x + gamma * o(g softmax(theta^T phi))``
with a learnable scalar ``gamma`` initialised to 0.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


# -- BigGAN-PyTorch spectral norm -------------------------------------------------------------
def _remove_projections(x: torch.Tensor, basis: list[torch.Tensor]) -> torch.Tensor:
    # Gram-Schmidt: make the i-th singular vector estimate orthogonal to the previous ones.
    for b in basis:
        x = x - torch.mm(b, x.t()) * b / torch.mm(b, b.t())
    return x


def biggan_power_iteration(
    weight_mat: torch.Tensor, us: list[torch.Tensor], update: bool, eps: float
) -> list[torch.Tensor]:
    """One power-iteration step for every tracked singular value; returns the estimates.

    ``us`` are the stored left singular vectors ``[1, out]``; written in place when ``update``.
    The singular values keep their gradient w.r.t. the weight (the vectors do not).
    """
    new_us: list[torch.Tensor] = []
    new_vs: list[torch.Tensor] = []
    singular_values = []
    for stored_u in us:
        with torch.no_grad():
            v = F.normalize(_remove_projections(torch.matmul(stored_u, weight_mat), new_vs), eps=eps)
            new_vs.append(v)
            u = F.normalize(_remove_projections(torch.matmul(v, weight_mat.t()), new_us), eps=eps)
            new_us.append(u)
            if update:
                stored_u[:] = u
        singular_values.append(torch.squeeze(torch.matmul(torch.matmul(v, weight_mat.t()), u.t())))
    return singular_values


class _BigGANSpectralNorm:
    """Mixin: BigGAN-PyTorch spectral norm of ``self.weight`` (rows = ``num_outputs``)."""

    weight: torch.Tensor
    training: bool

    def _init_spectral_norm(self, num_outputs: int, num_svs: int, num_itrs: int, eps: float) -> None:
        self.num_svs, self.num_itrs, self.sn_eps = num_svs, num_itrs, eps
        for i in range(num_svs):
            self.register_buffer(f"u{i}", torch.randn(1, num_outputs))  # type: ignore[attr-defined]
            self.register_buffer(f"sv{i}", torch.ones(1))  # type: ignore[attr-defined]

    def singular_vectors(self) -> list[torch.Tensor]:
        return [getattr(self, f"u{i}") for i in range(self.num_svs)]

    def singular_values(self) -> list[torch.Tensor]:
        return [getattr(self, f"sv{i}") for i in range(self.num_svs)]

    def normalized_weight(self) -> torch.Tensor:
        weight_mat = self.weight.view(self.weight.size(0), -1)
        # Each iteration restarts from the stored u: in eval mode (no write-back) several
        # iterations therefore give the same estimate as one, exactly as the official code.
        for _ in range(self.num_itrs):
            estimates = biggan_power_iteration(
                weight_mat, self.singular_vectors(), self.training, self.sn_eps
            )
        if self.training:
            with torch.no_grad():
                for stored, value in zip(self.singular_values(), estimates):
                    stored[:] = value
        return self.weight / estimates[0]


class SNConv2d(nn.Conv2d, _BigGANSpectralNorm):
    """Conv2d with BigGAN-PyTorch spectral norm (keys ``weight``, ``bias``, ``u0``, ``sv0``)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        padding: int = 1,
        bias: bool = True,
        num_svs: int = 1,
        num_itrs: int = 1,
        eps: float = 1e-12,
    ) -> None:
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, 1, padding, bias=bias)
        self._init_spectral_norm(out_channels, num_svs, num_itrs, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalized_weight(), self.bias, self.stride, self.padding)


class SNLinear(nn.Linear, _BigGANSpectralNorm):
    """Linear with BigGAN-PyTorch spectral norm."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        num_svs: int = 1,
        num_itrs: int = 1,
        eps: float = 1e-12,
    ) -> None:
        nn.Linear.__init__(self, in_features, out_features, bias)
        self._init_spectral_norm(out_features, num_svs, num_itrs, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalized_weight(), self.bias)


class SNEmbedding(nn.Embedding, _BigGANSpectralNorm):
    """Embedding with BigGAN-PyTorch spectral norm; ``u0`` is ``[1, num_embeddings]`` because the
    official code normalises the ``[num_embeddings, dim]`` table row-wise like a linear layer."""

    def __init__(
        self, num_embeddings: int, embedding_dim: int, num_svs: int = 1, num_itrs: int = 1, eps: float = 1e-12
    ) -> None:
        nn.Embedding.__init__(self, num_embeddings, embedding_dim)
        self._init_spectral_norm(num_embeddings, num_svs, num_itrs, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.embedding(x, self.normalized_weight())


# -- torch.nn.utils.spectral_norm layout (mimicry) ---------------------------------------------
class _TorchSpectralNorm(nn.Module):
    """Spectral norm with ``torch.nn.utils.spectral_norm``'s state (``weight_orig``, ``weight_u``,
    ``weight_v``) and update rule, written as a plain module so no hooks or deprecated APIs are
    involved. Subclasses create ``weight_orig`` and call :meth:`_init_vectors`."""

    weight_orig: nn.Parameter

    def _init_vectors(self, eps: float) -> None:
        self.sn_eps = eps
        rows = self.weight_orig.shape[0]
        cols = self.weight_orig[0].numel()
        self.register_buffer("weight_u", F.normalize(torch.randn(rows), dim=0, eps=eps))
        self.register_buffer("weight_v", F.normalize(torch.randn(cols), dim=0, eps=eps))

    def normalized_weight(self) -> torch.Tensor:
        weight_mat = self.weight_orig.flatten(1)
        u, v = self.weight_u, self.weight_v
        if self.training:
            with torch.no_grad():
                v = F.normalize(torch.mv(weight_mat.t(), u), dim=0, eps=self.sn_eps)
                u = F.normalize(torch.mv(weight_mat, v), dim=0, eps=self.sn_eps)
                self.weight_u.copy_(u)
                self.weight_v.copy_(v)
        sigma = torch.dot(u, torch.mv(weight_mat, v))
        return self.weight_orig / sigma


class TorchSNConv2d(_TorchSpectralNorm):
    """Conv2d whose weight is spectrally normalised the way ``torch.nn.utils.spectral_norm`` does."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, padding: int, eps: float = 1e-12
    ) -> None:
        super().__init__()
        self.padding = padding
        self.weight_orig = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        if not self.weight_orig.is_meta:
            nn.init.kaiming_uniform_(self.weight_orig, a=5**0.5)
        self._init_vectors(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.normalized_weight(), self.bias, padding=self.padding)


class TorchSNLinear(_TorchSpectralNorm):
    """Linear counterpart of :class:`TorchSNConv2d`."""

    def __init__(self, in_features: int, out_features: int, eps: float = 1e-12) -> None:
        super().__init__()
        self.weight_orig = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        if not self.weight_orig.is_meta:
            nn.init.kaiming_uniform_(self.weight_orig, a=5**0.5)
        self._init_vectors(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.normalized_weight(), self.bias)


# -- normalisation ----------------------------------------------------------------------------
class BigGANBatchNorm2d(nn.Module):
    """Unconditional BN of BigGAN-PyTorch (``layers.bn``): parameters ``gain``/``bias``, buffers
    ``stored_mean``/``stored_var`` (batch statistics in train mode, stored ones in eval)."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.gain = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("stored_mean", torch.zeros(num_features))
        self.register_buffer("stored_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(
            x, self.stored_mean, self.stored_var, self.gain, self.bias, self.training, self.momentum, self.eps
        )


class ClassConditionalBatchNorm2d(nn.Module):
    """``BN(x) * (1 + gain(c)) + bias(c)`` (BigGAN-PyTorch ``layers.ccbn``, ``norm_style='bn'``).

    Args:
        num_features: channels of the normalised feature map.
        conditioning: ``"linear"`` (BigGAN): ``c`` is a float vector of ``cond_dim`` entries (shared
            class embedding concatenated with a z chunk) mapped by bias-free SN linears;
            ``"embedding"`` (SAGAN config): ``c`` is a class index and ``gain``/``bias`` are plain
            ``nn.Embedding(cond_dim, num_features)`` tables (``cond_dim`` = number of classes).
        cond_dim: input size of the gain/bias layers (see ``conditioning``).
        eps, momentum: batch-norm epsilon and running-statistics momentum (official: 1e-5, 0.1).
        num_svs, num_itrs, sn_eps: spectral-norm settings of the linears.
    """

    def __init__(
        self,
        num_features: int,
        cond_dim: int,
        conditioning: Literal["linear", "embedding"],
        eps: float = 1e-5,
        momentum: float = 0.1,
        num_svs: int = 1,
        num_itrs: int = 1,
        sn_eps: float = 1e-12,
    ) -> None:
        super().__init__()
        self.eps, self.momentum, self.conditioning = eps, momentum, conditioning
        self.gain: nn.Module
        self.bias: nn.Module
        if conditioning == "linear":
            self.gain = SNLinear(
                cond_dim, num_features, bias=False, num_svs=num_svs, num_itrs=num_itrs, eps=sn_eps
            )
            self.bias = SNLinear(
                cond_dim, num_features, bias=False, num_svs=num_svs, num_itrs=num_itrs, eps=sn_eps
            )
        elif conditioning == "embedding":
            self.gain = nn.Embedding(cond_dim, num_features)
            self.bias = nn.Embedding(cond_dim, num_features)
        else:
            raise ValueError(f"conditioning must be 'linear' or 'embedding', got {conditioning!r}")
        self.register_buffer("stored_mean", torch.zeros(num_features))
        self.register_buffer("stored_var", torch.ones(num_features))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        gain = (1 + self.gain(cond)).view(cond.size(0), -1, 1, 1)
        bias = self.bias(cond).view(cond.size(0), -1, 1, 1)
        normalized = F.batch_norm(
            x, self.stored_mean, self.stored_var, None, None, self.training, self.momentum, self.eps
        )
        return normalized * gain + bias


# -- self-attention ---------------------------------------------------------------------------
class SelfAttention(nn.Module):
    """SAGAN non-local block as released (see module docstring).

    Args:
        channels: channels of the feature map it reads and writes (the residual stream).
        key_channels: output width of ``theta``/``phi`` (official: ``channels // 8``).
        value_channels: output width of ``g`` = input width of ``o`` (official: ``channels // 2``).
        num_svs, num_itrs, sn_eps: spectral-norm settings of the four 1x1 convs.
    """

    def __init__(
        self,
        channels: int,
        key_channels: int | None = None,
        value_channels: int | None = None,
        num_svs: int = 1,
        num_itrs: int = 1,
        sn_eps: float = 1e-12,
    ) -> None:
        super().__init__()
        self.key_channels = key_channels if key_channels is not None else channels // 8
        self.value_channels = value_channels if value_channels is not None else channels // 2
        sn = {"num_svs": num_svs, "num_itrs": num_itrs, "eps": sn_eps}
        self.theta = SNConv2d(channels, self.key_channels, kernel_size=1, padding=0, bias=False, **sn)
        self.phi = SNConv2d(channels, self.key_channels, kernel_size=1, padding=0, bias=False, **sn)
        self.g = SNConv2d(channels, self.value_channels, kernel_size=1, padding=0, bias=False, **sn)
        self.o = SNConv2d(self.value_channels, channels, kernel_size=1, padding=0, bias=False, **sn)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        theta = self.theta(x).flatten(2)  # [B, Ck, HW]
        phi = F.max_pool2d(self.phi(x), 2).flatten(2)  # [B, Ck, HW/4]
        value = F.max_pool2d(self.g(x), 2).flatten(2)  # [B, Cv, HW/4]
        attention = F.softmax(torch.bmm(theta.transpose(1, 2), phi), dim=-1)  # [B, HW, HW/4]
        attended = torch.bmm(value, attention.transpose(1, 2)).view(batch, self.value_channels, height, width)
        return x + self.gamma * self.o(attended)
