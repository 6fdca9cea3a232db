"""Embedded-data feature net: shipped asset, accuracy, FID separation, train-on-first-use, file errors."""

from __future__ import annotations

import os

import pytest
import torch

import lightning_gancomp.metrics.embedded_features as embedded_features
from lightning_gancomp.data.embedded import EmbeddedClasses
from lightning_gancomp.metrics import EMBEDDED_DESCRIPTION, GenerativeMetrics, images_to_uint8
from lightning_gancomp.metrics.embedded_features import (
    ASSET_PATH,
    EmbeddedFeatureNet,
    classification_accuracy,
    load_embedded_feature_net,
    read_embedded_feature_net,
    save_embedded_feature_net,
)


def _embedded_classes(length: int, seed: int, resolution: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    dataset = EmbeddedClasses(length=length, resolution=resolution, num_classes=10, seed=seed)
    items = [dataset[i] for i in range(length)]
    return torch.stack([item["real_img"] for item in items]), torch.stack([item["label"] for item in items])


@pytest.fixture(scope="module")
def shipped_net() -> EmbeddedFeatureNet:
    return load_embedded_feature_net()


def test_shipped_asset_is_small_and_labelled(shipped_net):
    assert os.path.isfile(ASSET_PATH) and os.path.getsize(ASSET_PATH) < 1_000_000
    assert "NOT Inception" in shipped_net.description and shipped_net.description == EMBEDDED_DESCRIPTION
    assert shipped_net.tag.startswith("embedded-featnet-") and shipped_net.tag != "embedded-featnet-untrained"
    assert shipped_net.num_features == 32 + 64 + 128 and shipped_net.num_logits == 10


def test_embedded_net_classifies_held_out_embedded_classes(shipped_net):
    images, labels = _embedded_classes(200, seed=4242)
    assert classification_accuracy(shipped_net, images_to_uint8(images), labels) >= 0.95
    # Other resolutions are resized to the training resolution first.
    images_64, labels_64 = _embedded_classes(60, seed=4343, resolution=64)
    assert classification_accuracy(shipped_net, images_to_uint8(images_64), labels_64) >= 0.85


def test_embedded_metrics_separate_real_from_noise_and_artefacts(shipped_net):
    real, _ = _embedded_classes(150, seed=11)
    real_other, _ = _embedded_classes(150, seed=12)
    noise = torch.rand(150, 3, 32, 32) * 2 - 1
    noisy = real_other + 0.1 * torch.randn(real_other.shape, generator=torch.Generator().manual_seed(0))

    def evaluate(fake: torch.Tensor) -> dict[str, float]:
        metrics = GenerativeMetrics(
            metrics=("fid", "kid", "is", "precision_recall"), feature_extractor=shipped_net, is_splits=1
        )
        assert "NOT Inception" in metrics.description
        metrics.update(real, real=True)
        metrics.update(fake, real=False)
        return metrics.compute()

    same, against_noise, against_noisy = evaluate(real_other), evaluate(noise), evaluate(noisy)
    assert same["fid"] < 0.02 * against_noise["fid"]
    assert same["kid"] < 0.02 * against_noise["kid"]
    assert against_noisy["fid"] > 1.5 * same["fid"]  # mild pixel noise is visible in the features
    # Same distribution: both manifolds cover each other; pure noise lies outside the real one.
    assert same["precision"] > 0.9 and same["recall"] > 0.9
    assert against_noise["precision"] < 0.1 and against_noise["recall"] < 0.1
    # Ten balanced, confidently classified classes: IS close to 10; noise collapses it.
    assert same["is"] > 8.0 and against_noise["is"] < 2.0


def test_metrics_accept_the_name_embedded(shipped_net):
    metrics = GenerativeMetrics(metrics=("fid",), feature_extractor="embedded")
    assert metrics.extractor.tag == shipped_net.tag


def test_training_save_and_reload_round_trip(tmp_path):
    net, info = embedded_features.train_embedded_feature_net(
        num_train=64, epochs=1, batch_size=32, num_val=20
    )
    assert set(info) == {"train_accuracy", "val_accuracy"} and 0.0 <= info["val_accuracy"] <= 1.0
    path = str(tmp_path / "net.pt")
    save_embedded_feature_net(net, path, info)
    first = read_embedded_feature_net(path)
    save_embedded_feature_net(first, str(tmp_path / "again.pt"))
    second = read_embedded_feature_net(str(tmp_path / "again.pt"))
    images = images_to_uint8(torch.rand(3, 3, 32, 32) * 2 - 1)
    assert torch.equal(first(images)[0], second(images)[0]) and first.tag == second.tag
    # fp16 storage: outputs stay close to the trained fp32 net
    assert torch.allclose(first(images)[1], net(images)[1], atol=5e-2)


def test_missing_asset_trains_once_and_caches(tmp_path, monkeypatch):
    calls = []
    real_train = embedded_features.train_embedded_feature_net

    def tiny_train():
        calls.append(1)
        return real_train(num_train=32, epochs=1, batch_size=32, num_val=10)

    cache = tmp_path / "cache" / "embedded_features.pt"
    monkeypatch.setattr(embedded_features, "ASSET_PATH", str(tmp_path / "missing.pt"))
    monkeypatch.setattr(embedded_features, "CACHE_PATH", str(cache))
    monkeypatch.setattr(embedded_features, "train_embedded_feature_net", tiny_train)
    first = embedded_features.load_embedded_feature_net()
    assert calls == [1] and cache.is_file()
    second = embedded_features.load_embedded_feature_net()
    assert calls == [1] and second.tag == first.tag


def test_bad_weight_files_fail_with_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_embedded_feature_net(str(tmp_path / "nope.pt"))
    wrong = tmp_path / "wrong.pt"
    torch.save({"state_dict": {}}, wrong)
    with pytest.raises(ValueError, match="not an embedded feature net file"):
        read_embedded_feature_net(str(wrong))
    with pytest.raises(TypeError, match="uint8"):
        EmbeddedFeatureNet()(torch.zeros(1, 3, 32, 32))


def test_embedded_net_as_torchmetrics_custom_feature_matches_generative_metrics(shipped_net):
    from torchmetrics.image.fid import FrechetInceptionDistance

    from lightning_gancomp.metrics import TorchmetricsFeature

    real, _ = _embedded_classes(40, seed=21)
    fake = (real.flip(0) + 0.2 * torch.randn(real.shape, generator=torch.Generator().manual_seed(1))).clamp(
        -1, 1
    )
    fid = FrechetInceptionDistance(feature=TorchmetricsFeature(shipped_net), normalize=True)
    fid.update((real + 1) / 2, real=True)  # float [0, 1], converted to the same uint8 levels
    fid.update((fake + 1) / 2, real=False)
    ours = GenerativeMetrics(metrics=("fid",), feature_extractor=shipped_net)
    ours.update(real, real=True)
    ours.update(fake, real=False)
    assert float(fid.compute()) == pytest.approx(ours.compute()["fid"], rel=1e-4)
    assert TorchmetricsFeature(shipped_net, output="logits").num_features == 10
