"""MACs of a network as a function of its channel-group sizes, without rebuilding it.

Methods that prune while training (CoroNetGAN's proximal search, mask methods) must know the
MACs of the network their current masks stand for after every step, and must try candidate
masks (a step that would overshoot a MAC target is partly undone). Rebuilding and tracing the
network with ``torchprofile`` each time costs a forward at full resolution; this model answers
in microseconds and is exact for the torchprofile convention (mit-han-lab/torchprofile
``handlers.py``), which GAN Compression and CoroNetGAN report:

* a convolution (plain or transposed) counts ``output elements × Cin × k²``. Its ``Cin`` and
  ``Cout`` are affine in the group sizes: the entries of the weight's input / output dim that
  some group owns (``TensorSlice`` windows) scale with that group, the others (image channels)
  are fixed. Output resolutions do not depend on widths, so one hooked forward records them.
* everything else torchprofile counts for these networks is elementwise and per channel
  (affine batch norm, leaky ReLU, ``mul``): a sum of (constant + coefficient × group size).

So ``macs(sizes) = Σ_conv hw·k²·Cin(sizes)·Cout(sizes) + c0 + Σ_g a_g·size_g``. The affine part is
read from two per-operator torchprofile breakdowns of the same class at tiny widths: every group
at its minimum, then group ``i`` at its minimum + ``i + 1``; an elementwise operator whose output
width grows by ``i + 1`` belongs to group ``i`` (weight: its pixels), one that does not grow is
fixed. When an operator cannot be attributed that way (a width made of several groups, a
non-elementwise count), the affine part is fitted from ``G + 1`` totals instead (one group one
channel wider at a time). The whole model is checked against one torchprofile count at full
width (``verify``), so a network whose count is not of this form is refused instead of
mis-counted. Models are cached per (class, constructor arguments, input shape).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from lightning_gancomp.nets.base import GanNet, member_windows


class MacModelError(ValueError):
    """The network's torchprofile count is not affine/bilinear in its group sizes."""


@dataclass(frozen=True)
class ChannelCount:
    """Entries along one weight dim: ``fixed`` + Σ ``per_channel[g]`` × size of group g."""

    fixed: int
    per_channel: tuple[tuple[str, int], ...]

    def at(self, sizes: Mapping[str, int]) -> int:
        return self.fixed + sum(block * int(sizes[name]) for name, block in self.per_channel)


@dataclass(frozen=True)
class ConvCost:
    """One convolution: ``spatial`` output pixels × ``kernel`` taps × Cin × Cout (batch 1)."""

    key: str
    spatial: int
    kernel: int
    in_count: ChannelCount
    out_count: ChannelCount

    def macs(self, sizes: Mapping[str, int]) -> int:
        return self.spatial * self.kernel * self.in_count.at(sizes) * self.out_count.at(sizes)


def _channel_count(net: GanNet, key: str, dim: int, extent: int) -> ChannelCount:
    """How the ``extent`` entries of ``key`` along ``dim`` split into group windows and fixed ones."""
    groups = {g.name: g for g in net.channel_groups()}
    per_channel: list[tuple[str, int]] = []
    owned = 0
    for start, stop, name in member_windows(list(groups.values())).get((key, dim), []):
        block = (stop - start) // groups[name].size
        per_channel.append((name, block))
        owned += stop - start
    return ChannelCount(extent - owned, tuple(per_channel))


def conv_costs(net: GanNet, example_inputs: tuple) -> list[ConvCost]:
    """Every Conv2d / ConvTranspose2d of ``net`` with its output resolution (one hooked forward)."""
    spatial: dict[str, int] = {}
    handles = []
    convs = {n: m for n, m in net.named_modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))}
    for name, module in convs.items():
        if module.groups != 1:
            raise MacModelError(f"{name}: grouped convolutions are not modelled")

        def record(_mod: nn.Module, _inp: tuple, out: torch.Tensor, name: str = name) -> None:
            spatial[name] = int(out[0, 0].numel())

        handles.append(module.register_forward_hook(record))
    was_training = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(*example_inputs)
    finally:
        net.train(was_training)
        for handle in handles:
            handle.remove()
    costs = []
    for name, module in convs.items():
        if name not in spatial:
            continue  # not on the traced path: torchprofile does not count it either
        key = f"{name}.weight"
        in_dim, out_dim = (0, 1) if isinstance(module, nn.ConvTranspose2d) else (1, 0)
        weight = module.weight
        in_count = _channel_count(net, key, in_dim, weight.shape[in_dim])
        out_count = _channel_count(net, key, out_dim, weight.shape[out_dim])
        kernel = int(torch.tensor(weight.shape[2:]).prod())
        costs.append(ConvCost(key, spatial[name], kernel, in_count, out_count))
    return costs


def _torchprofile(net: GanNet, inputs: tuple) -> int:
    from lightning_gancomp.metrics.complexity import torchprofile_macs  # metrics import nets: on use

    return torchprofile_macs(net, *inputs)


