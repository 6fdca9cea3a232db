"""SN-GAN CIFAR-10 networks: exact sizes, torch-style spectral norm, upsampling and shortcut
variants (Chainer vs mimicry), pruning interface."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_gancomp.nets.base import count_params, load_net, save_net, validate_channel_groups
from lightning_gancomp.nets.layers import TorchSNConv2d, TorchSNLinear
from lightning_gancomp.nets.sngan import SNGANDiscriminator, SNGANGenerator


def test_sngan_generator_has_4_276_739_parameters():
    with torch.device("meta"):
        assert count_params(SNGANGenerator()) == 4_276_739


def test_sngan_discriminator_has_1_053_825_parameters():
    with torch.device("meta"):
        assert count_params(SNGANDiscriminator()) == 1_053_825


def test_default_key_layout_is_mimicrys():
    with torch.device("meta"):
        g, d = SNGANGenerator().state_dict(), SNGANDiscriminator().state_dict()
    assert g["l1.weight"].shape == (4 * 4 * 256, 128)
    assert {"block4.c_sc.weight", "b5.running_var", "b5.num_batches_tracked", "c5.bias"} <= g.keys()
    assert d["block1.c1.weight_orig"].shape == (128, 3, 3, 3)
    assert d["block1.c1.weight_v"].shape == (27,) and d["block1.c1.weight_u"].shape == (128,)
    assert "block3.c_sc.weight_orig" not in d and "block2.c_sc.weight_orig" in d  # identity shortcuts
    assert d["l5.weight_orig"].shape == (1, 128)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_torch_style_spectral_norm_equals_torch_nn_utils_spectral_norm(kind):
    torch.manual_seed(0)
    if kind == "linear":
        reference_layer, ours = nn.Linear(7, 5), TorchSNLinear(7, 5)
    else:
        reference_layer, ours = nn.Conv2d(3, 4, 3, padding=1), TorchSNConv2d(3, 4, 3, 1)
    reference = nn.utils.spectral_norm(reference_layer)
    ours.load_state_dict(reference.state_dict())  # identical key names: weight_orig/u/v, bias
    x = torch.randn(2, 7) if isinstance(ours, TorchSNLinear) else torch.randn(2, 3, 5, 5)
    for mode in (True, True, False, True, False):  # train updates u and v, eval does not
        reference.train(mode)
        ours.train(mode)
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-6)
        for key, value in reference.state_dict().items():
            torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=1e-7)


def test_generator_upsampling_modes_are_nearest_and_bilinear():
    torch.manual_seed(1)
    g = SNGANGenerator(stream_channels=[8] * 4, upsample="nearest").eval()
    block = g.block2
    x = torch.randn(2, 8, 4, 4)
    expected = block.c_sc(x.repeat_interleave(2, 2).repeat_interleave(2, 3))
    hidden = block.c1(F.relu(block.b1(x)).repeat_interleave(2, 2).repeat_interleave(2, 3))
    expected = expected + block.c2(F.relu(block.b2(hidden)))
    torch.testing.assert_close(block(x), expected)
    bilinear = SNGANGenerator(**{**g.config, "upsample": "bilinear"}).eval()
    bilinear.load_state_dict(g.state_dict())
    z = torch.randn(2, 128)
    img = g(z)
    assert img.shape == (2, 3, 32, 32) and img.abs().max() <= 1
    assert not torch.allclose(bilinear(z), img)
    with pytest.raises(ValueError, match="upsample"):
        SNGANGenerator(upsample="bicubic")


def test_discriminator_shortcut_variants():
    torch.manual_seed(2)
    chainer = SNGANDiscriminator(stream_channels=[8] * 4).eval()
    mimicry = SNGANDiscriminator(stream_channels=[8] * 4, shortcut_input="relu").eval()
    mimicry.load_state_dict(chainer.state_dict())
    x = torch.randn(2, 8, 8, 8)
    residual = chainer.block3.c2(F.relu(chainer.block3.c1(F.relu(x))))
    torch.testing.assert_close(chainer.block3(x), residual + x)  # identity shortcut reads x
    torch.testing.assert_close(mimicry.block3(x), residual + F.relu(x))  # mimicry's in-place ReLU
    img = torch.randn(3, 3, 32, 32)
    assert chainer(img).shape == (3,)
    assert not torch.allclose(chainer(img), mimicry(img))


def test_channel_groups_and_distillation_points():
    g, d = SNGANGenerator(), SNGANDiscriminator()
    assert [(x.name, x.size) for x in validate_channel_groups(g)] == [
        ("stream.0", 256), ("stream.1", 256), ("stream.2", 256), ("stream.3", 256),
        ("block.0.hidden", 256), ("block.1.hidden", 256), ("block.2.hidden", 256),
    ]  # fmt: skip
    assert g.distillation_points() == ["block2", "block3", "block4"]
    # D: blocks 3 and 4 have identity shortcuts, so streams 1..3 are one group.
    assert [x.name for x in validate_channel_groups(d)] == [
        "stream.0", "stream.1", "block.0.hidden", "block.1.hidden", "block.2.hidden", "block.3.hidden",
    ]  # fmt: skip


def test_pruned_generator_and_discriminator_round_trip(tmp_path):
    g = SNGANGenerator(stream_channels=[16] * 4)
    student = SNGANGenerator(**g.config_for_group_sizes({"stream.0": 5, "stream.2": 7, "block.1.hidden": 3}))
    assert student.stream_channels == [5, 16, 7, 16] and student.hidden_channels == [16, 3, 16]
    validate_channel_groups(student)
    save_net(student.eval(), tmp_path / "g.pt")
    z = torch.randn(2, 128)
    assert torch.equal(load_net(tmp_path / "g.pt").eval()(z), student(z))
    d = SNGANDiscriminator(stream_channels=[16] * 4, shortcut_input="relu")
    pruned = SNGANDiscriminator(**d.config_for_group_sizes({"stream.1": 6, "block.3.hidden": 2}))
    assert pruned.stream_channels == [16, 6, 6, 6] and pruned.hidden_channels == [16, 16, 16, 2]
    validate_channel_groups(pruned)
    save_net(pruned.eval(), tmp_path / "d.pt")
    img = torch.randn(2, 3, 32, 32)
    restored = load_net(tmp_path / "d.pt")
    assert restored.config["shortcut_input"] == "relu"
    assert torch.equal(restored.eval()(img), pruned(img))
