"""LightningDataModules for the four task kinds; ``path="embedded"`` selects the synthetic data.

* :class:`UnconditionalDataModule` -- ``real_img`` (StyleGAN2 / LSUN / FFHQ style data).
* :class:`ConditionalDataModule` -- ``real_img``, ``label`` (ImageNet folder, BigGAN HDF5, NVlabs
  zip with ``dataset.json`` labels).
* :class:`PairedDataModule` -- ``input_img`` (A), ``real_img`` (B), pix2pix aligned A|B folders.
* :class:`UnpairedDataModule` -- ``input_img`` (domain A), ``real_img`` (domain B), CycleGAN
  ``trainA/trainB/testA/testB`` folders.

The format is detected from the path (``.zip`` -> NVlabs, ``.hdf5``/``.h5`` -> BigGAN HDF5,
directory with ``data.mdb`` -> rosinality LMDB when it has a ``length`` key else original LSUN,
directory with ``dataset.json`` -> NVlabs folder, other directories -> image folder or, for
conditional data, class folder) or given with ``format``. Each subclass takes its own options and
forwards the shared ones (path, resolution, batch_size, workers, evaluation sizes, seed, ...) to
:class:`GanDataModule` through ``**kwargs``, which jsonargparse resolves, so ``--help`` and
``--print_config`` list them all; a subclass states a shared argument only to change its default
(image-to-image: resolution 256, batch 1, the official pix2pix/CycleGAN values).

Constructors only store arguments; all I/O and validation happen in ``setup`` (main process), so
bad data fails there with one :class:`DatasetError` line naming the culprit instead of inside a
DataLoader worker.

Loaders: training shuffles, drops the last incomplete batch and applies random augmentation; it is
a :class:`~lightning_gancomp.data.resumable.ResumableDataLoader`: the order is a permutation fixed
by (run seed, data ``seed``, epoch), sharded per DDP rank by its own DistributedSampler subclass, and
its position is saved in Lightning checkpoints so a mid-epoch resume continues the same order.
Validation/testing use a fixed subset (seeded permutation of ``val_size``/``test_size`` items) in
batches of ``eval_batch_size``, no augmentation, no shuffling (under DDP Lightning inserts its
DistributedSampler there). Workers are persistent when ``num_workers > 0``; ``pin_memory`` defaults
to "CUDA available".
"""

from __future__ import annotations

import abc
import os
from typing import Any, Literal, get_args

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from lightning_gancomp.data.embedded import EmbeddedClasses, EmbeddedDomains, EmbeddedImages, EmbeddedPairs
from lightning_gancomp.data.errors import DatasetError
from lightning_gancomp.data.resumable import ResumableDataLoader, run_shuffle_seed
from lightning_gancomp.data.sources import (
    AlignedDataset,
    BigGANHDF5Dataset,
    ClassFolderDataset,
    ImageFolderDataset,
    LSUNLMDBDataset,
    NVLabsDataset,
    RosinalityLMDBDataset,
    UnalignedDataset,
    VerifyMode,
    is_lmdb_dir,
    lmdb_layout,
    require_path,
)
from lightning_gancomp.data.transforms import BigGANTransform, Pix2PixTransform, StyleGAN2Transform

EMBEDDED = "embedded"

UnconditionalFormat = Literal[
    "image_folder", "nvlabs", "rosinality_lmdb", "lsun_lmdb", "class_folder", "biggan_hdf5"
]
ConditionalFormat = Literal["class_folder", "nvlabs", "biggan_hdf5"]
Pix2PixPreprocess = Literal["resize_and_crop", "crop"]


def detect_format(path: str, conditional: bool = False) -> str:
    """Dataset format of ``path`` (see module docstring); DatasetError when it cannot be told."""
    if path == EMBEDDED:
        return EMBEDDED
    require_path(path)
    if os.path.isfile(path):
        lower = path.lower()
        if lower.endswith(".zip"):
            return "nvlabs"
        if lower.endswith((".hdf5", ".h5")):
            return "biggan_hdf5"
        raise DatasetError(
            f"cannot tell the dataset format of file {path}: expected .zip, .hdf5/.h5, an LMDB directory "
            "or an image folder"
        )
    if is_lmdb_dir(path):
        return "rosinality_lmdb" if lmdb_layout(path) == "rosinality" else "lsun_lmdb"
    if os.path.isfile(os.path.join(path, "dataset.json")):
        return "nvlabs"
    return "class_folder" if conditional else "image_folder"


