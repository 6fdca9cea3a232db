"""StyleGAN2 checkpoint import: rosinality / CAGAN / NVlabs layouts, overrides, clear errors.

Official code cannot run in the test suite, so the rosinality-layout files are written by the test
itself (keys enumerated from rosinality's ``model.py``, seeded random values) and the imported
networks are compared with a small functional reference written here in the NVlabs order of
operations (upsample + FIR filter first, then a true convolution; per-sample loops), which shares
no code path with ``lightning_gancomp.nets``.
"""

from __future__ import annotations

import argparse
import math

import pytest
import torch
import torch.nn.functional as F

from lightning_gancomp.checkpoints import CheckpointError, load_discriminator, load_generator
from lightning_gancomp.formats.stylegan2 import discriminator_to_nvlabs, generator_to_nvlabs
from lightning_gancomp.nets.base import CheckpointMismatchError
from lightning_gancomp.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

SQRT2 = math.sqrt(2)
BLUR = torch.tensor([1.0, 3, 3, 1]).outer(torch.tensor([1.0, 3, 3, 1])) / 64


# -- files in rosinality layout, written from scratch ----------------------------------------
def rosinality_generator_state(
    shape: list[int], w_dim: int, n_mlp: int, seed: int
) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def randn(*size: int, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
        return torch.randn(*size, generator=gen) * scale + shift

    sd: dict[str, torch.Tensor] = {}
    for i in range(1, n_mlp + 1):
        sd[f"style.{i}.weight"] = randn(w_dim, w_dim, scale=100.0)  # stored / lr_mul
        sd[f"style.{i}.bias"] = randn(w_dim, scale=10.0)
    sd["input.input"] = randn(1, shape[0], 4, 4)

    def styled(prefix: str, cin: int, cout: int, up: bool) -> None:
        sd[f"{prefix}.conv.weight"] = randn(1, cout, cin, 3, 3)
        sd[f"{prefix}.conv.modulation.weight"] = randn(cin, w_dim)
        sd[f"{prefix}.conv.modulation.bias"] = randn(cin, scale=0.1, shift=1.0)
        sd[f"{prefix}.noise.weight"] = randn(1, scale=0.3)
        sd[f"{prefix}.activate.bias"] = randn(cout, scale=0.3)
        if up:
            sd[f"{prefix}.conv.blur.kernel"] = BLUR * 4

    def rgb(prefix: str, cin: int, up: bool) -> None:
        sd[f"{prefix}.conv.weight"] = randn(1, 3, cin, 1, 1)
        sd[f"{prefix}.conv.modulation.weight"] = randn(cin, w_dim)
        sd[f"{prefix}.conv.modulation.bias"] = randn(cin, scale=0.1, shift=1.0)
        sd[f"{prefix}.bias"] = randn(1, 3, 1, 1, scale=0.3)
        if up:
            sd[f"{prefix}.upsample.kernel"] = BLUR * 4

    styled("conv1", shape[0], shape[1], False)
    rgb("to_rgb1", shape[1], False)
    for i in range(1, len(shape) // 2):
        styled(f"convs.{2 * i - 2}", shape[2 * i - 1], shape[2 * i], True)
        styled(f"convs.{2 * i - 1}", shape[2 * i], shape[2 * i + 1], False)
        rgb(f"to_rgbs.{i - 1}", shape[2 * i + 1], True)
    for i in range(len(shape) - 1):
        res = 2 ** ((i + 5) // 2)
        sd[f"noises.noise_{i}"] = randn(1, 1, res, res)
    return sd


def rosinality_discriminator_state(channels: list[int], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    sd = {
        "convs.0.0.weight": torch.randn(channels[0], 3, 1, 1, generator=gen),
        "convs.0.1.bias": torch.randn(channels[0], generator=gen) * 0.3,
    }
    for k, (cin, cout) in enumerate(zip(channels[:-1], channels[1:]), start=1):
        sd[f"convs.{k}.conv1.0.weight"] = torch.randn(cin, cin, 3, 3, generator=gen)
        sd[f"convs.{k}.conv1.1.bias"] = torch.randn(cin, generator=gen) * 0.3
        sd[f"convs.{k}.conv2.0.kernel"] = BLUR.clone()
        sd[f"convs.{k}.conv2.1.weight"] = torch.randn(cout, cin, 3, 3, generator=gen)
        sd[f"convs.{k}.conv2.2.bias"] = torch.randn(cout, generator=gen) * 0.3
        sd[f"convs.{k}.skip.0.kernel"] = BLUR.clone()
        sd[f"convs.{k}.skip.1.weight"] = torch.randn(cout, cin, 1, 1, generator=gen)
    c = channels[-1]
    sd["final_conv.0.weight"] = torch.randn(c, c + 1, 3, 3, generator=gen)
    sd["final_conv.1.bias"] = torch.randn(c, generator=gen) * 0.3
    sd["final_linear.0.weight"] = torch.randn(c, c * 16, generator=gen)
    sd["final_linear.0.bias"] = torch.randn(c, generator=gen) * 0.3
    sd["final_linear.1.weight"] = torch.randn(1, c, generator=gen)
    sd["final_linear.1.bias"] = torch.randn(1, generator=gen)
    return sd


# -- functional reference (NVlabs order of operations, per-sample loops) ------------------------
def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * SQRT2


def fir(x: torch.Tensor, up: int, down: int, pad: tuple[int, int], gain: float) -> torch.Tensor:
    """Zero stuffing by index assignment, zero padding, depthwise true convolution, decimation."""
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(n, c, h * up, w * up)
        z[..., ::up, ::up] = x
        x = z
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    k = (torch.flip(BLUR, [0, 1]) * gain).expand(c, 1, 4, 4)
    return F.conv2d(x, k, groups=c)[..., ::down, ::down]


def reference_generator(sd, z, noises, n_mlp, lr_mul=0.01):
    x = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
    for i in range(1, n_mlp + 1):
        weight = sd[f"style.{i}.weight"]
        x = lrelu(x @ (weight * lr_mul / math.sqrt(weight.shape[1])).T + sd[f"style.{i}.bias"] * lr_mul)
    w = x

    def styles(prefix):
        mod = sd[f"{prefix}.conv.modulation.weight"]
        return w @ (mod / math.sqrt(mod.shape[1])).T + sd[f"{prefix}.conv.modulation.bias"]

    def layer(prefix, h, noise, up):
        weight = sd[f"{prefix}.conv.weight"][0]
        s = styles(prefix)
        outs = []
        for b in range(h.shape[0]):
            wb = weight * s[b].view(1, -1, 1, 1)
            wb = wb / torch.sqrt(wb.pow(2).sum([1, 2, 3], keepdim=True) + 1e-8)  # the 1/sqrt(fan_in) cancels
            hb = h[b : b + 1]
            if up:  # NVlabs generic path: FIR upsample (pad 3, 2; gain 4), then a true 3x3 convolution
                outs.append(F.conv2d(fir(hb, 2, 1, (3, 2), 4.0), torch.flip(wb, [2, 3])))
            else:
                outs.append(F.conv2d(hb, wb, padding=1))
        out = torch.cat(outs) + sd[f"{prefix}.noise.weight"] * noise
        return lrelu(out + sd[f"{prefix}.activate.bias"].view(1, -1, 1, 1))

    def to_rgb(prefix, h):
        weight = sd[f"{prefix}.conv.weight"][0] / math.sqrt(sd[f"{prefix}.conv.weight"].shape[2])
        s = styles(prefix)
        out = torch.cat([F.conv2d(h[b : b + 1], weight * s[b].view(1, -1, 1, 1)) for b in range(h.shape[0])])
        return out + sd[f"{prefix}.bias"]

    h = sd["input.input"].repeat(z.shape[0], 1, 1, 1)
    h = layer("conv1", h, noises[0], False)
    img = to_rgb("to_rgb1", h)
    n_blocks = (len(noises) - 1) // 2
    for k in range(n_blocks):
        h = layer(f"convs.{2 * k}", h, noises[2 * k + 1], True)
        h = layer(f"convs.{2 * k + 1}", h, noises[2 * k + 2], False)
        img = to_rgb(f"to_rgbs.{k}", h) + fir(img, 2, 1, (2, 1), 4.0)
    return img


def reference_discriminator(sd, img):
    def conv(x, key, bias_key=None, down=False, k=3):
        weight = sd[key] / math.sqrt(sd[key][0].numel())
        if down:
            x = fir(x, 1, 1, (2, 2) if k == 3 else (1, 1), 1.0)
            x = F.conv2d(x, weight, stride=2)
        else:
            x = F.conv2d(x, weight, padding=k // 2)
        return lrelu(x + sd[bias_key].view(1, -1, 1, 1)) if bias_key else x

    x = conv(img, "convs.0.0.weight", "convs.0.1.bias", k=1)
    k = 1
    while f"convs.{k}.conv1.0.weight" in sd:
        p = f"convs.{k}"
        main = conv(
            conv(x, f"{p}.conv1.0.weight", f"{p}.conv1.1.bias"),
            f"{p}.conv2.1.weight",
            f"{p}.conv2.2.bias",
            True,
        )
        x = (main + conv(x, f"{p}.skip.1.weight", down=True, k=1)) / SQRT2
        k += 1
    n = x.shape[0]
    groups = x.view(min(n, 4), -1, *x.shape[1:])
    std = torch.sqrt(groups.var(0, unbiased=False) + 1e-8).mean([1, 2, 3])  # [n / G]
    stddev = std.repeat(min(n, 4)).view(n, 1, 1, 1).expand(n, 1, 4, 4)
    x = conv(torch.cat([x, stddev], 1), "final_conv.0.weight", "final_conv.1.bias")
    fc, out = sd["final_linear.0.weight"], sd["final_linear.1.weight"]
    x = lrelu(x.flatten(1) @ (fc / math.sqrt(fc.shape[1])).T + sd["final_linear.0.bias"])
    return (x @ (out / math.sqrt(out.shape[1])).T + sd["final_linear.1.bias"]).flatten()


SHAPE = [12, 10, 9, 8, 7, 6, 5, 4]  # 32 px, pruned-style widths


def max_rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max()).item()


def test_rosinality_file_loads_and_matches_reference(tmp_path):
    g_sd = rosinality_generator_state(SHAPE, w_dim=16, n_mlp=3, seed=1)
    d_sd = rosinality_discriminator_state([4, 6, 8, 10], seed=2)
    latent_avg = torch.randn(16)
    path = tmp_path / "550000.pt"
    # rosinality train.py layout: nets, optimizer states and the argparse Namespace of the run
    optim = {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 0.002, "params": [0]}]}
    run_args = argparse.Namespace(size=32)
    torch.save({"g_ema": g_sd, "d": d_sd, "g_optim": optim, "latent_avg": latent_avg, "args": run_args}, path)

    g = load_generator(path)
    assert isinstance(g, StyleGAN2Generator) and not g.training
    assert (g.resolution, g.z_dim, g.w_dim, len(g.style) - 1, g.channels) == (32, 16, 16, 3, SHAPE)
    assert torch.equal(g.latent_avg, latent_avg)
    z = torch.randn(3, 16)
    noises = [torch.randn(3, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)) for i in range(len(SHAPE) - 1)]
    with torch.no_grad():
        assert max_rel_error(g(z, noise=noises), reference_generator(g_sd, z, noises, 3)) < 1e-5
        stored = [g_sd[f"noises.noise_{i}"] for i in range(len(SHAPE) - 1)]
        assert max_rel_error(g(z, randomize_noise=False), reference_generator(g_sd, z, stored, 3)) < 1e-5

    d = load_discriminator(path)
    assert isinstance(d, StyleGAN2Discriminator) and d.config["channels"] == [4, 6, 8, 10]
    img = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        assert max_rel_error(d(img), reference_discriminator(d_sd, img)) < 1e-5


def test_cagan_pruned_file_with_key_override_and_estimated_latent_avg(tmp_path):
    # CAGAN prune.py: {'g', 'd', 'g_ema'}, pruned widths, no width list and no latent_avg.
    g_ema, g_raw = (
        rosinality_generator_state(SHAPE, 16, 2, seed=3),
        rosinality_generator_state(SHAPE, 16, 2, seed=4),
    )
    d_sd = rosinality_discriminator_state([4, 6, 8, 10], seed=5)
    path = tmp_path / "pruned.pth"
    torch.save({"g": g_raw, "d": d_sd, "g_ema": g_ema}, path)
    z = torch.randn(2, 16)
    noises = [torch.zeros(2, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2)) for i in range(len(SHAPE) - 1)]
    for key, sd in ((None, g_ema), ("g", g_raw)):
        net = load_generator(path) if key is None else load_generator(path, key=key)
        with torch.no_grad():
            assert max_rel_error(net(z, noise=noises), reference_generator(sd, z, noises, 2)) < 1e-5
    # the estimated mean latent is the mapped mean of many samples
    net = load_generator(path)
    zs = torch.randn(20000, 16)
    with torch.no_grad():
        independent = net.mapping(zs).mean(0)
        spread = net.mapping(zs).std(0).max()
    assert (net.latent_avg - independent).abs().max() < 0.1 * spread


