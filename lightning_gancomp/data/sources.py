"""Datasets over the on-disk formats GAN repositories use; every item is a dict (Data contract).

Formats (facts from the official code; our own implementation):

* plain image folder: every image below a directory, recursive, sorted by relative path.
* NVlabs (stylegan2-ada-pytorch / stylegan3 ``training/dataset.py``, ``dataset_tool.py``): a
  ``.zip`` or folder of images, sorted by archive path, optional ``dataset.json`` at the root
  holding ``{"labels": [[relative_path, label], ...]}`` (or ``"labels": null``). All images share
  one shape.
* rosinality LMDB (rosinality/stylegan2-pytorch ``prepare_data.py``): keys
  ``f"{size}-{str(i).zfill(5)}"`` -> JPEG bytes, one entry per prepared size, plus
  ``b"length"`` -> the image count as a decimal string.
* original LSUN LMDB (fyu/lsun; torchvision ``LSUNClass``): key = image id, value = JPEG/WebP
  bytes, count = ``stat()["entries"]``. The key list is read once into memory (never cached beside
  the user's data).
* class folder (torchvision ``ImageFolder``): one sub-directory per class, classes sorted by name,
  label = class index.
* BigGAN HDF5 (ajbrock/BigGAN-PyTorch ``make_hdf5.py``): datasets ``imgs`` uint8 [N, 3, S, S] and
  ``labels`` int64 [N].
* pix2pix aligned (junyanz/pytorch-CycleGAN-and-pix2pix ``data/aligned_dataset.py``):
  ``root/{phase}/*.jpg``, each A|B side by side (A = left half, B = right half).
* CycleGAN unaligned (``data/unaligned_dataset.py``): ``root/{phase}A``, ``root/{phase}B``,
  length = max of the two, B drawn at random (or serially) independent of A.

Problems are detected when the dataset is built (in the main process, at ``setup``) and raised as
:class:`DatasetError` with one line naming the path, file or key. File handles (zip, LMDB, HDF5)
are opened lazily per process, so datasets survive DataLoader worker forking/pickling.
"""

from __future__ import annotations

import abc
import copy
import io
import json
import os
import re
import zipfile
from collections.abc import Callable
from typing import Any, BinaryIO, Literal

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from lightning_gancomp.data.errors import DatasetError
from lightning_gancomp.data.transforms import (
    IMAGE_EXTENSIONS,
    Pix2PixTransform,
    decode_image,
    is_image_name,
    read_image_size,
    uint8_chw_to_tensor,
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

_ROSINALITY_KEY = re.compile(rb"^(\d+)-\d{5,}$")


#: One read-only environment per LMDB path and process: LMDB refuses to open the same environment
#: twice in one process, and a handle inherited through fork must not be used by the child.
_LMDB_ENVS: dict[str, tuple[int, Any]] = {}


def open_lmdb(path: str) -> Any:
    """This process's shared read-only environment of ``path`` (no lock file written beside the data)."""
    import lmdb

    require_path(path)
    key = os.path.realpath(path)
    cached = _LMDB_ENVS.get(key)
    if cached is not None:
        pid, env = cached
        if pid == os.getpid():
            return env
        env.close()  # inherited from the parent through fork: unmap it in this child only
    try:
        env = lmdb.open(path, readonly=True, lock=False, readahead=False, meminit=False, max_readers=64)
    except lmdb.Error as err:
        raise DatasetError(f"cannot open LMDB {path}: {err}") from err
    _LMDB_ENVS[key] = (os.getpid(), env)
    return env


def is_lmdb_dir(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, "data.mdb"))


def lmdb_layout(path: str) -> Literal["rosinality", "lsun"]:
    """Which LMDB layout ``path`` holds: rosinality (``length`` key or ``{size}-{i:05d}`` keys) or LSUN.

    A rosinality-looking LMDB without ``length`` is still reported as rosinality, so loading it
    fails with the clear missing-``length`` message instead of silently reading it as LSUN.
    """
    with open_lmdb(path).begin() as txn:
        if txn.get(b"length") is not None:
            return "rosinality"
        cursor = txn.cursor()
        return "rosinality" if cursor.first() and _ROSINALITY_KEY.match(cursor.key()) else "lsun"


