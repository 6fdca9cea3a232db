"""BigGAN / SAGAN networks: exact sizes, official semantics of their layers, pruning interface.

Reference facts come from ajbrock/BigGAN-PyTorch (``BigGAN.py``, ``layers.py``, launch scripts);
the equivalence with the official modules themselves was measured outside the repository (see
the issue note) and is pinned here through the properties those modules have.
"""

import pytest
import torch
import torch.nn.functional as F

from lightning_gancomp.nets.base import count_params, load_net, save_net, validate_channel_groups
from lightning_gancomp.nets.biggan import (
    BigGANDiscriminator,
    BigGANGenerator,
    biggan128_config,
    sagan128_config,
)
from lightning_gancomp.nets.layers import ClassConditionalBatchNorm2d, SelfAttention, SNConv2d, SNLinear


def _meta(cls, **kwargs):
    with torch.device("meta"):
        return cls(**kwargs)


# -- exact parameter counts (full size, built on the meta device: no memory, no init) ---------
def test_biggan128_generator_has_70_433_988_parameters():
    assert count_params(_meta(BigGANGenerator, **biggan128_config())) == 70_433_988


def test_biggan128_discriminator_has_87_982_370_parameters():
    assert count_params(_meta(BigGANDiscriminator, ch=96)) == 87_982_370


def test_sagan128_generator_has_42_017_412_parameters():
    assert count_params(_meta(BigGANGenerator, **sagan128_config())) == 42_017_412


def test_sagan128_discriminator_has_39_448_258_parameters():
    assert count_params(_meta(BigGANDiscriminator, ch=64, sn_eps=1e-8)) == 39_448_258


def test_full_size_key_shapes_match_the_official_layout():
    big = _meta(BigGANGenerator, **biggan128_config()).state_dict()
    sagan = _meta(BigGANGenerator, **sagan128_config()).state_dict()
    # BigGAN: 6 z chunks of 20; ccbn input = shared_dim 128 + 20; linear 20 -> 16*96*4*4.
    assert big["linear.weight"].shape == (16 * 96 * 16, 20)
    assert big["shared.weight"].shape == (1000, 128)
    assert big["blocks.0.0.bn1.gain.weight"].shape == (16 * 96, 148)
    assert big["blocks.0.0.bn1.gain.u0"].shape == (1, 16 * 96)
    assert "blocks.0.0.bn1.gain.bias" not in big  # bias-free SN linears
    assert big["blocks.3.1.theta.weight"].shape == (24, 192, 1, 1)  # attention at 64 px, C/8
    assert big["blocks.3.1.g.weight"].shape == (96, 192, 1, 1)
    assert big["output_layer.2.weight"].shape == (3, 96, 3, 3)
    # SAGAN: no shared embedding, per-BN nn.Embedding(1000, C) tables, z not split.
    assert "shared.weight" not in sagan
    assert sagan["linear.weight"].shape == (16 * 64 * 16, 128)
    assert sagan["blocks.0.0.bn1.gain.weight"].shape == (1000, 16 * 64)
    assert "blocks.0.0.bn1.gain.u0" not in sagan
    assert big.keys() - sagan.keys() == {"shared.weight"} | {
        k for k in big if ".gain.u0" in k or ".gain.sv0" in k or ".bias.u0" in k or ".bias.sv0" in k
    }
    d = _meta(BigGANDiscriminator, ch=96).state_dict()
    assert d["embed.weight"].shape == (1000, 16 * 96) and d["embed.u0"].shape == (1, 1000)
    assert d["blocks.0.1.theta.weight"].shape == (12, 96, 1, 1)  # D attention after the 64 px block
    assert "blocks.5.0.conv_sc.weight" not in d  # last block: 16ch -> 16ch, no pooling


# -- spectral norm (BigGAN-PyTorch semantics) --------------------------------------------------
def _sn_linear(seed=0, out=6, inp=5, num_svs=1):
    torch.manual_seed(seed)
    return SNLinear(inp, out, num_svs=num_svs)