def test_bare_and_dataparallel_state_dicts(tmp_path):
    sd = rosinality_generator_state(SHAPE, 16, 2, seed=6)
    torch.save({f"module.{k}": v for k, v in sd.items()}, tmp_path / "dp.pt")
    net = load_generator(tmp_path / "dp.pt")
    assert net.channels == SHAPE
    with pytest.raises(CheckpointError, match="bare generator state dict, not a discriminator"):
        load_discriminator(tmp_path / "dp.pt")


def test_standard_widths_are_stored_as_channel_multiplier(tmp_path):
    ours = StyleGAN2Generator(64, z_dim=8, w_dim=8, n_mapping=1, channel_multiplier=1)
    torch.save({"g_ema": ours.state_dict()}, tmp_path / "cm1.pt")
    config = load_generator(tmp_path / "cm1.pt").config
    assert config["channel_multiplier"] == 1 and config["channels"] is None


def shape_only_config_f_checkpoint(path) -> None:
    """A 256 px config-F file whose tensors are stride-0 views of one zero (tiny on disk)."""
    with torch.device("meta"):
        g = StyleGAN2Generator(256)
    state = {k: torch.zeros(()).expand(v.shape) for k, v in g.state_dict().items() if k != "latent_avg"}
    state |= {k: BLUR * 4 for k in state if k.endswith("kernel")}  # resampling filters keep their values
    torch.save({"g_ema": state, "latent_avg": torch.zeros(512)}, path)


