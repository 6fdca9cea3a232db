"""StyleGAN2 building blocks in pure PyTorch (no compiled extensions).

Follows Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (CVPR 2020):
equalized learning rate (StyleGAN, Karras et al. 2019, Sec. 4.1 of ProGAN), weight
modulation/demodulation (StyleGAN2 Sec. 2.2, Eq. 1-3), FIR-filtered resampling and noise
injection. Module and parameter names reproduce rosinality/stylegan2-pytorch ``model.py`` so its
checkpoints (and CAGAN/DCP checkpoints, which use the same layout) load 1:1; the math is the one of
NVlabs/stylegan2-ada-pytorch ``training/networks.py`` and ``torch_utils/ops`` (same numbers, checked
against both implementations).

Why pure PyTorch: rosinality's ``op/`` compiles CUDA kernels at import time (a frequent failure on
user machines) and its CPU fallback upsamples by zero insertion. Here every op is an ordinary
``conv2d``/``conv_transpose2d``/``leaky_relu`` call, so it runs on any device, is traced by
``torchprofile`` (custom autograd Functions would count 0 MACs) and is differentiable twice
(needed by R1 and path-length regularisation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2
#: Gain that keeps the activation variance of a leaky ReLU with slope 0.2 close to 1
#: (NVlabs ``bias_act.activation_funcs['lrelu'].def_gain``).
LEAKY_GAIN = math.sqrt(2.0)

Pad = tuple[int, int] | tuple[int, int, int, int]


# -- FIR filtering -----------------------------------------------------------------------------
def make_kernel(taps: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Normalised 2-D FIR kernel: the outer product of 1-D taps (or a given 2-D kernel), summing to 1.

    ``[1, 3, 3, 1]`` gives the binomial blur of StyleGAN2 (NVlabs ``upfirdn2d.setup_filter``).
    """
    kernel = torch.as_tensor(taps, dtype=torch.float32)
    if kernel.ndim == 1:
        kernel = kernel[None, :] * kernel[:, None]
    return kernel / kernel.sum()


def _parse_pad(pad: Sequence[int]) -> tuple[int, int, int, int]:
    # (x0, x1) applies the same padding to both axes (rosinality); 4 values = (x0, x1, y0, y1).
    if len(pad) == 2:
        return int(pad[0]), int(pad[1]), int(pad[0]), int(pad[1])
    if len(pad) == 4:
        return int(pad[0]), int(pad[1]), int(pad[2]), int(pad[3])
    raise ValueError(f"pad must have 2 or 4 entries, got {tuple(pad)}")


def upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad: Sequence[int] = (0, 0)
) -> torch.Tensor:
    """Upsample by zero stuffing, pad, convolve with ``kernel`` (true convolution), downsample.

    Same definition and output size as NVlabs ``upfirdn2d.upfirdn2d`` (``flip_filter=False``) and
    rosinality ``op.upfirdn2d``: ``out = (H*up + pad_y0 + pad_y1 - kh) // down + 1``. Negative
    padding crops. Each channel is filtered independently.

    The upsampled signal is never materialised: zero stuffing followed by a convolution equals a
    transposed convolution with stride ``up`` (the output sample o receives ``x[i] * k[o - up*i]``),
    so the ``up`` case runs one ``conv_transpose2d`` and the ``down`` case a strided ``conv2d``.
    Both are depthwise (``groups=C``, one copy of the kernel per channel): the same numbers as
    filtering ``[N·C, 1, H, W]`` single-channel images, 10-15× faster on CPU (oneDNN has a
    depthwise kernel; see ``benchmarks/bench_profile_layers.py`` and docs/speed.md).
    Symmetric padding (every StyleGAN2 blur) goes into the conv's own padding (no padded copy).
    """
    if up < 1 or down < 1:
        raise ValueError(f"up and down must be >= 1, got up={up}, down={down}")
    px0, px1, py0, py1 = _parse_pad(pad)
    channels = int(x.shape[1])  # a constant in traced graphs (ONNX needs static conv weights)
    kh, kw = kernel.shape
    weight = kernel.to(dtype=x.dtype, device=x.device)
    if up > 1:
        # Full convolution of the zero-stuffed signal (length H*up + kh - 1) = transposed conv
        # output ((H-1)*up + kh) plus up-1 trailing zeros; then the valid window of the padded
        # signal starts kh-1-p0 samples in. Negative pads crop (transposed-conv padding crops).
        pads = [px0 - (kw - 1), px1 - (kw - 1) + (up - 1), py0 - (kh - 1), py1 - (kh - 1) + (up - 1)]
        weight = weight.view(1, 1, kh, kw).expand(channels, 1, kh, kw)
        crop = _symmetric_crop(pads)
        out = F.conv_transpose2d(x, weight, stride=up, groups=channels, padding=crop)
        if crop == (0, 0):
            out = F.pad(out, pads)
        if down > 1:
            out = out[:, :, ::down, ::down]
        return out
    # conv2d is a correlation: flip the kernel for a true convolution.
    weight = torch.flip(weight, [0, 1]).view(1, 1, kh, kw).expand(channels, 1, kh, kw)
    if px0 == px1 >= 0 and py0 == py1 >= 0:
        return F.conv2d(x, weight, stride=down, padding=(py0, px0), groups=channels)
    return F.conv2d(F.pad(x, [px0, px1, py0, py1]), weight, stride=down, groups=channels)


def _symmetric_crop(pads: Sequence[int]) -> tuple[int, int]:
    """(y, x) crop of a transposed conv when ``pads`` (F.pad order) crop both ends alike, else (0, 0)."""
    px0, px1, py0, py1 = pads
    if px0 == px1 <= 0 and py0 == py1 <= 0:
        return -py0, -px0
    return 0, 0


