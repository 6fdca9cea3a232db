"""R1 and path length penalties against closed forms."""

import pytest
import torch

from lightning_gancomp.losses import PathLengthPenalty, R1Penalty


def test_r1_of_a_linear_discriminator_is_the_weight_norm():
    weight = torch.randn(3, 8, 8)
    real = torch.randn(5, 3, 8, 8, requires_grad=True)
    d_real = (real * weight).flatten(1).sum(1)  # D(x) = <w, x>: grad = w for every sample
    loss, value = R1Penalty(gamma=10.0)(real, d_real)
    assert value.item() == pytest.approx(weight.square().sum().item(), rel=1e-5)
    assert loss.item() == pytest.approx(5.0 * value.item(), rel=1e-6)


def test_r1_is_differentiable_for_the_discriminator():
    weight = torch.randn(3, 4, 4, requires_grad=True)
    real = torch.randn(2, 3, 4, 4, requires_grad=True)
    d_real = ((real * weight).flatten(1).sum(1)) ** 2
    loss, _ = R1Penalty()(real, d_real)
    loss.backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0


def test_path_length_of_a_scaled_identity():
    # img = c * W+ laid out as an image [B, 1, n_latent, w_dim]: J^T y = c * y, so with
    # y ~ N(0, 1/(HW)) each path length is c * sqrt(sum_w y^2 averaged over latents) ≈ c / sqrt(n_latent)
    torch.manual_seed(0)
    scale, n_latent, w_dim = 3.0, 4, 256
    latents = torch.randn(64, n_latent, w_dim, requires_grad=True)
    img = scale * latents.unsqueeze(1)
    penalty = PathLengthPenalty(weight=2.0, decay=0.01)
    loss, value, mean_length = penalty(img, latents)
    assert mean_length.item() == pytest.approx(scale / n_latent**0.5, rel=0.05)
    # running mean starts at 0 and moves by decay toward the batch mean
    assert penalty.mean_path_length.item() == pytest.approx(0.01 * mean_length.item(), rel=1e-5)
    assert loss.item() == pytest.approx(2.0 * value.item())


def test_path_length_running_mean_is_a_buffer_saved_in_state_dict():
    penalty = PathLengthPenalty()
    penalty.mean_path_length.fill_(1.5)
    restored = PathLengthPenalty()
    restored.load_state_dict(penalty.state_dict())
    assert restored.mean_path_length.item() == 1.5


def test_path_length_rejects_bad_shrink():
    with pytest.raises(ValueError, match="batch_shrink"):
        PathLengthPenalty(batch_shrink=0)
