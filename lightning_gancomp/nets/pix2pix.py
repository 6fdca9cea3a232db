"""Pix2Pix / CycleGAN networks: ResNet and U-Net generators, PatchGAN discriminator.

Architectures of junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py`` (``ResnetGenerator``,
``UnetGenerator`` / ``UnetSkipConnectionBlock``, ``NLayerDiscriminator``), the networks of

* Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks" (pix2pix,
  CVPR 2017): U-Net generator (skip connections between mirrored layers, Sec. 3.2.1), PatchGAN
  discriminator on (input, output) pairs (Sec. 3.2.2, 70x70 receptive field = ``n_layers=3``);
* Zhu et al., "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial Networks"
  (CycleGAN, ICCV 2017), Appendix 7.2: ``c7s1-64, d128, d256, R256 x9, u128, u64, c7s1-3``
  (Johnson et al.'s ResNet generator) with instance normalisation;
* Li et al., "GAN Compression" (CVPR 2020) whose teachers are this ResNet generator
  (mit-han-lab/gan-compression ``models/modules/resnet_architecture/resnet_generator.py``: it
  always inserts a ``Dropout(dropout_rate)`` (default rate 0) inside every residual block and
  clamps the input to [-1, 1]; ``use_dropout=True, dropout_rate=0.0, clamp_input=True`` here).

Official behaviour reproduced (checked against the reference code, see the tests):

* Normalisation ``"batch"`` = ``BatchNorm2d(affine=True, track_running_stats=True)``,
  ``"instance"`` = ``InstanceNorm2d(affine=False, track_running_stats=False)``, ``"none"`` =
  identity. Convolutions followed by a norm have a bias exactly when the norm is ``"instance"``
  (the reference's ``use_bias = norm_layer == InstanceNorm2d``; so ``"none"`` has no bias either);
  the first PatchGAN conv, its last conv, the ResNet output conv and the outermost U-Net
  transposed conv always have one.
* Stem and head of the ResNet generator always use reflection padding of 3; ``padding_type``
  applies to the 3x3 convs inside residual blocks. Downsampling convs: 3x3 stride 2 padding 1;
  upsampling: ``ConvTranspose2d(k=3, s=2, p=1, output_padding=1)``.
* U-Net: level ``k`` (0 = outermost) has a 4x4 stride-2 down conv; the skip concatenation is
  ``cat([skip, upsampled])`` (skip first); dropout (rate 0.5) only in the ``num_downs - 5``
  intermediate levels with ``8 * ngf`` channels (levels ``4 .. num_downs - 2``). In the
  reference the in-place LeakyReLU of the next level also rewrites the skip tensor, which is
  harmless because the up path applies ReLU first (ReLU(LeakyReLU(x)) = ReLU(x)); we apply the
  activations out of place with the same result.

Our state-dict layout uses named modules (``stem.conv.weight``, ``blocks.3.conv2.weight``,
``downs.2.norm.running_mean``...). ``lightning_gancomp.formats.pix2pix`` converts the reference
layout (``model.10.conv_block.5.weight``...) both ways.

Widths are constructor arguments (a pruned student is the same class with other widths), and
the networks declare their channel groups for the pruning engine (U-Net skip concatenations as
windows of the reading conv's input, ``TensorSlice.offset``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from lightning_gancomp.nets.base import ChannelGroup, GanNet, TensorSlice

Norm = Literal["instance", "batch", "none"]
Padding = Literal["reflect", "replicate", "zero"]

#: Number of stride-2 down/up-sampling stages of the ResNet generator (fixed in the reference).
RESNET_N_SAMPLING = 2


# -- small shared pieces ------------------------------------------------------------------------
class InstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` without running statistics, computed as ``group_norm`` with one
    group per channel: the same normalisation (per sample and channel over H×W; ≤ 1e-6 apart in
    fp32), with the same parameters and state dict, but 2.6–4× faster on CPU at the ResNet
    students' shapes (oneDNN's group norm vs the instance-norm path through batch norm). Instance
    norm was 21 % of the ResNet-9 0.75 student's CPU time (docs/speed.md)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.track_running_stats or x.dim() != 4:
            return super().forward(x)
        return F.group_norm(x, self.num_features, self.weight, self.bias, self.eps)


def make_norm(norm: Norm, channels: int) -> nn.Module:
    """The reference ``get_norm_layer(norm)(channels)``."""
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "instance":
        return InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'instance', 'batch' or 'none', got {norm!r}")


def conv_bias(norm: Norm) -> bool:
    """Bias of a conv followed by a norm layer: on only before instance norm (reference rule)."""
    return norm == "instance"


def check_choice(name: str, value: str, choices: Any) -> None:
    """Clear error for a string option outside its ``Literal`` choices."""
    allowed = get_args(choices)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {list(allowed)}, got {value!r}")


def _padding_module(padding_type: Padding, amount: int) -> nn.Module:
    if padding_type == "reflect":
        return nn.ReflectionPad2d(amount)
    if padding_type == "replicate":
        return nn.ReplicationPad2d(amount)
    if padding_type == "zero":
        return nn.Identity()  # the conv pads with zeros itself
    raise ValueError(f"padding_type must be 'reflect', 'replicate' or 'zero', got {padding_type!r}")


def _norm_aux(prefix: str, norm: nn.Module) -> list[TensorSlice]:
    """Per-channel tensors of a norm layer (BatchNorm: affine + running stats; others: none)."""
    if not isinstance(norm, nn.BatchNorm2d):
        return []
    names = ["weight", "bias", "running_mean", "running_var"]
    return [TensorSlice(f"{prefix}.{name}", 0, "aux") for name in names]


def _conv_out(prefix: str, conv: nn.Module) -> list[TensorSlice]:
    """The slices that write a conv's output channels (weight + bias); transposed weights are
    ``[in, out, k, k]``, so their output dim is 1."""
    dim = 1 if isinstance(conv, nn.ConvTranspose2d) else 0
    slices = [TensorSlice(f"{prefix}.weight", dim, "out")]
    if conv.bias is not None:
        slices.append(TensorSlice(f"{prefix}.bias", 0, "aux"))
    return slices


def _conv_in(prefix: str, conv: nn.Module, offset: int = 0) -> TensorSlice:
    """The slice that reads a map; ``offset``: where the map starts inside a concatenated input."""
    dim = 0 if isinstance(conv, nn.ConvTranspose2d) else 1
    return TensorSlice(f"{prefix}.weight", dim, "in", offset=offset)


def _check_widths(name: str, widths: list[int], expected_len: int) -> list[int]:
    widths = [int(w) for w in widths]
    if len(widths) != expected_len:
        raise ValueError(f"{name} must have {expected_len} entries, got {len(widths)}: {widths}")
    if any(w < 1 for w in widths):
        raise ValueError(f"{name} must be positive, got {widths}")
    return widths


def _stage_group(name: str, size: int, stage: nn.Module, reader_key: str, reader: nn.Module) -> ChannelGroup:
    """Group of a ``conv -> norm`` stage's output read by one conv."""
    members = _conv_out(f"{name}.conv", stage.conv) + _norm_aux(f"{name}.norm", stage.norm)
    members.append(_conv_in(reader_key, reader))
    return ChannelGroup(name, size, tuple(members))