class Blur(nn.Module):
    """FIR low-pass filter with padding (the blur after a transposed conv / before a strided conv).

    ``kernel`` buffer = normalised kernel × ``upsample_factor**2`` (keeps the signal gain of an
    upsampling layer), as rosinality's ``Blur`` and NVlabs' ``gain=up**2``.
    """

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1) -> None:
        super().__init__()
        self.register_buffer("kernel", make_kernel(kernel) * (upsample_factor**2))
        self.pad = tuple(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2× FIR upsampling (ToRGB skip path; NVlabs ``upfirdn2d.upsample2d``)."""

    def __init__(self, kernel: Sequence[float], factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * (factor**2))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class Downsample(nn.Module):
    """2× FIR downsampling (NVlabs ``upfirdn2d.downsample2d``)."""

    def __init__(self, kernel: Sequence[float], factor: int = 2) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, down=self.factor, pad=self.pad)


# -- activation --------------------------------------------------------------------------------
def fused_leaky_relu(
    x: torch.Tensor,
    bias: torch.Tensor | None = None,
    negative_slope: float = LEAKY_SLOPE,
    scale: float = LEAKY_GAIN,
) -> torch.Tensor:
    """``leaky_relu(x + bias) * scale`` with a per-channel bias on dim 1 (NVlabs ``bias_act``, 'lrelu').

    Computed as ``leaky_relu(scale·x + scale·bias)`` (equal for ``scale > 0``): one pass for the
    scaled sum and one for the activation, in place when no graph is recorded, instead of three
    passes over the map (bias, activation, gain; see docs/speed.md).
    """
    inplace = not torch.is_grad_enabled()
    if bias is None:
        return F.leaky_relu(x * scale, negative_slope, inplace=inplace)
    bias = (bias * scale).view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(torch.add(bias, x, alpha=scale), negative_slope, inplace=inplace)


class FusedLeakyReLU(nn.Module):
    """Per-channel bias + leaky ReLU (slope 0.2) + gain √2 (rosinality ``FusedLeakyReLU``)."""

    def __init__(self, channels: int, bias: bool = True) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class PixelNorm(nn.Module):
    """Scale each latent to unit second moment (mapping input; NVlabs ``normalize_2nd_moment``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


# -- equalized learning rate -------------------------------------------------------------------
class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate (ProGAN Sec. 4.1).

    Weights are stored as ``N(0, 1) / lr_mul`` and multiplied by ``lr_mul / sqrt(in_dim)`` in the
    forward pass; the bias is stored unscaled and multiplied by ``lr_mul`` (mapping network:
    ``lr_mul = 0.01``, StyleGAN Sec. 2 / NVlabs ``FullyConnectedLayer``).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias: bool = True,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: Literal["linear", "lrelu"] = "linear",
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.lr_mul = lr_mul
        self.scale = lr_mul / math.sqrt(in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation == "lrelu":
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self) -> str:
        in_dim, out_dim = self.weight.shape[1], self.weight.shape[0]
        return f"{in_dim}, {out_dim}, lr_mul={self.lr_mul}, activation={self.activation}"


class EqualConv2d(nn.Module):
    """Conv2d with equalized learning rate: weight ``N(0,1)`` scaled by ``1/sqrt(in*k*k)`` at run time."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        out_c, in_c, k, _ = self.weight.shape
        return f"{in_c}, {out_c}, {k}, stride={self.stride}, padding={self.padding}"


# -- modulated convolution ---------------------------------------------------------------------
class ModulatedConv2d(nn.Module):
    """Weight (de)modulation, StyleGAN2 Sec. 2.2.

    ``s = A(w)`` (affine ``modulation``, bias initialised to 1), ``w'_ijk = s_i · w_ijk`` (Eq. 1),
    ``w''_ijk = w'_ijk / sqrt(Σ_{i,k} w'^2_ijk + ε)`` (Eq. 3), one weight per sample applied as a
    grouped convolution (groups = batch). ``upsample``: transposed conv with stride 2 followed by a
    [1,3,3,1] blur with gain 4 (NVlabs ``conv2d_resample`` fast path, rosinality ``ModulatedConv2d``);
    ``downsample``: blur then stride-2 conv. Weight layout ``[1, out, in, k, k]`` (rosinality).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
        downsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        if upsample and downsample:
            raise ValueError("ModulatedConv2d: choose upsample or downsample, not both")
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.upsample = upsample
        self.downsample = downsample
        factor = 2
        taps = len(blur_kernel)
        if upsample:
            # Transposed conv output is 2H + k - 2; the blur pads it back to exactly 2H.
            p = (taps - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        if downsample:
            p = (taps - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_channels * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.demodulate = demodulate
        #: True: per-sample weights in one grouped conv; False: scale activations, shared conv,
        #: scale outputs (both exact, NVlabs ``fused_modconv``); None: shared in training, and in
        #: eval chosen per call by :meth:`prefers_grouped`.
        self.fused: bool | None = None

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, {self.kernel_size}, demodulate={self.demodulate}, "
            f"upsample={self.upsample}, downsample={self.downsample}"
        )

    def modulated_weight(self, style: torch.Tensor) -> torch.Tensor:
        """Per-sample weights ``[B, out, in, k, k]`` after modulation (and demodulation)."""
        batch = style.shape[0]
        s = self.modulation(style).view(batch, 1, self.in_channels, 1, 1)
        weight = self.scale * self.weight * s
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + self.eps)
            weight = weight * demod.view(batch, self.out_channels, 1, 1, 1)
        return weight

    def prefers_grouped(self, x: torch.Tensor) -> bool:
        """Per-call choice of the faster exact form in eval (measured on CPU, docs/speed.md).

        The grouped form builds ``B·out·in·k²`` modulated weights; the shared form makes two extra
        passes over the activations (``B·in·H·W`` and ``B·out·H'·W'``). Grouped wins where the
        per-sample weight is smaller than the input map, i.e. ``out·k² < H·W`` (≥ 64 px for 512
        channels), independent of the batch size; at 4-32 px the shared form is up to 12× faster
        (batch 8, 4 px).
        """
        return self.out_channels * self.kernel_size**2 < x.shape[2] * x.shape[3]

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """``self.weight`` is normally ``[1, out, in, k, k]``. A ``[G, out, in, k, k]`` weight (set
        through ``torch.func.functional_call``) gives each of G consecutive, equal groups of the
        batch its own copy, so one backward yields per-group gradients (DCP scoring batches its
        directions this way, :mod:`lightning_gancomp.pruning.diversity`)."""
        fused = self.fused
        if fused is None:
            fused = False if self.training else self.prefers_grouped(x)
        fused = fused and self.weight.shape[0] == 1  # weight copies: the shared form (one conv per copy)
        return self._forward_grouped(x, style) if fused else self._forward_shared(x, style)

    def _forward_shared(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        # Same function, reordered (NVlabs modulated_conv2d with fused_modconv=False): modulation
        # scales the input channels and demodulation the output channels, so the conv itself uses
        # one weight for the whole batch (much faster to train than a batch-grouped conv).
        copies = self.weight.shape[0]
        if copies > 1:
            return self._forward_copies(x, style)
        batch = x.shape[0]
        s = self.modulation(style)  # [B, in]
        weight = self.scale * self.weight[0]  # [out, in, k, k]
        x = x * s.view(batch, -1, 1, 1)
        if self.upsample:
            out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), padding=0, stride=2))
        elif self.downsample:
            out = F.conv2d(self.blur(x), weight, padding=0, stride=2)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # Σ_{i,k} (s_i w_oik)^2 = Σ_i s_i^2 Σ_k w_oik^2
            energy = s.pow(2) @ weight.pow(2).sum([2, 3]).t()  # [B, out]
            out = out * torch.rsqrt(energy + self.eps).view(batch, -1, 1, 1)
        return out

    def _forward_copies(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        # The shared form with G weight copies (see forward): the G groups of m samples
        # go side by side on the channel axis, [m, G*in, H, W], through one conv with groups=G.
        copies, batch, k = self.weight.shape[0], x.shape[0], self.kernel_size
        m = batch // copies
        s = self.modulation(style)  # [B, in]
        weight = self.scale * self.weight  # [G, out, in, k, k]
        x = x * s.view(batch, -1, 1, 1)
        x = x.view(copies, m, *x.shape[1:]).transpose(0, 1).reshape(m, -1, *x.shape[2:])
        if self.upsample:
            w_t = weight.transpose(1, 2).reshape(copies * self.in_channels, self.out_channels, k, k)
            out = self.blur(F.conv_transpose2d(x, w_t, padding=0, stride=2, groups=copies))
        elif self.downsample:
            w_g = weight.reshape(copies * self.out_channels, self.in_channels, k, k)
            out = F.conv2d(self.blur(x), w_g, padding=0, stride=2, groups=copies)
        else:
            w_g = weight.reshape(copies * self.out_channels, self.in_channels, k, k)
            out = F.conv2d(x, w_g, padding=self.padding, groups=copies)
        out = out.view(m, copies, self.out_channels, *out.shape[2:]).transpose(0, 1)
        out = out.reshape(batch, self.out_channels, *out.shape[3:])
        if self.demodulate:
            energy = torch.bmm(s.view(copies, m, -1).pow(2), weight.pow(2).sum([3, 4]).transpose(1, 2))
            out = out * torch.rsqrt(energy + self.eps).view(batch, -1, 1, 1)
        return out

    def _forward_grouped(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        batch, in_channels, height, width = x.shape
        k = self.kernel_size
        weight = self.modulated_weight(style)
        # Fold the batch into the channel axis so one grouped conv applies every sample's weight.
        x = x.reshape(1, batch * in_channels, height, width)
        if self.upsample:
            # conv_transpose2d expects [in, out/groups, k, k] per group.
            weight = weight.transpose(1, 2).reshape(batch * in_channels, self.out_channels, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=batch)
            out = self.blur(out.reshape(batch, self.out_channels, out.shape[2], out.shape[3]))
            return out
        weight = weight.reshape(batch * self.out_channels, in_channels, k, k)
        if self.downsample:
            x = self.blur(x.reshape(batch, in_channels, height, width))
            x = x.reshape(1, batch * in_channels, x.shape[2], x.shape[3])
            out = F.conv2d(x, weight, padding=0, stride=2, groups=batch)
        else:
            out = F.conv2d(x, weight, padding=self.padding, groups=batch)
        return out.reshape(batch, self.out_channels, out.shape[2], out.shape[3])


class NoiseInjection(nn.Module):
    """Per-pixel noise, one learned scalar strength per layer (StyleGAN Sec. 2, 'B' in Fig. 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            batch, _, height, width = image.shape
            noise = image.new_empty(batch, 1, height, width).normal_()
        return image + self.weight * noise


class ConstantInput(nn.Module):
    """Learned constant 4×4 input of the synthesis network, repeated over the batch."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    """Modulated 3×3 conv → noise → bias + leaky ReLU (one StyleGAN2 synthesis layer)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        demodulate: bool = True,
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(
            in_channels,
            out_channels,
            kernel_size,
            style_dim,
            demodulate=demodulate,
            upsample=upsample,
            blur_kernel=blur_kernel,
        )
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channels)

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise=noise))


