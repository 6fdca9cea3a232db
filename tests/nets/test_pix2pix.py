"""Pix2Pix / CycleGAN networks: reference counts, bias rule, channel groups, widths, save/load."""

from __future__ import annotations

import pytest
import torch
import torchprofile
from torch import nn

from lightning_gancomp.checkpoints import load_generator, save_generator
from lightning_gancomp.nets.base import ChannelGroupError, GanNet, count_params, validate_channel_groups
from lightning_gancomp.nets.pix2pix import NLayerDiscriminator, ResnetGenerator, UnetGenerator
from lightning_gancomp.pruning.plan import plan_from_keep
from lightning_gancomp.pruning.surgery import apply_plan, zero_dropped_channels


def on_meta(cls: type[GanNet], **kwargs) -> GanNet:
    with torch.device("meta"):  # shapes only: full-size nets without allocation or init cost
        return cls(**kwargs)


# -- reference numbers (the papers' published counts) --------------------------------------------------------
def test_reference_parameter_counts():
    assert count_params(on_meta(ResnetGenerator)) == 11_378_179  # CycleGAN resnet_9blocks, IN
    assert count_params(on_meta(UnetGenerator)) == 54_413_955  # pix2pix unet_256, BN
    assert count_params(on_meta(NLayerDiscriminator, in_channels=6, norm="batch")) == 2_768_705
    assert count_params(on_meta(NLayerDiscriminator, in_channels=3, norm="instance")) == 2_764_737


def test_resnet9_torchprofile_macs_at_256():
    # Every layer's output area scales with the input area (the strides divide 8), so the count
    # at 8x8 times 32**2 is the 256x256 count (a small input keeps the trace cheap); instance
    # norm without affine, ReLU and padding count 0 in torchprofile, so this is the conv part.
    net = ResnetGenerator().eval()
    assert torchprofile.profile_macs(net, torch.zeros(1, 3, 8, 8)) * 32**2 == 56_799_264_768


def test_conv_bias_exactly_before_instance_norm():
    for norm, biased in [("instance", True), ("batch", False), ("none", False)]:
        g = ResnetGenerator(ngf=2, n_blocks=1, norm=norm)
        assert (g.stem.conv.bias is not None) == biased
        assert (g.blocks[0].conv2.bias is not None) == biased
        assert (g.up[0].conv.bias is not None) == biased
        assert g.head.conv.bias is not None  # the output conv always has one
        u = UnetGenerator(ngf=2, num_downs=5, norm=norm)
        assert (u.downs[0].conv.bias is not None) == biased and (u.ups[2].conv.bias is not None) == biased
        assert u.ups[0].conv.bias is not None
        d = NLayerDiscriminator(ndf=2, norm=norm)
        assert d.layers[0].conv.bias is not None and d.head.bias is not None
        assert (d.layers[1].conv.bias is not None) == biased
    assert isinstance(ResnetGenerator(ngf=2, n_blocks=1, norm="batch").stem.norm, nn.BatchNorm2d)
    instance_norm = ResnetGenerator(ngf=2, n_blocks=1).stem.norm
    assert isinstance(instance_norm, nn.InstanceNorm2d) and not instance_norm.affine
    assert not instance_norm.track_running_stats


def test_unet_dropout_only_in_intermediate_levels():
    u = UnetGenerator(ngf=2, num_downs=8)
    with_dropout = [k for k, up in enumerate(u.ups) if isinstance(up.out, nn.Dropout)]
    assert with_dropout == [4, 5, 6]  # the num_downs - 5 levels with 8 * ngf channels
    assert isinstance(u.ups[0].out, nn.Tanh)


def test_shapes_and_bad_arguments():
    x = torch.randn(2, 3, 32, 32)
    assert ResnetGenerator(ngf=4, n_blocks=2)(x).shape == (2, 3, 32, 32)
    assert UnetGenerator(ngf=2, num_downs=5, out_channels=1)(x).shape == (2, 1, 32, 32)
    d = NLayerDiscriminator(in_channels=6, ndf=4).eval()
    a, b = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    assert d(b, condition=a).shape == (2, 1, 6, 6)  # 64 -> 32 -> 16 -> 8 -> 7 -> 6
    torch.testing.assert_close(d(b, condition=a), d(torch.cat([a, b], dim=1)))  # condition first
    with pytest.raises(ValueError, match="norm must be one of"):
        ResnetGenerator(norm="group")
    with pytest.raises(ValueError, match="padding_type"):
        ResnetGenerator(padding_type="circular")
    with pytest.raises(ValueError, match="block_channels must have 2 entries"):
        ResnetGenerator(ngf=2, n_blocks=2, block_channels=[3])
    with pytest.raises(ValueError, match="num_downs must be >= 5"):
        UnetGenerator(num_downs=4)


