"""Embedded-data feature net: an offline stand-in for Inception, trained on the embedded synthetic data.

NOT Inception. FID/KID/IS measured with it are only meaningful between runs on the embedded data
(quickstart, tests, CI); they are not comparable to any paper number. Every result it produces is
labelled with :data:`EMBEDDED_DESCRIPTION`.

Why a trained classifier: FID/KID need a feature space in which real images cluster and
artefacts stand out, and IS needs class probabilities. A small CNN trained to classify
``EmbeddedClasses`` labels gives both: its globally pooled last conv features (like Inception's
pool3) for FID/KID/precision-recall, and its logits for IS.

Weights: ``lightning_gancomp/assets/embedded_features.pt`` (produced by
:func:`train_embedded_feature_net` with the defaults below, see :func:`main`). If the asset is
missing it is trained on first use (a few minutes on a laptop CPU) and cached in
``~/.cache/lightning_gancomp/``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lightning_gancomp.metrics.features import images_to_uint8

EMBEDDED_DESCRIPTION = "embedded-data feature net, NOT Inception; numbers not comparable to papers"
EMBEDDED_FEATURES_FORMAT = "lightning_gancomp.embedded_features"
ASSET_PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets", "embedded_features.pt"
)
CACHE_PATH = os.path.join(os.path.expanduser("~"), ".cache", "lightning_gancomp", "embedded_features.pt")


class EmbeddedFeatureNet(nn.Module):
    """Small CNN classifier of ``EmbeddedClasses`` labels used as a feature extractor.

    Input: uint8 images [B, 3, H, W] (any H, W), resized to ``input_resolution`` and scaled to
    [-1, 1]. Output: ``(features [B, num_features], logits [B, num_classes])`` — the protocol of
    ``metrics/features.py``.

    Features = the global average pools of every stage concatenated (so pixel-level statistics
    such as noise or blur move them, not only the class evidence of the last stage), standardised
    with per-dimension mean/std measured on the training images (buffers). Standardising keeps
    KID's polynomial kernel ``(x·y/d + 1)^3`` in the range it has on Inception features.
    Logits = linear head on the last stage's pool. A second linear head (``artifact_head``, not
    part of the output) is trained to tell clean images from corrupted ones (additive noise, blur,
    pure noise), so the shared features also react to the artefacts a young GAN produces, which a
    classifier alone learns to ignore.

    Args:
        num_classes: classes of the training data (``EmbeddedClasses`` default 10).
        input_resolution: images are resized (antialiased bilinear) to this size first.
        widths: output channels of the conv stages; stages after the first halve the resolution.
    """

    def __init__(
        self, num_classes: int = 10, input_resolution: int = 32, widths: tuple[int, ...] = (32, 64, 128)
    ):
        super().__init__()
        self.config: dict[str, Any] = {
            "num_classes": num_classes,
            "input_resolution": input_resolution,
            "widths": list(widths),
        }
        stages: list[nn.Module] = []
        in_channels = 3
        for stage, width in enumerate(widths):
            stride = 1 if stage == 0 else 2
            stages.append(
                nn.Sequential(
                    nn.Conv2d(in_channels, width, 3, stride=stride, padding=1),
                    nn.LeakyReLU(0.2),
                    nn.Conv2d(width, width, 3, padding=1),
                    nn.LeakyReLU(0.2),
                )
            )
            in_channels = width
        self.stages = nn.ModuleList(stages)
        self.head = nn.Linear(in_channels, num_classes)
        self.artifact_head = nn.Linear(sum(widths), 1)
        self.input_resolution = input_resolution
        self.num_features = sum(widths)
        self.num_logits = num_classes
        self.register_buffer("feature_mean", torch.zeros(self.num_features))
        self.register_buffer("feature_std", torch.ones(self.num_features))
        self.tag = "embedded-featnet-untrained"
        self.description = EMBEDDED_DESCRIPTION

    def preprocess(self, img_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 [0, 255] → float [-1, 1] at ``input_resolution``."""
        x = img_uint8.float() / 127.5 - 1.0
        if x.shape[-2:] != (self.input_resolution, self.input_resolution):
            size = (self.input_resolution, self.input_resolution)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        return x

    def raw_features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Preprocessed images → (unstandardised multi-stage pooled features, class logits)."""
        pooled = []
        for stage in self.stages:
            x = stage(x)
            pooled.append(x.mean(dim=(2, 3)))
        return torch.cat(pooled, dim=1), self.head(pooled[-1])

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Preprocessed images → (standardised features, class logits)."""
        raw, logits = self.raw_features_and_logits(x)
        return (raw - self.feature_mean) / self.feature_std, logits

    @torch.no_grad()
    def calibrate(self, images_uint8: torch.Tensor, batch_size: int = 256) -> None:
        """Set the standardisation buffers to the mean/std of the raw features of ``images_uint8``."""
        raw = torch.cat(
            [self.raw_features_and_logits(self.preprocess(b))[0] for b in images_uint8.split(batch_size)]
        )
        self.feature_mean.copy_(raw.mean(dim=0))
        self.feature_std.copy_(raw.std(dim=0).clamp_min(1e-4))

    def forward(self, img_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if img_uint8.dtype != torch.uint8:
            raise TypeError(f"EmbeddedFeatureNet expects uint8 images, got {img_uint8.dtype}")
        return self.features_and_logits(self.preprocess(img_uint8))

    def set_tag_from_weights(self) -> None:
        """Tag = hash of the weights, so real-statistics caches never mix two different nets."""
        digest = hashlib.sha1()
        for key, tensor in sorted(self.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        self.tag = f"embedded-featnet-{digest.hexdigest()[:10]}"


def _embedded_batches(
    length: int, resolution: int, num_classes: int, seed: int, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """All items of ``EmbeddedClasses`` as (uint8 images [N, 3, R, R], labels [N])."""
    from lightning_gancomp.data.embedded import EmbeddedClasses

    dataset = EmbeddedClasses(length=length, resolution=resolution, num_classes=num_classes, seed=seed)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    images, labels = [], []
    for batch in loader:
        # Quantise like every image the net will see at evaluation time.
        images.append(images_to_uint8(batch["real_img"]))
        labels.append(batch["label"].long())
    return torch.cat(images), torch.cat(labels)


def corrupt_images(images_uint8: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Artefact examples for the auxiliary head: per image one of additive Gaussian noise
    (σ ∈ [0.05, 0.4]), 3×3 / 5×5 box blur, or pure uniform noise (images stay uint8)."""
    x = images_uint8.float() / 127.5 - 1.0
    kind = torch.randint(0, 4, (x.shape[0],), generator=generator)
    sigma = 0.05 + 0.35 * torch.rand(x.shape[0], 1, 1, 1, generator=generator)
    noisy = x + sigma * torch.randn(x.shape, generator=generator)
    blur3 = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    blur5 = F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    pure_noise = torch.rand(x.shape, generator=generator) * 2 - 1
    choice = kind.view(-1, 1, 1, 1)
    out = torch.where(
        choice == 0, noisy, torch.where(choice == 1, blur3, torch.where(choice == 2, blur5, pure_noise))
    )
    return images_to_uint8(out)


def train_embedded_feature_net(
    num_train: int = 2000,
    resolution: int = 32,
    num_classes: int = 10,
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    data_seed: int = 1234,
    num_val: int = 500,
) -> tuple[EmbeddedFeatureNet, dict[str, float]]:
    """Train the embedded feature net to classify ``EmbeddedClasses`` labels (Adam, cross-entropy)
    plus the clean-vs-corrupted auxiliary head (binary cross-entropy, see :func:`corrupt_images`).

    Returns the trained net (eval mode) and ``{"train_accuracy", "val_accuracy"}`` measured on
    ``num_val`` held-out items (a disjoint seed).
    """
    torch.manual_seed(seed)
    corruption_rng = torch.Generator().manual_seed(seed + 1)
    train_images, train_labels = _embedded_batches(num_train, resolution, num_classes, data_seed, batch_size)
    val_images, val_labels = _embedded_batches(num_val, resolution, num_classes, data_seed + 1, batch_size)
    net = EmbeddedFeatureNet(num_classes=num_classes, input_resolution=resolution)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = (num_train + batch_size - 1) // batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch
    )
    net.train()
    for _ in range(epochs):
        order = torch.randperm(num_train)
        for start in range(0, num_train, batch_size):
            index = order[start : start + batch_size]
            clean = net.preprocess(train_images[index])
            corrupted = net.preprocess(corrupt_images(train_images[index], corruption_rng))
            raw, logits = net.raw_features_and_logits(torch.cat([clean, corrupted]))
            is_corrupted = torch.cat([torch.zeros(len(index)), torch.ones(len(index))])
            loss = F.cross_entropy(logits[: len(index)], train_labels[index])
            loss = loss + F.binary_cross_entropy_with_logits(net.artifact_head(raw).squeeze(1), is_corrupted)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    net.eval().requires_grad_(False)
    net.calibrate(train_images)
    net.set_tag_from_weights()
    info = {
        "train_accuracy": classification_accuracy(net, train_images, train_labels),
        "val_accuracy": classification_accuracy(net, val_images, val_labels),
    }
    return net, info


@torch.no_grad()
def classification_accuracy(
    net: EmbeddedFeatureNet, images_uint8: torch.Tensor, labels: torch.Tensor, batch_size: int = 256
) -> float:
    """Fraction of images whose arg-max logit equals the label."""
    correct = 0
    for images, target in zip(images_uint8.split(batch_size), labels.split(batch_size)):
        correct += int((net(images)[1].argmax(dim=1) == target).sum())
    return correct / labels.shape[0]


def save_embedded_feature_net(
    net: EmbeddedFeatureNet, path: str, info: dict[str, float] | None = None
) -> None:
    """Write config + weights (fp16 to keep the shipped asset small) atomically."""
    payload = {
        "format": EMBEDDED_FEATURES_FORMAT,
        "config": net.config,
        "state_dict": {k: v.detach().cpu().half() for k, v in net.state_dict().items()},
        "info": dict(info or {}),
    }
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp_path)
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; the file is meant to be shared/shipped
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)


def read_embedded_feature_net(path: str) -> EmbeddedFeatureNet:
    """Rebuild a saved embedded feature net (``weights_only=True``); one clear line on a bad file."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable embedded feature net file ({err})") from err
    if not isinstance(payload, dict) or payload.get("format") != EMBEDDED_FEATURES_FORMAT:
        raise ValueError(
            f"{path}: not an embedded feature net file (format key {EMBEDDED_FEATURES_FORMAT!r} missing)"
        )
    config = payload["config"]
    net = EmbeddedFeatureNet(
        num_classes=int(config["num_classes"]),
        input_resolution=int(config["input_resolution"]),
        widths=tuple(int(w) for w in config["widths"]),
    )
    net.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
    net.eval().requires_grad_(False)
    net.set_tag_from_weights()
    return net


def load_embedded_feature_net(weights_path: str | None = None) -> EmbeddedFeatureNet:
    """The embedded feature net: ``weights_path`` → shipped asset → user cache → train now and cache."""
    if weights_path is not None:
        if not os.path.isfile(weights_path):
            raise FileNotFoundError(f"embedded feature net weights {weights_path!r}: no such file")
        return read_embedded_feature_net(weights_path)
    for path in (ASSET_PATH, CACHE_PATH):
        if os.path.isfile(path):
            return read_embedded_feature_net(path)
    net, info = train_embedded_feature_net()
    save_embedded_feature_net(net, CACHE_PATH, info)
    return read_embedded_feature_net(CACHE_PATH)  # same fp16-rounded weights as any later load


def main() -> None:
    """Regenerate the shipped asset: ``python -m lightning_gancomp.metrics.embedded_features``."""
    net, info = train_embedded_feature_net()
    save_embedded_feature_net(net, ASSET_PATH, info)
    print(f"wrote {ASSET_PATH}: {info}")


if __name__ == "__main__":
    main()
