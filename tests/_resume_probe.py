"""Callbacks loaded by the resume test's subprocesses (via PYTHONPATH)."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytorch_lightning as pl


class LossRecorder(pl.Callback):
    """Appends one JSON line per training batch: batch count, global step and the losses."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int
    ) -> None:
        metrics = trainer.callback_metrics
        record = {
            "batches_done": pl_module.batches_done,
            "global_step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "g_total": float(metrics["train/g/total"]),
            "d_adv": float(metrics["train/d/adv"]),
            "data": float(batch["real_img"].double().sum()),  # same batches in the same order
        }
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")


class KillAt(pl.Callback):
    """SIGKILL this process when the given batch starts: no cleanup, no final checkpoint."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, idx: int) -> None:
        if pl_module.batches_done == self.batch:
            os.kill(os.getpid(), signal.SIGKILL)