def check_format(value: str | None, allowed: tuple[str, ...]) -> None:
    """DatasetError for a ``format`` value that is not one of ``allowed``."""
    if value is not None and value not in allowed:
        raise DatasetError(f"unknown dataset format {value!r}; expected one of {', '.join(allowed)}")


def fixed_subset(dataset: Dataset, size: int | None, seed: int) -> Dataset:
    """The same ``size`` items every time (seeded permutation, kept in index order); all if smaller."""
    length = len(dataset)  # type: ignore[arg-type]
    if size is None or size >= length:
        return dataset
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randperm(length, generator=generator)[:size].sort().values.tolist()
    return Subset(dataset, indices)


class SwapInputTarget(Dataset):
    """Exchanges ``input_img`` and ``real_img`` of a paired dataset (pix2pix ``--direction BtoA``),
    or the domains of an unpaired one (``drop_mask``: its ``mask`` belonged to the old
    ``real_img`` and fits no image of the swapped item)."""

    def __init__(self, dataset: Dataset, drop_mask: bool = False) -> None:
        self.dataset = dataset
        self.drop_mask = drop_mask

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = dict(self.dataset[index])
        item["input_img"], item["real_img"] = item["real_img"], item["input_img"]
        if self.drop_mask:
            item.pop("mask", None)
        return item


