"""Sample grids written to disk (PNG, atomically) and to the logger (W&B image panel).

The grid uses fixed inputs (seeded latents, or the first inputs of the first training batch for
image-to-image models), so successive grids show the same samples evolving. Compression methods
show teacher and student rows for the same inputs.
"""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid, save_image

from lightning_gancomp.atomic import atomic_path


def grid_tensor(images: torch.Tensor, nrow: int) -> torch.Tensor:
    """``[N, 3, H, W]`` in [-1, 1] → one ``[3, H', W']`` grid image in [0, 1]."""
    unit = (images.detach().float().cpu().clamp(-1, 1) + 1) / 2
    return make_grid(unit, nrow=nrow, padding=2, pad_value=1.0)


def save_grid_atomic(grid: torch.Tensor, path: str) -> None:
    with atomic_path(path) as tmp:
        save_image(grid, tmp)


class SampleGrid(pl.Callback):
    """Save a grid of ``pl_module.grid_images()`` every ``every_n_batches`` batches and at the end.

    Args:
        every_n_batches: interval in training batches (0: only at the end of fit).
        dirname: sub-directory of the trainer's log dir (or ``default_root_dir``) for the PNGs.
        log_images: also send the grid to loggers that take images (W&B).
    """

    def __init__(
        self, every_n_batches: int = 1000, dirname: str = "samples", log_images: bool = True
    ) -> None:
        self.every_n_batches = every_n_batches
        self.dirname = dirname
        self.log_images = log_images
        self.last_path: str | None = None

    def output_dir(self, trainer: pl.Trainer) -> str:
        root = trainer.log_dir or trainer.default_root_dir
        return os.path.join(root, self.dirname)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        done = int(getattr(pl_module, "batches_done", 0))
        if self.every_n_batches > 0 and done > 0 and done % self.every_n_batches == 0:
            self.write(trainer, pl_module, f"batch_{done:07d}")

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        done = int(getattr(pl_module, "batches_done", 0))
        self.write(trainer, pl_module, f"batch_{done:07d}")

    def write(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stem: str) -> None:
        # ``trainer.log_dir`` broadcasts under DDP: every rank must ask, only rank 0 writes.
        path = os.path.join(self.output_dir(trainer), f"{stem}.png")
        self._write_rank_zero(trainer, pl_module, path, stem)

    @rank_zero_only
    def _write_rank_zero(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, path: str, stem: str
    ) -> None:
        images, nrow = pl_module.grid_images()
        grid = grid_tensor(images, nrow)
        save_grid_atomic(grid, path)
        self.last_path = path
        if self.log_images:
            step = int(getattr(pl_module, "batches_done", trainer.global_step))
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_image(key="samples", images=[grid], step=step, caption=[stem])
