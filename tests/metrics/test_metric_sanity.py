"""Sanity checks that would catch a broken metric (issue: numbers a researcher can believe), on the
embedded faces with the embedded feature network: disjoint real splits are close, noise is far,
sample order does not matter (but scrambled features do), the two precision code paths agree on
the same samples, and KID's std comes from its subsets."""

import pytest
import torch

from lightning_gancomp.data.embedded import EmbeddedImages
from lightning_gancomp.metrics import GenerativeMetrics

N = 160


@pytest.fixture(scope="module")
def faces():
    data = EmbeddedImages(length=2 * N, resolution=32, seed=7)
    return torch.stack([data[i]["real_img"] for i in range(2 * N)])


def _metrics(**kwargs):
    defaults = dict(
        metrics=("fid", "kid", "precision_recall"),
        feature_extractor="embedded",
        kid_subsets=20,
        kid_subset_size=64,
    )
    defaults.update(kwargs)
    return GenerativeMetrics(**defaults)


def _score(real, fake, **kwargs):
    metrics = _metrics(**kwargs)
    for start in range(0, real.shape[0], 40):
        metrics.update(real[start : start + 40], real=True)
    for start in range(0, fake.shape[0], 40):
        metrics.update(fake[start : start + 40], real=False)
    return metrics.compute(), metrics


def test_disjoint_real_splits_are_close_and_noise_is_far(faces):
    split, _ = _score(faces[:N], faces[N:])
    noise, _ = _score(faces[:N], torch.rand_like(faces[N:]) * 2 - 1)
    assert noise["fid"] > 20 * max(split["fid"], 1e-3)
    assert split["precision"] > 0.5 and noise["precision"] < 0.1
    assert split["kid"] < noise["kid"]


def test_fid_is_invariant_to_sample_order_but_not_to_scrambled_features(faces):
    order = torch.randperm(N, generator=torch.Generator().manual_seed(0))
    base, metrics = _score(faces[:N], faces[N:])
    shuffled, _ = _score(faces[:N][order], faces[N:][order.flip(0)])
    assert shuffled["fid"] == pytest.approx(base["fid"], rel=1e-6, abs=1e-6)
    # a metric that mixed up feature dimensions between the two sides would not be a distance
    real = metrics.real_features
    scrambled = metrics.fid.__class__(feature=metrics.fid.inception, sync_on_compute=False)
    scrambled.update(real.double(), real=True)
    scrambled.update(real[:, torch.randperm(real.shape[1])].double(), real=False)
    assert float(scrambled.compute()) > 10 * max(base["fid"], 1e-3)


def test_precision_paths_agree_on_the_same_samples(faces):
    results, metrics = _score(faces[:N], faces[N:])
    fake = faces[N:]
    served = iter(fake.split(40))
    curve = metrics.precision_recall_curve(lambda psi, n: next(served), N, batch_size=40, psis=(1.0,))
    assert curve[0]["precision"] == pytest.approx(results["precision"], abs=1e-9)
    assert curve[0]["recall"] == pytest.approx(results["recall"], abs=1e-9)


def test_untruncated_point_of_the_curve_is_the_evaluation_itself(faces):
    """``precision_psi1.0`` is computed on the evaluation's own samples (CAGAN/DCP test output
    printed it from other latents, and it disagreed with ``precision``); other ψ generate."""
    results, metrics = _score(faces[:N], faces[N:])
    noise = lambda psi, n: torch.rand(n, 3, 32, 32) * 2 - 1  # noqa: E731 - other samples than evaluated
    curve = metrics.precision_recall_curve(noise, N, batch_size=40, psis=(0.9, 1.0))
    assert curve[1]["precision"] == results["precision"] and curve[1]["recall"] == results["recall"]
    assert curve[0]["precision"] < 0.1 < results["precision"]


def test_kid_std_comes_from_its_subsets(faces):
    results, _ = _score(faces[:N], faces[N:])
    assert results["kid_std"] > 0  # 20 random subsets of 64: they disagree
    single, _ = _score(faces[:N], faces[N:], kid_subsets=1)
    assert single["kid_std"] == 0 or single["kid_std"] != single["kid_std"]  # one subset: no spread