#: operators torchprofile counts as (a multiple of) their output elements
ELEMENTWISE = {
    "aten::batch_norm",
    "aten::instance_norm",
    "aten::layer_norm",
    "aten::group_norm",
    "aten::leaky_relu",
    "aten::mul",
    "aten::mul_",
    "aten::adaptive_avg_pool1d",
    "aten::adaptive_avg_pool2d",
    "aten::adaptive_avg_pool3d",
    "aten::upsample_bilinear2d",
}


def _operator_counts(net: GanNet, inputs: tuple) -> list[tuple[str, int, int]]:
    """``(operator, MACs, output channels)`` of every counted non-convolution node, in graph order."""
    from torchprofile import profile_macs

    was_training = net.training
    net.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No handlers found")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            per_node = profile_macs(net, args=tuple(inputs), reduction=None)
    finally:
        net.train(was_training)
    return [
        (node.operator, int(count), int(node.outputs[0].shape[1]) if node.outputs[0].ndim > 1 else 0)
        for node, count in per_node.items()
        if node.operator != "aten::_convolution"
    ]


def _attribute(
    base: list[tuple[str, int, int]],
    grown: list[tuple[str, int, int]],
    growth: Mapping[int, str],
    floor: Mapping[str, int],
) -> tuple[int, dict[str, int]] | None:
    """Affine part from two breakdowns (see the module docstring); None when not attributable."""
    if [op for op, _, _ in base] != [op for op, _, _ in grown]:
        return None
    constant, linear = 0, dict.fromkeys(growth.values(), 0)
    for (op, count, width), (_, count_grown, width_grown) in zip(base, grown, strict=True):
        if count == 0 and count_grown == 0:
            continue
        if op not in ELEMENTWISE or width < 1 or count % width or count_grown % width_grown:
            return None
        pixels = count // width
        if pixels != count_grown // width_grown:
            return None
        delta = width_grown - width
        if delta == 0:
            constant += count
        elif delta in growth:
            group = growth[delta]
            linear[group] += pixels
            constant += count - pixels * floor[group]  # pixels × the width no group owns
        else:
            return None
    return constant, linear


class GroupMacModel:
    """Exact torchprofile MACs of ``net``'s class at any group sizes (see the module docstring).

    Args:
        net: the full-width network (its current group sizes are the reference widths).
        example_inputs: one input of batch 1 at the resolution MACs are reported for.
        verify: compare with one torchprofile count at full width (raises MacModelError).
    """

    def __init__(self, net: GanNet, example_inputs: tuple, verify: bool = True) -> None:
        self.net_class = type(net).__name__
        self.full_sizes = {g.name: g.size for g in net.channel_groups()}
        self.convs = conv_costs(net, example_inputs)
        self.constant, self.linear = self._fit_elementwise(net, example_inputs)
        if verify:
            counted = _torchprofile(net, example_inputs)
            modelled = self.macs(self.full_sizes)
            if counted != modelled:
                raise MacModelError(
                    f"{self.net_class}: torchprofile counts {counted:,} MACs, the group model {modelled:,}"
                )

    def _fit_elementwise(self, net: GanNet, inputs: tuple) -> tuple[int, dict[str, int]]:
        floor = {g.name: max(1, g.min_size) for g in net.channel_groups()}

        def build(sizes: Mapping[str, int]) -> GanNet:
            return type(net)(**net.config_for_group_sizes(sizes))

        grown = {name: floor[name] + i + 1 for i, name in enumerate(floor)}
        attributed = _attribute(
            _operator_counts(build(floor), inputs),
            _operator_counts(build(grown), inputs),
            {i + 1: name for i, name in enumerate(floor)},
            floor,
        )
        if attributed is not None:
            return attributed

        def elementwise(sizes: Mapping[str, int]) -> int:
            return _torchprofile(build(sizes), inputs) - self.conv_macs(sizes)

        base = elementwise(floor)
        linear = {name: elementwise({**floor, name: floor[name] + 1}) - base for name in floor}
        constant = base - sum(linear[name] * size for name, size in floor.items())
        return constant, linear

    def conv_macs(self, sizes: Mapping[str, int]) -> int:
        full = {**self.full_sizes, **sizes}
        return sum(cost.macs(full) for cost in self.convs)

    def macs(self, sizes: Mapping[str, int] | None = None) -> int:
        """MACs at ``sizes`` (groups not named keep their full width)."""
        full = {**self.full_sizes, **(sizes or {})}
        unknown = set(full) - set(self.full_sizes)
        if unknown:
            raise MacModelError(f"{self.net_class}: unknown channel groups {sorted(unknown)}")
        elementwise = self.constant + sum(self.linear[name] * int(size) for name, size in full.items())
        return self.conv_macs(full) + elementwise

    @property
    def full_macs(self) -> int:
        return self.macs(self.full_sizes)

    @classmethod
    def of(cls, net: GanNet, example_inputs: tuple, verify: bool = True) -> GroupMacModel:
        """The model of ``net``'s architecture, fitted once per (class, constructor arguments,
        input shapes) in this process (both CycleGAN generators share one)."""
        shapes = tuple(tuple(x.shape) for x in example_inputs)
        key = (type(net).__name__, json.dumps(net.config, sort_keys=True), shapes, verify)
        if key not in _MODELS:
            _MODELS[key] = cls(net, example_inputs, verify)
        return _MODELS[key]


_MODELS: dict[tuple, GroupMacModel] = {}
