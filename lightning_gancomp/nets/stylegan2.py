"""StyleGAN2 generator and residual discriminator (config F), any resolution, any widths.

Paper: Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020
(modulation/demodulation Eq. 1-3, skip generator and residual discriminator Fig. 7, config F).
Reference code: rosinality/stylegan2-pytorch ``model.py`` (module names and state-dict keys, which
CAGAN (lychenyoko/content-aware-gan-compression ``model.py``) and DCP reuse) and
NVlabs/stylegan2-ada-pytorch ``training/networks.py`` (same math; its keys are converted in
``lightning_gancomp.formats.stylegan2``).

Widths are data: ``channels`` is CAGAN's ``net_shape`` — one width per feature map of the synthesis
network: the constant input, then the output of every modulated 3×3 conv in forward order
(``conv1``, ``convs.0``, ``convs.1``, ...). A pruned student is the same class with a shorter list
of numbers (CAGAN ``Generator(..., generator_net_shape=...)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from lightning_gancomp.nets.base import ChannelGroup, GanNet, TensorSlice
from lightning_gancomp.nets.stylegan_layers import (
    ConstantInput,
    ConvLayer,
    EqualLinear,
    PixelNorm,
    ResBlock,
    StyledConv,
    ToRGB,
    minibatch_stddev,
)

MIN_RESOLUTION = 8
MAX_RESOLUTION = 1024


def default_widths(channel_multiplier: int) -> dict[int, int]:
    """Feature-map width per resolution of config F (rosinality ``Generator.channels``)."""
    return {
        4: 512,
        8: 512,
        16: 512,
        32: 512,
        64: 256 * channel_multiplier,
        128: 128 * channel_multiplier,
        256: 64 * channel_multiplier,
        512: 32 * channel_multiplier,
        1024: 16 * channel_multiplier,
    }


def _log2_resolution(resolution: int, who: str) -> int:
    log_size = int(math.log2(resolution)) if resolution > 0 else 0
    if 2**log_size != resolution or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise ValueError(
            f"{who}: resolution must be a power of two in [{MIN_RESOLUTION}, {MAX_RESOLUTION}], "
            f"got {resolution}"
        )
    return log_size


def generator_net_shape(resolution: int, channel_multiplier: int = 2) -> list[int]:
    """CAGAN net_shape of the unpruned generator: 256 px, cm 2 → ``[512]*10 + [256, 256, 128, 128]``."""
    log_size = _log2_resolution(resolution, "StyleGAN2Generator")
    widths = default_widths(channel_multiplier)
    shape = [widths[4], widths[4]]
    for i in range(3, log_size + 1):
        shape += [widths[2**i], widths[2**i]]
    return shape


def map_resolution(index: int) -> int:
    """Spatial size of generator feature map ``index`` (0 = constant input, i = output of conv i-1)."""
    return 4 * 2 ** (index // 2)


def conv_module_name(index: int) -> str:
    """Module of the i-th modulated 3×3 conv in forward order: ``conv1``, then ``convs.{i-1}``."""
    return "conv1" if index == 0 else f"convs.{index - 1}"


def to_rgb_module_name(map_index: int) -> str | None:
    """The ToRGB that reads feature map ``map_index`` (odd maps: the last map of each resolution)."""
    if map_index % 2 == 0:
        return None
    k = (map_index - 1) // 2
    return "to_rgb1" if k == 0 else f"to_rgbs.{k - 1}"


class MappingNetwork(nn.Sequential):
    """z → w: pixel norm then ``n_mapping`` equalized linear layers with leaky ReLU, lr_mul 0.01.

    A ``Sequential`` whose index 0 is the (parameterless) PixelNorm, so layer keys are
    ``1.weight`` ... ``{n_mapping}.weight`` (rosinality ``style.{i}``).
    """

    def __init__(self, z_dim: int, w_dim: int, n_mapping: int, lr_mlp: float) -> None:
        layers: list[nn.Module] = [PixelNorm()]
        for i in range(n_mapping):
            layers.append(EqualLinear(z_dim if i == 0 else w_dim, w_dim, lr_mul=lr_mlp, activation="lrelu"))
        super().__init__(*layers)


class StyleGAN2Generator(GanNet):
    """StyleGAN2 config-F generator with skip-connected ToRGB outputs (paper Fig. 7b).

    Args:
        resolution: output size (power of two, 8..1024).
        z_dim: input latent size (rosinality ties it to ``w_dim``; NVlabs allows a different one).
        w_dim: intermediate latent (style) size.
        n_mapping: number of mapping layers (8 for FFHQ/LSUN, 2 for NVlabs CIFAR).
        channel_multiplier: width multiplier of the ≥64 px layers (2 = config F).
        channels: CAGAN net_shape, overrides ``channel_multiplier``; ``2*log2(resolution) - 2``
            widths (constant input, then the output of each modulated 3×3 conv).
        blur_kernel: FIR taps of the resampling filter.
        lr_mlp: learning-rate multiplier of the mapping layers (0.01).

    Buffers: ``noises.noise_{i}`` (fixed noise per layer, used with ``randomize_noise=False``) and
    ``latent_avg`` [w_dim] (mean w, the default truncation centre; filled from checkpoints or by
    :meth:`update_latent_avg`).
    """

    role: ClassVar[str] = "generator"
    task: ClassVar[Literal["unconditional", "conditional", "image2image"]] = "unconditional"
    style_based: ClassVar[bool] = True

    def __init__(
        self,
        resolution: int = 256,
        z_dim: int = 512,
        w_dim: int = 512,
        n_mapping: int = 8,
        channel_multiplier: int = 2,
        channels: Sequence[int] | None = None,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        lr_mlp: float = 0.01,
    ) -> None:
        super().__init__()
        self.log_size = _log2_resolution(resolution, type(self).__name__)
        expected_len = 2 * self.log_size - 2
        if channels is None:
            channels = generator_net_shape(resolution, channel_multiplier)
        channels = [int(c) for c in channels]
        if len(channels) != expected_len or min(channels) < 1:
            raise ValueError(
                f"StyleGAN2Generator: channels must hold {expected_len} positive widths for {resolution} px "
                f"(constant input + {expected_len - 1} conv outputs), got {channels}"
            )
        self.resolution = resolution
        self.z_dim = z_dim
        self.w_dim = w_dim
        self.channels = channels
        self.num_layers = 2 * self.log_size - 3  # modulated 3x3 convs = noise inputs
        self.n_latent = 2 * self.log_size - 2  # style inputs: convs + last ToRGB

        self.style = MappingNetwork(z_dim, w_dim, n_mapping, lr_mlp)
        self.input = ConstantInput(channels[0])
        self.conv1 = StyledConv(channels[0], channels[1], 3, w_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(channels[1], w_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for k in range(1, self.log_size - 1):
            c_in, c_mid, c_out = channels[2 * k - 1], channels[2 * k], channels[2 * k + 1]
            self.convs.append(StyledConv(c_in, c_mid, 3, w_dim, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(c_mid, c_out, 3, w_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(c_out, w_dim, blur_kernel=blur_kernel))
        self.noises = nn.Module()
        for i in range(self.num_layers):
            size = map_resolution(i + 1)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, size, size))
        self.register_buffer("latent_avg", torch.zeros(w_dim))

    # -- latents ------------------------------------------------------------------------------
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, z_dim] → w [B, w_dim]."""
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean of ``n`` mapped random latents, shape [1, w_dim] (rosinality ``mean_latent``)."""
        device = self.input.input.device
        z = torch.randn(n, self.z_dim, device=device, generator=generator)
        return self.style(z).mean(0, keepdim=True)

    @torch.no_grad()
    def update_latent_avg(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Set the ``latent_avg`` buffer to the mean of ``n`` seeded samples (for checkpoints without one)."""
        rng = torch.Generator(device=self.input.input.device).manual_seed(seed)
        self.latent_avg.copy_(self.mean_latent(n, generator=rng)[0])
        return self.latent_avg

    def make_noise(self, batch: int = 1, device: torch.device | str | None = None) -> list[torch.Tensor]:
        """Fresh noise maps, one per modulated conv: [batch, 1, res, res]."""
        device = device if device is not None else self.input.input.device
        return [
            torch.randn(batch, 1, map_resolution(i + 1), map_resolution(i + 1), device=device)
            for i in range(self.num_layers)
        ]

    def _latents_from_styles(self, styles: list[torch.Tensor], inject_index: int | None) -> torch.Tensor:
        # One style: broadcast to every layer (or already W+). Two styles: style mixing
        # (StyleGAN Sec. 3.1): layers < inject_index use the first, the rest the second.
        if len(styles) == 1:
            return styles[0] if styles[0].ndim == 3 else styles[0].unsqueeze(1).repeat(1, self.n_latent, 1)
        if len(styles) != 2 or any(s.ndim != 2 for s in styles):
            raise ValueError("StyleGAN2Generator: style mixing takes exactly two [B, w_dim] styles")
        if inject_index is None:
            # rosinality draws with Python's random; torch's RNG keeps seeded runs reproducible.
            inject_index = int(torch.randint(1, self.n_latent, ()).item())
        first = styles[0].unsqueeze(1).repeat(1, inject_index, 1)
        second = styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)
        return torch.cat([first, second], 1)

    # -- synthesis ----------------------------------------------------------------------------
    def forward(
        self,
        styles: torch.Tensor | Sequence[torch.Tensor],
        *,
        input_is_latent: bool = False,
        truncation: float = 1.0,
        truncation_latent: torch.Tensor | None = None,
        noise: Sequence[torch.Tensor | None] | None = None,
        randomize_noise: bool = True,
        return_latents: bool = False,
        inject_index: int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Generate images [B, 3, H, W] (unbounded, ≈[-1, 1]).

        Args:
            styles: z [B, z_dim], a list of one or two z (two = style mixing), or with
                ``input_is_latent`` w [B, w_dim] / W+ [B, n_latent, w_dim] (or a list of w).
            truncation: ψ of the truncation trick, w ← c + ψ (w − c) with c = ``truncation_latent``
                or the ``latent_avg`` buffer.
            noise: one map per modulated conv (entries may be None = fresh noise).
            randomize_noise: without ``noise``, draw fresh noise (True) or use the stored buffers.
            return_latents: also return the per-layer latents [B, n_latent, w_dim].
            inject_index: mixing crossover layer; drawn uniformly from [1, n_latent) when None.
        """
        styles = [styles] if isinstance(styles, torch.Tensor) else list(styles)
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if noise is None:
            noise = (
                [None] * self.num_layers
                if randomize_noise
                else [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
            )
        elif len(noise) != self.num_layers:
            raise ValueError(f"StyleGAN2Generator: expected {self.num_layers} noise maps, got {len(noise)}")
        if truncation < 1:
            centre = truncation_latent if truncation_latent is not None else self.latent_avg
            styles = [centre + truncation * (s - centre) for s in styles]
        latent = self._latents_from_styles(styles, inject_index)
        if latent.shape[1] != self.n_latent:
            raise ValueError(
                f"StyleGAN2Generator: W+ input needs {self.n_latent} latents, got {latent.shape[1]}"
            )

        out = self.input(latent.shape[0])
        out = self.conv1(out, latent[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for up_conv, conv, to_rgb in zip(self.convs[::2], self.convs[1::2], self.to_rgbs):
            out = up_conv(out, latent[:, i], noise=noise[i])
            out = conv(out, latent[:, i + 1], noise=noise[i + 1])
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        if return_latents:
            return skip, latent
        return skip

    # -- pruning interface --------------------------------------------------------------------
    def channel_groups(self) -> list[ChannelGroup]:
        """One group per CAGAN feature map (``channels`` entry), named ``map{i}_{res}px``.

        Map 0 is the constant input; map i ≥ 1 is written by conv i-1 (weight dim 1, activation
        bias). It is read by conv i (weight dim 2, equalized fan-in; its modulation linear gives
        the input scales, dim 0) and, for odd i, by the ToRGB of that resolution. CAGAN scores the
        reading conv's weight and, for the last map only, the last ToRGB (``Util/content_aware_pruning.py``).
        """
        groups = []
        last = len(self.channels) - 1
        for i, size in enumerate(self.channels):
            members: list[TensorSlice] = []
            if i == 0:
                members.append(TensorSlice("input.input", 1, "out"))
            else:
                writer = conv_module_name(i - 1)
                members.append(TensorSlice(f"{writer}.conv.weight", 1, "out"))
                members.append(TensorSlice(f"{writer}.activate.bias", 0, "out"))
            readers = [f"{conv_module_name(i)}.conv"] if i < last else []
            rgb = to_rgb_module_name(i)
            if rgb is not None:
                readers.append(f"{rgb}.conv")
            for reader in readers:
                members.append(TensorSlice(f"{reader}.weight", 2, "in", equalized_fan_in=True))
                members.append(TensorSlice(f"{reader}.modulation.weight", 0, "aux"))
                members.append(TensorSlice(f"{reader}.modulation.bias", 0, "aux"))
            # CAGAN scores the conv that reads the map; only the last map is scored via its ToRGB.
            scored = (f"{readers[0]}.weight",)
            groups.append(ChannelGroup(self.group_name(i), size, tuple(members), scored))
        return groups

    def group_name(self, index: int) -> str:
        return f"map{index}_{map_resolution(index)}px"

    def config_for_group_sizes(self, sizes: Mapping[str, int]) -> dict[str, Any]:
        sizes = self.checked_group_sizes(sizes)
        names = [self.group_name(i) for i in range(len(self.channels))]
        channels = [sizes.get(name, width) for name, width in zip(names, self.channels)]
        return {**self.config, "channels": channels}

    def distillation_points(self) -> list[str]:
        """Block outputs (last conv of each resolution, 4 px .. full size), in forward order."""
        return ["conv1"] + [f"convs.{2 * k + 1}" for k in range(len(self.to_rgbs))]

    def rgb_skip_points(self) -> list[str]:
        """The ToRGB modules, 4 px .. full size: each outputs the running RGB image of the skip
        architecture at its resolution (rosinality / CAGAN ``return_rgb_list``); the last one is
        the output image."""
        return ["to_rgb1"] + [f"to_rgbs.{k}" for k in range(len(self.to_rgbs))]


class StyleGAN2Discriminator(GanNet):
    """StyleGAN2 residual discriminator (paper Fig. 7c) with minibatch standard deviation.

    Args:
        resolution: input size (power of two, 8..1024).
        channel_multiplier: width multiplier of the ≥64 px layers (2 = config F).
        channels: explicit widths per resolution, from ``resolution`` down to 4 px
            (``log2(resolution) - 1`` values); overrides ``channel_multiplier``.
        blur_kernel: FIR taps of the downsampling filter.
        stddev_group: minibatch-stddev group size (4; NVlabs CIFAR uses 32).

    Returns logits [B]. Key layout is rosinality's (``convs.0`` = fromRGB, ``convs.{k}`` ResBlocks,
    ``final_conv``, ``final_linear``). CAGAN/DCP keep the teacher's D; channel groups (one per
    ``channels`` entry, see ``channel_groups``) let other recipes prune it.
    """

    role: ClassVar[str] = "discriminator"

    def __init__(
        self,
        resolution: int = 256,
        channel_multiplier: int = 2,
        channels: Sequence[int] | None = None,
        blur_kernel: Sequence[float] = (1, 3, 3, 1),
        stddev_group: int = 4,
    ) -> None:
        super().__init__()
        log_size = _log2_resolution(resolution, type(self).__name__)
        if channels is None:
            channels = self.default_channels(resolution, channel_multiplier)
        channels = [int(c) for c in channels]
        if len(channels) != log_size - 1 or min(channels) < 1:
            raise ValueError(
                f"StyleGAN2Discriminator: channels must hold {log_size - 1} positive widths "
                f"({resolution} px down to 4 px), got {channels}"
            )
        self.resolution = resolution
        self.channels = channels
        self.stddev_group = stddev_group
        self.stddev_feat = 1
        blocks: list[nn.Module] = [ConvLayer(3, channels[0], 1)]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            blocks.append(ResBlock(c_in, c_out, blur_kernel))
        self.convs = nn.Sequential(*blocks)
        last = channels[-1]
        self.final_conv = ConvLayer(last + self.stddev_feat, last, 3)
        self.final_linear = nn.Sequential(
            EqualLinear(last * 4 * 4, last, activation="lrelu"),
            EqualLinear(last, 1),
        )

    @staticmethod
    def default_channels(resolution: int, channel_multiplier: int = 2) -> list[int]:
        """Config-F widths from ``resolution`` down to 4 px (rosinality ``Discriminator.channels``)."""
        log_size = _log2_resolution(resolution, "StyleGAN2Discriminator")
        widths = default_widths(channel_multiplier)
        return [widths[2**i] for i in range(log_size, 1, -1)]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        out = self.convs(img)
        out = minibatch_stddev(out, self.stddev_group, self.stddev_feat)
        out = self.final_conv(out)
        return self.final_linear(out.flatten(1)).squeeze(1)

    # -- pruning interface --------------------------------------------------------------------
    def channel_groups(self) -> list[ChannelGroup]:
        """``convs.{i}``: the map written by ``convs.i`` (fromRGB, then ResBlocks), one group per
        ``channels`` entry.

        The constructor ties other maps to the same width, so they share the group (cut with the
        same indices, each one consistently): ``convs.{i+1}.conv1`` maps ``channels[i]`` to
        ``channels[i]``; ``final_conv`` and ``final_linear.0`` keep ``channels[-1]``.
        ``final_conv`` reads ``cat([x, stddev])``: the group's window is at offset 0 and the
        stddev entry is fixed. Every reader is equalized-lr (fan-in rescaled by surgery).

        Pruning the last map is exact except for the minibatch-stddev feature, which averages
        the per-channel deviation over that map's channels: the pruned D averages over the kept
        channels only (no slicing can reproduce a mean over dropped channels).
        """
        last = len(self.convs) - 1
        groups = []
        for i in range(last + 1):
            members = self._map_writers(i) + (
                self._block_readers(i + 1) if i < last else self._head_members()
            )
            groups.append(ChannelGroup(f"convs.{i}", self.channels[i], tuple(members)))
        return groups

    def _map_writers(self, i: int) -> list[TensorSlice]:
        if i == 0:  # fromRGB: ConvLayer = equalized conv + fused leaky ReLU bias
            return [TensorSlice("convs.0.0.weight", 0, "out"), TensorSlice("convs.0.1.bias", 0, "aux")]
        # ResBlock output = (conv2(conv1(x)) + skip(x)) / sqrt(2): both branches write it
        return [
            TensorSlice(f"convs.{i}.conv2.1.weight", 0, "out"),
            TensorSlice(f"convs.{i}.conv2.2.bias", 0, "aux"),
            TensorSlice(f"convs.{i}.skip.1.weight", 0, "out"),
        ]

    @staticmethod
    def _block_readers(k: int) -> list[TensorSlice]:
        """ResBlock ``k`` reads the map in ``conv1`` and ``skip``; ``conv1``'s output (same width by
        construction) is written by ``conv1`` and read by ``conv2``."""
        return [
            TensorSlice(f"convs.{k}.conv1.0.weight", 1, "in", equalized_fan_in=True),
            TensorSlice(f"convs.{k}.skip.1.weight", 1, "in", equalized_fan_in=True),
            TensorSlice(f"convs.{k}.conv1.0.weight", 0, "out"),
            TensorSlice(f"convs.{k}.conv1.1.bias", 0, "aux"),
            TensorSlice(f"convs.{k}.conv2.1.weight", 1, "in", equalized_fan_in=True),
        ]

    @staticmethod
    def _head_members() -> list[TensorSlice]:
        """``final_conv`` reads ``cat([x, stddev])`` (window at offset 0) and writes a map of the
        same width, flattened ``[C, 4, 4]`` into ``final_linear.0`` (16 entries per channel), whose
        output (same width again) ``final_linear.1`` reads."""
        return [
            TensorSlice("final_conv.0.weight", 1, "in", equalized_fan_in=True, offset=0),
            TensorSlice("final_conv.0.weight", 0, "out"),
            TensorSlice("final_conv.1.bias", 0, "aux"),
            TensorSlice("final_linear.0.weight", 1, "in", block=16, equalized_fan_in=True),
            TensorSlice("final_linear.0.weight", 0, "out"),
            TensorSlice("final_linear.0.bias", 0, "aux"),
            TensorSlice("final_linear.1.weight", 1, "in", equalized_fan_in=True),
        ]

    def config_for_group_sizes(self, sizes: Mapping[str, int]) -> dict[str, Any]:
        sizes = self.checked_group_sizes(sizes)
        names = [f"convs.{i}" for i in range(len(self.convs))]
        channels = [sizes.get(name, width) for name, width in zip(names, self.channels)]
        return {**self.config, "channels": channels}
