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

from lightning_gancomp.data.sources.archives import (
    BigGANHDF5Dataset,
    LSUNLMDBDataset,
    RosinalityLMDBDataset,
    is_lmdb_dir,
    lmdb_layout,
    open_lmdb,
)
from lightning_gancomp.data.sources.common import (
    EncodedImageDataset,
    ImageTransform,
    VerifyMode,
    list_image_files,
    require_path,
)
from lightning_gancomp.data.sources.folders import (
    ClassFolderDataset,
    ImageFolderDataset,
    NVLabsDataset,
    list_all_files,
)
from lightning_gancomp.data.sources.translation import AlignedDataset, UnalignedDataset

__all__ = [
    "AlignedDataset",
    "BigGANHDF5Dataset",
    "ClassFolderDataset",
    "EncodedImageDataset",
    "ImageFolderDataset",
    "ImageTransform",
    "LSUNLMDBDataset",
    "NVLabsDataset",
    "RosinalityLMDBDataset",
    "UnalignedDataset",
    "VerifyMode",
    "is_lmdb_dir",
    "list_all_files",
    "list_image_files",
    "lmdb_layout",
    "open_lmdb",
    "require_path",
]
