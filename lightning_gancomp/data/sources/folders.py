"""Image folders, NVlabs zip/folder datasets and class folders (see the package docstring)."""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any, BinaryIO

from lightning_gancomp.data.errors import DatasetError
from lightning_gancomp.data.sources.common import (
    EncodedImageDataset,
    ImageTransform,
    VerifyMode,
    list_image_files,
    require_path,
)
from lightning_gancomp.data.transforms import (
    IMAGE_EXTENSIONS,
    is_image_name,
)


class _FilesInFolder(EncodedImageDataset):
    """Images stored as files: ``self.files`` are paths relative to the folder ``self.path``."""

    path: str
    files: list[str]

    def __len__(self) -> int:
        return len(self.files)

    def open_image(self, index: int) -> BinaryIO:
        return open(os.path.join(self.path, self.files[index]), "rb")

    def image_name(self, index: int) -> str:
        return os.path.join(self.path, self.files[index])


class ImageFolderDataset(_FilesInFolder):
    """Every image below ``path`` (recursive, sorted by relative path); no labels.

    Args:
        path: directory.
        transform: PIL image -> tensor in [-1, 1] (e.g. :class:`StyleGAN2Transform`).
        verify: how much to check now (see :data:`VerifyMode`).
        require_fixed_size: all images must have the size of the first (headers are read).
    """

    def __init__(
        self,
        path: str,
        transform: ImageTransform,
        verify: VerifyMode = "first",
        require_fixed_size: bool = False,
    ) -> None:
        super().__init__(transform)
        self.path = require_path(path)
        if not os.path.isdir(self.path):
            raise DatasetError(f"image folder is not a directory: {self.path}")
        self.files = list_image_files(self.path)
        if not self.files:
            raise DatasetError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in folder: {self.path}")
        self.verify(verify, require_fixed_size)


class NVLabsDataset(EncodedImageDataset):
    """NVlabs stylegan2-ada / stylegan3 dataset: ``.zip`` or folder, optional ``dataset.json`` labels.

    Args:
        path: ``.zip`` file or directory (as written by NVlabs ``dataset_tool.py``).
        transform: PIL image -> tensor.
        use_labels: read class labels from ``dataset.json`` (DatasetError when absent/not ints).
        verify: how much to check now; NVlabs datasets hold one image shape, so
            ``require_fixed_size`` defaults to True (every header is read at setup).
    """

    def __init__(
        self,
        path: str,
        transform: ImageTransform,
        use_labels: bool = False,
        verify: VerifyMode = "first",
        require_fixed_size: bool = True,
    ) -> None:
        super().__init__(transform, return_labels=use_labels)
        self.path = require_path(path)
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid = -1
        if os.path.isdir(self.path):
            self.is_zip = False
            all_names = list_all_files(self.path)
        else:
            self.is_zip = True
            try:
                with zipfile.ZipFile(self.path) as archive:
                    all_names = [info.filename for info in archive.infolist() if not info.is_dir()]
            except (zipfile.BadZipFile, OSError) as err:
                raise DatasetError(f"not a readable zip archive: {self.path} ({err})") from err
        self.files = sorted(name for name in all_names if is_image_name(name))
        if not self.files:
            raise DatasetError(f"no images found in NVlabs dataset: {self.path}")
        if use_labels:
            self.labels = self._read_labels(set(all_names))
        self.verify(verify, require_fixed_size)

    def _read_labels(self, all_names: set[str]) -> list[int]:
        where = f"{self.path}/dataset.json"
        if "dataset.json" not in all_names:
            raise DatasetError(f"labels requested but {where} does not exist")
        try:
            with self._open_member("dataset.json") as stream:
                meta = json.load(stream)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DatasetError(f"{where} is not valid JSON: {err}") from err
        pairs = meta.get("labels") if isinstance(meta, dict) else None
        if not pairs:
            raise DatasetError(f'{where} has no "labels" (expected {{"labels": [[fname, label], ...]}})')
        by_name = {str(name).replace("\\", "/"): label for name, label in pairs}
        labels = []
        for name in self.files:
            if name not in by_name:
                raise DatasetError(f"{where} has no label for image {name}")
            label = by_name[name]
            if isinstance(label, bool) or not isinstance(label, int) or label < 0:
                raise DatasetError(
                    f"{where}: label of {name} is {label!r}, expected a class index (int >= 0)"
                )
            labels.append(label)
        return labels

    def _archive(self) -> zipfile.ZipFile:
        # One ZipFile per process: a handle inherited through fork shares its file offset.
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def _open_member(self, name: str) -> BinaryIO:
        if self.is_zip:
            # a lazy member stream: a header check reads only the first bytes, not the whole image
            return self._archive().open(name)
        return open(os.path.join(self.path, name), "rb")

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_zip"] = None
        return state

    def __len__(self) -> int:
        return len(self.files)

    def open_image(self, index: int) -> BinaryIO:
        return self._open_member(self.files[index])

    def image_name(self, index: int) -> str:
        sep = ":" if self.is_zip else "/"
        return f"{self.path}{sep}{self.files[index]}"

    @property
    def num_classes(self) -> int:
        return 0 if self.labels is None else max(self.labels) + 1


def list_all_files(root: str) -> list[str]:
    """Every file below ``root`` as '/'-separated relative paths (NVlabs folder layout)."""
    names = []
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=True):
        for name in filenames:
            names.append(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return names


class ClassFolderDataset(_FilesInFolder):
    """torchvision-style ImageFolder: ``path/<class>/**/*.jpg``, classes = sorted sub-directory names.

    Items carry ``label`` = index of the class directory. ``class_names`` lists them in order.
    """

    def __init__(
        self,
        path: str,
        transform: ImageTransform,
        verify: VerifyMode = "first",
        require_fixed_size: bool = False,
    ) -> None:
        super().__init__(transform, return_labels=True)
        self.path = require_path(path)
        if not os.path.isdir(self.path):
            raise DatasetError(f"class folder is not a directory: {self.path}")
        self.class_names = sorted(entry.name for entry in os.scandir(self.path) if entry.is_dir())
        if not self.class_names:
            raise DatasetError(f"no class sub-directories in {self.path} (expected path/<class>/<image>)")
        self.files: list[str] = []
        self.labels = []
        for label, class_name in enumerate(self.class_names):
            names = list_image_files(os.path.join(self.path, class_name))
            self.files += [f"{class_name}/{name}" for name in names]
            self.labels += [label] * len(names)
        if not self.files:
            raise DatasetError(f"no images found in the class folders of {self.path}")
        self.verify(verify, require_fixed_size)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# --------------------------------------------------------------------------------------------
# LMDB: rosinality and original LSUN
# --------------------------------------------------------------------------------------------
