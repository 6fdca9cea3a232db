"""Image conversion at the metric boundary and the feature extractors behind FID / KID / IS / P&R.

Images are in [-1, 1] inside the framework. Feature extractors here take what a saved image file
holds, ``uint8`` in [0, 255], because that is what the reference FID code measures: NVlabs
(stylegan2-ada-pytorch ``metrics/metric_utils.py``) quantises generated images with
``(img * 127.5 + 128).clamp(0, 255).to(uint8)`` before Inception, and torch-fidelity's Inception
asserts ``uint8`` input. :func:`images_to_uint8` is that exact quantisation.

An extractor is an ``nn.Module`` with ``forward(uint8 [B, 3, H, W]) -> (features [B, D],
logits [B, K])`` and the attributes ``num_features``, ``num_logits``, ``tag`` (identifies the
network and its preprocessing, used in real-statistics cache file names) and ``description``
(human-readable, shown next to every number it produces). One forward feeds FID and KID (the
features) and IS (the logits), so the network runs once per batch, not once per metric.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from typing import Any, Literal

import torch
from torch import nn

from lightning_gancomp.checkpoints import load_error_reason

#: torch-fidelity's Inception-v3 weights (the TF FID graph converted to PyTorch); torchmetrics
#: downloads them into the torch hub cache on first use.
INCEPTION_WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
INCEPTION_WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"


class FeatureExtractorUnavailableError(RuntimeError):
    """Pretrained weights of a metric network are missing and cannot be downloaded."""


def images_to_uint8(img: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images → uint8 [0, 255], rounding half up like NVlabs' ``img*127.5+128``.

    -1 → 0, 0 → 128, 1 → 255; values outside [-1, 1] (unbounded StyleGAN2 output) are clipped.
    """
    if img.is_floating_point() is False:
        raise TypeError(f"images_to_uint8 expects float images in [-1, 1], got dtype {img.dtype}")
    return torch.floor(img.float() * 127.5 + 128.0).clamp(0, 255).to(torch.uint8)


def images_to_unit_range(img: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images → float [0, 1] (what ``normalize=True`` torchmetrics metrics expect)."""
    return ((img.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def torch_hub_checkpoint_path(file_name: str) -> str:
    """Where ``torch.hub.load_state_dict_from_url`` looks for (and stores) ``file_name``."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", file_name)


