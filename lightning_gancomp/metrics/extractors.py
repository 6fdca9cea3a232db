"""The feature networks behind GenerativeMetrics: built on first use (Inception and VGG-16 download
their weights), with what the configuration alone determines (feature sizes, cache tags,
descriptions) known without building; pass-through modules hand precomputed features to the
torchmetrics metrics."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

from lightning_gancomp.metrics.embedded_features import EMBEDDED_DESCRIPTION
from lightning_gancomp.metrics.features import (
    InceptionFeatureExtractor,
    inception_description,
    inception_tag,
)


class PassThroughFeatures(nn.Module):
    """Feature "network" for torchmetrics when features are already extracted: returns its input."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


EXTRACTOR_ATTRIBUTES = ("num_features", "num_logits", "tag", "description")


class LazyNetwork:
    """A feature network built on first use, and the attributes known before it exists.

    ``known`` holds what the configuration alone determines (``num_features``, ``num_logits``,
    ``tag``, ``description``); asking for anything else builds the network.
    """

    def __init__(
        self,
        build: Callable[[], nn.Module],
        known: dict[str, int | str] | None = None,
    ) -> None:
        self._build = build
        self.known = dict(known) if known is not None else {}
        self.module: nn.Module | None = None

    @classmethod
    def ready(cls, module: nn.Module) -> LazyNetwork:
        """A network that already exists (a user module)."""
        network = cls(lambda: module)
        network.module = module.eval()
        return network

    def get(self, device: torch.device) -> nn.Module:
        """The network on ``device``, built now if this is its first use."""
        if self.module is None:
            self.module = self._build().eval().to(device)
        return self.module

    def attribute(self, name: str, device: torch.device) -> int | str:
        if self.module is None and name in self.known:
            return self.known[name]
        return getattr(self.get(device), name)

    def to(self, device: torch.device) -> None:
        if self.module is not None:
            self.module.to(device)


def checked_module(module: nn.Module) -> nn.Module:
    """A user extractor, after checking it follows the protocol of ``features.py``."""
    for attribute in EXTRACTOR_ATTRIBUTES:
        if not hasattr(module, attribute):
            raise TypeError(
                f"feature_extractor {type(module).__name__} lacks attribute {attribute!r} "
                "(needs forward(uint8 images) -> (features, logits), num_features, num_logits, tag, "
                "description)"
            )
    return module


def require_file(path: str | None, what: str) -> None:
    """A weights file given in the config must exist: say so at construction, not at first use."""
    if path is not None and not os.path.isfile(path):
        raise FileNotFoundError(f"{what}={path!r}: no such file")


def main_network(
    feature_extractor: Literal["inception", "embedded"] | nn.Module,
    weights_path: str | None,
    antialias: bool,
) -> LazyNetwork:
    """The network behind every metric: Inception, the embedded-data net, or a user module."""
    if isinstance(feature_extractor, nn.Module):
        return LazyNetwork.ready(checked_module(feature_extractor))
    if feature_extractor == "inception":
        require_file(weights_path, "feature_extractor_weights_path")
        known = {
            "num_features": InceptionFeatureExtractor.num_features,
            "num_logits": InceptionFeatureExtractor.num_logits,
            "tag": inception_tag(weights_path, antialias),
            "description": inception_description(antialias),
        }
        return LazyNetwork(lambda: InceptionFeatureExtractor(weights_path, antialias), known)
    if feature_extractor == "embedded":
        from lightning_gancomp.metrics.embedded_features import load_embedded_feature_net

        require_file(weights_path, "feature_extractor_weights_path")
        # its tag is a hash of the weights and its sizes come from the file: known once loaded
        return LazyNetwork(
            lambda: load_embedded_feature_net(weights_path), {"description": EMBEDDED_DESCRIPTION}
        )
    raise ValueError(
        f"feature_extractor={feature_extractor!r}: expected 'inception', 'embedded' or an nn.Module"
    )
