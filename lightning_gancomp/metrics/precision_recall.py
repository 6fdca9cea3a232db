"""Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019), and DCP's curve over truncation ψ.

Paper, Sec. 2: the real manifold is the union of balls around every real feature vector with
radius = distance to its k-th nearest real neighbour (k = 3); precision = fraction of generated
samples inside the real manifold, recall = fraction of real samples inside the generated
manifold (built the same way from generated features). Official behaviour followed
(NVlabs/stylegan2-ada-pytorch ``metrics/precision_recall.py``): Euclidean distances computed
in row × column batches; the k-th neighbour is the (k+1)-th smallest distance because a point's
distance to itself (0) is counted; a sample is inside when ``distance <= radius`` of any ball.

DCP (Chung et al., "Diversity-aware channel pruning", evaluation) plots precision and recall of
the compressed StyleGAN2 for truncation ψ ∈ {0.5, 0.6, ..., 1.0}:
:func:`precision_recall_over_truncation` produces those points from a ψ → images callable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

#: DCP's truncation sweep: ψ from 0.5 to 1.0 in steps of 0.1.
DCP_TRUNCATION_PSIS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def pairwise_distances(rows: torch.Tensor, cols: torch.Tensor, batch_size: int = 10000) -> torch.Tensor:
    """Euclidean distances [N, M] between feature rows [N, D] and cols [M, D], computed in column batches."""
    rows = rows.float()
    return torch.cat([torch.cdist(rows, chunk.float()) for chunk in cols.split(batch_size)], dim=1)


def knn_radii(features: torch.Tensor, k: int = 3, batch_size: int = 10000) -> torch.Tensor:
    """Distance [N] from each feature vector to its k-th nearest neighbour within the same set."""
    if features.shape[0] <= k:
        raise ValueError(f"k={k} nearest neighbours need more than {k} samples, got {features.shape[0]}")
    radii = []
    for row_chunk in features.split(batch_size):
        distances = pairwise_distances(row_chunk, features, batch_size)
        # The (k+1)-th smallest: the smallest is the point's distance to itself.
        radii.append(distances.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def manifold_coverage(
    queries: torch.Tensor, manifold: torch.Tensor, radii: torch.Tensor, batch_size: int = 10000
) -> float:
    """Fraction of ``queries`` inside the union of balls (``manifold[i]``, ``radii[i]``)."""
    inside = []
    for row_chunk in queries.split(batch_size):
        distances = pairwise_distances(row_chunk, manifold, batch_size)
        inside.append((distances <= radii.unsqueeze(0)).any(dim=1))
    return float(torch.cat(inside).float().mean())


def knn_precision_recall(
    real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3, batch_size: int = 10000
) -> tuple[float, float]:
    """(precision, recall) of generated vs real features [N, D], k-NN manifolds (paper: k = 3)."""
    real_radii = knn_radii(real_features, k, batch_size)
    fake_radii = knn_radii(fake_features, k, batch_size)
    precision = manifold_coverage(fake_features, real_features, real_radii, batch_size)
    recall = manifold_coverage(real_features, fake_features, fake_radii, batch_size)
    return precision, recall


@torch.no_grad()
def precision_recall_over_truncation(
    generate: Callable[[float, int], torch.Tensor],
    extract_features: Callable[[torch.Tensor], torch.Tensor],
    real_features: torch.Tensor,
    num_samples: int,
    batch_size: int = 50,
    psis: Sequence[float] = DCP_TRUNCATION_PSIS,
    k: int = 3,
    given: Mapping[float, torch.Tensor] | None = None,
) -> list[dict[str, float]]:
    """Precision/recall of a generator at each truncation ψ (DCP's P&R curve).

    Args:
        generate: ``generate(psi, batch_size) -> images [B, 3, H, W] in [-1, 1]`` at truncation ψ.
        extract_features: images in [-1, 1] → features [B, D] (e.g. ``GenerativeMetrics.extract_features``).
        real_features: features of the real images [N, D] in the same space.
        num_samples: generated images per ψ.
        batch_size: images per ``generate`` call.
        psis: truncation values (default 0.5 … 1.0 step 0.1, as DCP).
        k: neighbourhood size.
        given: ψ -> features of samples already generated at that ψ (used as they are, all of
            them, instead of generating ``num_samples`` new ones).

    Returns:
        One ``{"psi", "precision", "recall"}`` dict per ψ, in order.
    """
    curve = []
    for psi in psis:
        if given and float(psi) in given:
            precision, recall = knn_precision_recall(
                real_features, given[float(psi)].to(real_features.device), k=k
            )
            curve.append({"psi": float(psi), "precision": precision, "recall": recall})
            continue
        fake = []
        remaining = num_samples
        while remaining > 0:
            images = generate(float(psi), min(batch_size, remaining))
            fake.append(extract_features(images).float().to(real_features.device))
            remaining -= images.shape[0]
        precision, recall = knn_precision_recall(real_features, torch.cat(fake)[:num_samples], k=k)
        curve.append({"psi": float(psi), "precision": precision, "recall": recall})
    return curve
