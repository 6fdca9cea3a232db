"""SN-GAN ResNet generator and discriminator for 32 px (CIFAR-10).

Miyato et al., "Spectral Normalization for Generative Adversarial Networks", ICLR 2018, Table 4
(ResNet G and D for CIFAR-10); official Chainer code pfnet-research/sngan_projection
``gen_models/resnet_32.py``, ``dis_models/snresnet_32.py``; PyTorch port kwotsin/mimicry
``torch_mimicry/nets/sngan/sngan_32.py`` + ``modules/resblocks.py``, whose key layout we use so
mimicry checkpoints load without renaming (:mod:`lightning_gancomp.formats.sngan`).

* G: ``Linear(z_dim -> 4*4*C0)``, three up-blocks (``BN -> ReLU -> up -> conv3x3 -> BN -> ReLU ->
  conv3x3``, shortcut ``up -> conv1x1``), ``BN -> ReLU -> conv3x3 -> tanh``. 4,276,739 parameters.
  The two codes disagree on the upsampling: Chainer unpools (nearest), mimicry interpolates
  bilinearly (``align_corners=False``); ``upsample`` selects it, default the paper's nearest.
* D: optimized first block (``conv -> ReLU -> conv -> pool``, shortcut ``pool -> conv1x1``), then
  pre-activation blocks (``ReLU -> conv -> ReLU -> conv (-> pool)``, shortcut ``conv1x1 (-> pool)``
  when the width changes or the block downsamples), ``ReLU``, global sum pooling, ``SNLinear(C, 1)``.
  Spectral norm in mimicry's layout (``torch.nn.utils.spectral_norm``: ``weight_orig``,
  ``weight_u``, ``weight_v``). 1,053,825 parameters.
  mimicry's ``DBlock`` applies an in-place ReLU to its input before the residual branch, so its
  shortcut reads ``relu(x)`` while Chainer's reads ``x``; ``shortcut_input`` selects it (default:
  Chainer's ``"input"``; the mimicry converter sets ``"relu"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lightning_gancomp.nets.base import ChannelGroup, GanNet, TensorSlice
from lightning_gancomp.nets.layers import TorchSNConv2d, TorchSNLinear

Upsample = Literal["nearest", "bilinear"]


def _upsample(x: torch.Tensor, mode: Upsample) -> torch.Tensor:
    if mode == "bilinear":
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    return F.interpolate(x, scale_factor=2, mode="nearest")


def _bn_members(prefix: str) -> list[TensorSlice]:
    return [
        TensorSlice(f"{prefix}.{name}", 0, "aux")
        for name in ("weight", "bias", "running_mean", "running_var")
    ]


def _conv_out(prefix: str, block: int = 1) -> list[TensorSlice]:
    return [TensorSlice(f"{prefix}.weight", 0, "out", block), TensorSlice(f"{prefix}.bias", 0, "aux", block)]


class SNGANGBlock(nn.Module):
    """Generator up-block (mimicry ``GBlock(upsample=True)``, Chainer ``Block``)."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, upsample: Upsample) -> None:
        super().__init__()
        self.upsample = upsample
        self.c1 = nn.Conv2d(in_channels, hidden_channels, 3, 1, padding=1)
        self.c2 = nn.Conv2d(hidden_channels, out_channels, 3, 1, padding=1)
        self.b1 = nn.BatchNorm2d(in_channels)
        self.b2 = nn.BatchNorm2d(hidden_channels)
        self.c_sc = nn.Conv2d(in_channels, out_channels, 1, 1, padding=0)
        # Official init: xavier-uniform gain sqrt(2) on the 3x3 convs, gain 1 on the shortcut.
        nn.init.xavier_uniform_(self.c1.weight, 2**0.5)
        nn.init.xavier_uniform_(self.c2.weight, 2**0.5)
        nn.init.xavier_uniform_(self.c_sc.weight, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.c1(_upsample(F.relu(self.b1(x)), self.upsample))
        h = self.c2(F.relu(self.b2(h)))
        return h + self.c_sc(_upsample(x, self.upsample))


class SNGANGenerator(GanNet):
    """SN-GAN CIFAR-10 generator ``G(z) -> img [B, 3, 32, 32]`` in [-1, 1].

    Args:
        z_dim: latent size (128).
        stream_channels: residual stream widths: the first linear's output, then every block's
            output (default ``[256] * 4``; the number of blocks is ``len - 1``).
        hidden_channels: conv1 width of every block (default: the block's output width).
        bottom_width: spatial size written by the first linear (4).
        upsample: ``"nearest"`` (Chainer, paper) or ``"bilinear"`` (mimicry).
    """

    role: ClassVar[str] = "generator"
    task: ClassVar[str] = "unconditional"

    def __init__(
        self,
        z_dim: int = 128,
        stream_channels: list[int] | None = None,
        hidden_channels: list[int] | None = None,
        bottom_width: int = 4,
        upsample: Upsample = "nearest",
    ) -> None:
        super().__init__()
        if upsample not in ("nearest", "bilinear"):
            raise ValueError(f"upsample must be 'nearest' or 'bilinear', got {upsample!r}")
        streams = list(stream_channels or [256] * 4)
        hidden = list(hidden_channels or streams[1:])
        if len(hidden) != len(streams) - 1 or len(hidden) < 1:
            raise ValueError(
                f"{len(streams)} stream widths need {len(streams) - 1} hidden widths, got {len(hidden)}"
            )
        self.z_dim, self.bottom_width = z_dim, bottom_width
        self.resolution = bottom_width * 2 ** len(hidden)
        self.stream_channels, self.hidden_channels = streams, hidden
        self.num_blocks = len(hidden)
        self.l1 = nn.Linear(z_dim, bottom_width**2 * streams[0])
        for i in range(self.num_blocks):
            self.add_module(f"block{i + 2}", SNGANGBlock(streams[i], hidden[i], streams[i + 1], upsample))
        last = self.num_blocks + 2
        self.add_module(f"b{last}", nn.BatchNorm2d(streams[-1]))
        self.add_module(f"c{last}", nn.Conv2d(streams[-1], 3, 3, 1, padding=1))
        nn.init.xavier_uniform_(self.l1.weight, 1.0)
        nn.init.xavier_uniform_(self.get_submodule(f"c{last}").weight, 1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.l1(z).view(z.size(0), -1, self.bottom_width, self.bottom_width)
        for i in range(self.num_blocks):
            h = self.get_submodule(f"block{i + 2}")(h)
        last = self.num_blocks + 2
        h = F.relu(self.get_submodule(f"b{last}")(h))
        return torch.tanh(self.get_submodule(f"c{last}")(h))

    def distillation_points(self) -> list[str]:
        """Output of every residual block, in order."""
        return [f"block{i + 2}" for i in range(self.num_blocks)]

    def channel_groups(self) -> list[ChannelGroup]:
        """``stream.{k}``: input of block k (k = 0 written by ``l1``, 16 entries per channel) or,
        for the last k, the map read by the final BN/conv; ``block.{k}.hidden``: c1 -> b2 -> c2."""
        groups = []
        last = self.num_blocks + 2
        for k in range(self.num_blocks + 1):
            if k == 0:
                members = _conv_out("l1", self.bottom_width**2)
            else:
                members = _conv_out(f"block{k + 1}.c2") + _conv_out(f"block{k + 1}.c_sc")
            if k < self.num_blocks:
                reader = f"block{k + 2}"
                members += _bn_members(f"{reader}.b1")
                members += [
                    TensorSlice(f"{reader}.c1.weight", 1, "in"),
                    TensorSlice(f"{reader}.c_sc.weight", 1, "in"),
                ]
            else:
                members += _bn_members(f"b{last}") + [TensorSlice(f"c{last}.weight", 1, "in")]
            groups.append(ChannelGroup(f"stream.{k}", self.stream_channels[k], tuple(members)))
        for k in range(self.num_blocks):
            prefix = f"block{k + 2}"
            members = _conv_out(f"{prefix}.c1") + _bn_members(f"{prefix}.b2")
            members.append(TensorSlice(f"{prefix}.c2.weight", 1, "in"))
            groups.append(ChannelGroup(f"block.{k}.hidden", self.hidden_channels[k], tuple(members)))
        return groups

    def config_for_group_sizes(self, sizes: Mapping[str, int]) -> dict[str, Any]:
        sizes = self.checked_group_sizes(sizes)
        streams = [int(sizes.get(f"stream.{k}", c)) for k, c in enumerate(self.stream_channels)]
        hidden = [int(sizes.get(f"block.{k}.hidden", c)) for k, c in enumerate(self.hidden_channels)]
        return {**self.config, "stream_channels": streams, "hidden_channels": hidden}


class SNGANDBlock(nn.Module):
    """Discriminator block. ``optimized`` = the first block of the official code (no
    pre-activation, shortcut pools before its 1x1 conv, always learnable)."""

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        downsample: bool,
        optimized: bool,
        shortcut_input: Literal["input", "relu"],
        sn_eps: float,
    ) -> None:
        super().__init__()
        self.downsample, self.optimized, self.shortcut_input = downsample, optimized, shortcut_input
        self.c1 = TorchSNConv2d(in_channels, hidden_channels, 3, 1, sn_eps)
        self.c2 = TorchSNConv2d(hidden_channels, out_channels, 3, 1, sn_eps)
        self.learnable_sc = optimized or in_channels != out_channels or downsample
        if self.learnable_sc:
            self.c_sc = TorchSNConv2d(in_channels, out_channels, 1, 0, sn_eps)
        # Official init (mimicry): xavier-uniform gain sqrt(2) on 3x3 convs, 1 on the shortcut.
        if not self.c1.weight_orig.is_meta:
            nn.init.xavier_uniform_(self.c1.weight_orig, 2**0.5)
            nn.init.xavier_uniform_(self.c2.weight_orig, 2**0.5)
            if self.learnable_sc:
                nn.init.xavier_uniform_(self.c_sc.weight_orig, 1.0)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.optimized:
            h = self._pool(self.c2(F.relu(self.c1(x))))
            return h + self.c_sc(F.avg_pool2d(x, 2))
        activated = F.relu(x)
        h = self._pool(self.c2(F.relu(self.c1(activated))))
        shortcut = activated if self.shortcut_input == "relu" else x
        if self.learnable_sc:
            shortcut = self._pool(self.c_sc(shortcut))
        return h + shortcut


class SNGANDiscriminator(GanNet):
    """SN-GAN CIFAR-10 discriminator ``D(img) -> logits [B]`` (mimicry returns ``[B, 1]``).

    Args:
        stream_channels: output width of every block (default ``[128] * 4``).
        hidden_channels: conv1 width of every block (official: the optimized block's output width,
            then each block's input width).
        downsample: which blocks halve the resolution (official 32 px: ``[True, True, False, False]``).
        shortcut_input: ``"input"`` (Chainer) or ``"relu"`` (mimicry's in-place ReLU), see module doc.
        sn_eps: spectral-norm epsilon (torch default 1e-12).
    """

    role: ClassVar[str] = "discriminator"

    def __init__(
        self,
        stream_channels: list[int] | None = None,
        hidden_channels: list[int] | None = None,
        downsample: list[bool] | None = None,
        shortcut_input: Literal["input", "relu"] = "input",
        sn_eps: float = 1e-12,
    ) -> None:
        super().__init__()
        if shortcut_input not in ("input", "relu"):
            raise ValueError(f"shortcut_input must be 'input' or 'relu', got {shortcut_input!r}")
        outs = list(stream_channels or [128] * 4)
        ins = [3] + outs[:-1]
        hidden = list(hidden_channels or [outs[0]] + ins[1:])
        pools = list(downsample or [True, True] + [False] * (len(outs) - 2))
        if not len(hidden) == len(pools) == len(outs):
            raise ValueError("stream_channels, hidden_channels and downsample need one entry per block")
        self.stream_channels, self.hidden_channels, self.num_blocks = outs, hidden, len(outs)
        for i in range(self.num_blocks):
            block = SNGANDBlock(ins[i], hidden[i], outs[i], pools[i], i == 0, shortcut_input, sn_eps)
            self.add_module(f"block{i + 1}", block)
        head = TorchSNLinear(outs[-1], 1, sn_eps)
        if not head.weight_orig.is_meta:
            nn.init.xavier_uniform_(head.weight_orig, 1.0)
        self.add_module(f"l{self.num_blocks + 1}", head)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        h = img
        for i in range(self.num_blocks):
            h = self.get_submodule(f"block{i + 1}")(h)
        features = torch.sum(F.relu(h), dim=(2, 3))
        return self.get_submodule(f"l{self.num_blocks + 1}")(features).view(-1)

    # -- pruning interface ----------------------------------------------------------------------
    @staticmethod
    def _sn_out(prefix: str) -> list[TensorSlice]:
        return [
            TensorSlice(f"{prefix}.weight_orig", 0, "out"),
            TensorSlice(f"{prefix}.bias", 0, "aux"),
            TensorSlice(f"{prefix}.weight_u", 0, "aux"),
        ]

    @staticmethod
    def _sn_in(prefix: str, kernel: int) -> list[TensorSlice]:
        # weight_v holds one entry per (input channel, kernel tap): kernel**2 per channel.
        return [
            TensorSlice(f"{prefix}.weight_orig", 1, "in"),
            TensorSlice(f"{prefix}.weight_v", 0, "aux", kernel**2),
        ]

    def _stream_ids(self) -> list[int]:
        ids = []
        for k in range(self.num_blocks):
            block = self.get_submodule(f"block{k + 1}")
            ids.append(ids[k - 1] if k > 0 and not block.learnable_sc else k)
        return ids

    def channel_groups(self) -> list[ChannelGroup]:
        """``stream.{k}`` (output of block k, merged across identity shortcuts; the image is not
        prunable) and ``block.{k}.hidden`` (c1 -> c2)."""
        ids = self._stream_ids()
        members: dict[int, list[TensorSlice]] = {i: [] for i in sorted(set(ids))}
        for k in range(self.num_blocks):
            block = self.get_submodule(f"block{k + 1}")
            members[ids[k]] += self._sn_out(f"block{k + 1}.c2")
            if block.learnable_sc:
                members[ids[k]] += self._sn_out(f"block{k + 1}.c_sc")
            if k + 1 < self.num_blocks:
                members[ids[k]] += self._sn_in(f"block{k + 2}.c1", 3)
                if self.get_submodule(f"block{k + 2}").learnable_sc:
                    members[ids[k]] += self._sn_in(f"block{k + 2}.c_sc", 1)
        members[ids[-1]] += self._sn_in(f"l{self.num_blocks + 1}", 1)
        groups = [ChannelGroup(f"stream.{i}", self.stream_channels[i], tuple(m)) for i, m in members.items()]
        for k in range(self.num_blocks):
            prefix = f"block{k + 1}"
            hidden = self._sn_out(f"{prefix}.c1") + self._sn_in(f"{prefix}.c2", 3)
            groups.append(ChannelGroup(f"block.{k}.hidden", self.hidden_channels[k], tuple(hidden)))
        return groups

    def config_for_group_sizes(self, sizes: Mapping[str, int]) -> dict[str, Any]:
        sizes = self.checked_group_sizes(sizes)
        ids = self._stream_ids()
        streams = [int(sizes.get(f"stream.{ids[k]}", c)) for k, c in enumerate(self.stream_channels)]
        hidden = [int(sizes.get(f"block.{k}.hidden", c)) for k, c in enumerate(self.hidden_channels)]
        pools = [self.get_submodule(f"block{k + 1}").downsample for k in range(self.num_blocks)]
        return {**self.config, "stream_channels": streams, "hidden_channels": hidden, "downsample": pools}
