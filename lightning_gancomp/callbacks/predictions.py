"""Write ``gancomp predict`` outputs (images in [-1, 1]) as PNG files."""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter

from lightning_gancomp.callbacks.samples import save_grid_atomic


class ImageWriter(BasePredictionWriter):
    """Saves every predicted image as ``<output_dir>/rank<r>_batch<b>_<i>.png`` (atomically).

    Args:
        output_dir: directory for the PNGs (created if missing).
    """

    def __init__(self, output_dir: str = "predictions") -> None:
        super().__init__(write_interval="batch")
        self.output_dir = output_dir
        self.written: list[str] = []

    def write_on_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int,
    ) -> None:
        images = (prediction.detach().float().cpu().clamp(-1, 1) + 1) / 2
        for i, image in enumerate(images):
            path = os.path.join(
                self.output_dir, f"rank{trainer.global_rank}_batch{batch_idx:05d}_{i:03d}.png"
            )
            save_grid_atomic(image, path)
            self.written.append(path)


__all__ = ["ImageWriter"]
