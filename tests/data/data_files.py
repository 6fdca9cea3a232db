"""Writers of tiny real dataset files in every supported on-disk layout (PIL, zipfile, lmdb, h5py)."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def solid(colour: tuple[int, int, int], width: int = 8, height: int | None = None) -> Image.Image:
    return Image.new("RGB", (width, height or width), colour)


def noise_image(seed: int, width: int, height: int, low: int = 0, high: int = 256) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(low, high, (height, width, 3), dtype=np.uint8))


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **({"quality": 100} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def save(img: Image.Image, path: Path, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def write_nvlabs_zip(path: Path, images: dict[str, Image.Image], labels: dict[str, int] | None) -> Path:
    """NVlabs dataset_tool layout: PNGs under 00000/, dataset.json with [fname, label] pairs."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, img in images.items():
            archive.writestr(name, encode(img))
        if labels is not None:
            archive.writestr("dataset.json", json.dumps({"labels": [[n, l] for n, l in labels.items()]}))
    return path


def write_rosinality_lmdb(
    path: Path, images: list[Image.Image], sizes: tuple[int, ...], length: bool = True
) -> Path:
    """rosinality prepare_data.py layout: f"{size}-{i:05d}" -> JPEG per size, plus 'length'."""
    import lmdb

    with lmdb.open(str(path), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for i, img in enumerate(images):
            for size in sizes:
                txn.put(f"{size}-{str(i).zfill(5)}".encode(), encode(img.resize((size, size)), "JPEG"))
        if length:
            txn.put(b"length", str(len(images)).encode())
    return path


def write_lsun_lmdb(path: Path, entries: dict[bytes, bytes]) -> Path:
    """Original LSUN layout: image id -> encoded image bytes, nothing else."""
    import lmdb

    with lmdb.open(str(path), map_size=1 << 24) as env, env.begin(write=True) as txn:
        for key, value in entries.items():
            txn.put(key, value)
    return path


def write_biggan_hdf5(path: Path, imgs: np.ndarray, labels: np.ndarray) -> Path:
    import h5py

    with h5py.File(path, "w") as handle:
        handle.create_dataset("imgs", data=imgs, dtype="uint8")
        handle.create_dataset("labels", data=labels, dtype="int64")
    return path


def side_by_side(a: Image.Image, b: Image.Image) -> Image.Image:
    """pix2pix A|B file: A on the left half, B on the right."""
    ab = Image.new("RGB", (a.width + b.width, a.height))
    ab.paste(a, (0, 0))
    ab.paste(b, (a.width, 0))
    return ab


def tree(root: Path) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)
