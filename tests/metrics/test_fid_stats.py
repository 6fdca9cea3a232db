"""Precomputed FID real statistics (.npz mu/sigma, .pkl mean/cov): same FID as statistics computed
from the same images; the pickle reader rebuilds numpy arrays and nothing else."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from lightning_gancomp.metrics import GenerativeMetrics
from lightning_gancomp.metrics.fid_stats import FidStatisticsError, load_fid_statistics


class PixelStatsFeatures(nn.Module):
    """Deterministic toy extractor: per-channel mean, std and max of the uint8 image (9 features)."""

    num_features = 9
    num_logits = 2
    tag = "pixel-stats"
    description = "test features"

    def forward(self, img_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = img_uint8.float() / 255.0
        features = torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
        return features, torch.zeros(x.shape[0], 2)


def images(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 8, 8, generator=gen) * 1.6 - 0.8 + shift).clamp(-1, 1)


def fid_from_images(real: torch.Tensor, fake: torch.Tensor) -> float:
    metrics = GenerativeMetrics(metrics=("fid",), feature_extractor=PixelStatsFeatures())
    metrics.update(real, real=True)
    metrics.update(fake, real=False)
    return metrics.compute()["fid"]


def real_mean_cov(real: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    from lightning_gancomp.metrics import images_to_uint8

    features = PixelStatsFeatures()(images_to_uint8(real))[0].double().numpy()
    return features.mean(0), np.cov(features, rowvar=False)


@pytest.mark.parametrize("fmt", ["npz_mu_sigma", "npz_mean_cov", "pkl"])
def test_precomputed_statistics_give_the_fid_of_the_same_images(tmp_path, fmt):
    real, fake = images(300, 1), images(200, 2, shift=0.1)
    mean, cov = real_mean_cov(real)
    path = str(tmp_path / ("stats.pkl" if fmt == "pkl" else "stats.npz"))
    if fmt == "npz_mu_sigma":
        np.savez(path, mu=mean, sigma=cov)
    elif fmt == "npz_mean_cov":
        np.savez(path, mean=mean.astype(np.float32), cov=cov.astype(np.float32))
    else:  # rosinality / CAGAN calc_inception.py layout
        with open(path, "wb") as handle:
            pickle.dump({"mean": mean, "cov": cov, "size": 8, "path": "ffhq.lmdb"}, handle)
    metrics = GenerativeMetrics(
        metrics=("fid",), feature_extractor=PixelStatsFeatures(), real_statistics_path=path
    )
    assert not metrics.needs_real_images
    metrics.update(fake, real=False)
    got = metrics.compute()["fid"]
    tolerance = 1e-5 if fmt == "npz_mean_cov" else 1e-9  # float32 file
    assert got == pytest.approx(fid_from_images(real, fake), rel=tolerance, abs=1e-9)
    protocol = metrics.last_protocol
    assert protocol["real_statistics"].startswith(f"precomputed {path}")
    assert protocol["num_generated_images"] == 200 and protocol["num_real_images"] is None
    assert protocol["features"] == "test features"
    if fmt == "pkl":
        assert "size=8" in protocol["real_statistics"]


def test_statistics_file_feeds_fid_while_kid_still_uses_real_images(tmp_path):
    real, fake = images(120, 3), images(90, 4, shift=-0.1)
    mean, cov = real_mean_cov(real)
    np.savez(tmp_path / "s.npz", mu=mean, sigma=cov)
    metrics = GenerativeMetrics(
        metrics=("fid", "kid"),
        feature_extractor=PixelStatsFeatures(),
        real_statistics_path=str(tmp_path / "s.npz"),
        kid_subsets=5,
        kid_subset_size=50,
    )
    assert metrics.needs_real_images
    metrics.update(real[:60], real=True)  # KID's real side; FID must keep the file's statistics
    metrics.update(fake, real=False)
    assert metrics.compute()["fid"] == pytest.approx(fid_from_images(real, fake), rel=1e-9)
    assert metrics.last_protocol["num_real_images"] == 60


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_pickle_reader_refuses_anything_but_arrays(tmp_path):
    bad = tmp_path / "evil.pkl"
    with open(bad, "wb") as handle:
        pickle.dump({"mean": np.zeros(3), "cov": np.eye(3), "x": _Payload()}, handle)
    with pytest.raises(
        FidStatisticsError, match=r"evil.pkl: cannot read .*refusing to load (posix|nt)\.system"
    ):
        load_fid_statistics(str(bad))


def test_statistics_file_errors_are_one_line(tmp_path):
    np.savez(tmp_path / "wrong.npz", mu=np.zeros(3), sigma=np.eye(4))
    with pytest.raises(FidStatisticsError, match="mean has 3 entries but covariance is"):
        load_fid_statistics(str(tmp_path / "wrong.npz"))
    np.savez(tmp_path / "keys.npz", a=np.zeros(3))
    with pytest.raises(FidStatisticsError, match="expected keys mu/sigma or mean/cov"):
        load_fid_statistics(str(tmp_path / "keys.npz"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_fid_statistics(str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "small.npz", mu=np.zeros(3), sigma=np.eye(3))
    metrics = GenerativeMetrics(
        metrics=("fid",),
        feature_extractor=PixelStatsFeatures(),
        real_statistics_path=str(tmp_path / "small.npz"),
    )
    with pytest.raises(FidStatisticsError, match="3 features, but the feature extractor gives 9"):
        metrics.update(images(2, 0), real=False)
