"""Shared parts of the on-disk datasets: paths, image listing, the encoded-image base class."""

from __future__ import annotations

import abc
import copy
import os
from collections.abc import Callable
from typing import BinaryIO, Literal

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from lightning_gancomp.data.errors import DatasetError
from lightning_gancomp.data.transforms import (
    decode_image,
    is_image_name,
    read_image_size,
)

#: How much of a dataset is checked when it is built: decode the first image only; read every
#: image header (catches non-image files and, with ``require_fixed_size``, mixed sizes); or decode
#: every image (slow; catches truncated files too).
VerifyMode = Literal["first", "headers", "full"]

ImageTransform = Callable[[Image.Image], Tensor]


def require_path(path: str | os.PathLike[str]) -> str:
    """The path as a string, or DatasetError when it does not exist."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DatasetError(f"dataset path does not exist: {path}")
    return path


def list_image_files(root: str) -> list[str]:
    """Relative paths ('/'-separated) of every image below ``root``, recursive, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in filenames:
            if is_image_name(name):
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                found.append(rel.replace(os.sep, "/"))
    return sorted(found)


# --------------------------------------------------------------------------------------------
# Base: indexed encoded images + transform -> dict items
# --------------------------------------------------------------------------------------------


class EncodedImageDataset(Dataset, abc.ABC):
    """Base of the single-image formats: subclasses say how to open image ``i`` and what it is called.

    Items: ``{"real_img": [3, H, W] in [-1, 1]}`` plus ``"label"`` (long scalar) when
    ``return_labels`` and the format has labels.
    """

    def __init__(self, transform: ImageTransform, return_labels: bool = False) -> None:
        self.transform = transform
        self.return_labels = return_labels
        self.labels: list[int] | None = None

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def open_image(self, index: int) -> BinaryIO:
        """A binary stream of the encoded image ``index`` (file, zip member or in-memory bytes)."""

    @abc.abstractmethod
    def image_name(self, index: int) -> str:
        """Human-readable location of image ``index`` for error messages (path, zip member, key)."""

    def load_image(self, index: int) -> Image.Image:
        """Decoded RGB image ``index``; DatasetError naming it when it cannot be decoded."""
        with self.open_image(index) as stream:
            return decode_image(stream, self.image_name(index))

    def image_size(self, index: int) -> tuple[int, int]:
        """(width, height) from the header of image ``index`` without decoding pixels."""
        with self.open_image(index) as stream:
            return read_image_size(stream, self.image_name(index))

    def with_transform(self, transform: ImageTransform) -> EncodedImageDataset:
        """A shallow copy sharing the file list but using another transform (e.g. for evaluation)."""
        clone = copy.copy(self)
        clone.transform = transform
        return clone

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        img = self.load_image(index)
        try:
            item = {"real_img": self.transform(img)}
        except DatasetError as err:
            raise DatasetError(f"{self.image_name(index)}: {err}") from err
        if self.return_labels and self.labels is not None:
            item["label"] = torch.tensor(self.labels[index], dtype=torch.long)
        return item

    def verify(self, mode: VerifyMode = "first", require_fixed_size: bool = False) -> None:
        """Check the dataset now so problems surface at setup, not deep inside a worker."""
        if len(self) == 0:
            raise DatasetError(f"dataset is empty: {self.describe()}")
        if mode not in ("first", "headers", "full"):
            raise DatasetError(f"unknown verify mode {mode!r}; expected 'first', 'headers' or 'full'")
        self.load_image(0)
        if mode == "first" and not require_fixed_size:
            return
        first_size = self.image_size(0)
        for index in range(len(self)):
            size = self.load_image(index).size if mode == "full" else self.image_size(index)
            if require_fixed_size and size != first_size:
                raise DatasetError(
                    f"images of mixed sizes where a fixed size is required: {self.image_name(0)} is "
                    f"{first_size[0]}x{first_size[1]} but {self.image_name(index)} is {size[0]}x{size[1]}"
                )

    def describe(self) -> str:
        """The dataset location for messages."""
        return getattr(self, "path", type(self).__name__)


# --------------------------------------------------------------------------------------------
# Folder, NVlabs zip/folder, class folder
# --------------------------------------------------------------------------------------------
