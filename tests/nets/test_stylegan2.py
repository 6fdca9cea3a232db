"""StyleGAN2 architecture: exact counts, rosinality layout facts, op values, channel groups."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lightning_gancomp.nets.base import count_params, load_net, save_net, validate_channel_groups
from lightning_gancomp.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from lightning_gancomp.nets.stylegan_layers import (
    EqualLinear,
    ModulatedConv2d,
    Upsample,
    fused_leaky_relu,
    make_kernel,
    minibatch_stddev,
    upfirdn2d,
)

TINY = dict(resolution=32, z_dim=16, w_dim=16, n_mapping=2)
TINY_CHANNELS = [12, 10, 9, 8, 7, 6, 5, 4]


def tiny_generator(channels=TINY_CHANNELS, seed: int = 0) -> StyleGAN2Generator:
    torch.manual_seed(seed)
    g = StyleGAN2Generator(**TINY, channels=channels)
    with torch.no_grad():  # non-zero noise strengths and biases so every term is exercised
        for name, p in g.named_parameters():
            if name.endswith("noise.weight") or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.3)
    return g.eval()


def fixed_noise(g: StyleGAN2Generator, batch: int, seed: int = 1) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    return g.make_noise(batch)


# -- counts (meta device: shapes only, no memory, no forward) -----------------------------------
def test_config_f_parameter_counts_match_official():
    with torch.device("meta"):
        g256, d256 = StyleGAN2Generator(256), StyleGAN2Discriminator(256)
        g1024 = StyleGAN2Generator(1024)
        cagan_07 = StyleGAN2Generator(256, channels=[154] * 10 + [77, 77, 39, 39])
    assert count_params(g256) == 30_034_338
    assert count_params(d256) == 28_864_129
    assert count_params(g1024) == 30_370_060
    assert count_params(cagan_07) == 5_573_364
    assert g256.channels == [512] * 10 + [256, 256, 128, 128]
    assert (g256.num_layers, g256.n_latent) == (13, 14)


# -- rosinality key layout ------------------------------------------------------------------------
def rosinality_generator_shapes(size: int, w: int, n_mlp: int, shape: list[int]) -> dict[str, tuple]:
    """Keys/shapes of rosinality's Generator as listed from its model.py (written independently)."""
    out: dict[str, tuple] = {}
    for i in range(1, n_mlp + 1):
        out[f"style.{i}.weight"], out[f"style.{i}.bias"] = (w, w), (w,)
    out["input.input"] = (1, shape[0], 4, 4)

    def styled(prefix: str, cin: int, cout: int, up: bool) -> None:
        out[f"{prefix}.conv.weight"] = (1, cout, cin, 3, 3)
        out[f"{prefix}.conv.modulation.weight"], out[f"{prefix}.conv.modulation.bias"] = (cin, w), (cin,)
        out[f"{prefix}.noise.weight"], out[f"{prefix}.activate.bias"] = (1,), (cout,)
        if up:
            out[f"{prefix}.conv.blur.kernel"] = (4, 4)

    def rgb(prefix: str, cin: int, up: bool) -> None:
        out[f"{prefix}.conv.weight"] = (1, 3, cin, 1, 1)
        out[f"{prefix}.conv.modulation.weight"], out[f"{prefix}.conv.modulation.bias"] = (cin, w), (cin,)
        out[f"{prefix}.bias"] = (1, 3, 1, 1)
        if up:
            out[f"{prefix}.upsample.kernel"] = (4, 4)

    styled("conv1", shape[0], shape[1], False)
    rgb("to_rgb1", shape[1], False)
    for i in range(1, len(shape) // 2):
        styled(f"convs.{2 * i - 2}", shape[2 * i - 1], shape[2 * i], True)
        styled(f"convs.{2 * i - 1}", shape[2 * i], shape[2 * i + 1], False)
        rgb(f"to_rgbs.{i - 1}", shape[2 * i + 1], True)
    num_layers = (int(math.log2(size)) - 2) * 2 + 1
    for i in range(num_layers):
        res = 2 ** ((i + 5) // 2)  # rosinality's formula for noise_{i}
        out[f"noises.noise_{i}"] = (1, 1, res, res)
    return out


def test_state_dict_is_rosinality_layout_plus_latent_avg():
    g = StyleGAN2Generator(**TINY, channels=TINY_CHANNELS)
    expected = rosinality_generator_shapes(32, 16, 2, TINY_CHANNELS)
    expected["latent_avg"] = (16,)
    got = {k: tuple(v.shape) for k, v in g.state_dict().items()}
    assert got == expected


def test_discriminator_key_layout():
    d = StyleGAN2Discriminator(32, channels=[4, 6, 8, 10])
    keys = set(d.state_dict())
    assert {"convs.0.0.weight", "convs.0.1.bias", "convs.3.conv1.0.weight", "convs.3.conv1.1.bias"} <= keys
    assert {"convs.1.conv2.0.kernel", "convs.1.conv2.1.weight", "convs.1.conv2.2.bias"} <= keys
    assert {
        "convs.1.skip.0.kernel",
        "convs.1.skip.1.weight",
        "final_conv.0.weight",
        "final_conv.1.bias",
    } <= keys
    assert "convs.1.skip.1.bias" not in keys
    assert tuple(d.state_dict()["final_conv.0.weight"].shape) == (10, 11, 3, 3)  # + stddev channel
    assert tuple(d.state_dict()["final_linear.0.weight"].shape) == (10, 160)
    assert d(torch.randn(4, 3, 32, 32)).shape == (4,)


# -- op values ------------------------------------------------------------------------------------
def test_blur_kernel_values():
    expected = torch.tensor([1.0, 3, 3, 1]).outer(torch.tensor([1.0, 3, 3, 1])) / 64
    assert torch.allclose(make_kernel([1, 3, 3, 1]), expected)
    g = StyleGAN2Generator(**TINY, channels=TINY_CHANNELS)
    assert torch.allclose(g.state_dict()["convs.0.conv.blur.kernel"], expected * 4)
    assert torch.allclose(g.state_dict()["to_rgbs.0.upsample.kernel"], expected * 4)


def naive_upfirdn2d(
    x: torch.Tensor, k: torch.Tensor, up: int, down: int, pad: tuple[int, int]
) -> torch.Tensor:
    """Definition by loops: zero-stuff, zero-pad, true convolution, keep every ``down``-th sample."""
    h, w = x.shape
    z = torch.zeros(h * up, w * up)
    z[::up, ::up] = x
    p0, p1 = pad
    z = F.pad(z, [p0, p1, p0, p1])
    kh, kw = k.shape
    out = torch.zeros(z.shape[0] - kh + 1, z.shape[1] - kw + 1)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = sum(z[i + a, j + b] * k[kh - 1 - a, kw - 1 - b] for a in range(kh) for b in range(kw))
    return out[::down, ::down]


@pytest.mark.parametrize(
    "up,down,pad", [(2, 1, (2, 1)), (1, 2, (1, 1)), (1, 1, (1, 1)), (2, 2, (1, 2)), (2, 1, (0, -1))]
)
def test_upfirdn2d_matches_definition(up, down, pad):
    torch.manual_seed(3)
    x = torch.randn(5, 4)
    k = torch.randn(4, 3)  # asymmetric: catches a missing kernel flip
    ours = upfirdn2d(x[None, None], k, up=up, down=down, pad=pad)[0, 0]
    assert torch.allclose(ours, naive_upfirdn2d(x, k, up, down, pad), atol=1e-5)


def test_upsample_of_constant_is_constant_inside_and_known_at_border():
    out = Upsample((1, 3, 3, 1))(torch.full((1, 2, 4, 4), 2.0))
    assert out.shape == (1, 2, 8, 8)
    assert torch.allclose(out[..., 1:-1, 1:-1], torch.full_like(out[..., 1:-1, 1:-1], 2.0))
    # one of the two polyphase taps (1/4 and 3/4) falls into the zero padding at the border
    assert torch.allclose(out[0, 0, 0, 1:-1], torch.full((6,), 1.5))
    assert torch.allclose(out[0, 0, 0, 0], torch.tensor(2.0 * 0.75 * 0.75))


def test_fused_leaky_relu_values():
    x = torch.tensor([[-1.0, 2.0]]).view(1, 2, 1, 1)
    out = fused_leaky_relu(x, torch.tensor([0.5, -1.0]))
    assert torch.allclose(out.flatten(), torch.tensor([-0.5 * 0.2, 1.0]) * math.sqrt(2))


def test_equal_linear_runtime_scale_and_lr_mul():
    torch.manual_seed(0)
    layer = EqualLinear(8, 4, bias_init=0.5, lr_mul=0.01)
    x = torch.randn(3, 8)
    expected = x @ (layer.weight * 0.01 / math.sqrt(8)).T + 0.5 * 0.01
    assert torch.allclose(layer(x), expected, atol=1e-6)
    assert layer.weight.std() > 10  # stored as N(0,1) / lr_mul


def test_demodulated_weights_have_unit_norm_per_output_channel():
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, 3, style_dim=4)
    weight = conv.modulated_weight(torch.randn(3, 4))
    assert weight.shape == (3, 5, 6, 3, 3)
    assert torch.allclose(weight.pow(2).sum([2, 3, 4]), torch.ones(3, 5), atol=1e-5)
    rgb = ModulatedConv2d(6, 3, 1, style_dim=4, demodulate=False)
    assert not torch.allclose(rgb.modulated_weight(torch.randn(3, 4)).pow(2).sum([2, 3, 4]), torch.ones(3, 3))


@pytest.mark.parametrize("upsample", [False, True])
def test_modulated_conv_equals_per_sample_reference(upsample):
    """The batch-grouped conv equals a loop over samples; upsampling equals zero stuffing + conv + blur."""
    torch.manual_seed(0)
    conv = ModulatedConv2d(4, 3, 3, style_dim=5, upsample=upsample)
    x, style = torch.randn(2, 4, 6, 6), torch.randn(2, 5)
    weight = conv.modulated_weight(style)
    outs = []
    for b in range(2):
        if upsample:
            # zero stuffing (stride-2 insertion), full padding and the flipped kernel = transposed conv
            z = torch.zeros(1, 4, 12, 12)
            z[..., ::2, ::2] = x[b : b + 1]
            z = F.pad(z, [2, 1, 2, 1])  # full conv of the 11-sample stuffed signal needs k-1 = 2 per side
            y = F.conv2d(z, torch.flip(weight[b], [2, 3]))
            outs.append(upfirdn2d(y, make_kernel([1, 3, 3, 1]) * 4, pad=(1, 1)))
        else:
            outs.append(F.conv2d(x[b : b + 1], weight[b], padding=1))
    reference = torch.cat(outs)
    out = conv(x, style)
    assert out.shape == ((2, 3, 12, 12) if upsample else (2, 3, 6, 6))
    assert torch.allclose(out, reference, atol=1e-5)


@pytest.mark.parametrize("upsample,demodulate", [(False, True), (True, True), (False, False)])
def test_shared_weight_path_equals_grouped_path(upsample, demodulate):
    torch.manual_seed(0)
    conv = ModulatedConv2d(
        4, 3, 3 if demodulate else 1, style_dim=5, upsample=upsample, demodulate=demodulate
    )
    x, style = torch.randn(3, 4, 6, 6), torch.randn(3, 5)
    conv.fused = True
    grouped = conv(x, style)
    conv.fused = False
    assert torch.allclose(conv(x, style), grouped, atol=1e-5)
    conv.fused = None  # automatic: shared in training, grouped in eval
    assert torch.allclose(conv.train()(x, style), conv.eval()(x, style), atol=1e-5)


def test_minibatch_stddev_values():
    x = torch.arange(4 * 2 * 1 * 1, dtype=torch.float32).view(4, 2, 1, 1)
    out = minibatch_stddev(x, group_size=2)
    # groups (reshape [2, 2, ...]): samples {0, 2} and {1, 3}; every std is |a-b|/2 = 2 (+1e-8)
    assert out.shape == (4, 3, 1, 1)
    assert torch.allclose(out[:, 2].flatten(), torch.full((4,), 2.0))
    with pytest.raises(ValueError, match="not divisible"):
        minibatch_stddev(torch.randn(6, 2, 1, 1), group_size=4)


# -- generator behaviour ------------------------------------------------------------------------
def test_truncation_zero_gives_the_centre_image():
    g = tiny_generator()
    g.latent_avg.normal_()
    noise = fixed_noise(g, 3)
    with torch.no_grad():
        img = g(torch.randn(3, 16), truncation=0.0, noise=noise)
        centre = g(g.latent_avg.expand(3, -1), input_is_latent=True, noise=noise)
        explicit = g(torch.randn(3, 16), truncation=0.0, truncation_latent=torch.zeros(1, 16), noise=noise)
        zero = g(torch.zeros(3, 16), input_is_latent=True, noise=noise)
    assert torch.allclose(img, centre, atol=1e-6)
    assert torch.allclose(explicit, zero, atol=1e-6)


def test_style_mixing_equals_w_plus():
    g = tiny_generator()
    z1, z2 = torch.randn(2, 16), torch.randn(2, 16)
    noise = fixed_noise(g, 2)
    with torch.no_grad():
        mixed, latents = g([z1, z2], inject_index=3, noise=noise, return_latents=True)
        w1, w2 = g.mapping(z1), g.mapping(z2)
        w_plus = torch.cat([w1[:, None].expand(-1, 3, -1), w2[:, None].expand(-1, g.n_latent - 3, -1)], 1)
        direct = g(w_plus, input_is_latent=True, noise=noise)
    assert latents.shape == (2, g.n_latent, 16)
    assert torch.allclose(latents, w_plus)
    assert torch.allclose(mixed, direct, atol=1e-6)


def test_noise_modes():
    g = tiny_generator()
    z = torch.randn(2, 16)
    with torch.no_grad():
        a, b = g(z, randomize_noise=False), g(z, randomize_noise=False)
        stored = [getattr(g.noises, f"noise_{i}").expand(2, -1, -1, -1) for i in range(g.num_layers)]
        c = g(z, noise=stored)
        d = g(z)
    assert torch.equal(a, b) and torch.allclose(a, c)
    assert not torch.allclose(a, d)
    assert [n.shape[-1] for n in g.make_noise()] == [4, 8, 8, 16, 16, 32, 32]
    with pytest.raises(ValueError, match="noise maps"):
        g(z, noise=stored[:3])


def test_mean_latent_and_update():
    g = tiny_generator()
    avg = g.update_latent_avg(n=256, seed=1)
    assert torch.allclose(avg, g.mean_latent(256, generator=torch.Generator().manual_seed(1))[0])


# -- channel groups -----------------------------------------------------------------------------
def test_channel_groups_declaration():
    with torch.device("meta"):
        g = StyleGAN2Generator(256)
    groups = validate_channel_groups(g)
    assert [gr.name for gr in groups][:4] == ["map0_4px", "map1_4px", "map2_8px", "map3_8px"]
    assert [gr.size for gr in groups] == g.channels
    by_name = {gr.name: gr for gr in groups}
    readers = {m.key for m in by_name["map1_4px"].members_with_role("in")}
    assert readers == {"convs.0.conv.weight", "to_rgb1.conv.weight"}
    assert by_name["map1_4px"].score_keys == ("convs.0.conv.weight",)
    assert {m.key for m in by_name["map2_8px"].members_with_role("in")} == {"convs.1.conv.weight"}
    last = by_name["map13_256px"]
    assert {m.key for m in last.members_with_role("in")} == {"to_rgbs.5.conv.weight"}
    assert last.score_keys == ("to_rgbs.5.conv.weight",)
    assert {m.key for m in by_name["map0_4px"].members_with_role("out")} == {"input.input"}
    assert all(m.equalized_fan_in for gr in groups for m in gr.members_with_role("in"))


def slice_by_groups(g: StyleGAN2Generator, keep: dict[str, list[int]]) -> tuple[dict, dict]:
    """Independent mini surgery: slice every declared member; rescale equalized 'in' weights."""
    state = {k: v.clone() for k, v in g.state_dict().items()}
    zeroed = {k: v.clone() for k, v in g.state_dict().items()}
    for group in g.channel_groups():
        if group.name not in keep:
            continue
        idx = torch.tensor(keep[group.name])
        dropped = torch.tensor([i for i in range(group.size) if i not in keep[group.name]])
        for m in group.members:
            state[m.key] = state[m.key].index_select(m.dim, idx)
            if m.role == "in":
                state[m.key] = state[m.key] * math.sqrt(len(idx) / group.size)
                zeroed[m.key].index_fill_(m.dim, dropped, 0.0)
    return state, zeroed


def test_slicing_declared_groups_equals_zeroing_the_dropped_channels():
    g = tiny_generator()
    keep = {"map0_4px": [0, 2, 5, 7, 11], "map1_4px": [1, 3, 4, 9], "map4_16px": [0, 6], "map7_32px": [0, 3]}
    state, zeroed = slice_by_groups(g, keep)
    student = StyleGAN2Generator(**g.config_for_group_sizes({k: len(v) for k, v in keep.items()}))
    assert student.channels == [5, 4, 9, 8, 2, 6, 5, 2]
    student.load_state_dict(state)  # strict: every member has exactly the declared extent
    reference = StyleGAN2Generator(**g.config)
    reference.load_state_dict(zeroed)
    noise = fixed_noise(g, 2)
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.allclose(student.eval()(z, noise=noise), reference.eval()(z, noise=noise), atol=1e-5)


def test_config_for_group_sizes_and_distillation_points():
    g = StyleGAN2Generator(**TINY, channels=TINY_CHANNELS)
    cfg = g.config_for_group_sizes({"map7_32px": 3, "map0_4px": 2})
    assert cfg["channels"] == [2] + TINY_CHANNELS[1:7] + [3]
    assert {k: v for k, v in cfg.items() if k != "channels"} == {
        k: v for k, v in g.config.items() if k != "channels"
    }
    with pytest.raises(ValueError, match="unknown channel groups"):
        g.config_for_group_sizes({"nope": 1})
    points = g.distillation_points()
    assert points == ["conv1", "convs.1", "convs.3", "convs.5"]
    small = tiny_generator()
    sizes = []
    hooks = [
        small.get_submodule(p).register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
        for p in points
    ]
    with torch.no_grad():
        small(torch.randn(1, 16))
    for h in hooks:
        h.remove()
    assert sizes == [4, 8, 16, 32]


def test_save_load_round_trip_of_pruned_generator(tmp_path):
    g = tiny_generator()
    g.latent_avg.normal_()
    save_net(g, tmp_path / "g.pt")
    back = load_net(tmp_path / "g.pt").eval()
    assert isinstance(back, StyleGAN2Generator) and back.channels == TINY_CHANNELS
    z = torch.randn(2, 16)
    with torch.no_grad():
        assert torch.equal(
            g(z, randomize_noise=False, truncation=0.5), back(z, randomize_noise=False, truncation=0.5)
        )


def test_invalid_widths_are_rejected():
    with pytest.raises(ValueError, match="8 positive widths"):
        StyleGAN2Generator(**TINY, channels=[8] * 6)
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Generator(resolution=48)
    with pytest.raises(ValueError, match="4 positive widths"):
        StyleGAN2Discriminator(32, channels=[4, 4])


@pytest.mark.parametrize("mode", ["plain", "upsample", "downsample"])
def test_modulated_conv_weight_copies_equal_one_conv_per_group(mode):
    # G weight copies: group g of the batch (consecutive samples) sees copy g, and the gradient of
    # a sum of per-group losses w.r.t. copy g is that group's own gradient (DCP scoring).
    from torch.func import functional_call

    torch.manual_seed(0)
    conv = ModulatedConv2d(3, 4, 3, 5, upsample=mode == "upsample", downsample=mode == "downsample")
    x, style = torch.randn(6, 3, 8, 8), torch.randn(6, 5)
    copies = torch.randn(2, 4, 3, 3, 3, requires_grad=True)
    out = functional_call(conv, {"weight": copies}, (x, style))
    (out[:3].pow(2).sum() + out[3:].abs().sum()).backward()
    for g, (loss, rows) in enumerate(
        [(lambda y: y.pow(2).sum(), slice(0, 3)), (lambda y: y.abs().sum(), slice(3, 6))]
    ):
        own = copies[g : g + 1].detach().requires_grad_()
        ref = functional_call(conv, {"weight": own}, (x[rows], style[rows]))
        assert torch.allclose(out[rows], ref, atol=1e-5)
        (grad,) = torch.autograd.grad(loss(ref), own)
        assert torch.allclose(copies.grad[g], grad[0], rtol=1e-4, atol=1e-5)
