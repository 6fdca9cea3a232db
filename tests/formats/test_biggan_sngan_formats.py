"""Official BigGAN-PyTorch and mimicry SN-GAN checkpoints load through ``load_generator``.

Each test writes a file in the official key layout whose key list and shapes are spelled out
here from the official code (BigGAN-PyTorch ``BigGAN.py``/``layers.py``: ``G_arch``, ``GBlock``,
``ccbn``, ``Attention``, ``SN`` buffers; mimicry ``sngan_32.py``/``resblocks.py`` with
``torch.nn.utils.spectral_norm``), filled from a seeded random init, so the converter is checked
against the layout rather than against our own modules. Loaded networks must give exactly the
output of our network built directly with those tensors, and their first layer must give the
value computed by hand from the file.
"""

import pytest
import torch
import torch.nn.functional as F

from lightning_gancomp.checkpoints import CheckpointError, load_discriminator, load_generator
from lightning_gancomp.nets.base import CheckpointMismatchError
from lightning_gancomp.nets.biggan import BigGANDiscriminator, BigGANGenerator
from lightning_gancomp.nets.sngan import SNGANDiscriminator, SNGANGenerator

G_MULT_IN, G_MULT_OUT = [16, 16, 8, 4, 2], [16, 8, 4, 2, 1]  # official G_arch[128]
D_MULT_OUT = [1, 2, 4, 8, 16, 16]  # official D_arch[128]


def _sn(shapes, prefix, weight_shape, bias=True):
    shapes[f"{prefix}.weight"] = weight_shape
    if bias:
        shapes[f"{prefix}.bias"] = weight_shape[:1]
    shapes[f"{prefix}.u0"], shapes[f"{prefix}.sv0"] = (1, weight_shape[0]), (1,)