class GanDataModule(pl.LightningDataModule, abc.ABC):
    """Shared loaders and checks; subclasses implement ``build_datasets`` -> (train, val, test).

    Args:
        path: dataset location, or ``"embedded"`` for the synthetic data.
        resolution: image side length fed to the networks.
        batch_size: per-process batch size of training (and of evaluation unless
            ``eval_batch_size`` is given).
        eval_batch_size: per-process batch size of the validation, test and predict loaders (None:
            ``batch_size``). Evaluation keeps no gradients and no optimizer state, so thousands of
            small images go through the generator and the feature net in a few large batches; it
            changes neither the images evaluated (the fixed subsets) nor, under DDP, the sharding
            (Lightning's sampler splits the items, each process batches its own).
        global_batch_size: the batch over all processes, as papers state it; the per-process
            batch is derived at setup (``global / world_size``, an error when it does not divide),
            so a config means the same run on any number of devices. None = ``batch_size`` per
            process.
        fixed_device_batch: with ``global_batch_size``, keep ``batch_size`` per process too (when
            a per-device quantity matters, e.g. StyleKD's B×B relation matrix); the run then needs
            exactly ``global / batch_size`` devices (error otherwise).
        num_workers: DataLoader worker processes (persistent when > 0).
        val_size: items in the fixed validation subset.
        test_size: items in the fixed test subset (None: ``val_size`` for subsets of the training
            data or embedded data; the whole test split where the format has one).
        pin_memory: pin host memory (None: when CUDA is available).
        seed: seed of the embedded data (validation uses ``seed + 1``, test ``seed + 2``) and of the
            fixed evaluation subsets; mixed with ``seed_everything``'s seed into the training shuffle
            seed.
        embedded_length: number of training items of the embedded data.
        verify: how much of an on-disk dataset to check at setup ("first", "headers", "full").
    """

    def __init__(
        self,
        path: str = EMBEDDED,
        resolution: int = 64,
        batch_size: int = 16,
        num_workers: int = 0,
        val_size: int = 256,
        test_size: int | None = None,
        pin_memory: bool | None = None,
        seed: int = 0,
        embedded_length: int = 10_000,
        verify: VerifyMode = "first",
        global_batch_size: int | None = None,
        fixed_device_batch: bool = False,
        eval_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        if global_batch_size is not None and global_batch_size < 1:
            raise DatasetError(f"global_batch_size must be >= 1, got {global_batch_size}")
        self.global_batch_size = global_batch_size
        self.fixed_device_batch = fixed_device_batch
        sizes = {"resolution": resolution, "batch_size": batch_size, "val_size": val_size}
        sizes.update(test_size=test_size, eval_batch_size=eval_batch_size)  # None: not given
        for name, value in sizes.items():
            if value is not None and value < 1:
                raise DatasetError(f"{name} must be >= 1, got {value}")
        if num_workers < 0:
            raise DatasetError(f"num_workers must be >= 0, got {num_workers}")
        self.path = os.fspath(path)
        self.resolution = resolution
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.val_size = val_size
        self.test_size = test_size
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.seed = seed
        self.embedded_length = embedded_length
        self.verify = verify
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @property
    def is_embedded(self) -> bool:
        return self.path == EMBEDDED

    @abc.abstractmethod
    def build_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        """(train, val, test) datasets of this task kind, checked (DatasetError on bad data)."""

    def device_batch_size(self, world_size: int) -> int:
        """The per-process batch for ``world_size`` processes (see ``global_batch_size``)."""
        total = self.global_batch_size
        if total is None:
            return self.batch_size
        if self.fixed_device_batch:
            if self.batch_size * world_size != total:
                needed = (
                    f"{total // self.batch_size}" if total % self.batch_size == 0 else "no whole number of"
                )
                raise DatasetError(
                    f"global_batch_size={total} with fixed_device_batch batch_size={self.batch_size} needs "
                    f"{needed} devices, got {world_size}"
                )
            return self.batch_size
        if total % world_size:
            raise DatasetError(
                f"global_batch_size={total} does not divide over {world_size} devices; "
                "choose a device count that divides it"
            )
        return total // world_size

    def setup(self, stage: str | None = None) -> None:
        trainer = getattr(self, "trainer", None)  # set by the Trainer; None when used alone
        self.batch_size = self.device_batch_size(trainer.world_size if trainer is not None else 1)
        if self.train_set is not None:
            return
        train_set, val_set, test_set = self.build_datasets()
        if len(train_set) < self.batch_size:  # type: ignore[arg-type]
            raise DatasetError(
                f"dataset {self.path} has {len(train_set)} training items, fewer than batch_size="  # type: ignore[arg-type]
                f"{self.batch_size} (the last incomplete batch is dropped, so no batch would remain)"
            )
        self.train_set, self.val_set, self.test_set = train_set, val_set, test_set

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise DatasetError(f"{type(self).__name__}.setup() must run before asking for a dataloader")
        if train:
            # resumable position + per-rank shard of its own (Lightning keeps a DistributedSampler)
            return ResumableDataLoader(
                dataset,
                batch_size=self.batch_size,
                shuffle=True,
                seed=run_shuffle_seed(self.seed),
                drop_last=True,
                num_workers=self.num_workers,
                pin_memory=self.pin_memory,
                persistent_workers=self.num_workers > 0,
            )
        return DataLoader(
            dataset,
            batch_size=self.batch_size if self.eval_batch_size is None else self.eval_batch_size,
            shuffle=False,
            drop_last=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, train=False)

    def _eval_subsets(self, eval_set: Dataset) -> tuple[Dataset, Dataset]:
        """Validation and test subsets of one evaluation-transformed dataset."""
        test_size = self.val_size if self.test_size is None else self.test_size
        return fixed_subset(eval_set, self.val_size, self.seed), fixed_subset(
            eval_set, test_size, self.seed + 1
        )

    def _embedded_splits(self, make: Any) -> tuple[Dataset, Dataset, Dataset]:
        test_size = self.val_size if self.test_size is None else self.test_size
        return (
            make(self.embedded_length, self.seed),
            make(self.val_size, self.seed + 1),
            make(test_size, self.seed + 2),
        )


class UnconditionalDataModule(GanDataModule):
    """Unconditional images: batches ``{"real_img": [B,3,R,R]}`` (+ ``mask`` for embedded data).

    Args (besides :class:`GanDataModule`'s):
        format: override the detected format.
        hflip: random horizontal flip in training (StyleGAN2 default).
    """

    def __init__(
        self,
        path: str = EMBEDDED,
        format: UnconditionalFormat | None = None,
        hflip: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(path=path, **kwargs)
        check_format(format, get_args(UnconditionalFormat))
        self.format = format
        self.hflip = hflip

    def build_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        if self.is_embedded:
            return self._embedded_splits(lambda n, seed: EmbeddedImages(n, self.resolution, seed))
        fmt = self.format or detect_format(self.path)
        if fmt == "biggan_hdf5":
            data = BigGANHDF5Dataset(self.path, self.resolution, hflip=self.hflip, return_labels=False)
            return (data, *self._eval_subsets(data.with_hflip(False)))
        train = StyleGAN2Transform(self.resolution, hflip=self.hflip)
        if fmt == "image_folder":
            data = ImageFolderDataset(self.path, train, verify=self.verify)
        elif fmt == "class_folder":
            data = ClassFolderDataset(self.path, train, verify=self.verify)
            data.return_labels = False
        elif fmt == "nvlabs":
            data = NVLabsDataset(self.path, train, use_labels=False, verify=self.verify)
        elif fmt == "rosinality_lmdb":
            data = RosinalityLMDBDataset(self.path, self.resolution, train, verify=self.verify)
        else:
            data = LSUNLMDBDataset(self.path, train, verify=self.verify)
        return (
            data,
            *self._eval_subsets(data.with_transform(StyleGAN2Transform(self.resolution, hflip=False))),
        )


class ConditionalDataModule(GanDataModule):
    """Class-conditional images: batches ``{"real_img", "label": long [B]}`` (+ ``mask`` embedded).

    Args (besides :class:`GanDataModule`'s):
        format: override the detected format (class folder, NVlabs with labels, BigGAN HDF5).
        num_classes: embedded data: how many classes to generate (None: 10); on-disk data: the
            model's class count, checked against the labels (None: taken from the data). After
            ``setup`` the attribute holds the class count in use.
        augment: BigGAN's training augmentation (random short-edge crop + flip; a flip for NVlabs
            and HDF5 data). Off by default as in BigGAN.
    """

    def __init__(
        self,
        path: str = EMBEDDED,
        format: ConditionalFormat | None = None,
        num_classes: int | None = None,
        augment: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(path=path, **kwargs)
        check_format(format, get_args(ConditionalFormat))
        self.format = format
        # embedded data knows its class count up front (models are often built before setup)
        self.num_classes = (num_classes or 10) if self.is_embedded else num_classes
        self.augment = augment

    def build_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        if self.is_embedded:
            classes = self.num_classes or 10
            return self._embedded_splits(lambda n, seed: EmbeddedClasses(n, self.resolution, classes, seed))
        fmt = self.format or detect_format(self.path, conditional=True)
        if fmt == "biggan_hdf5":
            data = BigGANHDF5Dataset(self.path, self.resolution, hflip=self.augment, return_labels=True)
            self._adopt_num_classes(data.num_classes)
            return (data, *self._eval_subsets(data.with_hflip(False)))
        if fmt == "class_folder":
            data = ClassFolderDataset(
                self.path, BigGANTransform(self.resolution, self.augment), verify=self.verify
            )
            evaluation = BigGANTransform(self.resolution, augment=False)
        elif fmt == "nvlabs":
            transform = StyleGAN2Transform(self.resolution, hflip=self.augment)
            data = NVLabsDataset(self.path, transform, use_labels=True, verify=self.verify)
            evaluation = StyleGAN2Transform(self.resolution, hflip=False)
        else:
            raise DatasetError(f"format {fmt!r} has no class labels; use class_folder, nvlabs or biggan_hdf5")
        self._adopt_num_classes(data.num_classes)
        return (data, *self._eval_subsets(data.with_transform(evaluation)))

    def _adopt_num_classes(self, found: int) -> None:
        if self.num_classes is not None and found > self.num_classes:
            raise DatasetError(
                f"dataset {self.path} has labels up to {found - 1} but num_classes={self.num_classes}"
            )
        if self.num_classes is None:
            self.num_classes = found


def default_load_size(crop_size: int) -> int:
    """pix2pix/CycleGAN resize before cropping: 286 for 256 crops, scaled proportionally."""
    return round(crop_size * 286 / 256)


class _ImageToImageDataModule(GanDataModule):
    """Shared options of paired and unpaired data (pix2pix/CycleGAN preprocessing)."""

    def __init__(
        self,
        load_size: int | None = None,
        flip: bool = True,
        preprocess: Pix2PixPreprocess = "resize_and_crop",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.load_size = default_load_size(self.resolution) if load_size is None else load_size
        self.flip = flip
        self.preprocess = preprocess
        # validates preprocess / load_size now, before any I/O
        self.train_transform = Pix2PixTransform(self.load_size, self.resolution, flip, preprocess)
        # official test options: load_size = crop_size, no flip -> a plain resize
        self.eval_transform = Pix2PixTransform(
            self.resolution, self.resolution, flip=False, preprocess="resize_and_crop"
        )

    def _split_or_subset(
        self, phases: tuple[str, ...], make: Any, size: int | None, fallback: Dataset
    ) -> Dataset:
        """The first existing phase split (``make(phase)``) limited to ``size``, else a training subset."""
        for phase in phases:
            if self._phase_exists(phase):
                return fixed_subset(make(phase), size, self.seed)
        return fixed_subset(fallback, self.val_size if size is None else size, self.seed)

    @abc.abstractmethod
    def _phase_exists(self, phase: str) -> bool:
        """Whether the split ``phase`` (e.g. "val", "test") exists on disk."""


class PairedDataModule(_ImageToImageDataModule):
    """Aligned pairs (pix2pix): batches ``{"input_img": A, "real_img": B}`` (+ ``mask`` embedded).

    Args (besides :class:`GanDataModule`'s):
        resolution: crop size (official ``--crop_size``, 256).
        load_size: resize before the random crop (official ``--load_size`` 286; None: 286/256 x
            resolution).
        direction: ``"AtoB"`` (input = left half) or ``"BtoA"``.
        flip: random horizontal flip in training (same flip for A and B).
        preprocess: ``"resize_and_crop"`` (official default) or ``"crop"``.

    Splits: train = ``path/train``; validation = a fixed subset of ``path/val`` (else ``test``,
    else of train); test = ``path/test`` (else ``val``, else a train subset), whole unless
    ``test_size``.
    """

    def __init__(
        self,
        path: str = EMBEDDED,
        resolution: int = 256,
        batch_size: int = 1,
        direction: Literal["AtoB", "BtoA"] = "AtoB",
        **kwargs: Any,
    ) -> None:
        if direction not in ("AtoB", "BtoA"):
            raise DatasetError(f"unknown direction {direction!r}; expected 'AtoB' or 'BtoA'")
        super().__init__(path=path, resolution=resolution, batch_size=batch_size, **kwargs)
        self.direction = direction

    def _phase_exists(self, phase: str) -> bool:
        return os.path.isdir(os.path.join(self.path, phase))

    def build_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        if self.is_embedded:
            splits = self._embedded_splits(lambda n, seed: EmbeddedPairs(n, self.resolution, seed))
            return tuple(SwapInputTarget(s) for s in splits) if self.direction == "BtoA" else splits  # type: ignore[return-value]
        require_path(self.path)
        train = AlignedDataset(self.path, self.train_transform, "train", self.direction, self.verify)
        fallback = train.with_transform(self.eval_transform)

        def make(phase: str) -> AlignedDataset:
            return AlignedDataset(self.path, self.eval_transform, phase, self.direction, self.verify)

        val = self._split_or_subset(("val", "test"), make, self.val_size, fallback)
        test = self._split_or_subset(("test", "val"), make, self.test_size, fallback)
        return train, val, test


class UnpairedDataModule(_ImageToImageDataModule):
    """Unaligned domains (CycleGAN): batches ``{"input_img": from A, "real_img": from B}``.

    Args (besides :class:`GanDataModule`'s):
        resolution / load_size / flip / preprocess: as :class:`PairedDataModule` (A and B get
            independent crops and flips, as in the official unaligned dataset).
        serial_batches: training pairs A[i] with B[i % |B|] instead of a random B.
        direction: ``"AtoB"`` (``input_img`` from A, ``real_img`` from B) or ``"BtoA"`` (domains
            exchanged in every split, e.g. zebra→horse from the horse2zebra folders).

    Splits: train = ``trainA``/``trainB``; validation = a fixed subset of ``testA``/``testB`` (else
    of train) with serial B; test = all of ``testA``/``testB`` unless ``test_size``.
    """

    def __init__(
        self,
        path: str = EMBEDDED,
        resolution: int = 256,
        batch_size: int = 1,
        serial_batches: bool = False,
        direction: Literal["AtoB", "BtoA"] = "AtoB",
        **kwargs: Any,
    ) -> None:
        if direction not in ("AtoB", "BtoA"):
            raise DatasetError(f"unknown direction {direction!r}; expected 'AtoB' or 'BtoA'")
        super().__init__(path=path, resolution=resolution, batch_size=batch_size, **kwargs)
        self.serial_batches = serial_batches
        self.direction = direction

    def _phase_exists(self, phase: str) -> bool:
        return all(os.path.isdir(os.path.join(self.path, f"{phase}{side}")) for side in "AB")

    def build_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        splits = self._domain_splits()
        if self.direction == "BtoA":
            return tuple(SwapInputTarget(s, drop_mask=True) for s in splits)  # type: ignore[return-value]
        return splits

    def _domain_splits(self) -> tuple[Dataset, Dataset, Dataset]:
        if self.is_embedded:
            return self._embedded_splits(lambda n, seed: EmbeddedDomains(n, self.resolution, seed))
        require_path(self.path)
        train = UnalignedDataset(self.path, self.train_transform, "train", self.serial_batches, self.verify)
        fallback = train.with_transform(self.eval_transform, serial_b=True)

        def make(phase: str) -> UnalignedDataset:
            return UnalignedDataset(self.path, self.eval_transform, phase, serial_b=True, verify=self.verify)

        val = self._split_or_subset(("test",), make, self.val_size, fallback)
        test = self._split_or_subset(("test",), make, self.test_size, fallback)
        return train, val, test