def test_wrong_overrides_give_one_clear_message(tmp_path):
    path = tmp_path / "ffhq256.pt"
    shape_only_config_f_checkpoint(path)
    with pytest.raises(CheckpointMismatchError) as info:
        load_generator(path, resolution=512, channel_multiplier=1)
    message = str(info.value)
    assert str(path) in message and "stylegan2-rosinality" in message
    assert "missing keys: convs.12." in message
    conflict = "convs.6.conv.weight: checkpoint (1, 512, 512, 3, 3) vs network (1, 256, 512, 3, 3)"
    assert f"first shape conflict: {conflict}" in message
    with pytest.raises(
        CheckpointError, match=r"no entry 'g' in this file \(entries: \['g_ema', 'latent_avg'\]\)"
    ):
        load_generator(path, key="g")
    with pytest.raises(CheckpointError, match="unknown overrides \\['size'\\]"):
        load_generator(path, size=256)
    with pytest.raises(CheckpointError, match="no discriminator in this file"):
        load_discriminator(path)


# -- NVlabs ---------------------------------------------------------------------------------------
def test_nvlabs_layout_facts_and_round_trip(tmp_path):
    torch.manual_seed(0)
    ours = StyleGAN2Generator(8, z_dim=8, w_dim=8, n_mapping=2, channels=[6, 5, 4, 3])
    with torch.no_grad():
        for name, p in ours.named_parameters():
            if name.endswith("noise.weight") or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.3)
        ours.latent_avg.normal_()
    nv = generator_to_nvlabs(ours)
    # facts of NVlabs training/networks.py: mapping.fc{i}, w_avg; const [C,4,4]; 4-D conv weights;
    # scalar noise_strength; [res,res] noise_const; torgb bias [3]; resample_filter buffers
    expected = {
        f"mapping.fc{i}.{n}": (8, 8) if n == "weight" else (8,) for i in (0, 1) for n in ("weight", "bias")
    }
    expected |= {"mapping.w_avg": (8,)}
    expected |= {"synthesis.b4.const": (6, 4, 4), "synthesis.b4.resample_filter": (4, 4)}
    for prefix, cin, cout, res in (("b4.conv1", 6, 5, 4), ("b8.conv0", 5, 4, 8), ("b8.conv1", 4, 3, 8)):
        p = f"synthesis.{prefix}"
        expected |= {f"{p}.weight": (cout, cin, 3, 3), f"{p}.bias": (cout,), f"{p}.noise_strength": ()}
        expected |= {
            f"{p}.noise_const": (res, res),
            f"{p}.affine.weight": (cin, 8),
            f"{p}.affine.bias": (cin,),
        }
        expected |= {f"{p}.resample_filter": (4, 4)}
    for prefix, cin in (("b4.torgb", 5), ("b8.torgb", 3)):
        p = f"synthesis.{prefix}"
        expected |= {f"{p}.weight": (3, cin, 1, 1), f"{p}.bias": (3,), f"{p}.affine.weight": (cin, 8)}
        expected |= {f"{p}.affine.bias": (cin,)}
    expected |= {"synthesis.b8.resample_filter": (4, 4)}
    assert {k: tuple(v.shape) for k, v in nv.items()} == expected
    assert torch.allclose(nv["synthesis.b8.resample_filter"], BLUR)

    torch.save({"G_ema": nv}, tmp_path / "nv.pt")
    back = load_generator(tmp_path / "nv.pt")
    assert back.channels == [6, 5, 4, 3] and torch.equal(back.latent_avg, ours.latent_avg)
    z = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(ours.eval()(z, randomize_noise=False), back(z, randomize_noise=False))

    d = StyleGAN2Discriminator(16, channels=[3, 5, 7])
    nv_d = discriminator_to_nvlabs(d)
    assert {
        "b16.fromrgb.weight",
        "b16.conv0.weight",
        "b16.conv1.weight",
        "b16.skip.weight",
        "b8.skip.weight",
    } <= set(nv_d)
    assert {"b4.conv.weight", "b4.fc.weight", "b4.out.weight"} <= set(
        nv_d
    ) and "b8.fromrgb.weight" not in nv_d
    torch.save(nv_d, tmp_path / "nv_d.pt")
    d_back = load_discriminator(tmp_path / "nv_d.pt")
    img = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(d(img), d_back(img))


def test_nvlabs_unsupported_variants_are_named(tmp_path):
    ours = StyleGAN2Generator(8, z_dim=4, w_dim=4, n_mapping=1, channels=[2, 2, 2, 2])
    nv = generator_to_nvlabs(ours)
    torch.save({**nv, "mapping.embed.weight": torch.zeros(4, 10)}, tmp_path / "cond.pt")
    with pytest.raises(CheckpointError, match="conditional NVlabs generators"):
        load_generator(tmp_path / "cond.pt")
    torch.save({**nv, "synthesis.b8.skip.weight": torch.zeros(2, 2, 1, 1)}, tmp_path / "resnet_g.pt")
    with pytest.raises(CheckpointError, match="only the 'skip' synthesis architecture"):
        load_generator(tmp_path / "resnet_g.pt")
