"""BigGAN and SAGAN (class-conditional, 128 px ImageNet) generator and discriminator.

Architecture and state-dict layout follow ajbrock/BigGAN-PyTorch ``BigGAN.py`` / ``layers.py``
(Brock et al., "Large Scale GAN Training for High Fidelity Natural Image Synthesis", ICLR 2019,
Sec. 3 and Appendix B, Fig. 15 (a)-(c)); SAGAN (Zhang et al., ICML 2019) is the configuration of
the same code used by ``scripts/launch_SAGAN_bs128x2_ema.sh``. Keys are identical to the official
``G.pth`` / ``G_ema.pth`` / ``D.pth`` files, so those load without renaming
(:mod:`lightning_gancomp.formats.biggan`).

Presets (the defaults of :class:`BigGANGenerator` / :class:`BigGANDiscriminator` are BigGAN-128):

* BigGAN-128: ``ch=96, z_dim=120, shared_embedding=True, shared_dim=128, hierarchical=True``,
  attention at 64 px, SN eps 1e-6 (``launch_BigGAN_bs256x8.sh``) - G 70,433,988 / D 87,982,370
  parameters.
* SAGAN-128: ``ch=64, z_dim=128, shared_embedding=False, hierarchical=False``, attention at 64 px,
  SN eps 1e-8 (``launch_SAGAN_bs128x2_ema.sh``) - G 42,017,412 / D 39,448,258 parameters. The
  conditional BNs then use plain ``nn.Embedding(num_classes, C)`` tables for gain and bias.

Widths are data (``stream_channels``: the residual streams between blocks; ``hidden_channels``:
the map between conv1 and conv2 inside each block), so a pruned network is this class with
other widths; the official ``arch`` table (``G_arch``/``D_arch``) only provides the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lightning_gancomp.nets.base import ChannelGroup, GanNet, TensorSlice
from lightning_gancomp.nets.layers import (
    BigGANBatchNorm2d,
    ClassConditionalBatchNorm2d,
    SelfAttention,
    SNConv2d,
    SNEmbedding,
    SNLinear,
)

InitStyle = Literal["ortho", "N02", "xavier", "none"]

# Official G_arch: channel multipliers of the residual streams (input of block 0, then the output
# of every block); every block upsamples x2 and its hidden width equals its output width.
_G_STREAM_MULTIPLIERS: dict[int, list[int]] = {
    32: [4, 4, 4, 4],
    64: [16, 16, 8, 4, 2],
    128: [16, 16, 8, 4, 2, 1],
    256: [16, 16, 8, 8, 4, 2, 1],
    512: [16, 16, 8, 8, 4, 2, 1, 1],
}
# Official D_arch: output multipliers of every block, whether it downsamples, and the resolution
# its output has (used to place attention).
_D_ARCH: dict[int, tuple[list[int], list[bool], list[int]]] = {
    32: ([4, 4, 4, 4], [True, True, False, False], [16, 16, 16, 16]),
    64: ([1, 2, 4, 8, 16], [True] * 4 + [False], [32, 16, 8, 4, 4]),
    128: ([1, 2, 4, 8, 16, 16], [True] * 5 + [False], [64, 32, 16, 8, 4, 4]),
    256: ([1, 2, 4, 8, 8, 16, 16], [True] * 6 + [False], [128, 64, 32, 16, 8, 4, 4]),
}


def biggan128_config(**changes: Any) -> dict[str, Any]:
    """Generator arguments of BigGAN-128 (launch_BigGAN_bs256x8.sh)."""
    return {"ch": 96, "z_dim": 120, "shared_embedding": True, "shared_dim": 128, "hierarchical": True,
            "sn_eps": 1e-6, **changes}  # fmt: skip


def sagan128_config(**changes: Any) -> dict[str, Any]:
    """Generator arguments of SAGAN-128 as configured in BigGAN-PyTorch (launch_SAGAN_bs128x2_ema.sh)."""
    return {"ch": 64, "z_dim": 128, "shared_embedding": False, "shared_dim": 0, "hierarchical": False,
            "sn_eps": 1e-8, "init": "xavier", **changes}  # fmt: skip


def init_biggan_weights(module: nn.Module, style: InitStyle) -> None:
    """Official ``init_weights``: every conv/linear/embedding weight (SN or not) re-initialised."""
    if style == "none":
        return
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear, nn.Embedding)) and not layer.weight.is_meta:
            if style == "ortho":
                nn.init.orthogonal_(layer.weight)
            elif style == "N02":
                nn.init.normal_(layer.weight, 0.0, 0.02)
            elif style == "xavier":
                nn.init.xavier_uniform_(layer.weight)
            else:
                raise ValueError(f"unknown init style {style!r}")


# -- channel-group helpers (shared with the discriminator) --------------------------------------
def _sn_vectors(prefix: str, num_svs: int, block: int = 1) -> list[TensorSlice]:
    # u_i is [1, out]: one entry per output channel of the layer.
    return [TensorSlice(f"{prefix}.u{i}", 1, "aux", block) for i in range(num_svs)]


def _sn_producer(prefix: str, num_svs: int, has_bias: bool, block: int = 1) -> list[TensorSlice]:
    members = [TensorSlice(f"{prefix}.weight", 0, "out", block)]
    if has_bias:
        members.append(TensorSlice(f"{prefix}.bias", 0, "aux", block))
    return members + _sn_vectors(prefix, num_svs, block)


def _conditional_bn_members(prefix: str, conditioning: str, num_svs: int) -> list[TensorSlice]:
    members = [TensorSlice(f"{prefix}.stored_mean", 0, "aux"), TensorSlice(f"{prefix}.stored_var", 0, "aux")]
    for part in ("gain", "bias"):
        if conditioning == "linear":  # SNLinear(cond_dim, C): rows are channels
            members.append(TensorSlice(f"{prefix}.{part}.weight", 0, "aux"))
            members += _sn_vectors(f"{prefix}.{part}", num_svs)
        else:  # nn.Embedding(num_classes, C): columns are channels
            members.append(TensorSlice(f"{prefix}.{part}.weight", 1, "aux"))
    return members


def _attention_reader_members(prefix: str) -> list[TensorSlice]:
    return [TensorSlice(f"{prefix}.{name}.weight", 1, "in") for name in ("theta", "phi", "g")]


def _attention_writer_members(prefix: str, num_svs: int) -> list[TensorSlice]:
    return _sn_producer(f"{prefix}.o", num_svs, has_bias=False)


def _attention_value_group(prefix: str, size: int, num_svs: int) -> ChannelGroup:
    members = _sn_producer(f"{prefix}.g", num_svs, has_bias=False)
    members.append(TensorSlice(f"{prefix}.o.weight", 1, "in"))
    return ChannelGroup(f"{prefix}.value", size, tuple(members))


# -- generator --------------------------------------------------------------------------------
class BigGANGBlock(nn.Module):
    """Residual up-block (``layers.GBlock``): ``BN1 -> ReLU -> up -> conv1 -> BN2 -> ReLU -> conv2``
    plus ``up -> conv_sc`` (1x1) on the shortcut; nearest-neighbour x2 upsampling.

    ``transition_channels`` (not in the official code) adds PPCD-GAN's transition layer (Sec. 3.2,
    Fig. 2 right): conv2 writes ``transition_channels`` maps that a 1x1 SN conv ``transition``
    projects to the stream width before the residual sum, so conv2's output can be pruned
    independently of the residual stream. Its bias and spectral norm follow the other convs of
    the block (the paper does not say; inference).
    """

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        cond_dim: int,
        conditioning: Literal["linear", "embedding"],
        bn_eps: float,
        sn: dict[str, Any],
        transition_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = SNConv2d(in_channels, hidden_channels, **sn)
        self.conv2 = SNConv2d(hidden_channels, transition_channels or out_channels, **sn)
        self.transition = (
            SNConv2d(transition_channels, out_channels, kernel_size=1, padding=0, **sn)
            if transition_channels is not None
            else None
        )
        # Official rule: a learnable shortcut whenever in != out or the block upsamples (always).
        self.conv_sc = SNConv2d(in_channels, out_channels, kernel_size=1, padding=0, **sn)
        bn = {"conditioning": conditioning, "eps": bn_eps, "num_svs": sn["num_svs"],
              "num_itrs": sn["num_itrs"], "sn_eps": sn["eps"]}  # fmt: skip
        self.bn1 = ClassConditionalBatchNorm2d(in_channels, cond_dim, **bn)
        self.bn2 = ClassConditionalBatchNorm2d(hidden_channels, cond_dim, **bn)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2)
        x = F.interpolate(x, scale_factor=2)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        if self.transition is not None:
            h = self.transition(h)
        return h + self.conv_sc(x)

    def init_transition_as_identity(self) -> None:
        """Make the transition the identity when it is square (spectral norm keeps it so: sigma=1),
        so adding transitions to a trained generator does not change its function."""
        if self.transition is not None and self.transition.in_channels == self.transition.out_channels:
            with torch.no_grad():
                self.transition.weight.copy_(
                    torch.eye(self.transition.out_channels).view_as(self.transition.weight)
                )
                self.transition.bias.zero_()


def _generator_widths(
    resolution: int,
    ch: int,
    bottom_width: int,
    stream_channels: list[int] | None,
    hidden_channels: list[int] | None,
    transition_channels: list[int] | None,
) -> tuple[list[int], list[int], list[int] | None]:
    """(streams, hidden, transitions) widths, the defaults from ``ch``; one clear error when they
    do not describe ``resolution`` px from ``bottom_width`` px."""
    if resolution not in _G_STREAM_MULTIPLIERS:
        raise ValueError(f"resolution must be one of {sorted(_G_STREAM_MULTIPLIERS)}, got {resolution}")
    streams = list(stream_channels or [m * ch for m in _G_STREAM_MULTIPLIERS[resolution]])
    num_blocks = len(streams) - 1
    hidden = list(hidden_channels or streams[1:])
    transitions = list(transition_channels) if transition_channels is not None else None
    if transitions is not None and len(transitions) != num_blocks:
        raise ValueError(
            f"transition_channels needs one width per block ({num_blocks}), got {len(transitions)}"
        )
    if len(hidden) != num_blocks or bottom_width * 2**num_blocks != resolution:
        raise ValueError(
            f"stream_channels ({len(streams)}) / hidden_channels ({len(hidden)}) do not describe "
            f"{resolution}px from {bottom_width}px (needs {len(_G_STREAM_MULTIPLIERS[resolution])} streams)"
        )
    return streams, hidden, transitions


class BigGANGenerator(GanNet):
    """BigGAN / SAGAN generator ``G(z, y) -> img [B, 3, R, R]`` in [-1, 1] (tanh).

    Args:
        resolution: output size; selects the default widths from the official ``G_arch`` table.
        ch: channel multiplier of the official table (BigGAN-128: 96, SAGAN-128: 64).
        z_dim: latent size. With ``hierarchical`` it is split into ``num_blocks + 1`` equal chunks
            (official: the remainder of ``z_dim // (num_blocks + 1)`` is dropped, 120 -> 6 x 20).
        num_classes: number of classes (ImageNet: 1000).
        shared_embedding: BigGAN's shared class embedding feeding every conditional BN through SN
            linears; False = SAGAN's per-BN ``nn.Embedding`` gain/bias tables.
        shared_dim: size of the shared embedding (official: 0 means ``z_dim``).
        hierarchical: feed z chunks to the first linear and to every block's conditional BNs.
        attention_resolutions: resolutions after whose block a self-attention layer sits.
        bottom_width: spatial size of the first feature map.
        stream_channels: widths of the residual streams: input of block 0 (written by the first
            linear), then the output of every block. Default: official table x ``ch``.
        hidden_channels: width between conv1 and conv2 of every block. Default: block output width.
        attention_key_channels / attention_value_channels: theta/phi and g widths of each attention
            layer in order. Default: stream width // 8 and // 2.
        bn_eps: batch-norm epsilon. sn_eps, num_svs, num_sv_itrs: spectral-norm settings.
        init: weight initialisation (official ``G_init``; BigGAN ortho, SAGAN xavier).
        transition_channels: PPCD-GAN transition layers (see :class:`BigGANGBlock`): conv2 width
            of every block; None (default) = the official architecture without transitions.
            Square transitions start as the identity.
    """

    role: ClassVar[str] = "generator"
    task: ClassVar[str] = "conditional"
    #: residual block class (PPCD-GAN's PP-Res student substitutes a subclass with masks)
    block_class: ClassVar[type[BigGANGBlock]] = BigGANGBlock

    initialisation_arguments: ClassVar[tuple[str, ...]] = ("init",)  # official files say init: none

    def __init__(
        self,
        resolution: Literal[32, 64, 128, 256, 512] = 128,
        ch: int = 96,
        z_dim: int = 120,
        num_classes: int = 1000,
        shared_embedding: bool = True,
        shared_dim: int = 128,
        hierarchical: bool = True,
        attention_resolutions: tuple[int, ...] = (64,),
        bottom_width: int = 4,
        stream_channels: list[int] | None = None,
        hidden_channels: list[int] | None = None,
        attention_key_channels: list[int] | None = None,
        attention_value_channels: list[int] | None = None,
        bn_eps: float = 1e-5,
        sn_eps: float = 1e-6,
        num_svs: int = 1,
        num_sv_itrs: int = 1,
        init: InitStyle = "ortho",
        transition_channels: list[int] | None = None,
    ) -> None:
        super().__init__()
        streams, hidden, transitions = _generator_widths(
            resolution, ch, bottom_width, stream_channels, hidden_channels, transition_channels
        )
        num_blocks = len(streams) - 1
        self.resolution, self.num_classes, self.bottom_width = resolution, num_classes, bottom_width
        self.shared_embedding, self.hierarchical = shared_embedding, hierarchical
        self.stream_channels, self.hidden_channels = streams, hidden
        self.transition_channels = transitions
        self.num_svs = num_svs
        self.shared_dim = shared_dim if shared_dim > 0 else z_dim
        num_slots = num_blocks + 1 if hierarchical else 1
        self.z_chunk_size = z_dim // num_slots if hierarchical else 0
        self.z_dim = self.z_chunk_size * num_slots if hierarchical else z_dim
        self.conditioning: Literal["linear", "embedding"] = "linear" if shared_embedding else "embedding"
        cond_dim = self.shared_dim + self.z_chunk_size if shared_embedding else num_classes
        sn = {"num_svs": num_svs, "num_itrs": num_sv_itrs, "eps": sn_eps}

        # The official module is an identity when not shared (no keys): None keeps that layout.
        self.shared = nn.Embedding(num_classes, self.shared_dim) if shared_embedding else None
        self.linear = SNLinear(self.z_dim // num_slots, streams[0] * bottom_width**2, **sn)
        self.attention_blocks: list[int] = []
        attention = (attention_resolutions, attention_key_channels, attention_value_channels)
        self.blocks = self._stages(streams, hidden, transitions, cond_dim, bn_eps, sn, attention)
        self.output_layer = nn.Sequential(
            BigGANBatchNorm2d(streams[-1], eps=bn_eps), nn.ReLU(), SNConv2d(streams[-1], 3, **sn)
        )
        init_biggan_weights(self, init)
        if init != "none":
            for stage in self.blocks:
                stage[0].init_transition_as_identity()

    def _stages(
        self,
        streams: list[int],
        hidden: list[int],
        transitions: list[int] | None,
        cond_dim: int,
        bn_eps: float,
        sn: dict[str, Any],
        attention: tuple[tuple[int, ...], list[int] | None, list[int] | None],
    ) -> nn.ModuleList:
        """One ``ModuleList([block, (self-attention)])`` per resolution (official ``G.blocks``)."""
        resolutions, key_channels, value_channels = attention
        keys, values = list(key_channels or []), list(value_channels or [])
        blocks = []
        for index in range(len(streams) - 1):
            block = self.block_class(
                streams[index], hidden[index], streams[index + 1], cond_dim, self.conditioning, bn_eps, sn,
                transitions[index] if transitions is not None else None,
            )  # fmt: skip
            stage: list[nn.Module] = [block]
            if self.bottom_width * 2 ** (index + 1) in resolutions:
                slot = len(self.attention_blocks)
                key = keys[slot] if slot < len(keys) else None
                value = values[slot] if slot < len(values) else None
                stage.append(
                    SelfAttention(streams[index + 1], key, value, sn["num_svs"], sn["num_itrs"], sn["eps"])
                )
                self.attention_blocks.append(index)
            blocks.append(nn.ModuleList(stage))
        return nn.ModuleList(blocks)

    def class_embedding(self, y: torch.Tensor) -> torch.Tensor:
        """What the conditional BNs receive for labels ``y``: the shared embedding (BigGAN) or the
        class index itself (SAGAN)."""
        return self.shared(y) if self.shared is not None else y

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``z`` [B, z_dim]; ``y`` class indices (long [B]) or, with a shared embedding, an already
        embedded float [B, shared_dim] (the official ``G(z, G.shared(y))`` interface, useful for
        class interpolation)."""
        cond = y if y.is_floating_point() else self.class_embedding(y)
        if self.hierarchical:
            first, *chunks = torch.split(z, self.z_chunk_size, dim=1)
            conds = [torch.cat([cond, chunk], dim=1) for chunk in chunks]
        else:
            first, conds = z, [cond] * len(self.blocks)
        h = self.linear(first).view(z.size(0), -1, self.bottom_width, self.bottom_width)
        for stage, stage_cond in zip(self.blocks, conds):
            h = stage[0](h, stage_cond)
            for attention in stage[1:]:
                h = attention(h)
        return torch.tanh(self.output_layer(h))

    # -- pruning interface ----------------------------------------------------------------------
    def distillation_points(self) -> list[str]:
        """Output of every residual block (after its attention layer when it has one), in order."""
        return [f"blocks.{i}.{len(stage) - 1}" for i, stage in enumerate(self.blocks)]

    def _attention_slot(self, index: int) -> int | None:
        return self.attention_blocks.index(index) if index in self.attention_blocks else None

    def channel_groups(self) -> list[ChannelGroup]:
        """Groups: ``stream.{k}`` (residual stream k: input of block k, k = 0 written by the first
        linear with 16 entries per channel), ``block.{k}.hidden`` (conv1 -> BN2 -> conv2 of block
        k), ``block.{k}.out`` (conv2 -> transition, only with transition layers) and
        ``blocks.{k}.1.value`` (g -> o of an attention layer)."""
        n, svs = len(self.blocks), self.num_svs
        groups = []
        for k in range(n + 1):
            block = self.bottom_width**2 if k == 0 else 1
            if k == 0:
                members = _sn_producer("linear", svs, has_bias=True, block=block)
            else:
                prefix = f"blocks.{k - 1}.0"
                writer = "transition" if self.transition_channels is not None else "conv2"
                members = _sn_producer(f"{prefix}.{writer}", svs, True)
                members += _sn_producer(f"{prefix}.conv_sc", svs, True)
                if self._attention_slot(k - 1) is not None:
                    members += _attention_writer_members(f"blocks.{k - 1}.1", svs)
                    members += _attention_reader_members(f"blocks.{k - 1}.1")
            if k < n:
                reader = f"blocks.{k}.0"
                members += _conditional_bn_members(f"{reader}.bn1", self.conditioning, svs)
                members += [TensorSlice(f"{reader}.conv1.weight", 1, "in"),
                            TensorSlice(f"{reader}.conv_sc.weight", 1, "in")]  # fmt: skip
            else:
                members += [TensorSlice(f"output_layer.0.{name}", 0, "aux")
                            for name in ("gain", "bias", "stored_mean", "stored_var")]  # fmt: skip
                members.append(TensorSlice("output_layer.2.weight", 1, "in"))
            groups.append(ChannelGroup(f"stream.{k}", self.stream_channels[k], tuple(members)))
        for k in range(n):
            prefix = f"blocks.{k}.0"
            members = _sn_producer(f"{prefix}.conv1", svs, True)
            members += _conditional_bn_members(f"{prefix}.bn2", self.conditioning, svs)
            members.append(TensorSlice(f"{prefix}.conv2.weight", 1, "in"))
            groups.append(ChannelGroup(f"block.{k}.hidden", self.hidden_channels[k], tuple(members)))
        for k, width in enumerate(self.transition_channels or []):
            prefix = f"blocks.{k}.0"
            members = _sn_producer(f"{prefix}.conv2", svs, True)
            members.append(TensorSlice(f"{prefix}.transition.weight", 1, "in"))
            groups.append(ChannelGroup(f"block.{k}.out", width, tuple(members)))
        for k in self.attention_blocks:
            attention = self.blocks[k][1]
            groups.append(_attention_value_group(f"blocks.{k}.1", attention.value_channels, svs))
        return groups

    def config_for_group_sizes(self, sizes: Mapping[str, int]) -> dict[str, Any]:
        sizes = self.checked_group_sizes(sizes)
        streams = [int(sizes.get(f"stream.{k}", c)) for k, c in enumerate(self.stream_channels)]
        hidden = [int(sizes.get(f"block.{k}.hidden", c)) for k, c in enumerate(self.hidden_channels)]
        attentions = [self.blocks[k][1] for k in self.attention_blocks]
        values = [int(sizes.get(f"blocks.{k}.1.value", a.value_channels))
                  for k, a in zip(self.attention_blocks, attentions)]  # fmt: skip
        # Key widths are written explicitly so that pruning a stream does not change them.
        config = {**self.config, "stream_channels": streams, "hidden_channels": hidden,
                  "attention_key_channels": [a.key_channels for a in attentions],
                  "attention_value_channels": values}  # fmt: skip
        if self.transition_channels is not None:
            config["transition_channels"] = [
                int(sizes.get(f"block.{k}.out", c)) for k, c in enumerate(self.transition_channels)
            ]
        return config


# -- discriminator ----------------------------------------------------------------------------
class BigGANDBlock(nn.Module):
    """Residual down-block (``layers.DBlock``). ``preactivation``: ReLU before conv1 and the
    shortcut conv runs before pooling; otherwise (first block) pooling runs first."""

    def __init__(
        self,
        in_channels: int,
        hidden_channels: int,
        out_channels: int,
        downsample: bool,
        preactivation: bool,
        sn: dict[str, Any],
    ) -> None:
        super().__init__()
        self.downsample, self.preactivation = downsample, preactivation
        self.conv1 = SNConv2d(in_channels, hidden_channels, **sn)
        self.conv2 = SNConv2d(hidden_channels, out_channels, **sn)
        self.learnable_sc = in_channels != out_channels or downsample
        if self.learnable_sc:
            self.conv_sc = SNConv2d(in_channels, out_channels, kernel_size=1, padding=0, **sn)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if not self.learnable_sc:
            return x
        return self._pool(self.conv_sc(x)) if self.preactivation else self.conv_sc(self._pool(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        return h + self._shortcut(x)


class BigGANDiscriminator(GanNet):
    """BigGAN / SAGAN projection discriminator ``D(img, y) -> logits [B]``.

    ``logit = linear(sum_hw relu(h)) + <embed(y), sum_hw relu(h)>`` (Miyato & Koyama 2018
    projection; BigGAN-PyTorch ``Discriminator``). The official module returns ``[B, 1]``; ours
    returns ``[B]`` (framework contract).

    Args:
        resolution: input size; selects the default widths and downsampling of ``D_arch``.
        ch: channel multiplier (BigGAN-128: 96, SAGAN-128: 64).
        num_classes: classes of the projection embedding.
        attention_resolutions: resolutions (of a block's output) after which attention sits.
        wide: hidden width = block output width (BigGAN/SAGAN) instead of input width (SN-GAN).
        stream_channels: output width of every block. hidden_channels: conv1 width of every block.
        attention_key_channels / attention_value_channels: per attention layer, default C//8, C//2.
        sn_eps, num_svs, num_sv_itrs: spectral norm. init: official ``D_init``.
    """

    role: ClassVar[str] = "discriminator"
    task: ClassVar[str] = "conditional"  # projection D reads class labels

    initialisation_arguments: ClassVar[tuple[str, ...]] = ("init",)  # official files say init: none

    def __init__(
        self,
        resolution: Literal[32, 64, 128, 256] = 128,
        ch: int = 96,
        num_classes: int = 1000,
        attention_resolutions: tuple[int, ...] = (64,),
        wide: bool = True,
        stream_channels: list[int] | None = None,
        hidden_channels: list[int] | None = None,
        attention_key_channels: list[int] | None = None,
        attention_value_channels: list[int] | None = None,
        sn_eps: float = 1e-6,
        num_svs: int = 1,
        num_sv_itrs: int = 1,
        init: InitStyle = "ortho",
    ) -> None:
        super().__init__()
        if resolution not in _D_ARCH:
            raise ValueError(f"resolution must be one of {sorted(_D_ARCH)}, got {resolution}")
        multipliers, downsample, out_resolutions = _D_ARCH[resolution]
        outs = list(stream_channels or [m * ch for m in multipliers])
        ins = [3] + outs[:-1]
        hidden = list(hidden_channels or (outs if wide else ins))
        if len(outs) != len(multipliers) or len(hidden) != len(multipliers):
            raise ValueError(f"{resolution}px D needs {len(multipliers)} stream and hidden widths")
        self.resolution, self.num_classes, self.num_svs = resolution, num_classes, num_svs
        self.stream_channels, self.hidden_channels = outs, hidden
        sn = {"num_svs": num_svs, "num_itrs": num_sv_itrs, "eps": sn_eps}
        keys, values = list(attention_key_channels or []), list(attention_value_channels or [])
        self.attention_blocks: list[int] = []
        blocks = []
        for index in range(len(outs)):
            stage: list[nn.Module] = [
                BigGANDBlock(ins[index], hidden[index], outs[index], downsample[index], index > 0, sn)
            ]
            if out_resolutions[index] in attention_resolutions:
                slot = len(self.attention_blocks)
                stage.append(
                    SelfAttention(
                        outs[index],
                        keys[slot] if slot < len(keys) else None,
                        values[slot] if slot < len(values) else None,
                        num_svs,
                        num_sv_itrs,
                        sn_eps,
                    )
                )
                self.attention_blocks.append(index)
            blocks.append(nn.ModuleList(stage))
        self.blocks = nn.ModuleList(blocks)
        self.linear = SNLinear(outs[-1], 1, **sn)
        self.embed = SNEmbedding(num_classes, outs[-1], **sn)
        init_biggan_weights(self, init)

    def forward(self, img: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = img
        for stage in self.blocks:
            for layer in stage:
                h = layer(h)
        features = torch.sum(F.relu(h), dim=[2, 3])
        out = self.linear(features) + torch.sum(self.embed(y) * features, dim=1, keepdim=True)
        return out.view(-1)

    # -- pruning interface ----------------------------------------------------------------------
    def _stream_ids(self) -> list[int]:
        # Output stream k of a block with an identity shortcut is the same tensor as its input
        # stream, so they form one group (named after the first stream of the chain).
        ids = []
        for k, stage in enumerate(self.blocks):
            ids.append(ids[k - 1] if k > 0 and not stage[0].learnable_sc else k)
        return ids

    def channel_groups(self) -> list[ChannelGroup]:
        """Groups ``stream.{k}`` (output of block k, merged across identity shortcuts; the image
        is not prunable), ``block.{k}.hidden`` (conv1 -> conv2) and ``blocks.{k}.1.value``."""
        svs, n = self.num_svs, len(self.blocks)
        ids = self._stream_ids()
        members: dict[int, list[TensorSlice]] = {i: [] for i in sorted(set(ids))}
        for k in range(n):
            prefix, group = f"blocks.{k}.0", members[ids[k]]
            if self.blocks[k][0].learnable_sc:
                group += _sn_producer(f"{prefix}.conv2", svs, True) + _sn_producer(
                    f"{prefix}.conv_sc", svs, True
                )
            else:
                group += _sn_producer(f"{prefix}.conv2", svs, True)
            if k in self.attention_blocks:
                group += _attention_writer_members(f"blocks.{k}.1", svs) + _attention_reader_members(
                    f"blocks.{k}.1"
                )
            if k + 1 < n:
                reader = members[ids[k]]
                reader.append(TensorSlice(f"blocks.{k + 1}.0.conv1.weight", 1, "in"))
                if self.blocks[k + 1][0].learnable_sc:
                    reader.append(TensorSlice(f"blocks.{k + 1}.0.conv_sc.weight", 1, "in"))
        members[ids[-1]] += [TensorSlice("linear.weight", 1, "in"), TensorSlice("embed.weight", 1, "in")]
        groups = [ChannelGroup(f"stream.{i}", self.stream_channels[i], tuple(m)) for i, m in members.items()]
        for k in range(n):
            prefix = f"blocks.{k}.0"
            hidden_members = _sn_producer(f"{prefix}.conv1", svs, True) + [
                TensorSlice(f"{prefix}.conv2.weight", 1, "in")
            ]
            groups.append(ChannelGroup(f"block.{k}.hidden", self.hidden_channels[k], tuple(hidden_members)))
        for k in self.attention_blocks:
            groups.append(_attention_value_group(f"blocks.{k}.1", self.blocks[k][1].value_channels, svs))
        return groups

    def config_for_group_sizes(self, sizes: Mapping[str, int]) -> dict[str, Any]:
        sizes = self.checked_group_sizes(sizes)
        ids = self._stream_ids()
        streams = [int(sizes.get(f"stream.{ids[k]}", c)) for k, c in enumerate(self.stream_channels)]
        hidden = [int(sizes.get(f"block.{k}.hidden", c)) for k, c in enumerate(self.hidden_channels)]
        attentions = [self.blocks[k][1] for k in self.attention_blocks]
        values = [int(sizes.get(f"blocks.{k}.1.value", a.value_channels))
                  for k, a in zip(self.attention_blocks, attentions)]  # fmt: skip
        return {**self.config, "stream_channels": streams, "hidden_channels": hidden,
                "attention_key_channels": [a.key_channels for a in attentions],
                "attention_value_channels": values}  # fmt: skip
