"""ONNX export: every generator family runs in ONNX Runtime with a dynamic batch and matches PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_gancomp.commands.export import DeterministicGenerator, export
from lightning_gancomp.commands.onnx_export import (
    deploy_inputs,
    export_onnx,
    onnx_session,
    run_session,
)
from lightning_gancomp.nets.base import net_payload
from lightning_gancomp.nets.biggan import BigGANGenerator
from lightning_gancomp.nets.pix2pix import ResnetGenerator, UnetGenerator
from lightning_gancomp.nets.sngan import SNGANGenerator
from lightning_gancomp.nets.stylegan2 import StyleGAN2Generator
from lightning_gancomp.nets.stylegan_layers import ModulatedConv2d

pytest.importorskip("onnxruntime")

FAMILIES = {
    "stylegan2": lambda: StyleGAN2Generator(16, z_dim=8, w_dim=8, n_mapping=2, channels=[8, 7, 6, 5, 4, 3]),
    "biggan": lambda: BigGANGenerator(32, ch=4, z_dim=20, num_classes=5, shared_dim=8),
    "sagan": lambda: BigGANGenerator(
        32, ch=4, z_dim=20, num_classes=5, shared_embedding=False, hierarchical=False
    ),
    "sngan": lambda: SNGANGenerator(stream_channels=[8] * 4),
    "resnet": lambda: ResnetGenerator(ngf=4, n_blocks=2),
    "unet": lambda: UnetGenerator(ngf=2, num_downs=5),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_matches_pytorch_in_onnx_runtime_at_any_batch(family, tmp_path):
    torch.manual_seed(0)
    net = FAMILIES[family]().eval()
    path = str(tmp_path / f"{family}.onnx")
    result = export_onnx(net, path, resolution=32, log=lambda _: None)
    assert result.max_abs_diff <= 1e-4
    session = onnx_session(path)
    assert [i.name for i in session.get_inputs()] == result.input_names
    for batch in (2, 5):  # neither batch size was used to write or check the file
        inputs = deploy_inputs(net, batch, resolution=32, seed=10 + batch)
        with torch.no_grad():
            expected = DeterministicGenerator(net)(*inputs).numpy()
        got = run_session(session, inputs)
        assert got.shape == expected.shape and got.shape[0] == batch
        assert np.abs(got - expected).max() <= 1e-4


def test_conditional_file_reads_the_class_label(tmp_path):
    torch.manual_seed(0)
    net = FAMILIES["biggan"]().eval()
    export_onnx(net, str(tmp_path / "g.onnx"), log=lambda _: None)
    session = onnx_session(str(tmp_path / "g.onnx"))
    z = torch.randn(2, net.z_dim)
    one = run_session(session, (z, torch.tensor([0, 0])))
    other = run_session(session, (z, torch.tensor([3, 3])))
    assert np.abs(one - other).max() > 1e-3


def test_stylegan2_file_equals_the_grouped_modulated_conv_and_restores_the_modules(tmp_path):
    """Export uses the per-sample-scaled form; the file still equals the grouped (official) form."""
    torch.manual_seed(1)
    net = FAMILIES["stylegan2"]().eval()
    for m in net.modules():
        if isinstance(m, ModulatedConv2d):
            m.fused = True
    export_onnx(net, str(tmp_path / "g.onnx"), log=lambda _: None)
    assert all(m.fused is True for m in net.modules() if isinstance(m, ModulatedConv2d))
    z = torch.randn(3, 8)
    with torch.no_grad():
        grouped = net(z, randomize_noise=False).numpy()
    assert np.abs(run_session(onnx_session(str(tmp_path / "g.onnx")), (z,)) - grouped).max() <= 1e-4


def test_export_command_writes_the_onnx_file_next_to_the_plain_one(tmp_path):
    torch.manual_seed(0)
    g = FAMILIES["resnet"]()
    torch.save({"gancomp_nets": {"g_ema": net_payload(g)}}, tmp_path / "s.ckpt")
    lines: list[str] = []
    result = export(
        str(tmp_path / "s.ckpt"),
        str(tmp_path / "g.pt"),
        onnx=str(tmp_path / "g.onnx"),
        onnx_resolution=32,
        log=lines.append,
    )
    assert result.onnx == str(tmp_path / "g.onnx") and result.max_diff_onnx <= 1e-4
    assert (tmp_path / "g.onnx").stat().st_size > 0
    assert any(line.startswith(f"ONNX {tmp_path / 'g.onnx'}: inputs ['image']") for line in lines)


@pytest.mark.parametrize("family", ["resnet", "unet"])
def test_image2image_files_take_any_image_size(family, tmp_path):
    torch.manual_seed(0)
    net = FAMILIES[family]().eval()
    export_onnx(net, str(tmp_path / "g.onnx"), resolution=32, log=lambda _: None)
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        expected = net(x).numpy()
    got = run_session(onnx_session(str(tmp_path / "g.onnx")), (x,))
    assert got.shape == (2, 3, 64, 96) and np.abs(got - expected).max() <= 1e-4