def official_biggan_generator_shapes(ch, z_dim, shared_dim, n_classes, shared):
    """Keys and shapes of BigGAN-PyTorch ``Generator(resolution=128, G_attn='64')``."""
    hier = shared  # BigGAN: G_shared + hier; SAGAN: neither
    chunk = z_dim // 6 if hier else 0
    shapes = {}
    if shared:
        shapes["shared.weight"] = (n_classes, shared_dim)
    _sn(shapes, "linear", (G_MULT_IN[0] * ch * 16, chunk if hier else z_dim))
    for i, (m_in, m_out) in enumerate(zip(G_MULT_IN, G_MULT_OUT)):
        c_in, c_out, p = m_in * ch, m_out * ch, f"blocks.{i}.0"
        _sn(shapes, f"{p}.conv1", (c_out, c_in, 3, 3))
        _sn(shapes, f"{p}.conv2", (c_out, c_out, 3, 3))
        _sn(shapes, f"{p}.conv_sc", (c_out, c_in, 1, 1))
        for bn, c in (("bn1", c_in), ("bn2", c_out)):
            for part in ("gain", "bias"):
                if shared:
                    _sn(shapes, f"{p}.{bn}.{part}", (c, shared_dim + chunk), bias=False)
                else:
                    shapes[f"{p}.{bn}.{part}.weight"] = (n_classes, c)
            shapes[f"{p}.{bn}.stored_mean"] = shapes[f"{p}.{bn}.stored_var"] = (c,)
        if 8 * 2**i == 64:
            for name, shape in (("theta", (c_out // 8, c_out)), ("phi", (c_out // 8, c_out)),
                                ("g", (c_out // 2, c_out)), ("o", (c_out, c_out // 2))):  # fmt: skip
                _sn(shapes, f"blocks.{i}.1.{name}", (*shape, 1, 1), bias=False)
            shapes[f"blocks.{i}.1.gamma"] = ()
    for name in ("gain", "bias", "stored_mean", "stored_var"):
        shapes[f"output_layer.0.{name}"] = (ch,)
    _sn(shapes, "output_layer.2", (3, ch, 3, 3))
    return shapes


def official_biggan_discriminator_shapes(ch, n_classes):
    shapes = {}
    outs = [m * ch for m in D_MULT_OUT]
    ins = [3] + outs[:-1]
    for i, (c_in, c_out) in enumerate(zip(ins, outs)):
        p = f"blocks.{i}.0"
        _sn(shapes, f"{p}.conv1", (c_out, c_in, 3, 3))  # wide D: hidden = out
        _sn(shapes, f"{p}.conv2", (c_out, c_out, 3, 3))
        if c_in != c_out or i < 5:  # learnable shortcut unless identity (last block)
            _sn(shapes, f"{p}.conv_sc", (c_out, c_in, 1, 1))
        if i == 0:  # output resolution 64
            for name, shape in (("theta", (c_out // 8, c_out)), ("phi", (c_out // 8, c_out)),
                                ("g", (c_out // 2, c_out)), ("o", (c_out, c_out // 2))):  # fmt: skip
                _sn(shapes, f"blocks.{i}.1.{name}", (*shape, 1, 1), bias=False)
            shapes[f"blocks.{i}.1.gamma"] = ()
    _sn(shapes, "linear", (1, outs[-1]))
    shapes["embed.weight"], shapes["embed.u0"], shapes["embed.sv0"] = (
        (n_classes, outs[-1]),
        (1, n_classes),
        (1,),
    )
    return shapes


def official_mimicry_generator_shapes(ngf, nz=128):
    shapes = {"l1.weight": (16 * ngf, nz), "l1.bias": (16 * ngf,)}
    for b in (2, 3, 4):
        for conv, k in (("c1", 3), ("c2", 3), ("c_sc", 1)):
            shapes[f"block{b}.{conv}.weight"], shapes[f"block{b}.{conv}.bias"] = (ngf, ngf, k, k), (ngf,)
        for bn in ("b1", "b2"):
            for name in ("weight", "bias", "running_mean", "running_var"):
                shapes[f"block{b}.{bn}.{name}"] = (ngf,)
            shapes[f"block{b}.{bn}.num_batches_tracked"] = ()
    for name in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"b5.{name}"] = (ngf,)
    shapes["b5.num_batches_tracked"] = ()
    shapes["c5.weight"], shapes["c5.bias"] = (3, ngf, 3, 3), (3,)
    return shapes


def official_mimicry_discriminator_shapes(ndf):
    shapes = {}

    def sn(prefix, shape):  # torch.nn.utils.spectral_norm state
        shapes[f"{prefix}.weight_orig"], shapes[f"{prefix}.bias"] = shape, shape[:1]
        shapes[f"{prefix}.weight_u"] = shape[:1]
        shapes[f"{prefix}.weight_v"] = (int(torch.Size(shape[1:]).numel()),)

    sn("block1.c1", (ndf, 3, 3, 3))
    sn("block1.c2", (ndf, ndf, 3, 3))
    sn("block1.c_sc", (ndf, 3, 1, 1))
    for b in (2, 3, 4):
        sn(f"block{b}.c1", (ndf, ndf, 3, 3))
        sn(f"block{b}.c2", (ndf, ndf, 3, 3))
    sn("block2.c_sc", (ndf, ndf, 1, 1))  # the only DBlock that downsamples
    sn("l5", (1, ndf))
    return shapes


def _fill(shapes, seed):
    """Seeded tensors with the value ranges the official code keeps them in; spectral-norm vectors
    are the converged singular vectors of their weight (as in any trained checkpoint), so sigma is
    far from zero and the hand computations below are well conditioned."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(100)
        elif key.endswith(("stored_var", "running_var")):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        elif key.endswith("gamma"):
            state[key] = torch.tensor(0.5)
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.2
    for key in shapes:
        prefix, _, name = key.rpartition(".")
        if name in ("u0", "weight_u"):
            weight = state[f"{prefix}.weight" if name == "u0" else f"{prefix}.weight_orig"].flatten(1)
            left, values, right_t = torch.linalg.svd(weight, full_matrices=False)
            if name == "u0":
                state[key], state[f"{prefix}.sv0"] = left[:, 0].reshape(1, -1), values[:1]
            else:
                state[key], state[f"{prefix}.weight_v"] = left[:, 0], right_t[0]
    return state


def _one_line(excinfo):
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# -- BigGAN-PyTorch ----------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["biggan", "sagan"])
def test_official_generator_loads_and_matches_our_network(variant, tmp_path):
    shared = variant == "biggan"
    shapes = official_biggan_generator_shapes(ch=4, z_dim=120 if shared else 128, shared_dim=16, n_classes=7,
                                              shared=shared)  # fmt: skip
    state = _fill(shapes, seed=1)
    path = tmp_path / "G_ema.pth"
    torch.save(state, path)
    loaded = load_generator(path)
    assert isinstance(loaded, BigGANGenerator) and not loaded.training
    assert set(loaded.state_dict()) == set(shapes)
    assert loaded.shared_embedding is shared and loaded.hierarchical is shared and loaded.num_classes == 7
    assert loaded.stream_channels == [64, 64, 32, 16, 8, 4] and loaded.attention_blocks == [3]
    direct = (BigGANGenerator(ch=4, z_dim=120, shared_dim=16, num_classes=7, sn_eps=1e-6) if shared
              else BigGANGenerator(ch=4, z_dim=128, shared_embedding=False, shared_dim=0, hierarchical=False,
                                   num_classes=7, sn_eps=1e-8))  # fmt: skip
    direct.load_state_dict(state)
    direct.eval()
    z, y = torch.randn(2, loaded.z_dim), torch.tensor([3, 6])
    captured = {}
    loaded.linear.register_forward_hook(lambda m, i, o: captured.__setitem__("linear", o))
    with torch.no_grad():
        img = loaded(z, y)
        assert torch.equal(img, direct(z, y))
    assert img.shape == (2, 3, 128, 128) and img.abs().max() <= 1
    # First layer by hand: one power iteration from the stored u0, W / sigma, on the first z chunk.
    weight, u = state["linear.weight"], state["linear.u0"]
    v = F.normalize(u @ weight, eps=1e-12)
    sigma = (v @ weight.t() @ F.normalize(v @ weight.t()).t()).squeeze()
    first = z[:, :20] if shared else z
    torch.testing.assert_close(captured["linear"], first @ (weight / sigma).t() + state["linear.bias"])
    assert torch.equal(loaded.linear.u0, u)  # eval mode: the stored vector is untouched


def test_official_discriminator_loads_and_matches_our_network(tmp_path):
    shapes = official_biggan_discriminator_shapes(ch=8, n_classes=7)
    state = _fill(shapes, seed=2)
    torch.save(state, tmp_path / "D.pth")
    loaded = load_discriminator(tmp_path / "D.pth")
    assert isinstance(loaded, BigGANDiscriminator) and set(loaded.state_dict()) == set(shapes)
    direct = BigGANDiscriminator(ch=8, num_classes=7)
    direct.load_state_dict(state)
    x, y = torch.rand(2, 3, 128, 128) * 2 - 1, torch.tensor([0, 5])
    with torch.no_grad():
        assert torch.equal(loaded(x, y), direct.eval()(x, y))
    with pytest.raises(CheckpointError) as excinfo:
        load_generator(tmp_path / "D.pth")
    assert "discriminator" in _one_line(excinfo)


def test_generator_variant_mismatch_is_one_clear_line(tmp_path):
    shapes = official_biggan_generator_shapes(ch=4, z_dim=120, shared_dim=16, n_classes=7, shared=True)
    torch.save(_fill(shapes, seed=3), tmp_path / "G.pth")
    with pytest.raises(CheckpointError) as excinfo:
        load_generator(tmp_path / "G.pth", variant="sagan")
    assert "holds a biggan generator" in _one_line(excinfo)
    # Forcing SAGAN's architecture onto BigGAN weights: one line naming the conflicting keys.
    with pytest.raises(CheckpointMismatchError) as excinfo:
        load_generator(tmp_path / "G.pth", shared_embedding=False, hierarchical=False, z_dim=20)
    message = _one_line(excinfo)
    assert "unexpected keys: shared.weight" in message and "blocks.0.0.bn1.gain.u0" in message
    with pytest.raises(CheckpointError, match="unknown overrides"):
        load_generator(tmp_path / "G.pth", upsample="bilinear")


def test_mybn_checkpoints_map_onto_the_plain_layout(tmp_path):
    shapes = official_biggan_generator_shapes(ch=4, z_dim=120, shared_dim=16, n_classes=7, shared=True)
    state = _fill(shapes, seed=4)
    wrapped = {}
    for key, value in state.items():
        for stat in ("stored_mean", "stored_var"):
            if key.endswith(stat):
                prefix = key[: -len(stat) - 1]
                wrapped[f"{prefix}.bn.{stat}"] = value * 4  # standing stats: sums over 4 passes
                wrapped[f"{prefix}.bn.accumulation_counter"] = torch.tensor([4.0])
                break
        else:
            wrapped[key] = value
    torch.save(wrapped, tmp_path / "G_mybn.pth")
    loaded = load_generator(tmp_path / "G_mybn.pth")
    torch.testing.assert_close(loaded.blocks[0][0].bn1.stored_var, state["blocks.0.0.bn1.stored_var"])


# -- mimicry SN-GAN ----------------------------------------------------------------------------
def test_mimicry_generator_checkpoint_loads_and_matches(tmp_path):
    shapes = official_mimicry_generator_shapes(ngf=8)
    state = _fill(shapes, seed=5)
    torch.save({"model_state_dict": state, "optimizer_state_dict": None, "global_step": 1000},
               tmp_path / "netG_1000_steps.pth")  # fmt: skip
    loaded = load_generator(tmp_path / "netG_1000_steps.pth")
    assert isinstance(loaded, SNGANGenerator) and loaded.config["upsample"] == "bilinear"
    assert set(loaded.state_dict()) == set(shapes)
    direct = SNGANGenerator(stream_channels=[8] * 4, upsample="bilinear")
    direct.load_state_dict(state)
    z = torch.randn(3, 128)
    captured = {}
    loaded.l1.register_forward_hook(lambda m, i, o: captured.__setitem__("l1", o))
    with torch.no_grad():
        img = loaded(z)
        assert torch.equal(img, direct.eval()(z))
    assert img.shape == (3, 3, 32, 32)
    torch.testing.assert_close(captured["l1"], z @ state["l1.weight"].t() + state["l1.bias"])
    nearest = load_generator(tmp_path / "netG_1000_steps.pth", upsample="nearest")
    with torch.no_grad():
        assert not torch.allclose(nearest(z), img)
    with pytest.raises(CheckpointError) as excinfo:
        load_discriminator(tmp_path / "netG_1000_steps.pth")
    assert "holds a generator" in _one_line(excinfo)


def test_mimicry_discriminator_checkpoint_loads_and_matches(tmp_path):
    shapes = official_mimicry_discriminator_shapes(ndf=8)
    state = _fill(shapes, seed=6)
    torch.save(
        {"model_state_dict": state, "optimizer_state_dict": None, "global_step": 7}, tmp_path / "netD.pth"
    )
    loaded = load_discriminator(tmp_path / "netD.pth")
    assert isinstance(loaded, SNGANDiscriminator) and loaded.config["shortcut_input"] == "relu"
    assert set(loaded.state_dict()) == set(shapes)
    direct = SNGANDiscriminator(stream_channels=[8] * 4, shortcut_input="relu")
    direct.load_state_dict(state)
    img = torch.rand(2, 3, 32, 32) * 2 - 1
    captured = {}
    loaded.block1.c1.register_forward_hook(lambda m, i, o: captured.__setitem__("c1", o))
    with torch.no_grad():
        assert torch.equal(loaded(img), direct.eval()(img))
    # First conv by hand: eval-mode torch spectral norm uses the stored u and v, sigma = u^T W v.
    weight = state["block1.c1.weight_orig"]
    sigma = state["block1.c1.weight_u"] @ weight.flatten(1) @ state["block1.c1.weight_v"]
    expected = F.conv2d(img, weight / sigma, state["block1.c1.bias"], padding=1)
    torch.testing.assert_close(captured["c1"], expected)
    with pytest.raises(CheckpointMismatchError) as excinfo:
        load_discriminator(tmp_path / "netD.pth", stream_channels=[8, 8, 8, 4])
    assert "first shape conflict" in _one_line(excinfo)


def test_plain_state_dict_of_a_ppcd_student_with_transitions_loads(tmp_path):
    student = BigGANGenerator(ch=4, z_dim=128, shared_embedding=False, shared_dim=0, hierarchical=False,
                              num_classes=7, sn_eps=1e-8, transition_channels=[50, 20, 10, 5, 3])  # fmt: skip
    torch.save(student.state_dict(), tmp_path / "G.pth")
    loaded = load_generator(tmp_path / "G.pth")
    assert loaded.transition_channels == [50, 20, 10, 5, 3]
    z, y = torch.randn(1, 128), torch.tensor([2])
    with torch.no_grad():
        assert torch.equal(loaded(z, y), student.eval()(z, y))