class ToRGB(nn.Module):
    """Modulated 1×1 conv to RGB without demodulation, plus the upsampled skip image (StyleGAN2 Fig. 7b)."""

    def __init__(
        self,
        in_channels: int,
        style_dim: int,
        upsample: bool = True,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
    ) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


# -- discriminator layers ----------------------------------------------------------------------
class ConvLayer(nn.Sequential):
    """[blur] → equalized conv → [bias + leaky ReLU]; a ``Sequential`` so keys match rosinality
    (``0.weight``/``1.bias``, or ``0.kernel``/``1.weight``/``2.bias`` when downsampling)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        downsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        bias: bool = True,
        activate: bool = True,
    ) -> None:
        layers: list[nn.Module] = []
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(
            EqualConv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                bias=bias and not activate,
            )
        )
        if activate:
            layers.append(FusedLeakyReLU(out_channels, bias=bias))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Residual discriminator block: two 3×3 convs (second downsamples) + 1×1 downsampling skip,
    summed and divided by √2 (StyleGAN2 Fig. 7c; NVlabs uses gain √0.5 on both branches)."""

    def __init__(
        self, in_channels: int, out_channels: int, blur_kernel: Sequence[float] = (1, 3, 3, 1)
    ) -> None:
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(
            in_channels, out_channels, 1, downsample=True, activate=False, bias=False, blur_kernel=blur_kernel
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


def minibatch_stddev(x: torch.Tensor, group_size: int, num_features: int = 1) -> torch.Tensor:
    """Append the mean standard deviation over sample groups as extra channels (ProGAN Sec. 3).

    Sample n belongs to group ``n % (N / G)`` (reshape ``[G, N/G, ...]``), as NVlabs
    ``MinibatchStdLayer`` and rosinality's discriminator.
    """
    batch, channels, height, width = x.shape
    group = min(batch, group_size)
    if batch % group != 0:
        raise ValueError(f"minibatch stddev: batch size {batch} is not divisible by the group size {group}")
    y = x.reshape(group, -1, num_features, channels // num_features, height, width)
    y = torch.sqrt(y.var(0, unbiased=False) + 1e-8)
    y = y.mean([2, 3, 4], keepdim=True).squeeze(2)
    y = y.repeat(group, 1, height, width)
    return torch.cat([x, y], 1)