def test_gan_compression_clamps_input():
    g = ResnetGenerator(ngf=2, n_blocks=1, clamp_input=True).eval()
    x = torch.randn(1, 3, 16, 16) * 3
    torch.testing.assert_close(g(x), g(x.clamp(-1, 1)))


# -- channel groups -----------------------------------------------------------------------------
def test_resnet_group_names_and_residual_stream():
    g = ResnetGenerator(ngf=2, n_blocks=3, norm="batch")
    groups = {grp.name: grp for grp in validate_channel_groups(g)}
    assert list(groups) == ["stem", "down.0", "residual", "blocks.0", "blocks.1", "blocks.2", "up.0", "up.1"]
    residual = groups["residual"]
    writers = {m.key for m in residual.members_with_role("out")}
    readers = {(m.key, m.dim) for m in residual.members_with_role("in")}
    assert writers == {
        "down.1.conv.weight",
        "blocks.0.conv2.weight",
        "blocks.1.conv2.weight",
        "blocks.2.conv2.weight",
    }
    # transposed conv weights are [in, out, k, k]: up.0 reads the stream along dim 0
    block_readers = {(f"blocks.{i}.conv1.weight", 1) for i in range(3)}
    assert readers == block_readers | {("up.0.conv.weight", 0)}
    assert {(m.key, m.dim) for m in groups["up.0"].members_with_role("out")} == {("up.0.conv.weight", 1)}
    assert "blocks.1.norm2.running_var" in {m.key for m in residual.members_with_role("aux")}


def test_group_sizes_map_to_width_arguments():
    g = ResnetGenerator(ngf=4, n_blocks=2)
    sizes = {"stem": 3, "down.0": 5, "residual": 7, "blocks.0": 2, "blocks.1": 9, "up.0": 6, "up.1": 1}
    config = g.config_for_group_sizes(sizes)
    assert config["down_channels"] == [3, 5, 7] and config["block_channels"] == [2, 9]
    assert config["up_channels"] == [6, 1]
    small = ResnetGenerator(**config)
    assert {grp.name: grp.size for grp in validate_channel_groups(small)} == sizes
    with pytest.raises(ChannelGroupError, match="unknown channel groups"):
        g.config_for_group_sizes({"blocks.7": 2})
    with pytest.raises(ChannelGroupError, match="group stem size 0 below minimum 1"):
        g.config_for_group_sizes({"stem": 0})

    u = UnetGenerator(ngf=2, num_downs=6)
    names = [grp.name for grp in validate_channel_groups(u)]
    assert names == [f"downs.{k}" for k in range(6)] + [f"ups.{k}" for k in range(1, 6)]
    unet_sizes = {"downs.5": 3, "downs.0": 1, "ups.1": 5, "ups.5": 7}
    smaller_u = UnetGenerator(**u.config_for_group_sizes(unet_sizes))
    assert smaller_u.down_channels == [1, 4, 8, 16, 16, 3] and smaller_u.up_channels == [5, 4, 8, 16, 7]
    assert {g.name: g.size for g in validate_channel_groups(smaller_u) if g.name in unet_sizes} == unet_sizes
    assert smaller_u(torch.randn(1, 3, 64, 64)).shape == (1, 3, 64, 64)

    d = NLayerDiscriminator(ndf=2)
    assert [grp.name for grp in validate_channel_groups(d)] == [
        "layers.0",
        "layers.1",
        "layers.2",
        "layers.3",
    ]
    assert NLayerDiscriminator(**d.config_for_group_sizes({"layers.2": 3})).channels == [2, 4, 3, 16]


def _slice_to(net: GanNet, keep: dict[str, torch.Tensor]) -> GanNet:
    """The smaller network holding the kept channels of every member of every group (surgery
    cuts each member's window; a concatenated input is cut once for all its groups)."""
    plan = plan_from_keep(net, {name: idx.tolist() for name, idx in keep.items()})
    return apply_plan(net, plan).eval()


