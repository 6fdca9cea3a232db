"""Adversarial objectives against hand-computed values."""

import math

import pytest
import torch

from lightning_gancomp.losses import HingeLoss, LSGANLoss, NonSaturatingLoss


def test_non_saturating_matches_logistic_formulas():
    d_real = torch.tensor([2.0, -1.0])
    d_fake = torch.tensor([0.5, -3.0])
    loss = NonSaturatingLoss()
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
    expected_g = (softplus(-0.5) + softplus(3.0)) / 2
    expected_d = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2
    assert loss.generator_loss(d_fake).item() == pytest.approx(expected_g, rel=1e-6)
    assert loss.discriminator_loss(d_real, d_fake).item() == pytest.approx(expected_d, rel=1e-6)
    # at D = 0 everywhere the D loss is 2 log 2 (the GAN value at the equilibrium)
    zeros = torch.zeros(4)
    assert loss.discriminator_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2), rel=1e-6)


def test_non_saturating_equals_bce_and_pix2pix_halves_d():
    d_real, d_fake = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    vanilla = NonSaturatingLoss(discriminator_scale=0.5)
    expected = 0.5 * (bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake)))
    assert torch.allclose(vanilla.discriminator_loss(d_real, d_fake), expected, atol=1e-6)
    assert torch.allclose(vanilla.generator_loss(d_fake), bce(d_fake, torch.ones_like(d_fake)), atol=1e-6)


def test_hinge_values():
    loss = HingeLoss()
    d_real = torch.tensor([2.0, 0.5])  # relu(1 - x): 0, 0.5
    d_fake = torch.tensor([-2.0, 0.25])  # relu(1 + x): 0, 1.25
    assert loss.discriminator_loss(d_real, d_fake).item() == pytest.approx(0.25 + 0.625)
    assert loss.generator_loss(d_fake).item() == pytest.approx(0.875)


def test_lsgan_values_and_gradient_direction():
    loss = LSGANLoss(discriminator_scale=0.5)
    d_real = torch.tensor([1.0, 0.0])
    d_fake = torch.tensor([0.0, 2.0], requires_grad=True)
    assert loss.discriminator_loss(d_real, d_fake.detach()).item() == pytest.approx(0.5 * (0.5 + 2.0))
    g = loss.generator_loss(d_fake)
    assert g.item() == pytest.approx((1.0 + 1.0) / 2)
    g.backward()
    # the generator pushes D(fake) towards the real target 1
    assert d_fake.grad[0] < 0 < d_fake.grad[1]
