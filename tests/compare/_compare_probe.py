"""Callback loaded by the comparison kill/resume test (through the arm's config)."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytorch_lightning as pl


class KillOnce(pl.Callback):
    """SIGKILL this process when training batch ``batch`` starts, unless ``marker`` exists (it is
    created first, so the resumed run with the same config trains on)."""

    def __init__(self, marker: str, batch: int) -> None:
        self.marker, self.batch = marker, batch

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, idx: int) -> None:
        if pl_module.batches_done == self.batch and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
