"""Output and feature distillation terms (teacher → student) and pixel reconstruction.

- :class:`PixelLoss` — L1/L2 between the student image and a target: the teacher image (KD,
  CAGAN Sec. 3.3 / StyleKD: ``3 * L1(S, T)``) or the real image (pix2pix Eq. 3, ``100 * L1``).
- :class:`LPIPSLoss` — LPIPS (Zhang et al. 2018) via the ``lpips`` package; CAGAN uses VGG with
  weight 3 and downsamples images above 256 px to 256 before LPIPS (official
  ``lychenyoko/content-aware-gan-compression`` ``Util/...``: ``adaptive_downsample256``).
- Content-masked variants (``masked=True``): CAGAN's content-aware KD multiplies both images by
  the content mask before the distance (paper Sec. 3.3, "content-aware knowledge distillation").
- :class:`FeatureDistillation` — intermediate feature maps matched through learnable 1×1 conv
  adaptors (student width → teacher width), as in GAN Compression (Li et al. 2020, Eq. 3,
  ``mit-han-lab/gan-compression`` ``models/base_resnet_distiller.py`` "mapping_layers").

The LPIPS network is kept *outside* the module tree (never in a state dict or an optimizer,
never wrapped by DDP); it is moved to the input's device on first use.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_gancomp.losses.base import LossContext, LossTerm, masked

ImageTarget = Literal["teacher_img", "real_img"]


def _distance(a: Tensor, b: Tensor, kind: Literal["l1", "l2"]) -> Tensor:
    return F.l1_loss(a, b) if kind == "l1" else F.mse_loss(a, b)


class PixelLoss(LossTerm):
    """Mean absolute (``l1``) or squared (``l2``) difference of the student image to a target.

    Args:
        weight: multiplier (CAGAN KD: 3; pix2pix reconstruction: 100).
        kind: ``"l1"`` or ``"l2"``.
        target: ``"teacher_img"`` (distillation) or ``"real_img"`` (paired reconstruction).
        masked: multiply both images by the content mask first (content-aware KD).
        name: log key suffix; default ``kd_l1``/``kd_l2`` for the teacher, ``rec_l1`` for real.
    """

    def __init__(
        self,
        weight: float = 1.0,
        kind: Literal["l1", "l2"] = "l1",
        target: ImageTarget = "teacher_img",
        masked: bool = False,
        name: str | None = None,
    ) -> None:
        prefix = "kd" if target == "teacher_img" else "rec"
        default = f"{prefix}_{'masked_' if masked else ''}{kind}"
        super().__init__(weight, name or default)
        if kind not in ("l1", "l2"):
            raise ValueError(f"PixelLoss: kind must be 'l1' or 'l2', got {kind!r}")
        if target not in ("teacher_img", "real_img"):
            raise ValueError(f"PixelLoss: target must be 'teacher_img' or 'real_img', got {target!r}")
        self.kind = kind
        self.target = target
        self.masked = masked

    def needs(self) -> tuple[str, ...]:
        return ("student_img", self.target) + (("mask",) if self.masked else ())

    def forward(self, ctx: LossContext) -> Tensor:
        mask = self.fetch(ctx, "mask") if self.masked else None
        student = masked(self.fetch(ctx, "student_img"), mask)
        target = masked(self.fetch(ctx, self.target), mask)
        return _distance(student, target, self.kind)


class IntermediateRGBLoss(LossTerm):
    """CAGAN ``kd_mode='Intermediate'`` (official ``train.py`` ``KD_loss``; StyleKD likewise):
    Σ over resolutions of mean |T_rgb − S_rgb|, the running RGB images of the StyleGAN2 skip
    architecture (every ToRGB output, 4 px .. the output image; ``rgb_skip_points()``). It replaces
    the output-only L1 (``PixelLoss``) in that mode; the official lists are not content-masked.
    """

    requires: ClassVar[tuple[str, ...]] = ("student_rgbs", "teacher_rgbs")

    def __init__(self, weight: float = 1.0, name: str = "kd_intermediate_l1") -> None:
        super().__init__(weight, name)

    def forward(self, ctx: LossContext) -> Tensor:
        student, teacher = self.fetch(ctx, "student_rgbs"), self.fetch(ctx, "teacher_rgbs")
        if len(student) != len(teacher):
            raise ValueError(f"{self.name}: student has {len(student)} RGB outputs, teacher {len(teacher)}")
        return sum(((t - s).abs().mean() for s, t in zip(student, teacher)), student[0].new_zeros(()))


class _OutsideModuleTree:
    """Holds a module without registering it (no state dict, no ``.to``, no DDP)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module


