"""PPCD-GAN's PP-SAGAN student: mask placement, spectral norm on the masked support, transition
layers, and materialisation into a plain smaller BigGANGenerator (SAGAN configuration)."""

import pytest
import torch
import torch.nn.functional as F

from lightning_gancomp.nets import ppsagan
from lightning_gancomp.nets.base import count_params, load_net, save_net, validate_channel_groups
from lightning_gancomp.nets.biggan import BigGANGenerator, sagan128_config
from lightning_gancomp.nets.ppsagan import PPSAGANGenerator, normalized_block_outputs
from lightning_gancomp.pruning import apply_plan
from lightning_gancomp.pruning.masks import mask_plan, materialise
from lightning_gancomp.pruning.plan import GroupPlan

NUM_CLASSES = 5


def _tiny_pp(**changes):
    config = sagan128_config(resolution=64, ch=4, num_classes=NUM_CLASSES, **changes)
    config.setdefault("transition_channels", [64, 32, 16, 8])
    return PPSAGANGenerator(**config)


def _randomise(net):
    """Non-trivial BN statistics and attention (gamma starts at 0), so every path matters."""
    with torch.no_grad():
        for module in net.modules():
            if hasattr(module, "stored_mean"):
                module.stored_mean.normal_(0, 0.5)
                module.stored_var.uniform_(0.5, 2.0)
            if hasattr(module, "gamma"):
                module.gamma.fill_(0.7)
        for stage in net.blocks:  # transitions start as the identity; make them real maps
            stage[0].transition.weight.normal_()
            stage[0].transition.bias.normal_()
    return net


def _random_binary_masks(net, keep_prob=0.5):
    for mask in net.mask_layers().values():
        binary = (torch.rand(mask.weight.numel()) < keep_prob).float()
        binary[torch.randint(0, binary.numel(), ())] = 1.0  # at least one channel
        mask.set_binary(binary)


def _inputs(batch=3):
    return torch.randn(batch, 128), torch.randint(0, NUM_CLASSES, (batch,))


def test_ten_masks_on_hidden_and_out_groups_and_full_size_parameter_count():
    with torch.device("meta"):
        full = PPSAGANGenerator(**sagan128_config(transition_channels=[1024, 512, 256, 128, 64]))
    # SAGAN-128 42,017,412 + transitions sum(t*out + out) 1,398,720 + masks 2*(1024+...+64) 3,968
    assert count_params(full) == 42_017_412 + 1_398_720 + 3_968
    assert list(full.mask_layers()) == [f"block.{k}.{p}" for k in range(5) for p in ("hidden", "out")]
    tiny = _tiny_pp()
    groups = {g.name: g for g in validate_channel_groups(tiny)}
    assert {m.key for m in groups["block.1.out"].members} >= {"pp_masks.1.1.weight", "pp_masks.1.1.binary"}
    with pytest.raises(ValueError, match="transition_channels"):
        PPSAGANGenerator(**sagan128_config(resolution=64, ch=4, num_classes=5))


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_materialised_student_equals_the_masked_student(mode):
    torch.manual_seed(1)
    net = _randomise(_tiny_pp())
    _random_binary_masks(net)
    z, y = _inputs()
    materialised = materialise(net)
    assert type(materialised) is BigGANGenerator and "delta" not in materialised.config
    plan = mask_plan(net)
    assert materialised.hidden_channels == [plan.groups[f"block.{k}.hidden"].kept for k in range(4)]
    assert materialised.transition_channels == [plan.groups[f"block.{k}.out"].kept for k in range(4)]
    assert materialised.stream_channels == net.stream_channels  # transitions keep the residual width
    net.train(mode == "train")
    materialised.train(mode == "train")
    expected = net(z, y)
    torch.testing.assert_close(materialised(z, y), expected, rtol=0, atol=1e-5)
    if mode == "train":  # both ran one power iteration from the same u: same stored vectors
        torch.testing.assert_close(
            materialised.blocks[1][0].conv1.u0,
            net.blocks[1][0].conv1.u0[:, plan.keep_index("block.1.hidden")],
        )


def test_dropping_a_kept_channel_or_skipping_the_transition_breaks_equivalence():
    torch.manual_seed(2)
    net = _randomise(_tiny_pp()).eval()
    _random_binary_masks(net, keep_prob=0.7)
    z, y = _inputs()
    expected = net(z, y)
    plan = mask_plan(net)
    keep = plan.groups["block.1.hidden"].keep
    plan.groups["block.1.hidden"] = GroupPlan(plan.groups["block.1.hidden"].size, keep[1:])
    one_less = apply_plan(net.plain(), plan).eval()
    assert (one_less(z, y) - expected).abs().max() > 1e-3
    skipping = materialise(net).eval()
    for stage in skipping.blocks:  # a transition that passes its input through (widths permitting)
        stage[0].transition.forward = lambda h, stage=stage: F.pad(
            h, (0, 0, 0, 0, 0, stage[0].conv_sc.out_channels - h.shape[1])
        )
    assert (skipping(z, y) - expected).abs().max() > 1e-3


