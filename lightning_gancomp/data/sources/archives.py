"""LMDB (rosinality, LSUN) and BigGAN HDF5 datasets (see the package docstring)."""

from __future__ import annotations

import copy
import io
import os
import re
from typing import Any, BinaryIO, Literal

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lightning_gancomp.data.errors import DatasetError
from lightning_gancomp.data.sources.common import (
    EncodedImageDataset,
    ImageTransform,
    VerifyMode,
    require_path,
)
from lightning_gancomp.data.transforms import (
    uint8_chw_to_tensor,
)

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
