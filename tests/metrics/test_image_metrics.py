"""GenerativeMetrics: conversions, FID/KID/IS known values, real-statistics cache, Inception loading."""

from __future__ import annotations

import inspect
import urllib.error

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from lightning_gancomp.metrics import (
    FeatureExtractorUnavailableError,
    GenerativeMetrics,
    images_to_uint8,
    images_to_unit_range,
)
from lightning_gancomp.metrics.features import INCEPTION_WEIGHTS_FILE
from lightning_gancomp.metrics.image_metrics import REAL_STATS_FORMAT, real_stats_cache_path


class QueuedFeatures(nn.Module):
    """Feature extractor that returns pre-set (features, logits) batches in order, ignoring the images."""

    def __init__(self, batches: list[tuple[torch.Tensor, torch.Tensor]], tag: str = "queued") -> None:
        super().__init__()
        self.batches = list(batches)
        self.num_features = batches[0][0].shape[1]
        self.num_logits = batches[0][1].shape[1]
        self.tag = tag
        self.description = "test features"
        self.calls = 0

    def forward(self, img_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        assert img_uint8.dtype == torch.uint8
        self.calls += 1
        return self.batches.pop(0)


def _images(n: int) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8) * 2 - 1


def _feed(metrics: GenerativeMetrics, real: torch.Tensor | None, fake: torch.Tensor) -> dict[str, float]:
    if real is not None:
        metrics.update(_images(real.shape[0]), real=True)
    metrics.update(_images(fake.shape[0]), real=False)
    return metrics.compute()


def _frechet_distance_numpy(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    sqrt = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * sqrt))


# ---------------------------------------------------------------- conversions
def test_images_to_uint8_is_exact_quantisation_of_minus_one_one():
    levels = torch.arange(256, dtype=torch.float64)
    img = (levels / 127.5 - 1.0).float().reshape(1, 1, 16, 16).expand(1, 3, 16, 16)
    assert torch.equal(images_to_uint8(img)[0, 0].flatten().long(), levels.long())
    special = torch.tensor([-1.0, 0.0, 1.0, -3.0, 5.0, 0.999]).reshape(1, 1, 2, 3).expand(1, 3, 2, 3)
    assert images_to_uint8(special)[0, 0].flatten().tolist() == [0, 128, 255, 0, 255, 255]
    # NVlabs' conversion: (x * 127.5 + 128).clamp(0, 255).to(uint8)
    x = torch.rand(2, 3, 5, 5) * 2.4 - 1.2
    assert torch.equal(images_to_uint8(x), (x * 127.5 + 128).clamp(0, 255).to(torch.uint8))
    with pytest.raises(TypeError, match="float images"):
        images_to_uint8(torch.zeros(1, 3, 2, 2, dtype=torch.uint8))


def test_images_to_unit_range():
    x = torch.tensor([-1.0, 0.0, 1.0, -2.0, 0.5]).reshape(1, 1, 1, 5)
    assert images_to_unit_range(x).flatten().tolist() == [0.0, 0.5, 1.0, 0.0, 0.75]


