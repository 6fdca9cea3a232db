"""Callback loaded by the DDP test's subprocess (via PYTHONPATH): after training, every rank
writes its world size and a checksum of its generator and discriminator weights."""

from __future__ import annotations

import json
import os

import pytorch_lightning as pl
import torch


class WeightChecksum(pl.Callback):
    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        sums = {
            name: float(sum(p.detach().double().sum() for p in getattr(pl_module, name).parameters()))
            for name in ("generator", "discriminator", "generator_ema")
        }
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
            "batches_done": pl_module.batches_done,
            "global_step": trainer.global_step,
            "sums": sums,
        }
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, f"rank{trainer.global_rank}.json"), "w") as handle:
            json.dump(record, handle)
