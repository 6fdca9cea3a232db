"""BiSeNet face parser (CelebAMask-HQ, 19 classes) and the content mask CAGAN builds from it.

Network: Yu et al., "BiSeNet: Bilateral Segmentation Network for Real-time Semantic
Segmentation" (ECCV 2018) in the variant of zllrunning/face-parsing.PyTorch ``model.py`` +
``resnet.py`` (the parser CAGAN ships as ``Util/face_parsing``): a ResNet-18 context path with
two attention refinement modules (ARM) and a global-context branch, the spatial path *replaced by
the ResNet 1/8 feature*, a feature fusion module (FFM), a main head and two auxiliary heads
(used only as training losses). Module names follow that file so the public ``79999_iter.pth``
state dict (``cp.resnet.layer1.0.conv1.weight``, ``cp.arm16.conv_atten.weight``,
``ffm.convblk.conv.weight``, ``conv_out.conv_out.weight``...) loads 1:1. The reference ResNet
downloads ImageNet weights in its constructor; ours never downloads (the parser checkpoint holds
every weight).

Content mask: Liu et al., "Content-Aware GAN Compression" (CVPR 2021), Sec. 3.2: a face parser
splits the generated image into content (face) and background; the mask keeps every class except
background (0) and cloth (16). lychenyoko/content-aware-gan-compression
``Util/content_aware_pruning.py`` does this twice, differently:

* ``"pruning"`` (``Get_Content_Aware_Pruning_Score`` -> ``Extract_Face_Mask``): the image is
  turned into a uint8 PIL image (``Convert_Tensor_To_Image``), resized to 512x512 with PIL
  bilinear, ``ToTensor`` + ``Normalize(ImageNet mean/std)``, argmax of the main head; the boolean
  mask is resized back with PIL (mode "1" -> nearest). We reproduce this on tensors: uint8
  rounding, Pillow's fixed-point separable bilinear (bit-identical), and ``nearest-exact``
  (PIL's pixel-centre nearest; identical for the integer ratios 512 <-> 128/256/1024).
* ``"distillation"`` (``Batch_Img_Parsing`` + ``Get_Masked_Tensor``, used by content-aware KD in
  ``train.py``): float image, ``F.interpolate(bilinear, align_corners=False)`` to 512, same
  normalisation; the mask is resized with bilinear and thresholded at 0.5. (The reference's
  ``resized_mask.squeeze()`` breaks for batch size 1; we do not copy that.)
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lightning_gancomp.nets.base import CheckpointMismatchError, load_state_dict_strict

#: CelebAMask-HQ labels in the order of zllrunning ``prepropess_data.py`` (label = index).
CELEBAMASK_HQ_CLASSES = (
    "background",
    "skin",
    "l_brow",
    "r_brow",
    "l_eye",
    "r_eye",
    "eye_g",
    "l_ear",
    "r_ear",
    "ear_r",
    "nose",
    "mouth",
    "u_lip",
    "l_lip",
    "neck",
    "neck_l",
    "cloth",
    "hair",
    "hat",
)
#: Classes outside CAGAN's content mask: background and cloth.
NON_CONTENT_CLASSES = (0, 16)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

FACE_PARSER_ENV = "LIGHTNING_GANCOMP_FACE_PARSER"
FACE_PARSER_FILENAME = "79999_iter.pth"
FACE_PARSER_URL = "https://drive.google.com/open?id=154JgKpzCPW82qINcVieuPH3fZ2e0P812"


# -- network ------------------------------------------------------------------------------------
class ConvBNReLU(nn.Module):
    """``relu(bn(conv(x)))`` with a bias-free conv (reference ``ConvBNReLU``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    """ResNet-18 basic block: ``relu(shortcut(x) + bn2(conv2(relu(bn1(conv1(x))))))``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if in_channels != out_channels or stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


def _resnet_stage(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        BasicBlock(in_channels, out_channels, stride), BasicBlock(out_channels, out_channels)
    )


class Resnet18(nn.Module):
    """ResNet-18 trunk returning the 1/8, 1/16 and 1/32 features (no fc, no weight download)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _resnet_stage(64, 64, 1)
        self.layer2 = _resnet_stage(64, 128, 2)
        self.layer3 = _resnet_stage(128, 256, 2)
        self.layer4 = _resnet_stage(256, 512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        feat32 = self.layer4(feat16)
        return feat8, feat16, feat32


def _global_pool(x: torch.Tensor) -> torch.Tensor:
    return F.adaptive_avg_pool2d(x, 1)


class AttentionRefinementModule(nn.Module):
    """``feat * sigmoid(bn(conv1x1(avgpool(feat))))`` with ``feat = ConvBNReLU(x)`` (paper Fig. 2b)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, out_channels, 3)
        self.conv_atten = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        return feat * torch.sigmoid(self.bn_atten(self.conv_atten(_global_pool(feat))))


class ContextPath(nn.Module):
    """ResNet-18 + ARMs on the 1/16 and 1/32 features + the global-average context; returns the
    1/8 ResNet feature (stand-in for the spatial path), the fused 1/8 and 1/16 context features."""

    def __init__(self) -> None:
        super().__init__()
        self.resnet = Resnet18()
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128, 3)
        self.conv_head16 = ConvBNReLU(128, 128, 3)
        self.conv_avg = ConvBNReLU(512, 128, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        context = F.interpolate(self.conv_avg(_global_pool(feat32)), feat32.shape[2:], mode="nearest")
        feat32_up = F.interpolate(self.arm32(feat32) + context, feat16.shape[2:], mode="nearest")
        feat32_up = self.conv_head32(feat32_up)
        feat16_up = F.interpolate(self.arm16(feat16) + feat32_up, feat8.shape[2:], mode="nearest")
        feat16_up = self.conv_head16(feat16_up)
        return feat8, feat16_up, feat32_up


class FeatureFusionModule(nn.Module):
    """``feat + feat * sigmoid(conv2(relu(conv1(avgpool(feat)))))``, ``feat = ConvBNReLU(cat)``
    (paper Fig. 2c)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(in_channels, out_channels, 1)
        self.conv1 = nn.Conv2d(out_channels, out_channels // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_channels // 4, out_channels, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        attention = torch.sigmoid(self.conv2(F.relu(self.conv1(_global_pool(feat)))))
        return feat + feat * attention


class BiSeNetOutput(nn.Module):
    """``ConvBNReLU(3x3)`` then a bias-free 1x1 conv to class logits."""

    def __init__(self, in_channels: int, mid_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, mid_channels, 3)
        self.conv_out = nn.Conv2d(mid_channels, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """Face-parsing BiSeNet; ``forward(x)`` -> main logits [B, num_classes, H, W].

    ``x`` is an ImageNet-normalised RGB image (``FaceParser`` does that); logits are upsampled to
    the input size with bilinear ``align_corners=True`` like the reference. ``return_aux=True``
    also returns the two auxiliary heads (training losses in the reference).
    """

    def __init__(self, num_classes: int = len(CELEBAMASK_HQ_CLASSES)) -> None:
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusionModule(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, num_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, num_classes)
        self.conv_out32 = BiSeNetOutput(128, 64, num_classes)

    def forward(self, x: torch.Tensor, return_aux: bool = False) -> torch.Tensor | tuple[torch.Tensor, ...]:
        size = x.shape[2:]
        feat8, context8, context16 = self.cp(x)
        logits = self._upsample(self.conv_out(self.ffm(feat8, context8)), size)
        if not return_aux:
            return logits
        aux16 = self._upsample(self.conv_out16(context8), size)
        aux32 = self._upsample(self.conv_out32(context16), size)
        return logits, aux16, aux32

    @staticmethod
    def _upsample(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        return F.interpolate(x, tuple(size), mode="bilinear", align_corners=True)


# -- weights ------------------------------------------------------------------------------------
class FaceParserWeightsNotFound(FileNotFoundError):
    """The BiSeNet checkpoint is not on disk (it cannot be downloaded automatically)."""


def default_face_parser_path() -> str:
    """``<torch hub dir>/checkpoints/79999_iter.pth``."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", FACE_PARSER_FILENAME)


def resolve_face_parser_weights(weights_path: str | None = None) -> str:
    """The argument, else ``$LIGHTNING_GANCOMP_FACE_PARSER``, else the torch hub cache file.

    Raises FaceParserWeightsNotFound (one line: what to download and where to put it).
    """
    if weights_path is not None:
        source, path = "weights_path", weights_path
    elif os.environ.get(FACE_PARSER_ENV):
        source, path = f"${FACE_PARSER_ENV}", os.environ[FACE_PARSER_ENV]
    else:
        source, path = "torch hub cache", default_face_parser_path()
    if os.path.isfile(path):
        return path
    raise FaceParserWeightsNotFound(
        f"face parser weights not found at {path} ({source}): download {FACE_PARSER_FILENAME} "
        f"(BiSeNet, zllrunning/face-parsing.PyTorch) from {FACE_PARSER_URL} and pass weights_path=..., "
        f"set {FACE_PARSER_ENV}=/path/to/{FACE_PARSER_FILENAME}, or save it as {default_face_parser_path()}"
    )


def load_bisenet(path: str) -> BiSeNet:
    """A BiSeNet with the weights of a ``79999_iter.pth``-layout state dict (weights_only load)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}  # saved from DataParallel/DDP
    if not isinstance(state, Mapping) or "conv_out.conv_out.weight" not in state:
        raise CheckpointMismatchError(f"{path}: not a BiSeNet state dict (no key conv_out.conv_out.weight)")
    net = BiSeNet(num_classes=int(state["conv_out.conv_out.weight"].shape[0]))
    load_state_dict_strict(net, state, path)
    return net.eval()


# -- content mask -------------------------------------------------------------------------------
#: Pillow's fixed-point precision for 8-bit resampling (``libImaging/Resample.c``).
_PIL_PRECISION_BITS = 32 - 8 - 2


@functools.lru_cache(maxsize=32)
def _pil_bilinear_weights(in_size: int, out_size: int) -> torch.Tensor:
    """Pillow's integer bilinear coefficients as a dense float64 ``[out_size, in_size]`` matrix.

    Same arithmetic as ``precompute_coeffs`` + ``normalize_coeffs_8bpc``: triangle filter whose
    support grows with the downscaling factor (antialiasing), pixel-centre alignment, weights
    normalised per output pixel then rounded to ``2**22`` fixed point.
    """
    scale = in_size / out_size
    filter_scale = max(scale, 1.0)
    support = 1.0 * filter_scale
    weights = torch.zeros(out_size, in_size, dtype=torch.float64)
    for out_index in range(out_size):
        center = (out_index + 0.5) * scale
        first = max(int(center - support + 0.5), 0)
        last = min(int(center + support + 0.5), in_size)
        taps = [max(0.0, 1.0 - abs((x - center + 0.5) / filter_scale)) for x in range(first, last)]
        total = sum(taps)
        for offset, tap in enumerate(taps):
            weight = tap / total if total != 0.0 else tap
            weights[out_index, first + offset] = math.floor(0.5 + weight * (1 << _PIL_PRECISION_BITS))
    return weights


def _pil_fixed_point_pass(x: torch.Tensor, weights: torch.Tensor, dim: int) -> torch.Tensor:
    """One separable pass along ``dim`` (2: rows, 3: columns) with Pillow's rounding and clipping."""
    x = x.movedim(dim, -1).to(torch.float64)
    # exact: 0..255 integers times integer weights stay far below 2**53
    acc = x @ weights.to(x.device).T + (1 << (_PIL_PRECISION_BITS - 1))
    out = torch.floor(acc / (1 << _PIL_PRECISION_BITS)).clamp(0, 255)
    return out.movedim(-1, dim)


def _pil_bilinear_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pillow's ``Image.resize(size, BILINEAR)`` of uint8 images given as 0..255-valued floats.

    Pillow resamples separably, width first, in fixed point, and rounds to uint8 after each
    pass; a pass whose size does not change is skipped. Bit-identical to Pillow.
    """
    dtype = x.dtype
    if x.shape[3] != size[1]:
        x = _pil_fixed_point_pass(x, _pil_bilinear_weights(x.shape[3], size[1]), 3)
    if x.shape[2] != size[0]:
        x = _pil_fixed_point_pass(x, _pil_bilinear_weights(x.shape[2], size[0]), 2)
    return x.to(dtype)


class FaceParser(nn.Module):
    """Frozen BiSeNet that turns generated faces into CAGAN content masks.

    The parser's weights come from its own file, not from the training checkpoint: the network
    is held outside ``_modules`` (so it never enters ``state_dict()``, ``parameters()`` or an
    optimizer) and ``_apply`` moves it along with ``.to()``/``.cuda()``/``.half()``.

    Args:
        weights_path: ``79999_iter.pth``; None -> ``$LIGHTNING_GANCOMP_FACE_PARSER`` -> torch hub
            cache ``checkpoints/79999_iter.pth``. A missing file raises a one-line error.
        network: use this module instead of loading weights (it must map normalised images to
            logits ``[B, classes, h, w]``); for tests and custom parsers.
        mode: ``"pruning"`` (CAGAN's scorer path, default) or ``"distillation"`` (CAGAN's KD path);
            see the module docstring.
        parse_size: side the image is resized to before parsing (512 in the reference).
        non_content_classes: labels outside the mask (background, cloth).
    """

    def __init__(
        self,
        weights_path: str | None = None,
        *,
        network: nn.Module | None = None,
        mode: Literal["pruning", "distillation"] = "pruning",
        parse_size: int = 512,
        non_content_classes: Sequence[int] = NON_CONTENT_CLASSES,
    ) -> None:
        super().__init__()
        if mode not in ("pruning", "distillation"):
            raise ValueError(f"mode must be 'pruning' or 'distillation', got {mode!r}")
        if network is None:
            network = load_bisenet(resolve_face_parser_weights(weights_path))
        network.eval().requires_grad_(False)
        self.__dict__["network"] = network  # deliberately not a submodule (see class docstring)
        self.mode = mode
        self.parse_size = parse_size
        self.non_content_classes = tuple(int(c) for c in non_content_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001, ANN202 - nn.Module signature
        super()._apply(fn, recurse)
        self.network._apply(fn)
        return self

    def train(self, mode: bool = True) -> FaceParser:
        super().train(mode)
        self.network.eval()  # always frozen, BatchNorm in inference mode
        return self

    def preprocess(self, img: torch.Tensor) -> torch.Tensor:
        """[-1, 1] images -> ImageNet-normalised ``parse_size`` x ``parse_size`` parser input."""
        x = ((img.float() + 1) / 2).clamp(0, 1)
        size = (self.parse_size, self.parse_size)
        if self.mode == "pruning":
            # Convert_Tensor_To_Image rounds to uint8, PIL resizes, ToTensor divides by 255.
            x = _pil_bilinear_resize(torch.floor(x * 255 + 0.5), size) / 255
        else:
            x = F.interpolate(x, size, mode="bilinear", align_corners=False)
        return (x - self.mean) / self.std

    @torch.no_grad()
    def parse(self, img: torch.Tensor) -> torch.Tensor:
        """Class labels [B, parse_size, parse_size] (long) of [-1, 1] images [B, 3, H, W]."""
        logits = self.network(self.preprocess(img))
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        return logits.argmax(dim=1)

    @torch.no_grad()
    def content_mask(self, img: torch.Tensor) -> torch.Tensor:
        """Float mask [B, 1, H, W] in {0, 1}: 1 where the parsed class is content (not background,
        not cloth), at the input resolution."""
        labels = self.parse(img)
        content = torch.ones_like(labels, dtype=torch.bool)
        for cls in self.non_content_classes:
            content &= labels != cls
        mask = content.unsqueeze(1).float()
        size = tuple(img.shape[2:])
        if self.mode == "pruning":
            return F.interpolate(mask, size, mode="nearest-exact")
        return (F.interpolate(mask, size, mode="bilinear", align_corners=False) > 0.5).float()

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.content_mask(img)