def _zero_dropped_writers(net: GanNet, keep: dict[str, torch.Tensor]) -> GanNet:
    """Teacher with the dropped channels' writers (+ norm affine/bias) zeroed: those channels
    are then 0 everywhere, which is what the sliced student computes without them."""
    plan = plan_from_keep(net, {name: idx.tolist() for name, idx in keep.items()})
    return zero_dropped_channels(net, plan, roles=("out", "aux"))


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_groups_are_complete_sliced_equals_zeroed(norm):
    # If a group missed a reader the sliced weights would not load; if it missed a writer (e.g.
    # one block's conv2 on the residual stream) the outputs would differ.
    torch.manual_seed(1)
    teacher = ResnetGenerator(ngf=4, n_blocks=2, norm=norm, use_dropout=True).eval()
    with torch.no_grad():  # non-trivial BN statistics
        for module in teacher.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
    gen = torch.Generator().manual_seed(0)
    keep = {g.name: torch.randperm(g.size, generator=gen)[: max(1, g.size // 2)].sort().values
            for g in teacher.channel_groups()}  # fmt: skip
    x = torch.randn(2, 3, 16, 16)
    student = _slice_to(teacher, keep)
    with torch.no_grad():
        expected = _zero_dropped_writers(teacher, keep)(x)
        torch.testing.assert_close(student(x), expected, atol=1e-5, rtol=1e-5)
    assert count_params(student) < count_params(teacher)

    d = NLayerDiscriminator(ndf=4, norm=norm).eval()
    keep_d = {g.name: torch.arange(0, g.size, 2) for g in d.channel_groups()}
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            _slice_to(d, keep_d)(img), _zero_dropped_writers(d, keep_d)(img), atol=1e-5, rtol=1e-5
        )


def test_unet_skip_windows_follow_the_concatenation_order():
    # forward reads cat([x_k, ups.{k+1} output]): the skip is the window at offset 0 of
    # ups.k's input (dim 0 of a transposed weight), the up path the window after it.
    u = UnetGenerator(ngf=2, num_downs=5, down_channels=[2, 3, 5, 7, 4], up_channels=[6, 1, 8, 9])
    readers = {
        g.name: {(m.key, m.dim, m.offset) for m in g.members_with_role("in")} for g in u.channel_groups()
    }
    assert readers["downs.1"] == {("downs.2.conv.weight", 1, 0), ("ups.1.conv.weight", 0, 0)}
    assert readers["downs.4"] == {("ups.4.conv.weight", 0, 0)}
    assert readers["ups.2"] == {("ups.1.conv.weight", 0, 3)}
    assert readers["ups.1"] == {("ups.0.conv.weight", 0, 2)}


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_unet_groups_complete(norm):
    # every skip map and up map pruned at once: a wrong offset or a missed writer/reader breaks it
    torch.manual_seed(2)
    teacher = UnetGenerator(ngf=3, num_downs=5, norm=norm).eval()
    with torch.no_grad():
        for module in teacher.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.2)
    gen = torch.Generator().manual_seed(1)
    keep = {g.name: torch.randperm(g.size, generator=gen)[: max(1, g.size // 2)].sort().values
            for g in teacher.channel_groups()}  # fmt: skip
    x = torch.randn(2, 3, 32, 32)
    student = _slice_to(teacher, keep)
    assert student.down_channels == [len(keep[f"downs.{k}"]) for k in range(5)]
    assert student.up_channels == [len(keep[f"ups.{k}"]) for k in range(1, 5)]
    with torch.no_grad():
        torch.testing.assert_close(student(x), _zero_dropped_writers(teacher, keep)(x), atol=1e-5, rtol=1e-5)


# -- distillation points ------------------------------------------------------------------------
def test_distillation_points_hook_in_forward_order():
    g = ResnetGenerator(ngf=2, n_blocks=9)
    points = g.distillation_points()
    assert points == ["stem", "down.0", "down.1"] + [f"blocks.{i}" for i in range(9)] + ["up.0", "up.1"]
    assert g.gan_compression_distillation_points() == ["down.1", "blocks.2", "blocks.5", "blocks.8"]
    seen: list[tuple[str, tuple[int, ...]]] = []
    modules = dict(g.named_modules())
    for name in points:
        modules[name].register_forward_hook(lambda m, i, o, name=name: seen.append((name, tuple(o.shape))))
    g(torch.randn(1, 3, 16, 16))
    assert [n for n, _ in seen] == points
    assert dict(seen)["down.1"] == (1, 8, 4, 4) and dict(seen)["up.1"] == (1, 2, 16, 16)

    u = UnetGenerator(ngf=2, num_downs=5)
    modules = dict(u.named_modules())
    seen = []
    for name in u.distillation_points():
        modules[name].register_forward_hook(lambda m, i, o, name=name: seen.append(name))
    u(torch.randn(1, 3, 32, 32))
    assert seen == u.distillation_points() == ["downs.0", "downs.1", "downs.2", "downs.3", "downs.4",
                                               "ups.4", "ups.3", "ups.2", "ups.1"]  # fmt: skip


# -- save / load --------------------------------------------------------------------------------
def test_save_load_round_trip_at_pruned_widths(tmp_path):
    g = ResnetGenerator(
        ngf=4, n_blocks=3, norm="batch", use_dropout=True, down_channels=[3, 5, 7], block_channels=[2, 4, 1],
        up_channels=[6, 2],
    ).eval()  # fmt: skip
    u = UnetGenerator(ngf=2, num_downs=5, down_channels=[2, 3, 5, 7, 3], up_channels=[2, 4, 6, 5]).eval()
    for net, x in [(g, torch.randn(2, 3, 16, 16)), (u, torch.randn(2, 3, 32, 32))]:
        path = tmp_path / f"{type(net).__name__}.pt"
        save_generator(net, path)
        loaded = load_generator(path)
        assert type(loaded) is type(net) and loaded.config == net.config
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
