"""Improved precision/recall (Kynkäänniemi et al. 2019) on planted point clouds, and the ψ curve."""

from __future__ import annotations

import pytest
import torch

from lightning_gancomp.metrics import (
    DCP_TRUNCATION_PSIS,
    knn_precision_recall,
    precision_recall_over_truncation,
)
from lightning_gancomp.metrics.precision_recall import knn_radii, pairwise_distances


def test_pairwise_distances_in_batches_equal_direct():
    a, b = torch.randn(7, 3), torch.randn(11, 3)
    direct = ((a[:, None] - b[None]) ** 2).sum(-1).sqrt()
    assert torch.allclose(pairwise_distances(a, b, batch_size=4), direct, atol=1e-5)


def test_knn_radius_is_kth_neighbour_excluding_self():
    points = torch.tensor([[0.0], [1.0], [3.0], [6.0], [10.0]])
    # k = 1: nearest other point; k = 3: third nearest other point.
    assert knn_radii(points, k=1).tolist() == [1.0, 1.0, 2.0, 3.0, 4.0]
    assert knn_radii(points, k=3, batch_size=2).tolist() == [6.0, 5.0, 3.0, 5.0, 9.0]
    with pytest.raises(ValueError, match="need more than 3 samples"):
        knn_radii(points[:3], k=3)


def test_identical_sets_have_precision_and_recall_one():
    points = torch.randn(200, 8)
    assert knn_precision_recall(points, points.clone(), k=3) == (1.0, 1.0)


def test_disjoint_far_sets_have_precision_and_recall_zero():
    real = torch.randn(150, 8)
    fake = torch.randn(120, 8) + 100.0
    assert knn_precision_recall(real, fake, k=3) == (0.0, 0.0)


def test_generated_subset_covering_one_mode_has_full_precision_and_partial_recall():
    # Real data: two far-apart clusters; generator: samples of the first cluster only (mode drop).
    gen = torch.Generator().manual_seed(0)
    cluster_a = torch.randn(100, 4, generator=gen)
    cluster_b = torch.randn(100, 4, generator=gen) + 50.0
    real = torch.cat([cluster_a, cluster_b])
    fake = cluster_a[:60]
    precision, recall = knn_precision_recall(real, fake, k=3, batch_size=32)
    assert precision == 1.0
    assert recall <= 0.5 and recall > 0.1  # cluster B never covered; part of A covered


def test_precision_recall_over_truncation_calls_generator_per_psi():
    gen = torch.Generator().manual_seed(1)
    real_features = torch.randn(120, 3, generator=gen)
    calls: list[tuple[float, int]] = []

    def generate(psi: float, batch_size: int) -> torch.Tensor:
        # "Images" whose features shrink toward the mean with psi, as truncation does.
        calls.append((psi, batch_size))
        return psi * torch.randn(batch_size, 3, generator=gen)

    curve = precision_recall_over_truncation(
        generate, extract_features=lambda x: x, real_features=real_features, num_samples=50, batch_size=20
    )
    assert [p["psi"] for p in curve] == list(DCP_TRUNCATION_PSIS) == [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert [b for _, b in calls[:3]] == [20, 20, 10]
    # Truncation trades recall for precision: recall grows with psi.
    assert curve[0]["recall"] < curve[-1]["recall"]
    assert curve[0]["precision"] >= 0.9