def rosinality_sizes(txn: Any) -> list[int]:
    """Image sizes stored in a rosinality LMDB, found by jumping over each ``{size}-`` key range."""
    sizes = []
    cursor = txn.cursor()
    found = cursor.first()
    while found:
        match = _ROSINALITY_KEY.match(cursor.key())
        if match:
            size = match.group(1)
            sizes.append(int(size))
            found = cursor.set_range(size + b".")  # '.' sorts right after '-': skip this size
        else:
            found = cursor.next()
    return sorted(sizes)


class _LMDBDataset(EncodedImageDataset):
    """Values read through the process-wide environment of ``open_lmdb`` (fork/pickle safe)."""

    def __init__(self, path: str, transform: ImageTransform) -> None:
        super().__init__(transform)
        self.path = require_path(path)
        if not is_lmdb_dir(self.path):
            raise DatasetError(f"not an LMDB directory (no data.mdb): {self.path}")

    def _txn_get(self, key: bytes) -> bytes:
        with open_lmdb(self.path).begin() as txn:
            value = txn.get(key)
        if value is None:
            raise DatasetError(f"LMDB {self.path} has no key {key.decode(errors='replace')!r}")
        return value


class RosinalityLMDBDataset(_LMDBDataset):
    """rosinality/stylegan2-pytorch ``prepare_data.py`` LMDB at one of its prepared sizes.

    Args:
        path: LMDB directory.
        resolution: which prepared size to read (keys ``f"{resolution}-{i:05d}"``).
        transform: PIL image -> tensor.
    """

    def __init__(
        self, path: str, resolution: int, transform: ImageTransform, verify: VerifyMode = "first"
    ) -> None:
        super().__init__(path, transform)
        self.resolution = resolution
        with open_lmdb(self.path).begin() as txn:
            raw_length = txn.get(b"length")
            if raw_length is None:
                raise DatasetError(
                    f"LMDB {self.path} has no 'length' key, so it is not a rosinality prepare_data.py "
                    "dataset (an original LSUN LMDB needs format='lsun_lmdb')"
                )
            try:
                self.length = int(raw_length.decode())
            except (UnicodeDecodeError, ValueError) as err:
                raise DatasetError(f"LMDB {self.path}: 'length' is {raw_length!r}, not an integer") from err
            if self.length > 0 and txn.get(self.key(0)) is None:
                sizes = ", ".join(map(str, rosinality_sizes(txn))) or "none"
                raise DatasetError(
                    f"LMDB {self.path} has no images at resolution {resolution} (sizes present: {sizes})"
                )
        self.verify(verify)

    def key(self, index: int) -> bytes:
        return f"{self.resolution}-{str(index).zfill(5)}".encode()

    def __len__(self) -> int:
        return self.length

    def open_image(self, index: int) -> BinaryIO:
        return io.BytesIO(self._txn_get(self.key(index)))

    def image_name(self, index: int) -> str:
        return f"{self.path}[{self.key(index).decode()}]"