# ---------------------------------------------------------------- FID / KID / IS values
def _kid_numpy(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (x.y / d + 1)^3 (Binkowski et al. 2018)."""
    d, m = x.shape[1], x.shape[0]
    k_xx, k_yy, k_xy = (((a @ b.T) / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    off_diagonal = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(off_diagonal - 2 * k_xy.mean())


def test_fid_of_identical_feature_sets_is_zero():
    features = torch.randn(300, 6)
    logits = torch.randn(300, 5)
    extractor = QueuedFeatures([(features, logits), (features.clone(), logits)])
    metrics = GenerativeMetrics(metrics=("fid",), feature_extractor=extractor)
    assert abs(_feed(metrics, features, features)["fid"]) < 1e-6


def test_kid_matches_numpy_unbiased_mmd_when_one_subset_is_everything():
    gen = torch.Generator().manual_seed(3)
    real = torch.randn(120, 4, generator=gen)
    fake = torch.randn(120, 4, generator=gen) * 1.3 + 0.3
    logits = torch.zeros(120, 2)
    extractor = QueuedFeatures([(real, logits), (fake, logits)])
    metrics = GenerativeMetrics(
        metrics=("kid",), feature_extractor=extractor, kid_subsets=2, kid_subset_size=120
    )
    results = _feed(metrics, real, fake)
    expected = _kid_numpy(real.double().numpy(), fake.double().numpy())
    assert expected > 0.05
    assert results["kid"] == pytest.approx(expected, rel=1e-3) and results["kid_std"] < 1e-4 * expected


def test_fid_matches_scipy_on_sample_statistics():
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(400, 5, generator=gen) @ torch.randn(5, 5, generator=gen)
    fake = torch.randn(300, 5, generator=gen) * 0.7 + 0.4
    logits = torch.zeros(400, 3)
    extractor = QueuedFeatures([(real, logits), (fake, logits[:300])])
    metrics = GenerativeMetrics(metrics=("fid",), feature_extractor=extractor)
    fid = _feed(metrics, real, fake)["fid"]
    assert fid == pytest.approx(
        _frechet_distance_numpy(real.double().numpy(), fake.double().numpy()), rel=1e-4
    )


def test_fid_of_two_gaussians_equals_closed_form():
    # N(mu1, diag(s1^2)) vs N(mu2, diag(s2^2)): FID = |mu1 - mu2|^2 + sum (s1 - s2)^2.
    gen = torch.Generator().manual_seed(2)
    mu1, mu2 = torch.tensor([0.0, 1.0, -1.0]), torch.tensor([1.0, 1.0, 0.5])
    s1, s2 = torch.tensor([1.0, 2.0, 0.5]), torch.tensor([0.5, 1.0, 0.5])
    n = 40000
    real = mu1 + s1 * torch.randn(n, 3, generator=gen)
    fake = mu2 + s2 * torch.randn(n, 3, generator=gen)
    logits = torch.zeros(n, 2)
    extractor = QueuedFeatures([(real, logits), (fake, logits)])
    metrics = GenerativeMetrics(metrics=("fid",), feature_extractor=extractor)
    expected = float(((mu1 - mu2) ** 2).sum() + ((s1 - s2) ** 2).sum())  # = 3.25 + 1.25
    assert _feed(metrics, real, fake)["fid"] == pytest.approx(expected, rel=0.02)


def test_inception_score_of_confident_balanced_logits_equals_class_count():
    num_classes, n = 8, 400
    labels = torch.arange(n) % num_classes
    logits = torch.nn.functional.one_hot(labels, num_classes).float() * 50.0
    features = torch.randn(n, 4)
    extractor = QueuedFeatures([(features, logits), (features, logits)])
    metrics = GenerativeMetrics(metrics=("is", "fid"), feature_extractor=extractor, is_splits=1)
    results = _feed(metrics, features, features)
    assert results["is"] == pytest.approx(num_classes, rel=1e-4)
    # a single class everywhere: IS = 1 (IS alone reads no real images, so only one batch is queued)
    extractor = QueuedFeatures([(features, logits[:, :1].expand(n, num_classes).clone())])
    one_class = GenerativeMetrics(metrics=("is",), feature_extractor=extractor, is_splits=1)
    one_class.update(_images(n), real=True)
    assert _feed(one_class, None, features)["is"] == pytest.approx(1.0, abs=1e-4)
    assert extractor.calls == 1


def test_too_few_images_is_one_clear_error():
    extractor = QueuedFeatures([(torch.randn(1, 3), torch.zeros(1, 2))])
    metrics = GenerativeMetrics(metrics=("fid",), feature_extractor=extractor)
    metrics.update(_images(1), real=False)
    with pytest.raises(RuntimeError, match="at least 2 real and 2 generated"):
        metrics.compute()


def test_bad_metric_name_and_extractor_rejected():
    with pytest.raises(ValueError, match="choose from"):
        GenerativeMetrics(
            metrics=("fid", "lpips"), feature_extractor=QueuedFeatures([(torch.zeros(1, 2),) * 2])
        )
    with pytest.raises(TypeError, match="lacks attribute"):
        GenerativeMetrics(feature_extractor=nn.Linear(2, 2))


def test_metrics_object_is_not_a_module_so_lightning_never_checkpoints_it():
    extractor = QueuedFeatures([(torch.zeros(2, 2), torch.zeros(2, 2))])
    metrics = GenerativeMetrics(metrics=("fid",), feature_extractor=extractor)
    holder = nn.Module()
    holder.metrics = metrics
    assert not isinstance(metrics, nn.Module)
    assert holder.state_dict() == {} and list(holder.children()) == []


# ---------------------------------------------------------------- real statistics cache
def test_real_statistics_cache_skips_real_images_on_second_evaluation(tmp_path):
    gen = torch.Generator().manual_seed(4)
    real = torch.randn(60, 4, generator=gen)
    fake = torch.randn(40, 4, generator=gen) + 0.5
    logits = torch.zeros(60, 3)
    kwargs = dict(
        metrics=("fid", "kid", "precision_recall"), dataset_key="toy/train", cache_dir=str(tmp_path)
    )

    first_extractor = QueuedFeatures([(real, logits), (fake, logits[:40])])
    first = GenerativeMetrics(feature_extractor=first_extractor, kid_subset_size=30, **kwargs)
    assert first.needs_real_images
    first_results = _feed(first, real, fake)
    assert first_extractor.calls == 2 and len(list(tmp_path.glob("*.pt"))) == 1
    assert not first.needs_real_images  # also kept in memory for the next epoch

    second_extractor = QueuedFeatures([(fake, logits[:40])])
    second = GenerativeMetrics(feature_extractor=second_extractor, kid_subset_size=30, **kwargs)
    assert second.real_from_cache and not second.needs_real_images
    second.update(_images(60), real=True)  # skipped: no network call
    second.update(_images(40), real=False)
    assert second_extractor.calls == 1 and second.extractor_calls == 1
    second_results = second.compute()
    for key in ("fid", "kid", "precision", "recall"):
        assert second_results[key] == pytest.approx(first_results[key], rel=1e-6, abs=1e-9)

    # Another network (tag) or dataset key is a miss.
    other = GenerativeMetrics(feature_extractor=QueuedFeatures([(fake, logits)], tag="other"), **kwargs)
    assert other.needs_real_images


def test_reset_keeps_frozen_real_statistics_and_clears_fakes():
    gen = torch.Generator().manual_seed(5)
    real, fake1, fake2 = (torch.randn(50, 3, generator=gen) + i for i in range(3))
    logits = torch.zeros(50, 2)
    extractor = QueuedFeatures([(real, logits), (fake1, logits), (fake2, logits)])
    metrics = GenerativeMetrics(metrics=("fid",), feature_extractor=extractor)
    fid1 = _feed(metrics, real, fake1)["fid"]
    metrics.reset()
    fid2 = _feed(metrics, None, fake2)["fid"]
    expected2 = _frechet_distance_numpy(real.double().numpy(), fake2.double().numpy())
    assert fid2 == pytest.approx(expected2, rel=1e-4) and fid2 > fid1
    metrics.reset(real=True)
    assert metrics.needs_real_images


# ---------------------------------------------------------------- Inception loading
def test_offline_inception_download_failure_is_one_clear_line(monkeypatch):
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    def _offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", _offline)
    # Building is lazy: constructing, moving, describing and asking about real images download nothing.
    metrics = GenerativeMetrics(metrics=("fid", "kid", "is"), feature_extractor="inception").to("cpu")
    assert metrics.needs_real_images and "Inception" in metrics.description and not metrics.built
    metrics.reset()
    with pytest.raises(FeatureExtractorUnavailableError) as info:
        metrics.update(_images(2), real=True)  # first real use: the one-line error
    message = str(info.value)
    assert "\n" not in message
    assert INCEPTION_WEIGHTS_FILE in message and "checkpoints" in message
    assert "feature_extractor_weights_path" in message
    assert not metrics.built and metrics.extractor_calls == 0 and metrics.num_real_images == 0
    with pytest.raises(FeatureExtractorUnavailableError):  # and again at the next use, not half-built
        metrics.extract_features(_images(2))


def test_real_statistics_cache_of_inception_is_found_without_building_it(tmp_path, monkeypatch):
    """The cache file name of Inception + VGG-16 follows from the config, so a cached real side
    answers ``needs_real_images`` offline; the fakes then need the network (one-line error)."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    def _offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", _offline)
    kwargs = dict(
        metrics=("fid", "precision_recall"),
        feature_extractor="inception",
        precision_recall_extractor="vgg16",
        dataset_key="ffhq256",
        cache_dir=str(tmp_path),
    )
    assert GenerativeMetrics(**kwargs).needs_real_images
    tag = "inception-v3-tfidelity-tf1resize+pr-vgg16-fc2relu-tfidelity"
    payload = {
        "format": REAL_STATS_FORMAT,
        "dataset_key": "ffhq256",
        "extractor_tag": tag,
        "num_images": 3,
        "fid": {
            "sum": torch.zeros(2048, dtype=torch.float64),
            "cov_sum": torch.zeros(2048, 2048, dtype=torch.float64),
            "num_samples": torch.tensor(3),
        },
        "features": None,
        "pr_features": torch.zeros(3, 4096),
    }
    torch.save(payload, real_stats_cache_path(str(tmp_path), "ffhq256", tag))
    cached = GenerativeMetrics(**kwargs)
    assert not cached.needs_real_images and cached.real_from_cache and not cached.built
    assert cached.real_features.shape == (3, 4096) and "VGG-16" in cached.description
    cached.update(_images(2), real=True)  # skipped: known from the cache
    with pytest.raises(FeatureExtractorUnavailableError, match=INCEPTION_WEIGHTS_FILE):
        cached.update(_images(2), real=False)