def test_sn_eval_mode_reads_but_never_writes_u_and_sv():
    layer = _sn_linear().eval()
    u0, sv0 = layer.u0.clone(), layer.sv0.clone()
    x = torch.randn(3, 5)
    first, second = layer(x), layer(x)
    assert torch.equal(layer.u0, u0) and torch.equal(layer.sv0, sv0)
    assert torch.equal(first, second)


def test_sn_train_mode_runs_one_power_iteration_from_the_stored_u():
    layer = _sn_linear().train()
    weight, u = layer.weight.detach().clone(), layer.u0.clone()
    v = F.normalize(u @ weight)
    new_u = F.normalize(v @ weight.t())
    sigma = (v @ weight.t() @ new_u.t()).squeeze()
    x = torch.randn(3, 5)
    out = layer(x)
    torch.testing.assert_close(layer.u0, new_u)
    torch.testing.assert_close(layer.sv0, sigma.view(1))
    torch.testing.assert_close(out, F.linear(x, weight / sigma, layer.bias))


def test_sn_singular_values_converge_to_the_true_ones():
    layer = _sn_linear(num_svs=2).train()
    x = torch.randn(1, 5)
    with torch.no_grad():
        for _ in range(300):
            layer(x)
    expected = torch.linalg.svdvals(layer.weight.detach())
    torch.testing.assert_close(layer.sv0, expected[:1], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.sv1, expected[1:2], rtol=1e-3, atol=1e-4)  # Gram-Schmidt deflation
    # After convergence the normalised weight has spectral norm 1.
    normalized = layer.weight / layer.sv0
    assert abs(torch.linalg.matrix_norm(normalized.detach(), ord=2).item() - 1.0) < 1e-4


def test_sn_conv_normalises_the_flattened_kernel():
    torch.manual_seed(1)
    conv = SNConv2d(4, 3, kernel_size=3, padding=1).train()
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        for _ in range(200):
            conv(x)
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    torch.testing.assert_close(conv.sv0, sigma.view(1), rtol=1e-4, atol=1e-5)


# -- conditional BN and attention -------------------------------------------------------------
def test_conditional_bn_is_batchnorm_times_one_plus_gain_plus_bias():
    torch.manual_seed(2)
    for conditioning, cond in (("linear", torch.randn(3, 7)), ("embedding", torch.tensor([0, 4, 6]))):
        bn = ClassConditionalBatchNorm2d(4, 7, conditioning).eval()
        bn.stored_mean.normal_()
        bn.stored_var.uniform_(0.5, 2.0)
        x = torch.randn(3, 4, 2, 2)
        normalized = (x - bn.stored_mean.view(1, -1, 1, 1)) / torch.sqrt(
            bn.stored_var.view(1, -1, 1, 1) + 1e-5
        )
        gain, bias = bn.gain(cond), bn.bias(cond)
        expected = normalized * (1 + gain).view(3, 4, 1, 1) + bias.view(3, 4, 1, 1)
        torch.testing.assert_close(bn(x, cond), expected)


def test_self_attention_matches_a_per_position_computation():
    torch.manual_seed(3)
    attention = SelfAttention(16).eval()
    attention.gamma.data.fill_(0.8)
    x = torch.randn(2, 16, 4, 4)
    theta = F.conv2d(x, attention.theta.normalized_weight())
    phi = F.max_pool2d(F.conv2d(x, attention.phi.normalized_weight()), 2)
    g = F.max_pool2d(F.conv2d(x, attention.g.normalized_weight()), 2)
    out = torch.empty(2, 8, 4, 4)
    for b in range(2):
        for i in range(4):
            for j in range(4):
                scores = torch.einsum("c,cpq->pq", theta[b, :, i, j], phi[b]).flatten()
                weights = torch.softmax(scores, 0)
                out[b, :, i, j] = (g[b].flatten(1) * weights).sum(1)
    expected = x + 0.8 * F.conv2d(out, attention.o.normalized_weight())
    torch.testing.assert_close(attention(x), expected, rtol=1e-5, atol=1e-5)
    attention.gamma.data.zero_()  # official init: the block starts as the identity
    assert torch.equal(attention(x), x)