def read_plain_state_dict(path: str, required_key: str, what: str) -> dict[str, torch.Tensor]:
    """The tensors of a user-supplied weights file, read once with ``weights_only=True``; one line
    unless it is a tensor-only state dict holding ``required_key``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"feature_extractor_weights_path={path!r}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is one line naming it
        reason = load_error_reason(err)
        raise ValueError(
            f"{path}: not a plain tensor state dict loadable with weights_only=True ({reason})"
        ) from err
    if not isinstance(state, dict) or required_key not in state:
        raise ValueError(f"{path}: not {what} weights (no {required_key!r} key)")
    return state


@contextlib.contextmanager
def weights_only_torch_loads(preloaded: dict[str, dict[str, torch.Tensor]] | None = None) -> Iterator[None]:
    """While torch-fidelity builds a network: loading a file named in ``preloaded``
    returns the tensors already read (no second read of a file that could have been swapped), and
    every other ``torch.load`` (torch hub cache, torchvision weights) is forced weights-only.

    torch-fidelity loads ``feature_extractor_weights_path`` and its hub downloads with
    ``weights_only=False`` (``feature_extractor_inceptionv3.py``, ``feature_extractor_vgg16.py``);
    it offers no way to pass tensors in, hence the temporary replacement of ``torch.load``.
    """
    known = {os.path.abspath(path): state for path, state in (preloaded or {}).items()}
    original = torch.load

    def load(f: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(f, (str, os.PathLike)) and os.path.abspath(f) in known:
            return known[os.path.abspath(f)]
        kwargs["weights_only"] = True
        return original(f, *args, **kwargs)

    torch.load = load
    try:
        yield
    finally:
        torch.load = original


def inception_tag(weights_path: str | None, antialias: bool) -> str:
    """Cache tag of :class:`InceptionFeatureExtractor` (a function of its arguments, so real
    statistics can be looked up without building the network)."""
    tag = f"inception-v3-tfidelity-{'antialias' if antialias else 'tf1resize'}"
    if weights_path is not None and os.path.basename(weights_path) != INCEPTION_WEIGHTS_FILE:
        # Not the official file: keep its real statistics apart from the official ones.
        tag += "-" + hashlib.sha1(os.path.abspath(weights_path).encode()).hexdigest()[:8]
    return tag


def inception_description(antialias: bool) -> str:
    """Human-readable name of :class:`InceptionFeatureExtractor` with this resize."""
    return "torch-fidelity Inception-v3 (TF FID weights)" + (
        ", antialiased resize (not TF-compatible)" if antialias else ", TF-1.x resize"
    )


class InceptionFeatureExtractor(nn.Module):
    """torch-fidelity's Inception-v3 (the TF FID network) through torchmetrics' ``NoTrainInceptionV3``.

    Returns the 2048-d pool3 features (FID, KID, precision/recall) and the 1008-d
    ``logits_unbiased`` (IS; the same head torchmetrics' ``InceptionScore`` uses by default).

    Args:
        weights_path: local copy of ``weights-inception-2015-12-05-6726825d.pth``; ``None`` →
            torch hub cache, downloaded on first use.
        antialias: resize to 299 px with antialiased bilinear interpolation (torchmetrics'
            default). ``False`` = TensorFlow-1.x bilinear resize, i.e. the TF FID code the papers
            report (and NVlabs' FID) — use it to compare with published numbers.
    """

    num_features = 2048
    num_logits = 1008

    def __init__(self, weights_path: str | None = None, antialias: bool = False) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        preloaded = {}
        if weights_path is not None:
            preloaded[weights_path] = read_plain_state_dict(weights_path, "fc.weight", "Inception-v3")
        try:
            with weights_only_torch_loads(preloaded):
                self.inception = NoTrainInceptionV3(
                    name="inception-v3-compat",
                    features_list=["2048", "logits_unbiased"],
                    feature_extractor_weights_path=weights_path,
                    antialias=antialias,
                )
        except (OSError, RuntimeError) as err:  # URLError/HTTPError are OSErrors; bad hash is RuntimeError
            raise FeatureExtractorUnavailableError(
                f"Inception weights for FID/KID/IS could not be downloaded ({type(err).__name__}): download "
                f"{INCEPTION_WEIGHTS_URL} and put it at {torch_hub_checkpoint_path(INCEPTION_WEIGHTS_FILE)} "
                "(or pass feature_extractor_weights_path=<file>)"
            ) from err
        self.antialias = antialias
        self.tag = inception_tag(weights_path, antialias)
        self.description = inception_description(antialias)
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> InceptionFeatureExtractor:
        """Always in eval mode (batch-norm statistics are part of the metric definition)."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, img_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # NoTrainInceptionV3.forward returns only the first requested feature; the underlying
        # torch-fidelity forward returns all of them in one pass.
        features, logits = self.inception._torch_fidelity_forward(img_uint8)
        return features.reshape(img_uint8.shape[0], -1), logits.reshape(img_uint8.shape[0], -1)


class VGG16FeatureExtractor(nn.Module):
    """VGG-16 fc2 features (after ReLU, 4096-d) for precision/recall, through torch-fidelity.

    Kynkäänniemi et al. (2019) measure precision/recall in VGG-16 fc2 features. This is
    torch-fidelity's ``FeatureExtractorVGG16`` (torchvision ImageNet weights, TF-1.x bilinear
    resize to 224 px, ImageNet normalisation; ``fc2_relu`` is its default for P&R). NVlabs use
    their own converted VGG-16 pickle, so values can differ slightly from NVlabs' numbers.
    Returns no logits (``num_logits = 0``): use it for precision/recall only.

    Args:
        weights_path: local torchvision ``vgg16-397923af.pth``; ``None`` → torch hub cache.
    """

    num_features = 4096
    num_logits = 0
    tag = "vgg16-fc2relu-tfidelity"
    description = "torch-fidelity VGG-16 fc2 (torchvision ImageNet weights)"

    def __init__(self, weights_path: str | None = None) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16
        from torchvision.models import VGG16_Weights

        preloaded = {}
        if weights_path is not None:
            preloaded[weights_path] = read_plain_state_dict(weights_path, "classifier.0.weight", "VGG-16")
        try:
            with weights_only_torch_loads(preloaded):
                self.vgg = FeatureExtractorVGG16(
                    "vgg16", ["fc2_relu"], feature_extractor_weights_path=weights_path
                )
        except (OSError, RuntimeError) as err:  # URLError/HTTPError are OSErrors; bad hash is RuntimeError
            url = VGG16_Weights.IMAGENET1K_V1.url
            raise FeatureExtractorUnavailableError(
                f"VGG-16 weights for precision/recall could not be downloaded ({type(err).__name__}): "
                f"download {url} and put it at {torch_hub_checkpoint_path(url.rsplit('/', 1)[-1])}"
            ) from err
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> VGG16FeatureExtractor:
        return super().train(False)

    @torch.no_grad()
    def forward(self, img_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (features,) = self.vgg(img_uint8)
        return features.reshape(img_uint8.shape[0], -1), features.new_zeros(img_uint8.shape[0], 0)


class TorchmetricsFeature(nn.Module):
    """Adapter: any extractor of this module's protocol as a torchmetrics custom ``feature`` module.

    torchmetrics' FID/KID/IS accept an ``nn.Module`` returning one tensor (and read ``num_features``);
    with a custom module they pass the input through unchanged, so this accepts uint8 [0, 255]
    or float [0, 1] (``normalize=True``) images. Example::

        FrechetInceptionDistance(feature=TorchmetricsFeature(load_embedded_feature_net()))
    """

    def __init__(self, extractor: nn.Module, output: Literal["features", "logits"] = "features") -> None:
        super().__init__()
        if output not in ("features", "logits"):
            raise ValueError(f"output={output!r}: expected 'features' or 'logits'")
        self.extractor = extractor
        self.output = output
        self.num_features = int(extractor.num_features if output == "features" else extractor.num_logits)

    def forward(self, imgs: torch.Tensor) -> torch.Tensor:
        if imgs.dtype != torch.uint8:  # float [0, 1] → the uint8 levels the extractor expects
            imgs = torch.floor(imgs.float() * 255.0 + 0.5).clamp(0, 255).to(torch.uint8)
        features, logits = self.extractor(imgs)
        return features if self.output == "features" else logits
