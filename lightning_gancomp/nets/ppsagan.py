"""PPCD-GAN's training-time student: SAGAN-128 with PP-Res blocks (Vo et al., WACV 2022, Sec. 3.2,
Fig. 2 right; no public code, the paper text is the specification).

A PP-Res block is the SAGAN residual up-block (:class:`~lightning_gancomp.nets.biggan.BigGANGBlock`,
BigGAN-PyTorch ``layers.GBlock``) with a learnable mask (eq. 1) on the output of each of its two
convs and a 1x1 *transition* conv before the residual sum, so the masked conv2 output does not
have to match the residual stream. 5 blocks at 128 px = 10 masks (eq. 5: 2N, N = 5).

Order inside the block (the paper says "before the ReLU", "on top of each conv" and that the mask
keeps "the advantage of the class conditional normalization"; this is the reading under which a
channel whose mask is 0 can be deleted *exactly*)::

    x -> CBN1 -> ReLU -> up -> conv1 -> CBN2 -> mask1 -> ReLU -> conv2 -> mask2 -> transition -> (+) -> out
    x -> up -> conv_sc (1x1) ---------------------------------------------------------------------^

* mask1 sits *after* CBN2: a zero mask makes the channel exactly 0 whatever CBN2's class-dependent
  bias is (masking before CBN2 would leave ``bias(y)``, which differs per class, so the channel
  could not be removed), ReLU(0) = 0, and conv2 reads zeros from it. CBN2 itself is untouched, so
  the class-conditional gain/bias keep working on the kept channels.
* mask2 sits on conv2's output; there is no ReLU after conv2 in a SAGAN block, so "before the ReLU"
  cannot apply; the transition reads zeros from a masked channel.

Spectral norm. Every conv here is spectrally normalised (BigGAN-PyTorch ``SNConv2d``), and SN
divides by the largest singular value of the *whole* weight, which changes when rows or columns
are cut: the plainly masked network and the same network with the masked channels removed would
not compute the same thing. So every conv that writes or reads a masked map computes sigma on
``diag(m_out) W diag(m_in)`` (conv1: rows by mask1; conv2: rows by mask2, columns by mask1;
transition: columns by mask2), with the layer's own stored ``u`` and power iteration. For masks in
{0, 1} that is exactly the sigma of the sliced weight (zero rows/columns change neither the power
iteration's vectors on the kept entries nor the estimate), so ``pruning.masks.materialise``
is exact; for continuous masks it is the smooth relaxation of it. (The paper does not discuss
spectral norm; this is our construction.)

The materialised network is a plain :class:`BigGANGenerator` (SAGAN configuration with
``transition_channels``) with the removed channels cut by the existing surgery.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_gancomp.nets.base import ChannelGroup, TensorSlice, load_state_dict_strict
from lightning_gancomp.nets.biggan import BigGANGBlock, BigGANGenerator
from lightning_gancomp.nets.layers import SNConv2d, biggan_power_iteration
from lightning_gancomp.nets.masks import DELTA, LearnableMask

#: Constructor arguments of the PP student that the plain generator does not take.
PP_ARGS = ("delta", "mask_init")


def masked_sn_conv(
    conv: SNConv2d, x: Tensor, out_mask: Tensor | None = None, in_mask: Tensor | None = None
) -> Tensor:
    """``conv(x)`` with sigma taken on ``diag(out_mask) W diag(in_mask)`` (see module docstring).

    The convolution itself uses the full weight; masking the output is the caller's job. In train
    mode the power iteration writes ``u``/``sv`` back, as :meth:`SNConv2d.normalized_weight` does."""
    weight = conv.weight
    scaled = weight
    if out_mask is not None:
        scaled = scaled * out_mask.view(-1, 1, 1, 1)
    if in_mask is not None:
        scaled = scaled * in_mask.view(1, -1, 1, 1)
    matrix = scaled.reshape(weight.size(0), -1)
    for _ in range(conv.num_itrs):
        estimates = biggan_power_iteration(matrix, conv.singular_vectors(), conv.training, conv.sn_eps)
    if conv.training:
        with torch.no_grad():
            for stored, value in zip(conv.singular_values(), estimates):
                stored[:] = value
    return F.conv2d(x, weight / estimates[0], conv.bias, conv.stride, conv.padding)


class PPResBlock(BigGANGBlock):
    """PP-Res block: :class:`BigGANGBlock`'s layers run in the order of the module docstring with
    ``masks`` = (mask1, mask2). Called as a module (``block(x, cond, masks)``), so forward hooks
    on it (distillation points) see its output."""

    def forward(self, x: Tensor, cond: Tensor, masks: nn.ModuleList | None = None) -> Tensor:  # type: ignore[override]
        if masks is None or self.transition is None:
            raise ValueError("PPResBlock needs its two masks and a transition layer")
        m1, m2 = masks[0].values(), masks[1].values()
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2)
        x = F.interpolate(x, scale_factor=2)
        h = masked_sn_conv(self.conv1, h, out_mask=m1)
        h = F.relu(self.bn2(h, cond) * m1.view(1, -1, 1, 1))
        h = masked_sn_conv(self.conv2, h, out_mask=m2, in_mask=m1) * m2.view(1, -1, 1, 1)
        h = masked_sn_conv(self.transition, h, in_mask=m2)
        return h + self.conv_sc(x)


class PPSAGANGenerator(BigGANGenerator):
    """SAGAN generator with PP-Res blocks: :class:`BigGANGenerator` (pass the SAGAN settings, e.g.
    ``sagan128_config()``, and ``transition_channels``) plus two :class:`LearnableMask` per block.

    Args:
        delta: δ of eq. 1 (paper: 1e3).
        mask_init: initial mask value of every channel (see ``nets.masks``).
        **kwargs: :class:`BigGANGenerator` arguments; ``transition_channels`` is required (the
            transition layer is part of PP-Res).

    Masks: ``pp_masks.{k}.0`` on ``block.{k}.hidden`` (conv1), ``pp_masks.{k}.1`` on
    ``block.{k}.out`` (conv2). Both are members of those channel groups, so surgery on this class
    cuts them too; ``pruning.masks.materialise`` returns the plain network.
    """

    task: ClassVar[str] = "conditional"
    block_class: ClassVar[type[BigGANGBlock]] = PPResBlock

    def __init__(self, delta: float = DELTA, mask_init: float = 0.99, **kwargs: Any) -> None:
        if kwargs.get("transition_channels") is None:
            raise ValueError("PPSAGANGenerator needs transition_channels (one width per block)")
        super().__init__(**kwargs)
        self.delta = delta
        assert self.transition_channels is not None
        self.pp_masks = nn.ModuleList(
            nn.ModuleList([LearnableMask(hidden, delta, mask_init), LearnableMask(out, delta, mask_init)])
            for hidden, out in zip(self.hidden_channels, self.transition_channels, strict=True)
        )

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        """As :meth:`BigGANGenerator.forward`, every block run as PP-Res."""
        cond = y if y.is_floating_point() else self.class_embedding(y)
        if self.hierarchical:
            first, *chunks = torch.split(z, self.z_chunk_size, dim=1)
            conds = [torch.cat([cond, chunk], dim=1) for chunk in chunks]
        else:
            first, conds = z, [cond] * len(self.blocks)
        h = self.linear(first).view(z.size(0), -1, self.bottom_width, self.bottom_width)
        for stage, masks, stage_cond in zip(self.blocks, self.pp_masks, conds):
            h = stage[0](h, stage_cond, masks)
            for attention in stage[1:]:
                h = attention(h)
        return torch.tanh(self.output_layer(h))

    # -- masks --------------------------------------------------------------------------------
    def mask_layers(self) -> dict[str, LearnableMask]:
        """Every mask by the channel group it masks, block order (hidden, out)."""
        layers: dict[str, LearnableMask] = {}
        for k, (hidden, out) in enumerate(self.pp_masks):
            layers[f"block.{k}.hidden"] = hidden
            layers[f"block.{k}.out"] = out
        return layers

    def channel_groups(self) -> list[ChannelGroup]:
        masks = self._mask_keys()
        groups = []
        for group in super().channel_groups():
            if group.name in masks:
                prefix = masks[group.name]
                extra = tuple(TensorSlice(f"{prefix}.{key}", 0, "aux") for key in ("weight", "binary"))
                group = dataclasses.replace(group, members=group.members + extra)
            groups.append(group)
        return groups

    def _mask_keys(self) -> dict[str, str]:
        return {f"block.{k}.{part}": f"pp_masks.{k}.{i}" for k in range(len(self.blocks))
                for i, part in enumerate(("hidden", "out"))}  # fmt: skip

    # -- materialisation ----------------------------------------------------------------------
    def plain_config(self) -> dict[str, Any]:
        """Constructor arguments of the plain generator with the same widths."""
        return {k: v for k, v in self.config.items() if k not in PP_ARGS}

    @torch.no_grad()
    def plain(self) -> BigGANGenerator:
        """The same weights in a plain :class:`BigGANGenerator` (masks dropped, nothing cut).

        Not equivalent by itself (masked channels still run); ``pruning.masks.materialise`` cuts
        them, which makes it exact for masks in {0, 1}."""
        net = BigGANGenerator(**self.plain_config())
        state = {k: v for k, v in self.state_dict().items() if not k.startswith("pp_masks.")}
        load_state_dict_strict(net, state, "PPSAGANGenerator weights")
        first = next(iter(state.values()))
        return net.to(first.device).train(self.training)


def normalized_block_outputs(net: BigGANGenerator) -> list[str]:
    """Submodules whose outputs are the class-conditionally normalised output of every residual
    block of a BigGAN/SAGAN generator (PPCD-GAN Sec. 3.3, "we apply the class conditional
    normalization on output features of Big-GAN"): block k's output (after its attention layer)
    is what CBN1 of block k+1 normalises; the last block's output is normalised by the output
    layer's BN, which is not class-conditional (there is no later CBN)."""
    points = [f"blocks.{k + 1}.0.bn1" for k in range(len(net.blocks) - 1)]
    return points + ["output_layer.0"]
