"""LPIPS construction (offline error), LPIPS diversity, teacher–student mean L1 distance."""

from __future__ import annotations

import math
import urllib.error

import pytest
import torch
from torch import nn

from lightning_gancomp.metrics import (
    FeatureExtractorUnavailableError,
    lpips_diversity,
    make_lpips,
    mean_l1_distance,
    mean_lpips,
)
from lightning_gancomp.nets.base import GanNet


@pytest.fixture(scope="module")
def lpips_alex() -> nn.Module:
    return make_lpips("alex", pretrained_backbone=False)


class NoisyLinearGenerator(GanNet):
    """Unconditional toy with StyleGAN2-style noise inputs: ``img = tanh(A z) + noise_strength · noise``;
    it declares itself style-based (the contract under which generators take noise maps)."""

    style_based = True

    def __init__(self, z_dim: int = 6, resolution: int = 4, offset: float = 0.0, noise_strength: float = 0.0):
        super().__init__()
        self.z_dim = z_dim
        self.resolution = resolution
        self.linear = nn.Linear(z_dim, 3 * resolution * resolution, bias=False)
        torch.nn.init.normal_(self.linear.weight, generator=torch.Generator().manual_seed(1))
        self.offset = offset
        self.noise_strength = noise_strength

    def make_noise(self) -> list[torch.Tensor]:
        return [torch.randn(1, 1, self.resolution, self.resolution)]

    def forward(self, z, noise=None, randomize_noise=True):
        if noise is None or randomize_noise:
            noise = self.make_noise()
        img = torch.tanh(self.linear(z)).reshape(-1, 3, self.resolution, self.resolution)
        return img + self.offset + self.noise_strength * noise[0]


def test_make_lpips_random_backbone_is_frozen_and_zero_on_identical_images(lpips_alex):
    assert not lpips_alex.training
    assert all(not p.requires_grad for p in lpips_alex.parameters())
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    assert mean_lpips(images, images.clone(), lpips_alex) == pytest.approx(0.0, abs=1e-6)
    assert mean_lpips(images, images.flip(0), lpips_alex, batch_size=3) > 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        mean_lpips(images, images[:2], lpips_alex)


def test_make_lpips_offline_backbone_failure_is_one_clear_line(monkeypatch):
    import torchvision.models._api as tv_api

    def _offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", _offline)
    with pytest.raises(FeatureExtractorUnavailableError) as info:
        make_lpips("alex", pretrained_backbone=True)
    message = str(info.value)
    assert "\n" not in message and "alexnet-owt-7be5be79.pth" in message and "checkpoints" in message
    with pytest.raises(ValueError, match="'vgg' or 'alex'"):
        make_lpips("squeeze")


def test_lpips_diversity_is_zero_for_a_collapsed_generator_and_positive_otherwise(lpips_alex):
    fixed = torch.rand(1, 3, 32, 32) * 2 - 1
    collapsed = lpips_diversity(lambda n: fixed.expand(n, 3, 32, 32), lpips_alex, num_pairs=5, batch_size=2)
    assert collapsed == pytest.approx(0.0, abs=1e-6)
    diverse = lpips_diversity(
        lambda n: torch.rand(n, 3, 32, 32) * 2 - 1, lpips_alex, num_pairs=5, batch_size=2
    )
    assert diverse > 0.01


def test_mean_l1_distance_known_value_and_shared_noise():
    teacher = NoisyLinearGenerator(noise_strength=0.3)
    same = NoisyLinearGenerator(noise_strength=0.3)
    shifted = NoisyLinearGenerator(offset=0.25, noise_strength=0.3)
    shared = dict(num_samples=20, batch_size=8, share_noise=True)
    # Same weights and shared noise maps: identical images.
    assert mean_l1_distance(teacher, same, **shared) == pytest.approx(0.0, abs=1e-7)
    # A constant offset c gives exactly |c| per pixel.
    assert mean_l1_distance(teacher, shifted, **shared) == pytest.approx(0.25, abs=1e-6)


def test_mean_l1_distance_default_is_the_official_independent_noise():
    # Official get_recon.py: each generator draws its own noise -> with noise strength s, identical
    # nets differ by s·|n1 − n2| per pixel, E = s·2/sqrt(pi) (n1 − n2 ~ N(0, 2)).
    teacher, same = NoisyLinearGenerator(noise_strength=0.3), NoisyLinearGenerator(noise_strength=0.3)
    first = mean_l1_distance(teacher, same, num_samples=400, batch_size=64)
    assert first == pytest.approx(0.3 * 2 / math.sqrt(math.pi), rel=0.05)
    assert mean_l1_distance(teacher, same, num_samples=400, batch_size=64) == first  # seeded


def test_mean_l1_distance_rejects_mismatched_latents():
    with pytest.raises(ValueError, match="z_dim"):
        mean_l1_distance(NoisyLinearGenerator(z_dim=4), NoisyLinearGenerator(z_dim=5), num_samples=2)


class _ClassImages(GanNet):
    """``G(z, y)``: class 0 ignores z (no diversity), class 1 is z-driven noise."""

    task = "conditional"

    def __init__(self) -> None:
        super().__init__()
        self.z_dim, self.num_classes = 4, 2

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        varied = torch.tanh(z.repeat(1, 3 * 64 * 64 // 4)).view(-1, 3, 64, 64)
        return torch.where((y == 1).view(-1, 1, 1, 1), varied, torch.zeros_like(varied))


def test_class_lpips_diversity_is_zero_for_a_class_without_variety_and_seeded(lpips_alex):
    from lightning_gancomp.metrics import class_lpips_diversity

    net = _ClassImages()
    both = class_lpips_diversity(net, lpips_alex, num_classes=2, pairs_per_class=4, batch_size=2, seed=1)
    assert class_lpips_diversity(net, lpips_alex, num_classes=1, pairs_per_class=4) == 0.0  # class 0 only
    assert both > 0.0
    assert (
        class_lpips_diversity(net, lpips_alex, num_classes=2, pairs_per_class=4, batch_size=2, seed=1) == both
    )