class ConvNormAct(nn.Module):
    """``pad -> conv -> norm -> act``; the unit of the ResNet generator's stem, down and up paths."""

    def __init__(self, pad: nn.Module, conv: nn.Module, norm: nn.Module, act: nn.Module) -> None:
        super().__init__()
        self.pad = pad
        self.conv = conv
        self.norm = norm
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(self.pad(x))))


# -- ResNet generator ---------------------------------------------------------------------------
class ResnetBlock(nn.Module):
    """``x + norm2(conv2(pad(dropout(relu(norm1(conv1(pad(x))))))))`` (reference ``ResnetBlock``).

    ``conv1`` maps the residual stream (``channels``) to ``hidden`` channels and ``conv2`` back,
    so the block's internal width can be pruned on its own.
    """

    def __init__(
        self,
        channels: int,
        hidden: int,
        norm: Norm,
        padding_type: Padding,
        use_dropout: bool,
        dropout_rate: float,
    ) -> None:
        super().__init__()
        conv_padding = 1 if padding_type == "zero" else 0
        bias = conv_bias(norm)
        self.pad1 = _padding_module(padding_type, 1)
        self.conv1 = nn.Conv2d(channels, hidden, 3, padding=conv_padding, bias=bias)
        self.norm1 = make_norm(norm, hidden)
        self.dropout = nn.Dropout(dropout_rate) if use_dropout else nn.Identity()
        self.pad2 = _padding_module(padding_type, 1)
        self.conv2 = nn.Conv2d(hidden, channels, 3, padding=conv_padding, bias=bias)
        self.norm2 = make_norm(norm, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm1(self.conv1(self.pad1(x))))
        h = self.norm2(self.conv2(self.pad2(self.dropout(h))))
        return x + h


