"""pix2pix aligned and CycleGAN unaligned datasets (see the package docstring)."""

from __future__ import annotations

import copy
import os
from typing import Literal

import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from lightning_gancomp.data.errors import DatasetError
from lightning_gancomp.data.sources.common import VerifyMode, list_image_files, require_path
from lightning_gancomp.data.transforms import (
    Pix2PixTransform,
    decode_image,
    read_image_size,
)


def _folder_images(folder: str, what: str) -> list[str]:
    if not os.path.isdir(folder):
        raise DatasetError(f"{what} folder does not exist: {folder}")
    files = [os.path.join(folder, name) for name in list_image_files(folder)]
    if not files:
        raise DatasetError(f"no images found in {what} folder: {folder}")
    return files


def _check_file(path: str, decode: bool) -> tuple[int, int]:
    """(width, height) of an image file, fully decoded or from its header only."""
    with open(path, "rb") as stream:
        return decode_image(stream, path).size if decode else read_image_size(stream, path)


def _load_file(path: str) -> Image.Image:
    with open(path, "rb") as stream:
        return decode_image(stream, path)


class AlignedDataset(Dataset):
    """pix2pix aligned pairs: ``root/{phase}/*`` images holding A (left half) | B (right half).

    Items: ``input_img`` = the generator input, ``real_img`` = the target; with
    ``direction="AtoB"`` input = A, with ``"BtoA"`` input = B (official ``--direction``). A and B get
    the same crop position and flip (one ``sample_params`` draw per item).
    """

    def __init__(
        self,
        root: str,
        transform: Pix2PixTransform,
        phase: str = "train",
        direction: Literal["AtoB", "BtoA"] = "AtoB",
        verify: VerifyMode = "first",
    ) -> None:
        if direction not in ("AtoB", "BtoA"):
            raise DatasetError(f"unknown direction {direction!r}; expected 'AtoB' or 'BtoA'")
        self.root = require_path(root)
        self.folder = os.path.join(self.root, phase)
        self.files = _folder_images(self.folder, f"pix2pix {phase!r}")
        self.transform = transform
        self.direction = direction
        if verify not in ("first", "headers", "full"):
            raise DatasetError(f"unknown verify mode {verify!r}; expected 'first', 'headers' or 'full'")
        for path in self.files if verify != "first" else self.files[:1]:
            width, _ = _check_file(path, decode=verify != "headers")
            if width < 2:
                raise DatasetError(f"{path} is {width} pixel wide: cannot split into A|B halves")

    def with_transform(self, transform: Pix2PixTransform) -> AlignedDataset:
        clone = copy.copy(self)
        clone.transform = transform
        return clone

    def __len__(self) -> int:
        return len(self.files)

    def split_pair(self, index: int) -> tuple[Image.Image, Image.Image]:
        """(A, B) PIL halves of file ``index``: A is the left half, B the right."""
        ab = _load_file(self.files[index])
        width, height = ab.size
        half = width // 2
        return ab.crop((0, 0, half, height)), ab.crop((half, 0, width, height))

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        a, b = self.split_pair(index)
        params = self.transform.sample_params(a.size)
        try:
            a_img, b_img = self.transform.apply(a, params), self.transform.apply(b, params)
        except DatasetError as err:
            raise DatasetError(f"{self.files[index]}: {err}") from err
        if self.direction == "BtoA":
            a_img, b_img = b_img, a_img
        return {"input_img": a_img, "real_img": b_img}


class UnalignedDataset(Dataset):
    """CycleGAN unaligned domains: ``root/{phase}A`` and ``root/{phase}B``.

    Length = max(|A|, |B|). Item ``i`` takes A[i % |A|] and B[i % |B|] when ``serial_b`` (official
    ``--serial_batches``, used at test time) or a uniformly random B otherwise. A and B get
    independent crops/flips. Items: ``input_img`` (from A), ``real_img`` (from B).
    """

    def __init__(
        self,
        root: str,
        transform: Pix2PixTransform,
        phase: str = "train",
        serial_b: bool = False,
        verify: VerifyMode = "first",
    ) -> None:
        self.root = require_path(root)
        self.files_a = _folder_images(os.path.join(self.root, f"{phase}A"), "CycleGAN domain A")
        self.files_b = _folder_images(os.path.join(self.root, f"{phase}B"), "CycleGAN domain B")
        self.transform = transform
        self.serial_b = serial_b
        if verify not in ("first", "headers", "full"):
            raise DatasetError(f"unknown verify mode {verify!r}; expected 'first', 'headers' or 'full'")
        for files in (self.files_a, self.files_b):
            for path in files if verify != "first" else files[:1]:
                _check_file(path, decode=verify != "headers")

    def with_transform(self, transform: Pix2PixTransform, serial_b: bool | None = None) -> UnalignedDataset:
        clone = copy.copy(self)
        clone.transform = transform
        if serial_b is not None:
            clone.serial_b = serial_b
        return clone

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def b_index(self, index: int) -> int:
        if self.serial_b:
            return index % len(self.files_b)
        return int(torch.randint(0, len(self.files_b), ()))

    def _transformed(self, path: str) -> Tensor:
        try:
            return self.transform(_load_file(path))
        except DatasetError as err:
            if path in str(err):
                raise
            raise DatasetError(f"{path}: {err}") from err

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        path_a = self.files_a[index % len(self.files_a)]
        path_b = self.files_b[self.b_index(index)]
        return {"input_img": self._transformed(path_a), "real_img": self._transformed(path_b)}
