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
from lightning_gancomp.callbacks.grids import LabelledRows, render_labelled_grid


def grid_tensor(images: torch.Tensor, nrow: int) -> torch.Tensor:
    """``[N, 3, H, W]`` in [-1, 1] → one ``[3, H', W']`` grid image in [0, 1]."""
    unit = (images.detach().float().cpu().clamp(-1, 1) + 1) / 2
    return make_grid(unit, nrow=nrow, padding=2, pad_value=1.0)


def save_grid_atomic(grid: torch.Tensor, path: str) -> None:
    with atomic_path(path) as tmp:
        save_image(grid, tmp)


class SampleGrid(pl.Callback):
    """Save a labelled grid of ``pl_module.grid_rows()`` (e.g. teacher / student rows on the same
    latents) every ``every_n_batches`` batches and at the end, plus ``real.png`` (training images)
    once per run; small images are upsampled for display (``callbacks.grids``).

    Args:
        every_n_batches: interval in training batches (0: only at the end of fit).
        dirname: sub-directory of the trainer's log dir (or ``default_root_dir``) for the PNGs.
        log_images: also send the grids to loggers that take images (W&B).
        min_size: images smaller than this are upsampled (nearest) to at least this size.
        real_count: real images in ``real.png``.
    """

    def __init__(
        self,
        every_n_batches: int = 1000,
        dirname: str = "samples",
        log_images: bool = True,
        min_size: int = 128,
        real_count: int = 16,
    ) -> None:
        self.every_n_batches = every_n_batches
        self.dirname = dirname
        self.log_images = log_images
        self.min_size = min_size
        self.real_count = real_count
        self.last_path: str | None = None
        self._real_written = False

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

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Once per run: a grid of real training images (``real.png``) to compare samples with."""
        if not self._real_written and isinstance(batch, dict) and "real_img" in batch:
            self._real_written = True
            rows = [("input", batch["input_img"][: self.real_count])] if "input_img" in batch else []
            rows.append(("real", batch["real_img"][: self.real_count]))
            path = os.path.join(self.output_dir(trainer), "real.png")
            self._save_rank_zero(trainer, rows, path, "real", 0)

    @rank_zero_only
    def _write_rank_zero(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, path: str, stem: str
    ) -> None:
        step = int(getattr(pl_module, "batches_done", trainer.global_step))
        self._save_rank_zero(trainer, pl_module.grid_rows(), path, stem, step)
        self.last_path = path

    @rank_zero_only
    def _save_rank_zero(
        self, trainer: pl.Trainer, rows: LabelledRows, path: str, stem: str, step: int
    ) -> None:
        image = render_labelled_grid(rows, min_size=self.min_size)
        with atomic_path(path) as tmp:
            image.save(tmp)
        if self.log_images:
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.log_image(key=f"samples/{stem}" if stem == "real" else "samples", images=[image],
                                     step=step, caption=[stem])  # fmt: skip