def _resnet_widths(
    ngf: int,
    n_blocks: int,
    down_channels: list[int] | None,
    block_channels: list[int] | None,
    up_channels: list[int] | None,
) -> tuple[list[int], list[int], list[int]]:
    """(down, block, up) widths of the ResNet generator; the reference's from ``ngf`` by default."""
    down = [ngf * 2**i for i in range(RESNET_N_SAMPLING + 1)] if down_channels is None else down_channels
    down = _check_widths("down_channels", down, RESNET_N_SAMPLING + 1)
    hidden = [down[-1]] * n_blocks if block_channels is None else block_channels
    hidden = _check_widths("block_channels", hidden, n_blocks)
    up = [ngf * 2**i for i in reversed(range(RESNET_N_SAMPLING))] if up_channels is None else up_channels
    return down, hidden, _check_widths("up_channels", up, RESNET_N_SAMPLING)


class ResnetGenerator(GanNet):
    """Johnson et al.'s ResNet generator as used by CycleGAN, pix2pix (``resnet_9blocks`` /
    ``resnet_6blocks``) and GAN Compression's teachers.

    Layout: ``stem`` (reflect-pad 3, 7x7 conv to ``down_channels[0]``, norm, ReLU); ``down.0``,
    ``down.1`` (3x3 stride-2 convs to ``down_channels[1]``, ``down_channels[2]``); ``blocks.i``
    (residual blocks on the ``down_channels[2]``-wide stream, internal width
    ``block_channels[i]``); ``up.0``, ``up.1`` (stride-2 transposed convs to ``up_channels``);
    ``head`` (reflect-pad 3, 7x7 conv to ``out_channels``, tanh).

    Args:
        in_channels: image channels read (A domain).
        out_channels: image channels written.
        ngf: base width; the default widths are ``[ngf, 2ngf, 4ngf]`` down, ``4ngf`` per block,
            ``[2ngf, ngf]`` up (the reference).
        n_blocks: residual blocks (9: ``resnet_9blocks``, 6: ``resnet_6blocks``).
        norm: ``"instance"`` (CycleGAN, GAN Compression), ``"batch"`` (reference class default),
            ``"none"``.
        use_dropout: insert a Dropout between the two convs of every block (shifts the official
            key of the second conv from ``conv_block.5`` to ``conv_block.6``).
        dropout_rate: its rate (reference 0.5; GAN Compression default 0).
        padding_type: padding of the 3x3 convs inside blocks.
        clamp_input: clamp the input to [-1, 1] first (GAN Compression's ``forward``).
        down_channels: output widths of stem, ``down.0``, ``down.1`` (the last one is the
            residual stream); None = from ``ngf``.
        block_channels: internal width of every block; None = the stream width ``4 * ngf``.
        up_channels: output widths of ``up.0``, ``up.1``; None = ``[2ngf, ngf]``.
    """

    role: ClassVar[str] = "generator"
    task: ClassVar[str] = "image2image"

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: Norm = "instance",
        use_dropout: bool = False,
        dropout_rate: float = 0.5,
        padding_type: Padding = "reflect",
        clamp_input: bool = False,
        down_channels: list[int] | None = None,
        block_channels: list[int] | None = None,
        up_channels: list[int] | None = None,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        check_choice("norm", norm, Norm)
        check_choice("padding_type", padding_type, Padding)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.n_blocks, self.clamp_input = n_blocks, clamp_input
        down, hidden, up = _resnet_widths(ngf, n_blocks, down_channels, block_channels, up_channels)
        stream = down[-1]
        self.down_channels, self.block_channels, self.up_channels = down, hidden, up

        bias = conv_bias(norm)
        self.stem = ConvNormAct(
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, down[0], 7, bias=bias),
            make_norm(norm, down[0]),
            nn.ReLU(),
        )
        self.down = nn.ModuleList(
            ConvNormAct(
                nn.Identity(),
                nn.Conv2d(down[i], down[i + 1], 3, stride=2, padding=1, bias=bias),
                make_norm(norm, down[i + 1]),
                nn.ReLU(),
            )
            for i in range(RESNET_N_SAMPLING)
        )
        self.blocks = nn.ModuleList(
            ResnetBlock(stream, h, norm, padding_type, use_dropout, dropout_rate) for h in hidden
        )
        up_in = [stream, *up[:-1]]
        self.up = nn.ModuleList(
            ConvNormAct(
                nn.Identity(),
                nn.ConvTranspose2d(up_in[i], up[i], 3, stride=2, padding=1, output_padding=1, bias=bias),
                make_norm(norm, up[i]),
                nn.ReLU(),
            )
            for i in range(RESNET_N_SAMPLING)
        )
        self.head = ConvNormAct(
            nn.ReflectionPad2d(3), nn.Conv2d(up[-1], out_channels, 7), nn.Identity(), nn.Tanh()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [B, in_channels, H, W] in [-1, 1] -> image [B, out_channels, H, W] in [-1, 1]."""
        if self.clamp_input:
            x = x.clamp(-1, 1)
        h = self.stem(x)
        for layer in self.down:
            h = layer(h)
        for block in self.blocks:
            h = block(h)
        for layer in self.up:
            h = layer(h)
        return self.head(h)

    # -- distillation ----------------------------------------------------------------------------
    def distillation_points(self) -> list[str]:
        """Every stage output in forward order: stem, down.*, blocks.*, up.*."""
        return (
            ["stem"]
            + [f"down.{i}" for i in range(len(self.down))]
            + [f"blocks.{i}" for i in range(self.n_blocks)]
            + [f"up.{i}" for i in range(len(self.up))]
        )

    def gan_compression_distillation_points(self) -> list[str]:
        """The layers GAN Compression distils (``distillers/base_resnet_distiller.py``:
        ``model.9, model.12, model.15, model.18`` = the stream after ``down.1`` and after every
        third block, i.e. blocks 2, 5, 8 of ``resnet_9blocks``)."""
        return [f"down.{RESNET_N_SAMPLING - 1}"] + [f"blocks.{i}" for i in range(2, self.n_blocks, 3)]

    # -- pruning ---------------------------------------------------------------------------------
    def channel_groups(self) -> list[ChannelGroup]:
        """``stem``, ``down.0``: outputs of the first convs; ``residual``: the stream written by
        ``down.1`` and every block's ``conv2`` (+ norms), read by every ``conv1`` and ``up.0``;
        ``blocks.i``: a block's internal map; ``up.0``, ``up.1``: the upsampling outputs."""
        groups = [
            _stage_group("stem", self.down_channels[0], self.stem, "down.0.conv", self.down[0].conv),
            _stage_group("down.0", self.down_channels[1], self.down[0], "down.1.conv", self.down[1].conv),
        ]
        stream = self.down[-1]
        members = _conv_out("down.1.conv", stream.conv) + _norm_aux("down.1.norm", stream.norm)
        for i, block in enumerate(self.blocks):
            members += _conv_out(f"blocks.{i}.conv2", block.conv2) + _norm_aux(
                f"blocks.{i}.norm2", block.norm2
            )
            members.append(_conv_in(f"blocks.{i}.conv1", block.conv1))
        members.append(_conv_in("up.0.conv", self.up[0].conv))
        groups.append(ChannelGroup("residual", self.down_channels[-1], tuple(members)))
        for i, block in enumerate(self.blocks):
            members = _conv_out(f"blocks.{i}.conv1", block.conv1) + _norm_aux(
                f"blocks.{i}.norm1", block.norm1
            )
            members.append(_conv_in(f"blocks.{i}.conv2", block.conv2))
            groups.append(ChannelGroup(f"blocks.{i}", self.block_channels[i], tuple(members)))
        groups.append(_stage_group("up.0", self.up_channels[0], self.up[0], "up.1.conv", self.up[1].conv))
        groups.append(_stage_group("up.1", self.up_channels[1], self.up[1], "head.conv", self.head.conv))
        return groups

    def config_for_group_sizes(self, sizes: Mapping[str, int]) -> dict[str, Any]:
        sizes = self.checked_group_sizes(sizes)
        down = [sizes.get("stem", self.down_channels[0]), sizes.get("down.0", self.down_channels[1])]
        down.append(sizes.get("residual", self.down_channels[2]))
        blocks = [sizes.get(f"blocks.{i}", w) for i, w in enumerate(self.block_channels)]
        up = [sizes.get(f"up.{i}", w) for i, w in enumerate(self.up_channels)]
        return {**self.config, "down_channels": down, "block_channels": blocks, "up_channels": up}


# -- U-Net generator ----------------------------------------------------------------------------
class UnetDown(nn.Module):
    """``[LeakyReLU(0.2)] -> 4x4 stride-2 conv -> norm`` (the down half of a U-Net level)."""

    def __init__(self, conv: nn.Conv2d, norm: nn.Module, activate_input: bool) -> None:
        super().__init__()
        self.activate_input = activate_input
        self.conv = conv
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activate_input:
            x = F.leaky_relu(x, 0.2)
        return self.norm(self.conv(x))


class UnetUp(nn.Module):
    """``ReLU -> 4x4 stride-2 transposed conv -> norm -> dropout`` (``-> tanh`` at level 0)."""

    def __init__(self, conv: nn.ConvTranspose2d, norm: nn.Module, out: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.norm = norm
        self.out = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.conv(F.relu(x))))


