"""CoroNetGAN's hypernetwork convolutions (pruning/hyper.py): DHP formula, proximal step,
masks, materialisation equivalence on Conv2d / ConvTranspose2d, ResNet-9 and U-Net-256."""

from __future__ import annotations

import math
from typing import ClassVar

import pytest
import torch
from torch import nn

from lightning_gancomp.checkpoints import load_generator, save_generator
from lightning_gancomp.metrics.complexity import torchprofile_macs
from lightning_gancomp.nets.base import ChannelGroup, GanNet, TensorSlice, validate_channel_groups
from lightning_gancomp.nets.pix2pix import ResnetGenerator, UnetGenerator
from lightning_gancomp.pruning.hyper import (
    HyperConvWeights,
    HyperGenerator,
    HyperNetworkError,
    MacTarget,
    ProximalSearch,
)
from lightning_gancomp.pruning.mac_model import GroupMacModel


class TwoConvNet(GanNet):
    """``first`` (image → ``width``) → ReLU → ``second`` (``width`` → image), both plain or both
    transposed (stride 2), with one prunable group between them."""

    role: ClassVar[str] = "generator"
    task: ClassVar[str] = "image2image"

    def __init__(self, width: int = 6, transposed: bool = False) -> None:
        super().__init__()
        self.in_channels, self.width, self.transposed = 3, width, transposed
        if transposed:
            self.first = nn.ConvTranspose2d(3, width, 3, stride=2, padding=1, output_padding=1)
            self.second = nn.ConvTranspose2d(width, 3, 4, stride=2, padding=1)
        else:
            self.first = nn.Conv2d(3, width, 3, padding=1)
            self.second = nn.Conv2d(width, 3, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(torch.relu(self.first(x)))

    def channel_groups(self) -> list[ChannelGroup]:
        out_dim, in_dim = (1, 0) if self.transposed else (0, 1)
        members = (
            TensorSlice("first.weight", out_dim, "out"),
            TensorSlice("first.bias", 0, "aux"),
            TensorSlice("second.weight", in_dim, "in"),
        )
        return [ChannelGroup("mid", self.width, members)]

    def config_for_group_sizes(self, sizes):
        sizes = self.checked_group_sizes(sizes)
        return {**self.config, "width": sizes.get("mid", self.width)}


def _sparsify(hyper: HyperGenerator, seed: int, fraction: float = 0.4) -> None:
    """Zero a random ``fraction`` of every group's latent (at least one channel stays)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, size in hyper.group_sizes.items():
            n_zero = min(size - 1, max(1, int(size * fraction)))
            hyper.latent(name)[torch.randperm(size, generator=gen)[:n_zero]] = 0.0


def _randomise_hyper_biases(hyper: HyperGenerator, seed: int) -> None:
    # non-zero b0/b1/b2: a pruned channel then has non-zero raw weights, so the masks matter
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in hyper.hyper.named_parameters():
            if "bias" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


def _assert_materialises_exactly(hyper: HyperGenerator, x: torch.Tensor) -> GanNet:
    hyper.eval()
    plain = hyper.materialise().eval()
    validate_channel_groups(plain)
    assert type(plain) is type(hyper.net)
    assert {g.name: g.size for g in plain.channel_groups()} == hyper.kept_sizes()
    assert not any(isinstance(m, HyperConvWeights) for m in plain.modules())
    with torch.no_grad():
        err = (hyper(x) - plain(x)).abs().max().item()
    assert err <= 1e-5, f"max diff {err}"
    return plain


def test_hyper_conv_weights_follow_the_dhp_formula_elementwise():
    torch.manual_seed(0)
    module = HyperConvWeights(in_channels=2, out_channels=3, kernel_taps=4, embedding_dim=5)
    with torch.no_grad():
        for p in (module.bias0, module.bias1, module.bias2):
            p.normal_()
    z_in, z_out = torch.randn(2), torch.randn(3)
    got = module(z_in, z_out)
    assert got.shape == (2, 3, 4)
    for i in range(2):
        for o in range(3):
            w0 = z_in[i] * z_out[o] + module.bias0[i, o]
            w1 = w0 * module.weight1[i, o] + module.bias1[i, o]  # [E]
            for t in range(4):
                expected = (module.weight2[i, o, t] * w1).sum() + module.bias2[i, o, t]
                assert torch.allclose(got[i, o, t], expected, atol=1e-6)


def test_dhp_initialisation_gives_fan_in_variance():
    # DHP's hyperfan-in: |z| ~ 1 → generated weights with variance 1 / (Cin·k²)
    torch.manual_seed(0)
    module = HyperConvWeights(in_channels=64, out_channels=64, kernel_taps=9, embedding_dim=8)
    # |z| = 1 exactly (random signs), so only the hypernetwork's own initialisation varies
    w = module(torch.randn(64).sign(), torch.randn(64).sign())
    assert w.var().item() == pytest.approx(1 / (64 * 9), rel=0.1)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_materialised_single_conv_pair_reproduces_hypernetwork_exactly(transposed, seed):
    torch.manual_seed(seed)
    hyper = HyperGenerator(TwoConvNet(width=7, transposed=transposed))
    _randomise_hyper_biases(hyper, seed)
    _sparsify(hyper, seed)
    x = torch.randn(2, 3, 8, 8)
    plain = _assert_materialises_exactly(hyper, x)
    kept = hyper.group_mask("mid")
    assert plain.width == int(kept.sum()) < 7
    # the kept weights are the generated ones, in the module's own layout
    generated = hyper.conv_weights(masked=True)["second.weight"]
    in_dim = 0 if transposed else 1
    assert torch.equal(
        plain.second.weight.detach(), generated.detach().index_select(in_dim, kept.nonzero()[:, 0])
    )


def test_unmasked_forward_is_dhp_and_differs_when_biases_act():
    torch.manual_seed(0)
    hyper = HyperGenerator(TwoConvNet(width=5), mask_forward=False)
    _randomise_hyper_biases(hyper, 0)
    _sparsify(hyper, 0)
    x = torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        gap = (hyper(x) - hyper.materialise()(x)).abs().max().item()
    assert gap > 1e-4  # zero latents still generate weights through b0/b1/b2 (DHP)


def test_generated_weights_take_the_conv_layout_and_gradients_reach_latents():
    torch.manual_seed(0)
    hyper = HyperGenerator(TwoConvNet(width=4, transposed=True))
    weights = hyper.conv_weights()
    assert weights["first.weight"].shape == hyper.net.first.weight.shape == (3, 4, 3, 3)
    assert weights["second.weight"].shape == hyper.net.second.weight.shape == (4, 3, 4, 4)
    with torch.no_grad():
        hyper.latent("mid")[1] = 0.0
    hyper(torch.randn(1, 3, 4, 4)).square().mean().backward()
    grad = hyper.latent("mid").grad
    assert grad[1] == 0 and (grad[[0, 2, 3]] != 0).all()  # a pruned channel gets no gradient
    assert hyper.net.first.weight.grad is None and not hyper.net.first.weight.requires_grad
    assert hyper.net.first.bias.grad is not None
    names = {id(p) for p in hyper.trainable_parameters()}
    assert id(hyper.latent("mid")) in names and id(hyper.net.first.weight) not in names


def test_proximal_step_soft_thresholds_by_hand():
    hyper = HyperGenerator(TwoConvNet(width=5), min_channels=1)
    with torch.no_grad():
        hyper.latent("mid").copy_(torch.tensor([0.5, -0.3, 0.004, 0.1, -0.25]))
    removed = hyper.proximal_step(0.2)
    expected = torch.tensor([0.3, -0.1, 0.0, 0.0, -0.05])
    assert torch.allclose(hyper.latent("mid").detach(), expected)
    # 0.004 was already below the 5e-3 threshold; 0.1 crosses it now
    assert removed == 1
    assert hyper.group_mask("mid").tolist() == [True, True, False, False, True]


def test_proximal_step_stops_at_the_floor_and_masks_keep_the_largest():
    hyper = HyperGenerator(TwoConvNet(width=6), min_keep_fraction=0.5)
    assert hyper.floors["mid"] == 3
    with torch.no_grad():
        hyper.latent("mid").copy_(torch.tensor([1.0, 0.9, 0.8, 0.001, 0.002, 0.0]))
    before = hyper.latent("mid").detach().clone()
    hyper.proximal_step(0.5)  # 3 above threshold = floor: no step (DHP remain_channels)
    assert torch.equal(hyper.latent("mid").detach(), before)
    with torch.no_grad():
        hyper.latent("mid").copy_(torch.tensor([0.004, 0.003, 0.002, 0.001, 0.0, 0.0]))
    assert hyper.group_mask("mid").tolist() == [True, True, True, False, False, False]


def _tiny_resnet9() -> ResnetGenerator:
    return ResnetGenerator(ngf=3, n_blocks=9)


@pytest.mark.parametrize("seed", [0, 1])
def test_resnet9_materialises_to_equal_outputs_and_shares_the_residual_latent(seed):
    torch.manual_seed(seed)
    hyper = HyperGenerator(_tiny_resnet9())
    _randomise_hyper_biases(hyper, seed)
    _sparsify(hyper, seed)
    plain = _assert_materialises_exactly(hyper, torch.randn(2, 3, 16, 16))
    kept = hyper.group_mask("residual")
    assert plain.down_channels[2] == int(kept.sum()) and plain.block_channels[0] == int(
        hyper.group_mask("blocks.0").sum()
    )
    # every conv writing the stream zeroes the same output rows, every reader the same columns
    weights = hyper.conv_weights(masked=True)
    writers = ["down.1.conv.weight"] + [f"blocks.{i}.conv2.weight" for i in range(9)]
    readers = [f"blocks.{i}.conv1.weight" for i in range(9)] + ["up.0.conv.weight"]
    for key in writers:
        assert (weights[key][~kept] == 0).all() and (weights[key][kept].abs().sum((1, 2, 3)) > 0).all()
    for key in readers:
        dim = 0 if key.startswith("up.") else 1  # up.0 is transposed: [in, out, k, k]
        assert (weights[key].index_select(dim, (~kept).nonzero()[:, 0]) == 0).all()
    assert len({id(hyper.latent("residual"))}) == 1 and "residual" in hyper.group_sizes


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_unet256_materialises_to_equal_outputs_with_consistent_skips(norm):
    torch.manual_seed(3)
    net = UnetGenerator(num_downs=8, ngf=2, norm=norm)
    for name, buf in net.named_buffers():
        if name.endswith("running_mean"):
            buf.normal_()
        elif name.endswith("running_var"):
            buf.uniform_(0.5, 2.0)
    hyper = HyperGenerator(net)
    _randomise_hyper_biases(hyper, 3)
    _sparsify(hyper, 3, fraction=0.5)
    plain = _assert_materialises_exactly(hyper, torch.randn(1, 3, 256, 256))
    # ups.k reads cat([x_k, ups.{k+1} output]): skip window at 0, up window after it
    weights = hyper.conv_weights(masked=True)
    for k in range(1, 7):
        skip, up = hyper.group_mask(f"downs.{k}"), hyper.group_mask(f"ups.{k + 1}")
        reads = weights[f"ups.{k}.conv.weight"]  # [in, out, 4, 4]
        assert (reads[: skip.numel()][~skip] == 0).all()
        assert (reads[skip.numel() :][~up] == 0).all()
        assert plain.down_channels[k] == int(skip.sum()) and plain.up_channels[k] == int(up.sum())


def test_materialised_student_saves_and_loads_with_load_generator(tmp_path):
    torch.manual_seed(0)
    hyper = HyperGenerator(ResnetGenerator(ngf=2, n_blocks=2))
    _sparsify(hyper, 0)
    plain = hyper.materialise().eval()
    save_generator(plain, tmp_path / "student.pt")
    loaded = load_generator(tmp_path / "student.pt").eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), plain(x))
    assert loaded.config == plain.config


def test_overshoot_guard_gives_back_the_largest_channels_first():
    torch.manual_seed(0)
    net = ResnetGenerator(ngf=2, n_blocks=1)
    mac_model = GroupMacModel(net, (torch.randn(1, 3, 16, 16),))
    hyper = HyperGenerator(net, mac_model=mac_model)
    full = hyper.macs()
    assert full == mac_model.full_macs
    with torch.no_grad():
        for name in hyper.group_sizes:  # distinct magnitudes in (0.01, 0.02), all above threshold
            z = hyper.latent(name)
            z.copy_(0.01 + 0.01 * torch.rand(z.numel()))
    before = {n: hyper.latent(n).detach().clone() for n in hyper.group_sizes}
    floor = int(full * 0.6)
    hyper.proximal_step(1.0, min_macs=floor)  # unguarded, this prunes every channel to the floor
    assert hyper.macs() >= floor
    # a given-back channel had a larger pre-step |z| than every channel that stayed pruned
    masks = hyper.masks()
    given_back = [before[n][i] for n in before for i in range(len(masks[n])) if hyper.latent(n)[i] != 0]
    still_pruned = [before[n][i] for n in before for i in range(len(masks[n])) if not masks[n][i]]
    assert given_back and still_pruned and min(given_back) > max(still_pruned)
    unguarded = HyperGenerator(net, mac_model=mac_model)
    with torch.no_grad():
        for name in hyper.group_sizes:
            unguarded.latent(name).copy_(before[name])
    unguarded.proximal_step(1.0)
    assert unguarded.macs() < floor


def test_floors_and_threshold_are_reported_in_the_plan():
    hyper = HyperGenerator(TwoConvNet(width=4), threshold=0.1)
    with torch.no_grad():
        hyper.latent("mid").copy_(torch.tensor([0.5, 0.05, 0.2, 0.0]))
    plan = hyper.plan()
    assert plan.groups["mid"].keep == (0, 2)
    assert plan.policy["threshold"] == 0.1 and math.isclose(hyper.threshold, 0.1)


@pytest.mark.parametrize("ratio", [0.5, 0.25])
def test_proximal_search_reaches_a_mac_ratio_within_tolerance(ratio):
    torch.manual_seed(0)
    net = ResnetGenerator(ngf=4, n_blocks=2)
    x = torch.randn(1, 3, 16, 16)
    hyper = HyperGenerator(net, mac_model=GroupMacModel(net, (x,)))
    search = ProximalSearch(hyper, MacTarget(ratio=ratio, tolerance=0.05), sparsity=20.0)
    optimizer = torch.optim.Adam(hyper.trainable_parameters(), lr=1e-3)
    target = torch.rand(2, 3, 16, 16) * 2 - 1
    inputs = torch.randn(2, 3, 16, 16)
    for _ in range(400):
        optimizer.zero_grad()
        (hyper(inputs) - target).abs().mean().backward()
        optimizer.step()
        if search.step(optimizer.param_groups[0]["lr"]):
            break
    assert search.reached and search.steps < 400
    plain = hyper.materialise()
    measured = torchprofile_macs(plain, x)
    assert measured == hyper.macs()
    assert abs(measured / search.full_macs - ratio) <= 0.05 * ratio
    logs = search.summary()
    assert (
        logs["target_macs"] == round(search.full_macs * ratio)
        and logs["kept/residual"] == plain.down_channels[2]
    )


def test_mac_target_rejects_bad_settings():
    with pytest.raises(HyperNetworkError, match="exactly one"):
        MacTarget(ratio=0.5, macs=10)
    with pytest.raises(HyperNetworkError, match="target_ratio"):
        MacTarget(ratio=1.5)
    with pytest.raises(HyperNetworkError, match="above the full"):
        MacTarget(macs=10**9).goal(10**6)
    assert MacTarget(ratio=0.5, tolerance=0.1).bounds(1000) == (450, 550)
