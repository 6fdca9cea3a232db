"""Metric evaluation every N training batches, outside Lightning's validation loop.

``Trainer(val_check_interval=N)`` also evaluates every N batches; this callback exists for
runs that validate rarely (or not at all) but want FID/KID/IS curves on a fixed real subset, and it
logs under its own prefix so both can coexist.
"""

from __future__ import annotations

from typing import Any, Literal

import pytorch_lightning as pl
import torch


class PeriodicEvaluation(pl.Callback):
    """Every ``every_n_batches`` training batches, feed ``max_images`` real images of the
    datamodule's ``split`` loader and as many generated ones to the module's metrics and log
    ``<prefix>/<metric>``.

    Args:
        every_n_batches: interval in training batches.
        max_images: real images per evaluation (and as many generated ones).
        split: which datamodule loader gives the real images.
        prefix: log prefix (default ``eval``).
    """

    def __init__(
        self,
        every_n_batches: int = 5000,
        max_images: int = 1000,
        split: Literal["val", "test", "train"] = "val",
        prefix: str = "eval",
    ) -> None:
        if every_n_batches < 1 or max_images < 1:
            raise ValueError("every_n_batches and max_images must be >= 1")
        self.every_n_batches = every_n_batches
        self.max_images = max_images
        self.split = split
        self.prefix = prefix
        self.history: list[tuple[int, dict[str, float]]] = []

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        done = int(getattr(pl_module, "batches_done", 0))
        if done == 0 or done % self.every_n_batches:
            return
        results = self.evaluate(trainer, pl_module)
        self.history.append((done, results))
        if results:
            metrics = {f"{self.prefix}/{k}": v for k, v in results.items()}
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=done)
            if hasattr(pl_module, "log_evaluation_protocol"):  # real statistics, counts, resize
                pl_module.log_evaluation_protocol(self.prefix)

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        datamodule = trainer.datamodule
        if datamodule is None or pl_module.metrics is None:
            return {}
        loader = getattr(datamodule, f"{self.split}_dataloader")()
        rng_state = torch.get_rng_state()  # evaluation must not change what training draws next
        try:
            return pl_module.evaluate_loader(loader, self.max_images)
        finally:
            torch.set_rng_state(rng_state)
