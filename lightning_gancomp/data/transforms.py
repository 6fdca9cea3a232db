"""Image decoding and the reference preprocessing of each family, producing tensors in [-1, 1].

Each transform follows the official training code of its family:

* StyleGAN2 (rosinality/stylegan2-pytorch ``prepare_data.py`` + ``train.py``): images are resized
  (shorter side, Lanczos) and centre-cropped to the resolution, randomly mirrored, then scaled to
  [-1, 1] with mean = std = 0.5.
* BigGAN (ajbrock/BigGAN-PyTorch ``utils.py``): centre crop to the short edge
  ("CenterCropLongEdge"), resize to the resolution; with ``augment`` a random short-edge crop and a
  random horizontal flip instead.
* pix2pix / CycleGAN (junyanz/pytorch-CycleGAN-and-pix2pix ``data/base_dataset.py``):
  ``resize_and_crop`` = bicubic resize to ``load_size`` x ``load_size`` (286), random crop of
  ``crop_size`` (256), random flip; ``crop`` = random crop without resizing. The crop position and
  flip are drawn once per item (``sample_params``) so an aligned A|B pair gets the *same* crop and
  flip. At test time the official options set ``load_size = crop_size`` and ``no_flip``.

Randomness uses ``torch``'s global generator, which the DataLoader seeds differently per worker.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO, Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from lightning_gancomp.data.errors import DatasetError

#: File name endings read as images (lower case). PIL decodes all of them.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm")

#: What PIL raises for an unreadable, truncated or non-image file.
_DECODE_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError)


def is_image_name(name: str) -> bool:
    """True when the file name ends with a known image extension (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def decode_image(stream: BinaryIO | bytes, name: str) -> Image.Image:
    """Fully decode an image to RGB; any decoding failure becomes a DatasetError naming ``name``."""
    if isinstance(stream, bytes):
        stream = io.BytesIO(stream)
    try:
        with Image.open(stream) as img:
            return to_rgb(img, name)  # converting forces the full decode (catches truncation)
    except DatasetError:
        raise  # already one line naming the file
    except _DECODE_ERRORS as err:
        raise DatasetError(f"cannot decode image {name}: {_one_line(err)}") from err


#: PIL modes of 16-bit single-channel images (16-bit grayscale PNG, 16-bit TIFF).
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def to_rgb(img: Image.Image, name: str) -> Image.Image:
    """8-bit RGB of any decoded image, scaled by its bit depth.

    PIL's ``convert("RGB")`` *clips* 16-bit grayscale (mode ``I;16``, or ``I`` from a 16-bit PNG)
    at 255, so nearly every pixel turns white; here 0..65535 maps to 0..255 (÷ 257, exact at both
    ends). 16-bit RGB PNGs already decode to 8-bit RGB (PIL keeps the high byte). 32-bit integer
    and float images have no known range: refused with one line naming the file.
    """
    if img.mode in _SIXTEEN_BIT_MODES or (img.mode == "I" and img.format == "PNG"):
        values = np.asarray(img, dtype=np.float64)
        eight_bit = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(eight_bit, "L").convert("RGB")
    if img.mode in ("I", "F"):
        raise DatasetError(
            f"{name}: {'32-bit integer' if img.mode == 'I' else 'floating-point'} pixels (PIL mode "
            f"{img.mode}) have no known value range; convert the image to 8 or 16 bits"
        )
    return img.convert("RGB")


def read_image_size(stream: BinaryIO | bytes, name: str) -> tuple[int, int]:
    """(width, height) from the image header only (no pixel decode); DatasetError if not an image."""
    if isinstance(stream, bytes):
        stream = io.BytesIO(stream)
    try:
        with Image.open(stream) as img:
            return img.size
    except _DECODE_ERRORS as err:
        raise DatasetError(f"cannot read image {name}: {_one_line(err)}") from err


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def pil_to_tensor(img: Image.Image) -> Tensor:
    """RGB PIL image -> float [3, H, W] in [-1, 1] (x / 127.5 - 1, i.e. Normalize(0.5, 0.5))."""
    array = np.asarray(img.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def uint8_chw_to_tensor(array: np.ndarray) -> Tensor:
    """uint8 [3, H, W] array (BigGAN HDF5 layout) -> float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(array)).float().div_(127.5).sub_(1.0)


def _coin() -> bool:
    return bool(torch.rand(()) < 0.5)


def _randint(high_inclusive: int) -> int:
    return int(torch.randint(0, high_inclusive + 1, ()))


def resize_short_side_and_center_crop(img: Image.Image, size: int, resample: int) -> Image.Image:
    """Scale so the shorter side is ``size``, then centre-crop to ``size`` x ``size``."""
    width, height = img.size
    if (width, height) == (size, size):
        return img
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    img = img.resize((new_w, new_h), resample=resample)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return img.crop((left, top, left + size, top + size))


class StyleGAN2Transform:
    """rosinality StyleGAN2 preprocessing: Lanczos short-side resize + centre crop, random mirror.

    Args:
        resolution: output side length in pixels.
        hflip: mirror left-right with probability 0.5 (rosinality ``RandomHorizontalFlip``;
            NVlabs' ``--mirror`` doubles the dataset with mirrored copies, same distribution).
    """

    def __init__(self, resolution: int, hflip: bool = True) -> None:
        self.resolution = resolution
        self.hflip = hflip

    def __call__(self, img: Image.Image) -> Tensor:
        img = resize_short_side_and_center_crop(img, self.resolution, Image.Resampling.LANCZOS)
        tensor = pil_to_tensor(img)  # [3, R, R]
        if self.hflip and _coin():
            tensor = tensor.flip(-1)
        return tensor


class BigGANTransform:
    """BigGAN ImageNet preprocessing (ajbrock/BigGAN-PyTorch ``utils.get_data_loaders``).

    Default: crop the centred square of the short edge (``CenterCropLongEdge``), bilinear resize to
    ``resolution``. ``augment=True``: a random short-edge square (``RandomCropLongEdge``), resize,
    random horizontal flip.
    """

    def __init__(self, resolution: int, augment: bool = False) -> None:
        self.resolution = resolution
        self.augment = augment

    def __call__(self, img: Image.Image) -> Tensor:
        width, height = img.size
        side = min(width, height)
        if self.augment:
            left, top = _randint(width - side), _randint(height - side)
        else:
            left, top = (width - side) // 2, (height - side) // 2
        img = img.crop((left, top, left + side, top + side))
        if side != self.resolution:
            img = img.resize((self.resolution, self.resolution), resample=Image.Resampling.BILINEAR)
        tensor = pil_to_tensor(img)
        if self.augment and _coin():
            tensor = tensor.flip(-1)
        return tensor


@dataclass(frozen=True)
class CropParams:
    """One draw of the pix2pix random crop: top-left corner (after resizing) and mirror flag."""

    left: int
    top: int
    flip: bool


class Pix2PixTransform:
    """pix2pix / CycleGAN preprocessing (``--preprocess resize_and_crop`` or ``crop``).

    Args:
        load_size: side of the square resize before cropping (official 286); ignored by ``crop``.
        crop_size: side of the random crop (official 256) = the training resolution.
        flip: random horizontal flip (official default; ``--no_flip`` turns it off).
        preprocess: ``"resize_and_crop"`` (official default) or ``"crop"`` (crop at native size).

    For evaluation use ``Pix2PixTransform(crop_size, crop_size, flip=False)``: the official test
    options set ``load_size = crop_size``, so nothing is cropped away.
    """

    def __init__(
        self,
        load_size: int = 286,
        crop_size: int = 256,
        flip: bool = True,
        preprocess: Literal["resize_and_crop", "crop"] = "resize_and_crop",
    ) -> None:
        if preprocess not in ("resize_and_crop", "crop"):
            raise DatasetError(
                f"unknown pix2pix preprocess {preprocess!r}; expected 'resize_and_crop' or 'crop'"
            )
        if preprocess == "resize_and_crop" and load_size < crop_size:
            raise DatasetError(f"load_size={load_size} is smaller than crop_size={crop_size}")
        self.load_size = load_size
        self.crop_size = crop_size
        self.flip = flip
        self.preprocess = preprocess

    def _resized_size(self, size: tuple[int, int]) -> tuple[int, int]:
        if self.preprocess == "resize_and_crop":
            return self.load_size, self.load_size
        return size

    def sample_params(self, size: tuple[int, int]) -> CropParams:
        """Draw crop corner and flip for an image of PIL ``size`` (width, height)."""
        width, height = self._resized_size(size)
        left = _randint(max(0, width - self.crop_size))
        top = _randint(max(0, height - self.crop_size))
        return CropParams(left=left, top=top, flip=self.flip and _coin())

    def apply(self, img: Image.Image, params: CropParams) -> Tensor:
        """Resize, crop and flip ``img`` with the given parameters -> [3, crop, crop] in [-1, 1]."""
        target = self._resized_size(img.size)
        if img.size != target:
            img = img.resize(target, resample=Image.Resampling.BICUBIC)
        if img.size != (self.crop_size, self.crop_size):
            if min(img.size) < self.crop_size:
                raise DatasetError(
                    f"image of size {img.size[0]}x{img.size[1]} is smaller than crop_size={self.crop_size}"
                )
            img = img.crop(
                (params.left, params.top, params.left + self.crop_size, params.top + self.crop_size)
            )
        tensor = pil_to_tensor(img)
        return tensor.flip(-1) if params.flip else tensor

    def __call__(self, img: Image.Image) -> Tensor:
        return self.apply(img, self.sample_params(img.size))