# -- tiny networks: forward semantics and pruning interface ------------------------------------
# Tiny 64 px versions (4 blocks, attention after the last one) keep the tests fast; the 128 px
# layout itself is covered by the meta-device tests above and the format tests.
def _tiny_biggan(**changes):
    return BigGANGenerator(**biggan128_config(resolution=64, ch=4, num_classes=5, shared_dim=16, **changes))


def _tiny_sagan(**changes):
    return BigGANGenerator(**sagan128_config(resolution=64, ch=4, num_classes=5, **changes))


def _tiny_discriminator(**changes):
    return BigGANDiscriminator(resolution=64, ch=8, num_classes=5, attention_resolutions=(32,), **changes)


def test_generator_forward_shapes_range_and_hierarchical_split():
    torch.manual_seed(4)
    g = _tiny_biggan().eval()
    assert g.z_dim == 120 and g.z_chunk_size == 24  # 4 blocks + the linear: 5 chunks
    z, y = torch.randn(2, 120), torch.tensor([1, 3])
    img = g(z, y)
    assert img.shape == (2, 3, 64, 64) and img.abs().max() <= 1
    # The official interface passes G.shared(y); a float y is taken as that embedding.
    assert torch.equal(g(z, g.shared(y)), img)
    # Only the first chunk feeds the linear; changing the last chunk changes only the last block.
    hooks = {}
    for name in ("linear", "blocks.2.0"):
        g.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: hooks.__setitem__(name, o))
    g(z, y)
    first = {k: v.clone() for k, v in hooks.items()}
    z2 = z.clone()
    z2[:, 100:] += 1.0
    g(z2, y)
    assert torch.equal(first["linear"], hooks["linear"])
    assert torch.equal(first["blocks.2.0"], hooks["blocks.2.0"])
    assert not torch.equal(g(z2, y), img)
    sagan = _tiny_sagan().eval()
    assert sagan(torch.randn(2, 128), y).shape == (2, 3, 64, 64)


def test_z_dim_not_divisible_drops_the_remainder_like_the_official_code():
    with torch.device("meta"):
        g = BigGANGenerator(**biggan128_config(ch=4, num_classes=5, shared_dim=16, z_dim=128))
    assert g.z_dim == 126 and g.linear.weight.shape[1] == 21


def test_discriminator_is_a_projection_discriminator():
    torch.manual_seed(5)
    d = _tiny_discriminator().eval()
    x, y = torch.rand(3, 3, 64, 64) * 2 - 1, torch.tensor([0, 2, 4])
    features = {}
    d.blocks[-1][0].register_forward_hook(lambda m, i, o: features.__setitem__("h", o))
    out = d(x, y)
    assert out.shape == (3,)
    pooled = F.relu(features["h"]).sum((2, 3))
    expected = d.linear(pooled).view(-1) + (d.embed(y) * pooled).sum(1)
    torch.testing.assert_close(out, expected)


def test_channel_groups_names_and_validation_full_size():
    g = _meta(BigGANGenerator, **biggan128_config())
    names = [group.name for group in validate_channel_groups(g)]
    assert names == [f"stream.{k}" for k in range(6)] + [f"block.{k}.hidden" for k in range(5)] + [
        "blocks.3.1.value"
    ]
    first = next(group for group in g.channel_groups() if group.name == "stream.0")
    assert first.size == 1536 and any(m.key == "linear.weight" and m.block == 16 for m in first.members)
    assert g.distillation_points() == ["blocks.0.0", "blocks.1.0", "blocks.2.0", "blocks.3.1", "blocks.4.0"]
    for net in (_meta(BigGANGenerator, **sagan128_config()), _meta(BigGANDiscriminator, ch=96)):
        assert validate_channel_groups(net)
    d_names = [group.name for group in _meta(BigGANDiscriminator, ch=96).channel_groups()]
    assert "stream.4" in d_names and "stream.5" not in d_names  # identity shortcut merges streams 4 and 5