class UnetGenerator(GanNet):
    """The pix2pix U-Net (reference ``UnetGenerator``; ``unet_256``: 8 downs, ``unet_128``: 7).

    Level ``k`` (0 = outermost, ``num_downs - 1`` = innermost) downsamples with ``downs.k`` to
    ``down_channels[k]`` channels (the map ``x_k``); going up, ``ups.k`` reads ``x_k`` (innermost)
    or ``cat([x_k, ups.{k+1} output])`` and writes ``up_channels[k - 1]`` channels (level 0:
    ``out_channels`` + tanh). Levels 0 and innermost have no down norm; level 0 no up norm.

    Args:
        in_channels, out_channels: image channels.
        num_downs: number of levels (>= 5 as in the reference, whose smallest U-Net has 5).
        ngf: base width; default ``down_channels[k] = ngf * min(2**k, 8)`` and
            ``up_channels[k - 1] = down_channels[k - 1]``.
        norm: ``"batch"`` (pix2pix), ``"instance"`` or ``"none"``.
        use_dropout: dropout after the up norm of levels ``4 .. num_downs - 2`` (pix2pix default
            on: its ``--no_dropout`` flag is off by default).
        dropout_rate: reference 0.5.
        down_channels: ``num_downs`` widths of the down maps; None = from ``ngf``.
        up_channels: ``num_downs - 1`` widths written by ``ups.1 .. ups.{num_downs-1}``.
    """

    role: ClassVar[str] = "generator"
    task: ClassVar[str] = "image2image"

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        norm: Norm = "batch",
        use_dropout: bool = True,
        dropout_rate: float = 0.5,
        down_channels: list[int] | None = None,
        up_channels: list[int] | None = None,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(
                f"num_downs must be >= 5 (the reference always builds 5 levels), got {num_downs}"
            )
        check_choice("norm", norm, Norm)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_downs = num_downs
        down = [ngf * min(2**k, 8) for k in range(num_downs)] if down_channels is None else down_channels
        down = _check_widths("down_channels", down, num_downs)
        up = list(down[:-1]) if up_channels is None else up_channels
        up = _check_widths("up_channels", up, num_downs - 1)
        self.down_channels, self.up_channels = down, up
        innermost = num_downs - 1
        bias = conv_bias(norm)

        self.downs = nn.ModuleList()
        for k in range(num_downs):
            conv = nn.Conv2d(
                in_channels if k == 0 else down[k - 1], down[k], 4, stride=2, padding=1, bias=bias
            )
            has_norm = 0 < k < innermost
            self.downs.append(UnetDown(conv, make_norm(norm, down[k]) if has_norm else nn.Identity(), k > 0))

        self.ups = nn.ModuleList()
        for k in range(num_downs):
            reads = down[k] if k == innermost else down[k] + up[k]
            if k == 0:
                conv = nn.ConvTranspose2d(reads, out_channels, 4, stride=2, padding=1, bias=True)
                self.ups.append(UnetUp(conv, nn.Identity(), nn.Tanh()))
                continue
            conv = nn.ConvTranspose2d(reads, up[k - 1], 4, stride=2, padding=1, bias=bias)
            dropout = use_dropout and 4 <= k < innermost
            self.ups.append(
                UnetUp(
                    conv, make_norm(norm, up[k - 1]), nn.Dropout(dropout_rate) if dropout else nn.Identity()
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [B, in_channels, H, W] (H, W divisible by ``2**num_downs``) -> [B, out, H, W]."""
        skips = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)
        h = self.ups[-1](skips[-1])
        for k in reversed(range(self.num_downs - 1)):
            h = self.ups[k](torch.cat([skips[k], h], dim=1))
        return h

    def distillation_points(self) -> list[str]:
        """Down maps outermost to innermost, then the up maps back out (the image excluded)."""
        return [f"downs.{k}" for k in range(self.num_downs)] + [
            f"ups.{k}" for k in reversed(range(1, self.num_downs))
        ]

    def channel_groups(self) -> list[ChannelGroup]:
        """``downs.k``: the down map ``x_k``; ``ups.k`` (k >= 1): the map written by ``ups.k``.

        Every map but the bottleneck is read through a skip concatenation: ``ups.k`` reads
        ``cat([x_k, ups.{k+1} output])`` (skip first, see ``forward``), so ``x_k`` is the window
        at offset 0 of ``ups.k.conv``'s input and the ``ups.{k+1}`` map the window at offset
        ``down_channels[k]``. Transposed conv weights are ``[in, out, kh, kw]``.
        """
        return [self._down_group(k) for k in range(self.num_downs)] + [
            self._up_group(k) for k in range(1, self.num_downs)
        ]

    def _down_group(self, k: int) -> ChannelGroup:
        """``x_k``: written by ``downs.k`` (+ norm), read by ``downs.{k+1}`` and ``ups.k``."""
        down = self.downs[k]
        members = _conv_out(f"downs.{k}.conv", down.conv) + _norm_aux(f"downs.{k}.norm", down.norm)
        if k + 1 < self.num_downs:
            members.append(_conv_in(f"downs.{k + 1}.conv", self.downs[k + 1].conv))
        members.append(_conv_in(f"ups.{k}.conv", self.ups[k].conv, offset=0))
        return ChannelGroup(f"downs.{k}", self.down_channels[k], tuple(members))

    def _up_group(self, k: int) -> ChannelGroup:
        """Output of ``ups.k`` (+ norm), read by ``ups.{k-1}`` after the skip ``x_{k-1}``."""
        up = self.ups[k]
        members = _conv_out(f"ups.{k}.conv", up.conv) + _norm_aux(f"ups.{k}.norm", up.norm)
        skip_width = self.down_channels[k - 1]
        members.append(_conv_in(f"ups.{k - 1}.conv", self.ups[k - 1].conv, offset=skip_width))
        return ChannelGroup(f"ups.{k}", self.up_channels[k - 1], tuple(members))

    def config_for_group_sizes(self, sizes: Mapping[str, int]) -> dict[str, Any]:
        sizes = self.checked_group_sizes(sizes)
        down = [sizes.get(f"downs.{k}", w) for k, w in enumerate(self.down_channels)]
        up = [sizes.get(f"ups.{k + 1}", w) for k, w in enumerate(self.up_channels)]
        return {**self.config, "down_channels": down, "up_channels": up}


# -- PatchGAN discriminator ---------------------------------------------------------------------
class PatchDown(nn.Module):
    """``4x4 conv -> norm -> LeakyReLU(0.2)`` (one PatchGAN layer)."""

    def __init__(self, conv: nn.Conv2d, norm: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.norm(self.conv(x)), 0.2)


class NLayerDiscriminator(GanNet):
    """PatchGAN (reference ``NLayerDiscriminator``): ``n_layers`` stride-2 4x4 convs, one
    stride-1 4x4 conv, then a 4x4 conv to one logit per patch (70x70 receptive field at
    ``n_layers=3``). The first layer has no norm; no sigmoid (the loss takes logits).

    Args:
        in_channels: 3 (CycleGAN: D(image)) or 6 (pix2pix: D(cat(A, B)), see ``forward``).
        ndf: base width; default ``channels[i] = ndf * min(2**i, 8)``.
        n_layers: stride-2 layers (3 = the ``basic`` D).
        norm: ``"batch"`` (pix2pix; reference class default), ``"instance"`` (CycleGAN), ``"none"``.
        channels: ``n_layers + 1`` output widths of ``layers.*``; None = from ``ndf``.
    """

    role: ClassVar[str] = "discriminator"

    def __init__(
        self,
        in_channels: int = 3,
        ndf: int = 64,
        n_layers: int = 3,
        norm: Norm = "batch",
        channels: list[int] | None = None,
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        check_choice("norm", norm, Norm)
        self.in_channels = in_channels
        widths = [ndf * min(2**i, 8) for i in range(n_layers + 1)] if channels is None else channels
        self.channels = _check_widths("channels", widths, n_layers + 1)
        bias = conv_bias(norm)
        self.layers = nn.ModuleList(
            [PatchDown(nn.Conv2d(in_channels, self.channels[0], 4, 2, 1), nn.Identity())]
        )
        for i in range(1, n_layers + 1):
            stride = 2 if i < n_layers else 1
            conv = nn.Conv2d(self.channels[i - 1], self.channels[i], 4, stride, 1, bias=bias)
            self.layers.append(PatchDown(conv, make_norm(norm, self.channels[i])))
        self.head = nn.Conv2d(self.channels[-1], 1, 4, 1, 1)

    def forward(self, img: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """``img`` [B, C, H, W] -> patch logits [B, 1, h, w]. A pix2pix D is conditioned on the
        input image: ``condition`` is concatenated first (reference ``cat((real_A, fake_B), 1)``)."""
        h = img if condition is None else torch.cat([condition, img], dim=1)
        for layer in self.layers:
            h = layer(h)
        return self.head(h)

    def channel_groups(self) -> list[ChannelGroup]:
        """``layers.i``: output of layer i, read by the next layer (or the head)."""
        groups = []
        for i, layer in enumerate(self.layers):
            members = _conv_out(f"layers.{i}.conv", layer.conv) + _norm_aux(f"layers.{i}.norm", layer.norm)
            is_last = i == len(self.layers) - 1
            reader_key, reader = (
                ("head", self.head) if is_last else (f"layers.{i + 1}.conv", self.layers[i + 1].conv)
            )
            members.append(_conv_in(reader_key, reader))
            groups.append(ChannelGroup(f"layers.{i}", self.channels[i], tuple(members)))
        return groups

    def config_for_group_sizes(self, sizes: Mapping[str, int]) -> dict[str, Any]:
        sizes = self.checked_group_sizes(sizes)
        return {**self.config, "channels": [sizes.get(f"layers.{i}", w) for i, w in enumerate(self.channels)]}