class LSUNLMDBDataset(_LMDBDataset):
    """Original LSUN category LMDB (``church_outdoor_train_lmdb``...): every entry is one image.

    The key list (``stat()["entries"]`` ids) is read once in the constructor and kept in memory as
    a fixed-width byte array (cheap to share with workers); nothing is written beside the data.
    """

    def __init__(self, path: str, transform: ImageTransform, verify: VerifyMode = "first") -> None:
        super().__init__(path, transform)
        env = open_lmdb(self.path)
        entries = env.stat()["entries"]
        with env.begin() as txn:
            keys = list(txn.cursor().iternext(keys=True, values=False))
        if len(keys) != entries:
            raise DatasetError(
                f"LMDB {self.path}: stat() reports {entries} entries but {len(keys)} keys were read"
            )
        # numpy fixed-width bytes share cheaply with workers but drop trailing NULs: keep those as a list
        exact = any(key.endswith(b"\x00") for key in keys) or not keys
        self.keys: np.ndarray | list[bytes] = keys if exact else np.array(keys, dtype=np.bytes_)
        self.verify(verify)

    def __len__(self) -> int:
        return len(self.keys)

    def open_image(self, index: int) -> BinaryIO:
        return io.BytesIO(self._txn_get(bytes(self.keys[index])))

    def image_name(self, index: int) -> str:
        return f"{self.path}[{bytes(self.keys[index]).decode(errors='replace')}]"


# --------------------------------------------------------------------------------------------
# BigGAN HDF5
# --------------------------------------------------------------------------------------------


class BigGANHDF5Dataset(Dataset):
    """ajbrock/BigGAN-PyTorch ``ILSVRC{S}.hdf5``: ``imgs`` uint8 [N, 3, S, S], ``labels`` int [N].

    Images were preprocessed when the file was made (centre crop + resize), so the stored size must
    equal ``resolution``. Official loading is ``(x / 255 - 0.5) * 2`` with no augmentation;
    ``hflip=True`` adds a random mirror.

    Items: ``real_img`` [3, S, S] in [-1, 1] and, with ``return_labels``, ``label``.
    """

    def __init__(
        self, path: str, resolution: int | None = None, hflip: bool = False, return_labels: bool = True
    ) -> None:
        import h5py

        self.path = require_path(path)
        self.hflip = hflip
        self.return_labels = return_labels
        self._file: Any = None
        self._file_pid = -1
        try:
            with h5py.File(self.path, "r") as handle:
                for name in ("imgs", "labels"):
                    if name not in handle:
                        raise DatasetError(
                            f"HDF5 {self.path} has no dataset {name!r} (BigGAN layout: imgs, labels)"
                        )
                shape = tuple(handle["imgs"].shape)
                dtype = handle["imgs"].dtype
                self.labels = np.asarray(handle["labels"][...]).astype(np.int64).reshape(-1)
        except OSError as err:
            raise DatasetError(f"cannot read HDF5 file {self.path}: {err}") from err
        if len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3] or dtype != np.uint8:
            raise DatasetError(
                f"HDF5 {self.path}: imgs is {dtype} {list(shape)}, expected uint8 [N, 3, S, S]"
            )
        if shape[0] == 0:
            raise DatasetError(f"dataset is empty: {self.path}")
        if len(self.labels) != shape[0]:
            raise DatasetError(f"HDF5 {self.path}: {shape[0]} imgs but {len(self.labels)} labels")
        if resolution is not None and shape[2] != resolution:
            raise DatasetError(
                f"HDF5 {self.path}: images are {shape[2]}x{shape[3]} but resolution={resolution} is required"
            )
        if self.labels.min() < 0:
            raise DatasetError(f"HDF5 {self.path}: negative label {int(self.labels.min())}")
        self.length = shape[0]
        self.resolution = shape[2]

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    def _imgs(self) -> Any:
        import h5py

        if self._file is None or self._file_pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._file_pid = os.getpid()
        return self._file["imgs"]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        return state

    def with_hflip(self, hflip: bool) -> BigGANHDF5Dataset:
        clone = copy.copy(self)
        clone.hflip = hflip
        return clone

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        img = uint8_chw_to_tensor(self._imgs()[index])
        if self.hflip and bool(torch.rand(()) < 0.5):
            img = img.flip(-1)
        item = {"real_img": img}
        if self.return_labels:
            item["label"] = torch.tensor(int(self.labels[index]), dtype=torch.long)
        return item


# --------------------------------------------------------------------------------------------
# pix2pix aligned and CycleGAN unaligned
# --------------------------------------------------------------------------------------------


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
