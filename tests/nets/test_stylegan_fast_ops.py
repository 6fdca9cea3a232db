"""The fast StyleGAN2 ops (depthwise FIR filters, per-call modulated-conv form) equal the slow ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lightning_gancomp.nets.stylegan2 import StyleGAN2Generator
from lightning_gancomp.nets.stylegan_layers import (
    Blur,
    Downsample,
    ModulatedConv2d,
    Upsample,
    fused_leaky_relu,
    make_kernel,
    upfirdn2d,
)


def single_channel_upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int, down: int, pad) -> torch.Tensor:
    """The previous implementation: every channel as its own [N·C, 1, H, W] image, explicit F.pad."""
    px0, px1, py0, py1 = pad if len(pad) == 4 else (pad[0], pad[1], pad[0], pad[1])
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    out = x.reshape(n * c, 1, h, w)
    if up > 1:
        out = F.conv_transpose2d(out, kernel.view(1, 1, kh, kw), stride=up)
        out = F.pad(out, [px0 - kw + 1, px1 - kw + up, py0 - kh + 1, py1 - kh + up])
        out = out[:, :, ::down, ::down]
    else:
        out = F.pad(out, [px0, px1, py0, py1])
        out = F.conv2d(out, torch.flip(kernel, [0, 1]).view(1, 1, kh, kw), stride=down)
    return out.reshape(n, c, out.shape[2], out.shape[3])


@pytest.mark.parametrize(
    "up,down,pad",
    [
        (1, 1, (1, 1)),  # blur after the upsampling conv (symmetric: conv padding)
        (1, 2, (2, 2)),  # discriminator downsampling blur
        (2, 1, (2, 1)),  # ToRGB skip upsampling (symmetric crop of the transposed conv)
        (1, 1, (2, 1)),  # asymmetric: explicit pad
        (2, 1, (0, -1)),  # asymmetric crop
        (2, 2, (1, 2, 0, 3)),  # four different pads, up and down
        (1, 2, (0, 0, 1, 1)),
    ],
)
def test_depthwise_upfirdn2d_equals_single_channel_form(up, down, pad):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, 6, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(4, 3, dtype=torch.float64)  # asymmetric: catches flips and swapped axes
    ours = upfirdn2d(x, kernel, up=up, down=down, pad=pad)
    reference = single_channel_upfirdn2d(x, kernel, up, down, pad)
    assert ours.shape == reference.shape
    assert torch.allclose(ours, reference, atol=1e-10)
    probe = torch.randn_like(ours)
    (g_ours,) = torch.autograd.grad((ours * probe).sum(), x)
    (g_ref,) = torch.autograd.grad((reference * probe).sum(), x)
    assert torch.allclose(g_ours, g_ref, atol=1e-10)


def test_stylegan2_resampling_modules_equal_single_channel_form_in_float32():
    torch.manual_seed(1)
    x = torch.randn(2, 6, 9, 9)
    taps = (1, 3, 3, 1)
    blur = Blur(taps, pad=(1, 1), upsample_factor=2)
    up, down = Upsample(taps), Downsample(taps)
    assert (blur(x) - single_channel_upfirdn2d(x, blur.kernel, 1, 1, (1, 1))).abs().max() <= 1e-5
    assert (up(x) - single_channel_upfirdn2d(x, up.kernel, 2, 1, up.pad)).abs().max() <= 1e-5
    assert (down(x) - single_channel_upfirdn2d(x, down.kernel, 1, 2, down.pad)).abs().max() <= 1e-5
    assert up(x).shape == (2, 6, 18, 18) and down(x).shape == (2, 6, 4, 4)


def test_upfirdn2d_is_twice_differentiable():
    """R1 and path-length regularisation differentiate through the filters twice."""
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64, requires_grad=True)
    kernel = make_kernel([1, 3, 3, 1]).double()
    assert torch.autograd.gradgradcheck(lambda t: upfirdn2d(t, kernel, up=2, pad=(2, 1)), (x,))
    assert torch.autograd.gradgradcheck(lambda t: upfirdn2d(t, kernel, down=2, pad=(1, 1)), (x,))


def test_grouped_or_shared_choice_per_call():
    """Grouped where the per-sample weight (out·k²) is smaller than the map (H·W), else shared."""
    conv = ModulatedConv2d(8, 16, 3, style_dim=4).eval()
    assert not conv.prefers_grouped(torch.zeros(2, 8, 8, 8))  # 16·9 = 144 > 64
    assert conv.prefers_grouped(torch.zeros(2, 8, 16, 16))  # 144 < 256
    calls: list[str] = []
    conv._forward_grouped = lambda x, s: calls.append("grouped")  # type: ignore[method-assign]
    conv._forward_shared = lambda x, s: calls.append("shared")  # type: ignore[method-assign]
    style = torch.zeros(2, 4)
    conv(torch.zeros(2, 8, 8, 8), style)
    conv(torch.zeros(2, 8, 16, 16), style)
    conv.train()(torch.zeros(2, 8, 16, 16), style)  # training: always shared (faster backward)
    conv.fused = True
    conv(torch.zeros(2, 8, 8, 8), style)  # an explicit choice wins
    assert calls == ["shared", "grouped", "shared", "grouped"]


@pytest.mark.parametrize("upsample", [False, True])
def test_both_forms_agree_where_the_rule_switches(upsample):
    torch.manual_seed(2)
    conv = ModulatedConv2d(6, 5, 3, style_dim=4, upsample=upsample).eval()
    style = torch.randn(3, 4)
    for size in (4, 8):  # 45 > 16 (shared) and 45 < 64 (grouped)
        x = torch.randn(3, 6, size, size)
        conv.fused = None
        auto = conv(x, style)
        conv.fused = not conv.prefers_grouped(x)
        assert torch.allclose(auto, conv(x, style), atol=1e-5)


def test_generator_output_is_unchanged_by_the_fast_forms():
    """Whole tiny generator: eval (per-call choice) vs forced grouped vs forced shared."""
    torch.manual_seed(3)
    g = StyleGAN2Generator(32, z_dim=16, w_dim=16, n_mapping=2, channels=[12, 10, 9, 8, 7, 6, 5, 4]).eval()
    z = torch.randn(2, 16)
    outs = []
    for fused in (None, True, False):
        for m in g.modules():
            if isinstance(m, ModulatedConv2d):
                m.fused = fused
        with torch.no_grad():
            outs.append(g(z, randomize_noise=False))
    assert (outs[0] - outs[1]).abs().max() <= 1e-5 and (outs[0] - outs[2]).abs().max() <= 1e-5


def test_fused_leaky_relu_equals_bias_activation_gain_in_three_steps():
    torch.manual_seed(4)
    x = torch.randn(2, 5, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(5, dtype=torch.float64, requires_grad=True)
    reference = F.leaky_relu(x + bias.view(1, -1, 1, 1), 0.2) * 2**0.5
    out = fused_leaky_relu(x, bias)
    assert torch.allclose(out, reference, atol=1e-12)
    with torch.no_grad():  # in-place path: same numbers, input untouched
        before = x.clone()
        assert torch.allclose(fused_leaky_relu(x, bias), reference, atol=1e-12)
        assert torch.equal(x, before)
    assert torch.autograd.gradgradcheck(lambda a, b: fused_leaky_relu(a, b), (x, bias))
    flat = torch.randn(4, 6, dtype=torch.float64)
    assert torch.allclose(fused_leaky_relu(flat, None), F.leaky_relu(flat, 0.2) * 2**0.5, atol=1e-12)
