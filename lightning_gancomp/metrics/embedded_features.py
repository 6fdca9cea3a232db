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
        layers: list[nn.Module] = []
        in_channels = 3
        for stage, width in enumerate(widths):
            stride = 1 if stage == 0 else 2
            layers += [
                nn.Conv2d(in_channels, width, 3, stride=stride, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(width, width, 3, padding=1),
                nn.LeakyReLU(0.2),
            ]
            in_channels = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(in_channels, num_classes)
        self.input_resolution = input_resolution
        self.num_features = in_channels
        self.num_logits = num_classes
        self.tag = "embedded-featnet-untrained"
        self.description = EMBEDDED_DESCRIPTION

    def preprocess(self, img_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 [0, 255] → float [-1, 1] at ``input_resolution``."""
        x = img_uint8.float() / 127.5 - 1.0
        if x.shape[-2:] != (self.input_resolution, self.input_resolution):
            size = (self.input_resolution, self.input_resolution)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        return x

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Preprocessed images → (pooled features, class logits)."""
        features = self.body(x).mean(dim=(2, 3))
        return features, self.head(features)

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
    """Train the embedded feature net to classify ``EmbeddedClasses`` labels (Adam, cross-entropy).

    Returns the trained net (eval mode) and ``{"train_accuracy", "val_accuracy"}`` measured on
    ``num_val`` held-out items (a disjoint seed).
    """
    torch.manual_seed(seed)
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
            _, logits = net(train_images[index])
            loss = F.cross_entropy(logits, train_labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    net.eval().requires_grad_(False)
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