@pytest.mark.parametrize("make", [_tiny_biggan, _tiny_sagan])
def test_pruned_widths_rebuild_validate_and_round_trip(make, tmp_path):
    teacher = make()
    sizes = {"stream.0": 50, "stream.3": 11, "block.2.hidden": 7, "blocks.3.1.value": 3}
    config = teacher.config_for_group_sizes(sizes)
    student = BigGANGenerator(**config)
    assert student.stream_channels[0] == 50 and student.stream_channels[3] == 11
    assert student.blocks[3][1].key_channels == teacher.blocks[3][1].key_channels  # keys untouched
    groups = {group.name: group.size for group in validate_channel_groups(student)}
    assert groups["stream.3"] == 11 and groups["block.2.hidden"] == 7 and groups["blocks.3.1.value"] == 3
    student.eval()
    path = tmp_path / "student.pt"
    save_net(student, path)
    restored = load_net(path).eval()
    z = torch.randn(2, student.z_dim)
    y = torch.tensor([0, 4])
    assert torch.equal(student(z, y), restored(z, y))


def test_discriminator_pruned_widths_round_trip(tmp_path):
    d = BigGANDiscriminator(resolution=32, ch=4, num_classes=5, attention_resolutions=(16,))
    # 32 px D: blocks 2 and 3 keep 16 channels without pooling -> one stream with block 1's output.
    assert [group.name for group in d.channel_groups()][:2] == ["stream.0", "stream.1"]
    pruned = BigGANDiscriminator(**d.config_for_group_sizes({"stream.1": 5, "block.0.hidden": 3}))
    assert pruned.stream_channels == [16, 5, 5, 5]
    assert not pruned.blocks[3][0].learnable_sc  # still an identity shortcut
    validate_channel_groups(pruned)
    save_net(pruned.eval(), tmp_path / "d.pt")
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 2])
    assert torch.equal(load_net(tmp_path / "d.pt").eval()(x, y), pruned(x, y))


def test_invalid_group_sizes_are_rejected():
    with pytest.raises(ValueError, match="unknown channel group"):
        _tiny_biggan().config_for_group_sizes({"stream.9": 3})
    with pytest.raises(ValueError, match="below minimum"):
        _tiny_biggan().config_for_group_sizes({"stream.1": 0})


def test_ppcd_transition_layers_start_as_identity_and_prune_independently(tmp_path):
    torch.manual_seed(6)
    plain = _tiny_sagan().eval()
    with_transitions = _tiny_sagan(transition_channels=plain.stream_channels[1:]).eval()
    extra = set(with_transitions.state_dict()) - set(plain.state_dict())
    assert extra and all(".0.transition." in key for key in extra)
    with_transitions.load_state_dict(plain.state_dict(), strict=False)  # transitions keep identity init
    z, y = torch.randn(2, 128), torch.tensor([0, 3])
    torch.testing.assert_close(with_transitions(z, y), plain(z, y), rtol=0, atol=1e-6)
    groups = {group.name: group for group in validate_channel_groups(with_transitions)}
    assert groups["block.1.out"].size == 32
    assert any(
        m.key == "blocks.1.0.transition.weight" and m.role == "out" for m in groups["stream.2"].members
    )
    student = BigGANGenerator(
        **with_transitions.config_for_group_sizes({"block.1.out": 9, "block.1.hidden": 4})
    )
    assert student.transition_channels == [64, 9, 16, 8] and student.stream_channels == plain.stream_channels
    validate_channel_groups(student)
    save_net(student.eval(), tmp_path / "ppcd.pt")
    assert torch.equal(load_net(tmp_path / "ppcd.pt").eval()(z, y), student(z, y))
