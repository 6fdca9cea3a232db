"""junyanz / GAN Compression checkpoints: key-layout facts, loading, pitfalls, errors.

The official files are plain ``state_dict()`` s of ``nn.Sequential`` networks. The tests write such
files from a seeded random init, with the keys and shapes spelled out here from the reference
architecture, and compare what ``load_generator`` / ``load_discriminator`` return with a small
functional re-statement of the reference forward pass that reads the official keys directly.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lightning_gancomp.checkpoints import (
    CheckpointError,
    convert_checkpoint,
    detect_format,
    load_discriminator,
    load_generator,
)
from lightning_gancomp.formats.pix2pix import to_official_state_dict
from lightning_gancomp.nets.base import CheckpointMismatchError
from lightning_gancomp.nets.pix2pix import NLayerDiscriminator, ResnetGenerator, UnetGenerator

Shapes = dict[str, tuple[int, ...]]


# -- official layouts, spelled out --------------------------------------------------------------
def _conv(
    shapes: Shapes, name: str, c_out: int, c_in: int, k: int, bias: bool, transposed: bool = False
) -> None:
    shapes[f"{name}.weight"] = (c_in, c_out, k, k) if transposed else (c_out, c_in, k, k)
    if bias:
        shapes[f"{name}.bias"] = (c_out,)


def _norm(shapes: Shapes, name: str, c: int, norm: str) -> None:
    if norm == "batch":
        for param in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{param}"] = (c,)
        shapes[f"{name}.num_batches_tracked"] = ()


def resnet_shapes(ngf: int, n_blocks: int, norm: str, dropout: bool, zero: bool) -> Shapes:
    """junyanz ResnetGenerator(3, 3, ngf, norm, dropout, n_blocks, padding) state-dict shapes."""
    s: Shapes = {}
    bias = norm == "instance"
    _conv(s, "model.1", ngf, 3, 7, bias), _norm(s, "model.2", ngf, norm)
    _conv(s, "model.4", 2 * ngf, ngf, 3, bias), _norm(s, "model.5", 2 * ngf, norm)
    _conv(s, "model.7", 4 * ngf, 2 * ngf, 3, bias), _norm(s, "model.8", 4 * ngf, norm)
    c1 = 0 if zero else 1
    c2 = {(False, False): 5, (False, True): 6, (True, False): 3, (True, True): 4}[(zero, dropout)]
    for b in range(n_blocks):
        block = f"model.{10 + b}.conv_block"
        _conv(s, f"{block}.{c1}", 4 * ngf, 4 * ngf, 3, bias), _norm(s, f"{block}.{c1 + 1}", 4 * ngf, norm)
        _conv(s, f"{block}.{c2}", 4 * ngf, 4 * ngf, 3, bias), _norm(s, f"{block}.{c2 + 1}", 4 * ngf, norm)
    up = 10 + n_blocks
    _conv(s, f"model.{up}", 2 * ngf, 4 * ngf, 3, bias, True), _norm(s, f"model.{up + 1}", 2 * ngf, norm)
    _conv(s, f"model.{up + 3}", ngf, 2 * ngf, 3, bias, True), _norm(s, f"model.{up + 4}", ngf, norm)
    _conv(s, f"model.{up + 7}", 3, ngf, 7, True)
    return s


def unet_level(k: int) -> str:
    return "model" if k == 0 else "model.model.1" + ".model.3" * (k - 1)


def unet_shapes(ngf: int, num_downs: int, norm: str) -> Shapes:
    s: Shapes = {}
    bias = norm == "instance"
    inner = [ngf * min(2**k, 8) for k in range(num_downs)]
    _conv(s, "model.model.0", inner[0], 3, 4, bias)
    _conv(s, "model.model.3", 3, 2 * inner[0], 4, True, True)
    for k in range(1, num_downs):
        seq = unet_level(k) + ".model"
        _conv(s, f"{seq}.1", inner[k], inner[k - 1], 4, bias)
        if k == num_downs - 1:
            (
                _conv(s, f"{seq}.3", inner[k - 1], inner[k], 4, bias, True),
                _norm(s, f"{seq}.4", inner[k - 1], norm),
            )
        else:
            _norm(s, f"{seq}.2", inner[k], norm)
            (
                _conv(s, f"{seq}.5", inner[k - 1], 2 * inner[k], 4, bias, True),
                _norm(s, f"{seq}.6", inner[k - 1], norm),
            )
    return s


def patchgan_shapes(in_channels: int, ndf: int, n_layers: int, norm: str) -> Shapes:
    s: Shapes = {}
    widths = [ndf * min(2**i, 8) for i in range(n_layers + 1)]
    _conv(s, "model.0", widths[0], in_channels, 4, True)
    for i in range(1, n_layers + 1):
        _conv(s, f"model.{3 * i - 1}", widths[i], widths[i - 1], 4, norm == "instance")
        _norm(s, f"model.{3 * i}", widths[i], norm)
    _conv(s, f"model.{3 * n_layers + 2}", 1, widths[-1], 4, True)
    return s


def random_state(shapes: Shapes, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var") or (key.endswith("weight") and len(shape) == 1):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.2
    return state


# -- the reference forward passes, reading official keys ----------------------------------------
def _norm_fn(sd: dict, name: str, x: torch.Tensor, norm: str) -> torch.Tensor:
    if norm == "instance":
        return F.instance_norm(x)
    if norm == "batch":
        w, b = sd[f"{name}.weight"], sd[f"{name}.bias"]
        return F.batch_norm(x, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], w, b, False)
    return x


def _c(sd: dict, name: str, x: torch.Tensor, stride: int = 1, padding: int = 0) -> torch.Tensor:
    return F.conv2d(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"), stride, padding)


def _ct(sd: dict, name: str, x: torch.Tensor, padding: int, output_padding: int = 0) -> torch.Tensor:
    return F.conv_transpose2d(x, sd[f"{name}.weight"], sd.get(f"{name}.bias"), 2, padding, output_padding)


def reference_resnet(sd, x, n_blocks, norm, dropout, zero):
    def cnr(h, conv, stride=1, padding=0):
        return F.relu(_norm_fn(sd, f"model.{conv + 1}", _c(sd, f"model.{conv}", h, stride, padding), norm))

    h = cnr(F.pad(x, [3] * 4, mode="reflect"), 1)
    h = cnr(cnr(h, 4, 2, 1), 7, 2, 1)
    c1, c2 = (0, 4 if dropout else 3) if zero else (1, 6 if dropout else 5)
    pad = (lambda t: t) if zero else (lambda t: F.pad(t, [1] * 4, mode="reflect"))
    for b in range(n_blocks):
        p = f"model.{10 + b}.conv_block"
        r = F.relu(_norm_fn(sd, f"{p}.{c1 + 1}", _c(sd, f"{p}.{c1}", pad(h), 1, int(zero)), norm))
        h = h + _norm_fn(sd, f"{p}.{c2 + 1}", _c(sd, f"{p}.{c2}", pad(r), 1, int(zero)), norm)
    up = 10 + n_blocks
    for u in (up, up + 3):
        h = F.relu(_norm_fn(sd, f"model.{u + 1}", _ct(sd, f"model.{u}", h, 1, 1), norm))
    return torch.tanh(_c(sd, f"model.{up + 7}", F.pad(h, [3] * 4, mode="reflect")))


def reference_unet(sd, x, num_downs, norm):
    def level(h, k):  # h: the level's input; returns cat([LeakyReLU(h) (in-place quirk), up])
        seq = unet_level(k) + ".model"
        down = _c(sd, f"{seq}.1", F.leaky_relu(h, 0.2), 2, 1)
        if k == num_downs - 1:
            up = _norm_fn(sd, f"{seq}.4", _ct(sd, f"{seq}.3", F.relu(down), 1), norm)
        else:
            inner = level(_norm_fn(sd, f"{seq}.2", down, norm), k + 1)
            up = _norm_fn(sd, f"{seq}.6", _ct(sd, f"{seq}.5", F.relu(inner), 1), norm)
        return torch.cat([F.leaky_relu(h, 0.2), up], 1)

    inner = level(_c(sd, "model.model.0", x, 2, 1), 1)
    return torch.tanh(_ct(sd, "model.model.3", F.relu(inner), 1))


def reference_patchgan(sd, x, n_layers, norm):
    h = F.leaky_relu(_c(sd, "model.0", x, 2, 1), 0.2)
    for i in range(1, n_layers + 1):
        conv = _c(sd, f"model.{3 * i - 1}", h, 2 if i < n_layers else 1, 1)
        h = F.leaky_relu(_norm_fn(sd, f"model.{3 * i}", conv, norm), 0.2)
    return _c(sd, f"model.{3 * n_layers + 2}", h, 1, 1)


def save(state: dict, tmp_path, name: str = "latest_net_G.pth") -> str:
    path = str(tmp_path / name)
    torch.save(state, path)
    return path


# -- key-layout facts ---------------------------------------------------------------------------
def test_cyclegan_resnet9_official_keys():
    with torch.device("meta"):
        official = to_official_state_dict(ResnetGenerator())  # CycleGAN: IN, 9 blocks, no dropout
    assert {k: tuple(v.shape) for k, v in official.items()} == resnet_shapes(64, 9, "instance", False, False)
    assert len(official) == 48
    assert tuple(official["model.10.conv_block.5.weight"].shape) == (256, 256, 3, 3)
    assert tuple(official["model.19.weight"].shape) == (256, 128, 3, 3)  # ConvTranspose2d: [in, out]
    assert tuple(official["model.26.weight"].shape) == (3, 64, 7, 7) and "model.26.bias" in official
    with torch.device("meta"):
        gan_compression_teacher = to_official_state_dict(ResnetGenerator(use_dropout=True))
    assert "model.18.conv_block.6.weight" in gan_compression_teacher  # Dropout shifts .5 -> .6
    assert not any(".conv_block.5.weight" in k for k in gan_compression_teacher)


def test_pix2pix_unet256_and_patchgan_official_keys():
    with torch.device("meta"):
        unet = to_official_state_dict(UnetGenerator())
        d = to_official_state_dict(NLayerDiscriminator(in_channels=6, norm="batch"))
    assert {k: tuple(v.shape) for k, v in unet.items()} == unet_shapes(64, 8, "batch")
    innermost = "model.model.1" + ".model.3" * 6 + ".model"
    assert tuple(unet[f"{innermost}.1.weight"].shape) == (512, 512, 4, 4)
    assert (
        tuple(unet[f"{innermost}.3.weight"].shape) == (512, 512, 4, 4)
        and f"{innermost}.4.running_var" in unet
    )
    assert "model.model.0.bias" not in unet and "model.model.3.bias" in unet  # BN: only the last convT
    assert {k: tuple(v.shape) for k, v in d.items()} == patchgan_shapes(6, 64, 3, "batch")
    assert tuple(d["model.11.weight"].shape) == (1, 512, 4, 4)


# -- loading official files ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("norm", "dropout", "zero"),
    [("instance", False, False), ("instance", True, False), ("batch", True, True), ("none", False, True)],
)
def test_resnet_official_file_matches_reference(tmp_path, norm, dropout, zero):
    state = random_state(resnet_shapes(4, 2, norm, dropout, zero))
    g = load_generator(save(state, tmp_path))
    assert isinstance(g, ResnetGenerator)
    expected_config = {"ngf": 4, "n_blocks": 2, "norm": norm, "use_dropout": dropout}
    assert {k: g.config[k] for k in expected_config} == expected_config
    assert g.config["padding_type"] == ("zero" if zero else "reflect")
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(
            g(x), reference_resnet(state, x, 2, norm, dropout, zero), atol=1e-5, rtol=1e-5
        )
    assert to_official_state_dict(g).keys() == state.keys()


def test_pre_0_4_instance_norm_stats_are_dropped(tmp_path):
    state = random_state(resnet_shapes(4, 1, "instance", False, False))
    old = dict(state)
    norm_slots = {"model.2": 4, "model.5": 8, "model.8": 16, "model.10.conv_block.2": 16,
                  "model.10.conv_block.6": 16, "model.12": 8, "model.15": 4}  # fmt: skip
    for slot, channels in norm_slots.items():  # what an InstanceNorm with running stats saves
        old[f"{slot}.running_mean"] = torch.randn(channels)
        old[f"{slot}.running_var"] = torch.rand(channels) + 1
        old[f"{slot}.num_batches_tracked"] = torch.tensor(100)
    assert convert_checkpoint(old).extra["dropped_instance_norm_stats"]
    assert not convert_checkpoint(state).extra["dropped_instance_norm_stats"]
    g_old, g_new = load_generator(save(old, tmp_path, "old.pth")), load_generator(save(state, tmp_path))
    assert g_old.config == g_new.config and g_old.config["norm"] == "instance"
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(g_old(x), g_new(x), rtol=0, atol=0)


def test_gan_compression_teacher_flavor(tmp_path):
    state = random_state(resnet_shapes(2, 9, "instance", True, False))
    path = save(state, tmp_path)
    g = load_generator(path, flavor="gan_compression")
    assert g.config["use_dropout"] and g.config["dropout_rate"] == 0.0 and g.config["clamp_input"]
    x = torch.randn(1, 3, 16, 16) * 2
    with torch.no_grad():
        torch.testing.assert_close(g(x), reference_resnet(state, x.clamp(-1, 1), 9, "instance", True, False))
    assert not load_generator(path).config["clamp_input"]  # junyanz reading of the same keys
    with pytest.raises(CheckpointError, match="no Dropout slot"):
        load_generator(save(random_state(resnet_shapes(2, 1, "instance", False, False)), tmp_path, "cyc.pth"),
                       flavor="gan_compression")  # fmt: skip


@pytest.mark.parametrize(("norm", "num_downs"), [("batch", 5), ("instance", 6), ("none", 5)])
def test_unet_official_file_matches_reference(tmp_path, norm, num_downs):
    state = random_state(unet_shapes(2, num_downs, norm))
    g = load_generator(save(state, tmp_path))
    assert isinstance(g, UnetGenerator) and g.config["num_downs"] == num_downs and g.config["norm"] == norm
    x = torch.randn(2, 3, 2**num_downs, 2**num_downs)
    with torch.no_grad():
        torch.testing.assert_close(g(x), reference_unet(state, x, num_downs, norm), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("in_channels", "norm"), [(6, "batch"), (3, "instance")])
def test_patchgan_official_file_matches_reference(tmp_path, in_channels, norm):
    state = random_state(patchgan_shapes(in_channels, 4, 3, norm))
    d = load_discriminator(save(state, tmp_path, "latest_net_D.pth"))
    assert isinstance(d, NLayerDiscriminator) and d.config["in_channels"] == in_channels
    assert d.config["norm"] == norm and d.config["n_layers"] == 3
    x = torch.randn(2, in_channels, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(d(x), reference_patchgan(state, x, 3, norm), atol=1e-5, rtol=1e-5)


def test_official_round_trip_at_pruned_widths(tmp_path):
    g = ResnetGenerator(
        ngf=4, n_blocks=2, norm="batch", down_channels=[3, 6, 5], block_channels=[2, 7], up_channels=[4, 3]
    )
    u = UnetGenerator(ngf=2, num_downs=5, down_channels=[2, 3, 5, 7, 3], up_channels=[2, 4, 6, 5])
    for net, widths in [
        (g, ("down_channels", "block_channels", "up_channels")),
        (u, ("down_channels", "up_channels")),
    ]:
        net.eval()
        loaded = load_generator(save(to_official_state_dict(net), tmp_path))
        assert type(loaded) is type(net)
        assert [getattr(loaded, w) for w in widths] == [
            getattr(net, w) for w in widths
        ]  # inferred from shapes
        x = torch.randn(1, 3, 32, 32)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)


def test_format_detection_and_dataparallel_prefix(tmp_path):
    resnet = random_state(resnet_shapes(2, 1, "instance", False, False))
    assert detect_format(resnet).name == "pix2pix-resnet-generator"
    assert detect_format(random_state(unet_shapes(2, 5, "batch"))).name == "pix2pix-unet-generator"
    assert (
        detect_format(random_state(patchgan_shapes(3, 2, 3, "batch"))).name
        == "pix2pix-patchgan-discriminator"
    )
    wrapped = {f"module.{k}": v for k, v in resnet.items()}
    g = load_generator(save(wrapped, tmp_path))
    assert g.config["ngf"] == 2 and g.config["n_blocks"] == 1


def test_pre_0_4_batchnorm_without_num_batches_tracked_loads(tmp_path):
    state = random_state(patchgan_shapes(3, 2, 3, "batch"))
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    d = load_discriminator(save(old, tmp_path))
    assert int(d.state_dict()["layers.1.norm.num_batches_tracked"]) == 0


# -- errors -------------------------------------------------------------------------------------
def test_errors_name_the_official_keys(tmp_path):
    state = random_state(resnet_shapes(2, 2, "instance", False, False))
    missing = {k: v for k, v in state.items() if k != "model.11.conv_block.5.weight"}
    with pytest.raises(CheckpointMismatchError, match=r"missing keys: model\.11\.conv_block\.5\.weight"):
        load_generator(save(missing, tmp_path, "missing.pth"))
    extra = {**state, "model.3.weight": torch.zeros(4)}
    with pytest.raises(CheckpointMismatchError, match=r"unexpected keys: model\.3\.weight"):
        load_generator(save(extra, tmp_path, "extra.pth"))
    bad = {**state, "model.10.conv_block.5.weight": torch.zeros(8, 5, 3, 3)}
    with pytest.raises(
        CheckpointMismatchError, match=r"model\.10\.conv_block\.5\.weight: checkpoint \(8, 5, 3, 3\)"
    ):
        load_generator(save(bad, tmp_path, "bad.pth"))
    path = save(state, tmp_path)
    with pytest.raises(CheckpointError, match="holds a generator"):
        load_discriminator(path)
    with pytest.raises(CheckpointError, match=r"unknown overrides \['nblocks'\]"):
        load_generator(path, nblocks=3)
    with pytest.raises(CheckpointError, match="holds a discriminator"):
        load_generator(save(random_state(patchgan_shapes(3, 2, 3, "none")), tmp_path, "d.pth"))
