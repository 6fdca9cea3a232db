"""Tiny networks and data shared by the method/CLI tests (CPU, a few ms per step)."""

from __future__ import annotations

from typing import ClassVar

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightning_gancomp.nets.base import GanNet
from lightning_gancomp.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator


def tiny_stylegan2(width: int = 8, resolution: int = 8) -> StyleGAN2Generator:
    n = 2 * {8: 3, 16: 4, 32: 5}[resolution] - 2
    return StyleGAN2Generator(resolution=resolution, z_dim=8, w_dim=8, n_mapping=1, channels=[width] * n)


def tiny_discriminator(resolution: int = 8) -> StyleGAN2Discriminator:
    return StyleGAN2Discriminator(resolution=resolution, channels=[8] * ({8: 2, 16: 3, 32: 4}[resolution]))


class TinyCondGenerator(GanNet):
    """z + class embedding → linear → image (just enough to exercise the conditional path)."""

    role: ClassVar[str] = "generator"
    task: ClassVar[str] = "conditional"

    def __init__(self, z_dim: int = 4, num_classes: int = 3, resolution: int = 8) -> None:
        super().__init__()
        self.z_dim, self.num_classes, self.resolution = z_dim, num_classes, resolution
        self.embed = nn.Embedding(num_classes, z_dim)
        self.body = nn.Linear(z_dim, 3 * resolution * resolution)
        self.seen_labels: list[torch.Tensor] = []

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        assert y.dtype == torch.long and y.shape == (z.shape[0],)
        out = self.body(z + self.embed(y))
        return torch.tanh(out.view(-1, 3, self.resolution, self.resolution))

    def distillation_points(self) -> list[str]:
        return ["body"]


class TinyCondDiscriminator(GanNet):
    role: ClassVar[str] = "discriminator"

    def __init__(self, num_classes: int = 3, resolution: int = 8) -> None:
        super().__init__()
        self.body = nn.Linear(3 * resolution * resolution, 1)
        self.embed = nn.Embedding(num_classes, 3 * resolution * resolution)  # projection D

    def forward(self, img: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        flat = img.flatten(1)
        return self.body(flat).squeeze(1) + (self.embed(y) * flat).sum(1)


class TinyImageGenerator(GanNet):
    role: ClassVar[str] = "generator"
    task: ClassVar[str] = "image2image"

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 4) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv2(torch.relu(self.conv1(x))))

    def distillation_points(self) -> list[str]:
        return ["conv1"]


class TinyPatchDiscriminator(GanNet):
    role: ClassVar[str] = "discriminator"

    def __init__(self, in_channels: int = 6) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.conv = nn.Conv2d(in_channels, 1, 4, stride=2, padding=1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        assert img.shape[1] == self.in_channels, f"expected {self.in_channels} channels, got {img.shape[1]}"
        return self.conv(img)


class DictImages(Dataset):
    """Deterministic random images (+ labels / input images); ``nan_at`` poisons one item."""

    def __init__(
        self, length: int = 16, resolution: int = 8, kind: str = "unconditional", nan_at: int | None = None
    ) -> None:
        self.length, self.resolution, self.kind, self.nan_at = length, resolution, kind, nan_at

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = torch.Generator().manual_seed(index)
        img = torch.rand(3, self.resolution, self.resolution, generator=rng) * 2 - 1
        if index == self.nan_at:
            img = torch.full_like(img, float("nan"))
        item = {"real_img": img}
        if self.kind == "conditional":
            item["label"] = torch.tensor(index % 3)
        if self.kind == "image2image":
            item["input_img"] = -img
        return item


class DictDataModule(pl.LightningDataModule):
    def __init__(
        self,
        length: int = 16,
        resolution: int = 8,
        kind: str = "unconditional",
        batch_size: int = 4,
        nan_at: int | None = None,
    ) -> None:
        super().__init__()
        self.train_set = DictImages(length, resolution, kind, nan_at)
        self.val_set = DictImages(8, resolution, kind)
        self.batch_size = batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=False, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size)


def quiet_trainer(**kwargs) -> pl.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    defaults.update(kwargs)
    return pl.Trainer(**defaults)
