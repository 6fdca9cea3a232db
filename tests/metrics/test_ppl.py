"""PPL: closed-form values on linear toy generators, slerp, percentile filtering, crop."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_gancomp.metrics import perceptual_path_length, ppl_distances, slerp
from lightning_gancomp.metrics.ppl import box_downsample_to_256, crop_face, filtered_mean


class LinearToyGenerator(nn.Module):
    """StyleGAN2-contract toy: ``img = Q w + noise`` with Q orthonormal (an isometry W → image space).

    ``mapping`` is either the identity (to test Z-space slerp) or the projection onto the sphere
    of radius sqrt(d) (to test W-space lerp). The noise maps are added at full strength, so a pair
    that did not share its noise would have a path length of order 1/ε².
    """

    def __init__(self, z_dim: int = 128, resolution: int = 8, normalize_mapping: bool = False) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.resolution = resolution
        self.normalize_mapping = normalize_mapping
        q, _ = torch.linalg.qr(
            torch.randn(3 * resolution * resolution, z_dim, generator=torch.Generator().manual_seed(9))
        )
        self.q = nn.Parameter(q, requires_grad=False)  # [3·R·R, z_dim], orthonormal columns

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        if self.normalize_mapping:
            return z / z.norm(dim=1, keepdim=True) * math.sqrt(self.z_dim)
        return z

    def make_noise(self) -> list[torch.Tensor]:
        return [torch.randn(1, 1, self.resolution, self.resolution)]

    def forward(self, styles, input_is_latent=False, noise=None, randomize_noise=True):
        assert input_is_latent and not randomize_noise and isinstance(styles, list)
        w = styles[0]
        img = (w @ self.q.T).reshape(-1, 3, self.resolution, self.resolution)
        return img + noise[0]


def squared_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return ((a - b) ** 2).sum(dim=(1, 2, 3))


def test_slerp_endpoints_and_constant_speed():
    a, b = torch.randn(5, 16), torch.randn(5, 16)
    a_unit, b_unit = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    assert torch.allclose(slerp(a, b, torch.zeros(5, 1)), a_unit, atol=1e-6)
    assert torch.allclose(slerp(a, b, torch.ones(5, 1)), b_unit, atol=1e-5)
    angle = torch.acos((a_unit * b_unit).sum(1))
    mid = slerp(a, b, torch.full((5, 1), 0.5))
    assert torch.allclose(torch.acos((mid * a_unit).sum(1).clamp(-1, 1)), angle / 2, atol=1e-4)
    assert torch.allclose(mid.norm(dim=1), torch.ones(5), atol=1e-6)


def test_filtered_mean_uses_lower_and_higher_percentiles():
    values = torch.arange(1000, dtype=torch.float64)
    # 1st percentile of 0..999 = 9.99 -> "lower" = 9; 99th = 989.01 -> "higher" = 990.
    assert filtered_mean(values) == pytest.approx((9 + 990) / 2)
    # 4 outliers in 500: the 99th percentile (position 494.01 -> "higher" = index 495) is still 1.
    with_outliers = torch.cat([torch.full((4,), 1e9), torch.ones(496)])
    assert filtered_mean(with_outliers) == pytest.approx(1.0)


def test_crop_and_downsample_follow_nvlabs():
    img = torch.arange(16 * 16, dtype=torch.float32).reshape(1, 1, 16, 16).expand(2, 3, 16, 16)
    assert torch.equal(crop_face(img), img[:, :, 6:14, 4:12])
    big = torch.randn(1, 3, 512, 512)
    assert torch.allclose(
        box_downsample_to_256(big, 512), big.reshape(1, 3, 256, 2, 256, 2).mean((3, 5)), atol=1e-6
    )
    assert box_downsample_to_256(big[:, :, :256, :256], 256).shape[-1] == 256


def test_ppl_in_w_space_with_lerp_matches_closed_form():
    # w on the sphere of radius sqrt(d): |w1 - w0|^2 = 2d(1 - cos) with E[cos] = 0 -> PPL = 2d.
    generator = LinearToyGenerator(normalize_mapping=True)
    ppl = perceptual_path_length(generator, num_samples=400, space="w", sampling="end", distance=squared_l2)
    assert ppl == pytest.approx(2 * generator.z_dim, rel=0.03)
    # Linear path: the value does not depend on t.
    full = perceptual_path_length(generator, num_samples=400, space="w", sampling="full", distance=squared_l2)
    assert full == pytest.approx(2 * generator.z_dim, rel=0.03)


@pytest.mark.parametrize("sampling", ["end", "full"])
def test_ppl_in_z_space_with_slerp_matches_closed_form(sampling):
    # Unit-speed great-circle path: |d slerp / dt| = angle(z0, z1) ~ pi/2 in 128-d -> PPL = pi^2/4.
    generator = LinearToyGenerator(normalize_mapping=False)
    ppl = perceptual_path_length(
        generator, num_samples=300, space="z", sampling=sampling, distance=squared_l2
    )
    assert ppl == pytest.approx(math.pi**2 / 4, rel=0.02)


def test_ppl_distances_are_per_sample_and_seeded():
    generator = LinearToyGenerator(normalize_mapping=True)
    first = ppl_distances(generator, squared_l2, num_samples=10, batch_size=4, seed=3)
    again = ppl_distances(generator, squared_l2, num_samples=10, batch_size=4, seed=3)
    other = ppl_distances(generator, squared_l2, num_samples=10, batch_size=4, seed=4)
    assert first.shape == (10,)
    assert torch.equal(first, again) and not torch.equal(first, other)
    with pytest.raises(ValueError, match="space"):
        ppl_distances(generator, squared_l2, num_samples=2, space="x")


def test_ppl_and_mean_l1_on_the_stylegan2_generator_contract():
    from lightning_gancomp.metrics import mean_l1_distance
    from lightning_gancomp.nets.stylegan2 import StyleGAN2Generator

    def tiny() -> StyleGAN2Generator:
        return StyleGAN2Generator(resolution=16, z_dim=16, w_dim=16, n_mapping=2, channels=[16] * 6).eval()

    teacher, student = tiny(), tiny()
    with torch.no_grad():  # noise strengths start at 0; make the noise maps matter
        for name, parameter in teacher.named_parameters():
            if name.endswith("noise.weight"):
                parameter.fill_(0.5)
    student.load_state_dict(teacher.state_dict())
    for space in ("w", "z"):
        first = perceptual_path_length(teacher, num_samples=6, batch_size=3, space=space, distance=squared_l2)
        again = perceptual_path_length(teacher, num_samples=6, batch_size=3, space=space, distance=squared_l2)
        # Shared noise within each pair keeps the value finite (unshared noise would be ~|noise|^2/eps^2).
        assert first == again and 0.0 < first < 1e5
    assert mean_l1_distance(teacher, student, num_samples=6, batch_size=3, share_noise=True) == 0.0
    assert mean_l1_distance(teacher, student, num_samples=6, batch_size=3) > 0.0  # official: own noise
