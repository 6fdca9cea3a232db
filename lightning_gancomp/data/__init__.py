"""Data: LightningDataModules, on-disk dataset sources, reference transforms, embedded synthetic data.

Batches are dicts (Data contract): ``real_img`` float [B,3,H,W] in [-1, 1]; ``label`` long [B]
(conditional); ``mask`` float [B,1,H,W] in {0, 1} (content mask, embedded data); ``input_img``
(image-to-image generator input; ``real_img`` is the target).
"""

from lightning_gancomp.data.datamodules import (
    ConditionalDataModule,
    GanDataModule,
    PairedDataModule,
    UnconditionalDataModule,
    UnpairedDataModule,
    detect_format,
)
from lightning_gancomp.data.embedded import EmbeddedClasses, EmbeddedDomains, EmbeddedImages, EmbeddedPairs
from lightning_gancomp.data.errors import DatasetError
from lightning_gancomp.data.resumable import ResumableDataLoader, ResumableSampler
from lightning_gancomp.data.sources import (
    AlignedDataset,
    BigGANHDF5Dataset,
    ClassFolderDataset,
    ImageFolderDataset,
    LSUNLMDBDataset,
    NVLabsDataset,
    RosinalityLMDBDataset,
    UnalignedDataset,
)
from lightning_gancomp.data.transforms import BigGANTransform, Pix2PixTransform, StyleGAN2Transform

__all__ = [
    "AlignedDataset",
    "BigGANHDF5Dataset",
    "BigGANTransform",
    "ClassFolderDataset",
    "ConditionalDataModule",
    "DatasetError",
    "EmbeddedClasses",
    "EmbeddedDomains",
    "EmbeddedImages",
    "EmbeddedPairs",
    "GanDataModule",
    "ImageFolderDataset",
    "LSUNLMDBDataset",
    "NVLabsDataset",
    "PairedDataModule",
    "Pix2PixTransform",
    "ResumableDataLoader",
    "ResumableSampler",
    "RosinalityLMDBDataset",
    "StyleGAN2Transform",
    "UnalignedDataset",
    "UnconditionalDataModule",
    "UnpairedDataModule",
    "detect_format",
]