def test_sigma_on_the_masked_support_is_what_makes_removal_exact():
    torch.manual_seed(3)
    net = _randomise(_tiny_pp()).eval()
    _random_binary_masks(net)
    z, y = _inputs()
    expected = net(z, y)
    # The same masks applied to outputs only (sigma of the full weight) is not removable.
    naive = net.plain().eval()
    hooks = []
    for k, stage in enumerate(naive.blocks):
        hidden, out = (m.values() for m in net.pp_masks[k])
        block = stage[0]
        hooks.append(block.bn2.register_forward_hook(lambda _m, _a, o, h=hidden: o * h.view(1, -1, 1, 1)))
        hooks.append(block.conv2.register_forward_hook(lambda _m, _a, o, w=out: o * w.view(1, -1, 1, 1)))
    assert (naive(z, y) - expected).abs().max() > 1e-3
    torch.testing.assert_close(materialise(net).eval()(z, y), expected, rtol=0, atol=1e-5)


def test_mask_after_cbn_zeroes_the_channel_whatever_the_class(monkeypatch):
    torch.manual_seed(4)
    net = _randomise(_tiny_pp()).eval()
    with torch.no_grad():
        net.blocks[0][0].bn2.bias.weight.normal_(0, 3.0)  # large class-dependent CBN bias
    binary = torch.ones(64)
    binary[5] = 0.0
    net.pp_masks[0][0].set_binary(binary)
    block = net.blocks[0][0]
    seen = {}
    original = ppsagan.masked_sn_conv

    def recording(conv, x, **masks):
        if conv is block.conv2:
            seen["conv2_input"] = x
        return original(conv, x, **masks)

    monkeypatch.setattr(ppsagan, "masked_sn_conv", recording)
    block(torch.randn(4, 64, 4, 4), torch.arange(4), net.pp_masks[0])
    assert torch.count_nonzero(seen["conv2_input"][:, 5]) == 0
    assert torch.count_nonzero(seen["conv2_input"][:, 4]) > 0


def test_continuous_masks_train_and_frozen_masks_do_not():
    torch.manual_seed(5)
    net = _tiny_pp()
    z, y = _inputs(2)
    net.pp_masks[2][1].set_binary(torch.ones(16))
    net(z, y).square().mean().backward()
    assert net.pp_masks[0][0].weight.grad.abs().sum() > 0
    assert net.pp_masks[2][1].weight.grad is None


def test_parameters_shrink_by_exactly_the_removed_channels():
    torch.manual_seed(6)
    net = _tiny_pp()
    _random_binary_masks(net)
    small = materialise(net)
    plan = mask_plan(net)
    ins, outs = net.stream_channels[:-1], net.stream_channels[1:]

    def block_params(k, hidden, trans):  # conv1 + CBN2 tables + conv2 + transition
        return (
            ins[k] * hidden * 9
            + hidden
            + 2 * NUM_CLASSES * hidden
            + hidden * trans * 9
            + trans
            + trans * outs[k]
            + outs[k]
        )

    removed = sum(
        block_params(k, net.hidden_channels[k], net.transition_channels[k])
        - block_params(k, plan.groups[f"block.{k}.hidden"].kept, plan.groups[f"block.{k}.out"].kept)
        for k in range(4)
    )
    masks = sum(m.weight.numel() for m in net.mask_layers().values())
    assert count_params(net) - masks - count_params(small) == removed > 0


def test_round_trips_keep_masks_frozen_state_and_widths(tmp_path):
    torch.manual_seed(7)
    net = _randomise(_tiny_pp()).eval()
    _random_binary_masks(net)
    net.pp_masks[1][0].set_binary(torch.ones(32))
    z, y = _inputs()
    save_net(net, tmp_path / "pp.pt")
    loaded = load_net(tmp_path / "pp.pt").eval()
    assert type(loaded) is PPSAGANGenerator and loaded.pp_masks[1][0].is_frozen
    torch.testing.assert_close(loaded(z, y), net(z, y), rtol=0, atol=0)
    save_net(materialise(net), tmp_path / "plain.pt")
    torch.testing.assert_close(load_net(tmp_path / "plain.pt").eval()(z, y), net(z, y), rtol=0, atol=1e-5)


def test_unfrozen_masks_materialise_by_the_pivot_rule():
    net = _tiny_pp()
    with torch.no_grad():
        net.pp_masks[0][0].weight[:10] = -0.1  # m ~ 4e-44 <= pivot
        net.pp_masks[0][0].weight[10] = 0.004  # m ~ 0.98 > pivot
    plan = mask_plan(net)
    assert plan.groups["block.0.hidden"].kept == 54 and 10 in plan.groups["block.0.hidden"].keep
    assert plan.scorer["frozen"]["block.0.hidden"] is False


def test_normalized_teacher_points_are_the_next_cbn_inputs():
    teacher = BigGANGenerator(**sagan128_config(resolution=64, ch=4, num_classes=NUM_CLASSES))
    assert normalized_block_outputs(teacher) == [
        "blocks.1.0.bn1",
        "blocks.2.0.bn1",
        "blocks.3.0.bn1",
        "output_layer.0",
    ]