class LPIPSLoss(LossTerm):
    """LPIPS perceptual distance between the student image and a target.

    Args:
        weight: multiplier (CAGAN/StyleKD: 3).
        net: backbone, ``"vgg"`` (CAGAN) or ``"alex"``.
        target: ``"teacher_img"`` or ``"real_img"``.
        masked: content-masked variant (both images multiplied by the mask).
        resize_to: images larger than this are downsampled to it first (CAGAN: 256);
            ``None`` keeps the size.
        resize_mode: ``"bilinear"`` (``align_corners=False``, no antialiasing: the official
            ``Downsample_Image_256`` in CAGAN's ``train.py``) or ``"area"`` (box average, less
            aliasing at 1024 → 256).
        pretrained_backbone: ImageNet backbone weights from torchvision (downloaded on first use
            into the torch hub cache). ``False`` = random backbone, for offline tests only.
    """

    def __init__(
        self,
        weight: float = 1.0,
        net: Literal["vgg", "alex"] = "vgg",
        target: ImageTarget = "teacher_img",
        masked: bool = False,
        resize_to: int | None = 256,
        resize_mode: Literal["bilinear", "area"] = "bilinear",
        pretrained_backbone: bool = True,
        name: str | None = None,
    ) -> None:
        if resize_mode not in ("bilinear", "area"):
            raise ValueError(f"LPIPSLoss: resize_mode must be 'bilinear' or 'area', got {resize_mode!r}")
        prefix = "kd" if target == "teacher_img" else "rec"
        super().__init__(weight, name or f"{prefix}_{'masked_' if masked else ''}lpips")
        if net not in ("vgg", "alex"):
            raise ValueError(f"LPIPSLoss: net must be 'vgg' or 'alex', got {net!r}")
        self.net = net
        self.target = target
        self.masked = masked
        self.resize_to = resize_to
        self.resize_mode = resize_mode
        self.pretrained_backbone = pretrained_backbone
        self._lpips: _OutsideModuleTree | None = None

    def needs(self) -> tuple[str, ...]:
        return ("student_img", self.target) + (("mask",) if self.masked else ())

    def lpips_network(self, device: torch.device) -> nn.Module:
        if self._lpips is None:
            self._lpips = _OutsideModuleTree(build_lpips(self.net, self.pretrained_backbone))
        network = self._lpips.module
        if next(network.parameters()).device != device:
            network.to(device)
        return network

    def _resize(self, img: Tensor) -> Tensor:
        if self.resize_to is None or img.shape[-1] <= self.resize_to:
            return img
        size = (self.resize_to, self.resize_to)
        if self.resize_mode == "area":
            return F.interpolate(img, size=size, mode="area")
        return F.interpolate(img, size=size, mode="bilinear", align_corners=False)

    def forward(self, ctx: LossContext) -> Tensor:
        mask = self.fetch(ctx, "mask") if self.masked else None
        student = self._resize(masked(self.fetch(ctx, "student_img"), mask))
        target = self._resize(masked(self.fetch(ctx, self.target), mask))
        return self.lpips_network(student.device)(student, target).mean()


def build_lpips(net: Literal["vgg", "alex"], pretrained_backbone: bool = True) -> nn.Module:
    """Frozen ``lpips.LPIPS`` in eval mode; one clear line when the backbone cannot be fetched."""
    import lpips

    try:
        network = lpips.LPIPS(net=net, pretrained=True, pnet_rand=not pretrained_backbone, verbose=False)
    except OSError as exc:  # URLError is an OSError: no network, no cached torchvision weights
        raise RuntimeError(
            f"LPIPS-{net}: torchvision ImageNet weights for the backbone are not cached and cannot be "
            f"downloaded ({exc}); put them in $TORCH_HOME/hub/checkpoints or set pretrained_backbone: false "
            "(random backbone, tests only)"
        ) from exc
    network.eval().requires_grad_(False)
    return network


class FeatureDistillation(LossTerm):
    """Distance between adapted student feature maps and teacher feature maps.

    Each distillation point gets a learnable 1×1 conv adaptor from the student's width to the
    teacher's (identity-free even when widths match, as in GAN Compression). Adaptors are created
    by :meth:`bind` once the method knows the widths, before optimizers are configured, and are
    trained with the generator.

    Args:
        weight: multiplier.
        kind: ``"l1"`` or ``"l2"`` (GAN Compression: L2).
        points: indices into the generator's ``distillation_points()`` to use; ``None`` = all.
        name: log key suffix.
    """

    requires: ClassVar[tuple[str, ...]] = ("student_features", "teacher_features")

    def __init__(
        self,
        weight: float = 1.0,
        kind: Literal["l1", "l2"] = "l2",
        points: list[int] | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(weight, name or f"kd_feat_{kind}")
        self.kind = kind
        self.points = None if points is None else list(points)
        self.adaptors = nn.ModuleList()

    def select(self, available: int) -> list[int]:
        chosen = list(range(available)) if self.points is None else self.points
        bad = [i for i in chosen if not -available <= i < available]
        if bad:
            raise ValueError(
                f"FeatureDistillation: points {bad} out of range for {available} distillation points"
            )
        return chosen

    def bind(self, student_channels: list[int], teacher_channels: list[int]) -> None:
        """Create the 1×1 adaptors for the chosen points (student width → teacher width)."""
        chosen = self.select(len(student_channels))
        self.adaptors = nn.ModuleList(
            nn.Conv2d(student_channels[i], teacher_channels[i], kernel_size=1) for i in chosen
        )

    def forward(self, ctx: LossContext) -> Tensor:
        student = self.fetch(ctx, "student_features")
        teacher = self.fetch(ctx, "teacher_features")
        chosen = self.select(len(student))
        if len(self.adaptors) != len(chosen):
            raise RuntimeError("FeatureDistillation: bind() was not called by the method before training")
        losses = [
            _distance(adaptor(student[i]), teacher[i].detach(), self.kind)
            for adaptor, i in zip(self.adaptors, chosen, strict=True)
        ]
        return torch.stack(losses).mean()
