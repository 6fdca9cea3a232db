"""Complexity counters: parameters, MACs in both conventions, latency."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_gancomp.metrics.complexity import (
    cagan_stylegan2_macs,
    count_parameters,
    example_inputs_for,
    measure_latency,
    stylegan2_net_shape,
    torchprofile_macs,
)
from lightning_gancomp.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

CAGAN_07 = [154] * 10 + [77, 77, 39, 39]


def test_torchprofile_macs_of_known_layers():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    # output elements x Cin x k^2 (bias not counted)
    assert torchprofile_macs(conv, torch.randn(1, 3, 16, 16)) == 8 * 16 * 16 * 3 * 9
    grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
    assert torchprofile_macs(grouped, torch.randn(2, 8, 5, 5)) == 2 * 8 * 5 * 5 * 2 * 9
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5))
    assert torchprofile_macs(net, torch.randn(3, 12)) == 3 * 12 * 5
    net.train()
    torchprofile_macs(net, torch.randn(3, 12))
    assert net.training  # mode restored


def test_cagan_macs_reproduce_official_constants():
    with torch.device("meta"):
        g256, g1024 = StyleGAN2Generator(256), StyleGAN2Generator(1024)
        student = StyleGAN2Generator(256, channels=CAGAN_07)
    assert stylegan2_net_shape(g256) == [512] * 10 + [256, 256, 128, 128]
    # GENERATOR_FLOPS_256PX / _1024PX in CAGAN's Util/Calculators.py
    assert cagan_stylegan2_macs(g256) == 45_124_673_536
    assert cagan_stylegan2_macs(g1024) == 74_266_894_336
    assert cagan_stylegan2_macs(student) == 4_123_578_080
    assert count_parameters(student) == 5_573_364
    parts = cagan_stylegan2_macs(g256, detail=True)
    assert parts["mapping"] == 8 * 512 * 512
    # one modulation linear per conv input (13) and per ToRGB (7)
    assert parts["modulation"] == 512 * (sum(g256.channels[:-1]) + sum(g256.channels[1::2]))
    assert parts["to_rgb"] == 3 * sum(
        c * (4 * 2 ** (i // 2)) ** 2 for i, c in enumerate(g256.channels) if i % 2
    )
    assert sum(v for k, v in parts.items() if k != "total") == parts["total"]
    # a rosinality-layout state dict works as input too
    assert cagan_stylegan2_macs(student.state_dict()) == 4_123_578_080


def test_cagan_macs_first_conv_by_hand():
    g = StyleGAN2Generator(8, z_dim=4, w_dim=4, n_mapping=1, channels=[2, 3, 5, 7])
    parts = cagan_stylegan2_macs(g, detail=True)
    # conv1 2->3 at 4 px; convs.0 3->5 counted at its input 4 px; convs.1 5->7 at 8 px
    assert parts["conv"] == 2 * 3 * 9 * 16 + 3 * 5 * 9 * 16 + 5 * 7 * 9 * 64
    assert parts["to_rgb"] == 3 * 3 * 16 + 7 * 3 * 64
    assert parts["mapping"] == 16 and parts["modulation"] == 4 * (2 + 3 + 5 + 3 + 7)


def test_cagan_macs_rejects_other_networks():
    with pytest.raises(TypeError, match="StyleGAN2 generator"):
        cagan_stylegan2_macs(nn.Linear(2, 2))


def test_torchprofile_counts_the_stylegan2_forward():
    g = StyleGAN2Generator(16, z_dim=8, w_dim=8, n_mapping=2, channels=[4, 4, 4, 4, 4, 4])
    (z,) = example_inputs_for(g)
    assert z.shape == (1, 8)
    macs = torchprofile_macs(g, z)
    # the traced graph holds every conv CAGAN counts plus blur/modulation/demodulation work
    assert macs > cagan_stylegan2_macs(g)
    assert macs == torchprofile_macs(g, z)


def test_example_inputs_for_discriminator_and_batch():
    d = StyleGAN2Discriminator(16, channels=[2, 2, 2])
    (img,) = example_inputs_for(d, batch_size=4)
    assert img.shape == (4, 3, 16, 16)
    g = StyleGAN2Generator(16, z_dim=8, w_dim=8, n_mapping=1, channels=[2] * 6)
    a, b = example_inputs_for(g, batch_size=3), example_inputs_for(g, batch_size=3)
    assert torch.equal(a[0], b[0])  # seeded
    with pytest.raises(TypeError, match="declares no task"):
        example_inputs_for(nn.Linear(2, 2))


def test_measure_latency_fields():
    g = StyleGAN2Generator(16, z_dim=8, w_dim=8, n_mapping=1, channels=[4] * 6).train()
    result = measure_latency(g, example_inputs_for(g), device="cpu", batch_size=3, warmup=1, repeats=3)
    assert result["batch_size"] == 3 and result["device"] == "cpu" and result["repeats"] == 3
    assert 0 < result["min_ms"] <= result["median_ms"] <= result["max_ms"]
    assert result["per_sample_ms"] == pytest.approx(result["median_ms"] / 3)
    assert result["std_ms"] >= 0
    assert g.training  # mode restored
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(g, example_inputs_for(g), repeats=0)