def _random_inception_weights(path, monkeypatch) -> None:
    """Write torch-fidelity Inception weights in the official key layout from a seeded random init."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception

    def _own_random_init(*args, **kwargs):
        # Called from inside the constructor after every layer exists: return its own fresh state.
        return {k: v.clone() for k, v in inspect.currentframe().f_back.f_locals["self"].state_dict().items()}

    torch.manual_seed(0)
    with monkeypatch.context() as patch:
        patch.setattr(tf_inception, "load_state_dict_from_url", _own_random_init)
        net = tf_inception.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), path)


def test_inception_path_end_to_end_with_local_weights_file(tmp_path, monkeypatch):
    weights = tmp_path / INCEPTION_WEIGHTS_FILE
    _random_inception_weights(weights, monkeypatch)
    # IS only: FID's eigen-decomposition of 2048 x 2048 matrices is too slow for a 2-core test run.
    metrics = GenerativeMetrics(
        metrics=("is",),
        feature_extractor="inception",
        feature_extractor_weights_path=str(weights),
        is_splits=1,
    )
    assert metrics.extractor.tag.endswith("tf1resize") and "TF" in metrics.description
    imgs = torch.rand(2, 3, 32, 32) * 2 - 1
    features, logits = metrics.extractor(images_to_uint8(imgs))
    assert features.shape == (2, 2048) and logits.shape == (2, 1008)
    assert not metrics.needs_real_images  # IS alone never reads real images
    metrics.update(imgs, real=False)
    probabilities = logits.double().softmax(dim=1)
    marginal = probabilities.mean(dim=0, keepdim=True)
    expected = (probabilities * (probabilities.log() - marginal.log())).sum(dim=1).mean().exp()
    assert metrics.compute()["is"] == pytest.approx(float(expected), rel=1e-3)


def test_inception_weights_path_must_be_plain_state_dict(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):  # a missing file: at construction
        GenerativeMetrics(feature_extractor="inception", feature_extractor_weights_path=str(missing))
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        GenerativeMetrics(
            metrics=("precision_recall",),
            feature_extractor="inception",
            vgg16_weights_path=str(missing),
        )
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    metrics = GenerativeMetrics(feature_extractor="inception", feature_extractor_weights_path=str(wrong))
    with pytest.raises(ValueError, match="fc.weight"):  # its contents: when the network is built
        metrics.update(_images(2), real=False)


class PixelMeanFeatures(nn.Module):
    """Deterministic toy extractor: per-channel mean and std of the uint8 image."""

    num_features = 6
    num_logits = 2
    tag = "pixel-mean"
    description = "test features"

    def forward(self, img_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = img_uint8.float() / 255.0
        features = torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)
        return features, torch.zeros(x.shape[0], 2)


def test_precision_recall_curve_uses_real_features_and_the_extractor():
    gen = torch.Generator().manual_seed(6)
    brightness = torch.rand(80, 3, 1, 1, generator=gen) * 1.6 - 0.8
    real = (brightness + 0.1 * torch.randn(80, 3, 8, 8, generator=gen)).clamp(-1, 1)
    metrics = GenerativeMetrics(metrics=("precision_recall",), feature_extractor=PixelMeanFeatures())
    metrics.update(real, real=True)

    def generate(psi: float, n: int) -> torch.Tensor:
        # truncation shrinks the brightness spread toward the mean
        spread = psi * (torch.rand(n, 3, 1, 1, generator=gen) * 1.6 - 0.8)
        return (spread + 0.1 * torch.randn(n, 3, 8, 8, generator=gen)).clamp(-1, 1)

    curve = metrics.precision_recall_curve(generate, num_samples=80, batch_size=40, psis=(0.3, 1.0))
    assert [point["psi"] for point in curve] == [0.3, 1.0]
    assert curve[0]["recall"] < curve[1]["recall"] and curve[1]["recall"] > 0.5
    assert metrics.real_features.shape == (80, 6)


def test_precision_recall_in_a_separate_feature_space_and_its_cache(tmp_path):
    gen = torch.Generator().manual_seed(7)
    main = torch.randn(40, 4, generator=gen)
    pr_real, pr_fake = torch.randn(40, 5, generator=gen), torch.randn(40, 5, generator=gen) + 100.0
    logits = torch.zeros(40, 2)
    pr_extractor = QueuedFeatures([(pr_real, logits[:, :0]), (pr_fake, logits[:, :0])], tag="pr-net")
    kwargs = dict(metrics=("fid", "precision_recall"), dataset_key="toy", cache_dir=str(tmp_path))
    metrics = GenerativeMetrics(
        feature_extractor=QueuedFeatures([(main, logits), (main, logits)]),
        precision_recall_extractor=pr_extractor,
        **kwargs,
    )
    results = _feed(metrics, main, main)
    # Identical in the main space (FID 0), disjoint in the P&R space (precision = recall = 0).
    assert abs(results["fid"]) < 1e-6 and results["precision"] == 0.0 and results["recall"] == 0.0
    assert "test features" in metrics.description and torch.equal(metrics.real_features, pr_real)
    cached = GenerativeMetrics(
        feature_extractor=QueuedFeatures([(main, logits)]),
        precision_recall_extractor=QueuedFeatures([(pr_real, logits[:, :0])], tag="pr-net"),
        **kwargs,
    )
    assert cached.real_from_cache and torch.equal(cached.real_features, pr_real)


def test_vgg16_for_precision_recall_offline_is_one_clear_line(monkeypatch):
    import torch_fidelity.feature_extractor_vgg16 as tf_vgg16

    def _offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tf_vgg16, "torchvision_load_pretrained_vgg16", _offline)
    metrics = GenerativeMetrics(
        metrics=("precision_recall",),
        feature_extractor=QueuedFeatures([(torch.zeros(2, 2), torch.zeros(2, 2))]),
        precision_recall_extractor="vgg16",
    )
    assert metrics.needs_real_images and "VGG-16" in metrics.description
    with pytest.raises(FeatureExtractorUnavailableError) as info:
        metrics.update(_images(2), real=True)
    message = str(info.value)
    assert "\n" not in message and "vgg16-397923af.pth" in message and "checkpoints" in message
