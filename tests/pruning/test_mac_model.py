"""GroupMacModel: torchprofile MACs at any channel-group sizes without rebuilding the network."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from torch import nn

from lightning_gancomp.metrics.complexity import torchprofile_macs
from lightning_gancomp.nets.base import ChannelGroup, GanNet, TensorSlice
from lightning_gancomp.nets.pix2pix import ResnetGenerator, UnetGenerator
from lightning_gancomp.pruning.mac_model import GroupMacModel, MacModelError

NETS = {
    "resnet_instance": (lambda: ResnetGenerator(ngf=4, n_blocks=3), 32),
    "resnet_batch": (lambda: ResnetGenerator(ngf=4, n_blocks=2, norm="batch"), 24),
    "unet_batch": (lambda: UnetGenerator(num_downs=6, ngf=3), 64),
    "unet_instance": (lambda: UnetGenerator(num_downs=5, ngf=3, norm="instance"), 32),
}


@pytest.mark.parametrize("family", sorted(NETS))
def test_model_equals_torchprofile_of_the_rebuilt_network_at_random_sizes(family):
    build, resolution = NETS[family]
    net = build()
    x = torch.randn(1, 3, resolution, resolution)
    model = GroupMacModel(net, (x,))
    assert model.full_macs == torchprofile_macs(net, x)
    gen = torch.Generator().manual_seed(0)
    for _ in range(2):
        sizes = {g.name: int(torch.randint(1, g.size + 1, (1,), generator=gen)) for g in net.channel_groups()}
        student = type(net)(**net.config_for_group_sizes(sizes))
        assert model.macs(sizes) == torchprofile_macs(student, x)


def test_conv_part_by_hand():
    # stem 7x7: 3 -> 4 at 8x8; torchprofile: out elems × Cin × k²
    net = ResnetGenerator(ngf=4, n_blocks=0, norm="none")
    model = GroupMacModel(net, (torch.randn(1, 3, 8, 8),))
    stem = next(c for c in model.convs if c.key == "stem.conv.weight")
    assert stem.macs({"stem": 4}) == 8 * 8 * 4 * 3 * 49
    assert stem.macs({"stem": 1}) == 8 * 8 * 1 * 3 * 49
    up1 = next(c for c in model.convs if c.key == "up.1.conv.weight")  # transposed, output res 8x8
    assert up1.macs({"up.0": 8, "up.1": 4}) == 8 * 8 * 4 * 8 * 9


class _LinearChain(GanNet):
    """Three Linear layers around two groups: the middle matmul is bilinear in both sizes, a
    term the model (bilinear only through convolutions) does not have."""

    role: ClassVar[str] = "generator"
    task: ClassVar[str] = "image2image"

    def __init__(self, widths: list[int] | None = None) -> None:
        super().__init__()
        self.in_channels = 3
        self.widths = list(widths or [5, 6])
        self.a, self.b, self.c = (
            nn.Linear(4, self.widths[0]),
            nn.Linear(*self.widths),
            nn.Linear(self.widths[1], 4),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))

    def channel_groups(self) -> list[ChannelGroup]:
        first = (
            TensorSlice("a.weight", 0, "out"),
            TensorSlice("a.bias", 0, "aux"),
            TensorSlice("b.weight", 1, "in"),
        )
        second = (
            TensorSlice("b.weight", 0, "out"),
            TensorSlice("b.bias", 0, "aux"),
            TensorSlice("c.weight", 1, "in"),
        )
        return [ChannelGroup("g0", self.widths[0], first), ChannelGroup("g1", self.widths[1], second)]

    def config_for_group_sizes(self, sizes):
        sizes = self.checked_group_sizes(sizes)
        return {**self.config, "widths": [sizes.get(f"g{i}", w) for i, w in enumerate(self.widths)]}


def test_a_count_outside_the_model_is_refused():
    with pytest.raises(MacModelError, match="torchprofile counts"):
        GroupMacModel(_LinearChain(), (torch.randn(1, 3, 4, 4),))


def test_fallback_fit_from_totals_gives_the_same_model(monkeypatch):
    import lightning_gancomp.pruning.mac_model as mac_model

    net = UnetGenerator(num_downs=5, ngf=3)  # batch norm and leaky ReLU: elementwise counts
    x = torch.randn(1, 3, 32, 32)
    attributed = GroupMacModel(net, (x,), verify=False)
    monkeypatch.setattr(mac_model, "_attribute", lambda *args: None)
    totals = GroupMacModel(net, (x,), verify=False)
    assert (attributed.constant, attributed.linear) == (totals.constant, totals.linear)
    assert any(attributed.linear.values())


def test_models_are_shared_per_architecture_and_input_shape():
    x = torch.randn(1, 3, 16, 16)
    first = GroupMacModel.of(ResnetGenerator(ngf=2, n_blocks=1), (x,))
    assert GroupMacModel.of(ResnetGenerator(ngf=2, n_blocks=1), (x,)) is first
    assert GroupMacModel.of(ResnetGenerator(ngf=2, n_blocks=2), (x,)) is not first
    assert GroupMacModel.of(ResnetGenerator(ngf=2, n_blocks=1), (torch.randn(1, 3, 32, 32),)) is not first
