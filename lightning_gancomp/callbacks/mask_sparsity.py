"""Mask-sparsity logging for mask-based pruning (PPCD-GAN's learnable masks, ``nets.masks``).

Every ``every_n_batches`` training batches, for each :class:`~lightning_gancomp.nets.masks.LearnableMask`
of the trained generator: the share of mask values ``<= pivot`` (eq. 3's ``ratio``), the mean mask
value and whether eq. 3 has frozen the layer, logged to every logger as
``masks/<layer>/share|mean|frozen`` plus ``masks/share`` over all channels. The same records are
kept in :attr:`MaskSparsityLogger.history` and written (atomically) as JSON next to the run
(``<default_root_dir>/mask_history.json``) at the end of fit, with the final mask values, so the
progress of pruning can be read without a logger.
"""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
from torch import nn

from lightning_gancomp.atomic import atomic_write_json
from lightning_gancomp.nets.masks import PIVOT, LearnableMask


def mask_layers(generator: nn.Module) -> dict[str, LearnableMask]:
    """Masks by name: the generator's own ``mask_layers()`` names (channel groups) when it has
    them, else module paths."""
    named = getattr(generator, "mask_layers", None)
    if callable(named):
        return dict(named())
    return {name: m for name, m in generator.named_modules() if isinstance(m, LearnableMask)}


def mask_statistics(masks: dict[str, LearnableMask], pivot: float = PIVOT) -> dict[str, float]:
    """``<layer>/share``, ``<layer>/mean``, ``<layer>/frozen`` and ``share`` over all channels."""
    stats: dict[str, float] = {}
    below, total = 0, 0
    for name, mask in masks.items():
        values = mask.values().detach()
        stats[f"{name}/share"] = float((values <= pivot).float().mean())
        stats[f"{name}/mean"] = float(values.mean())
        stats[f"{name}/frozen"] = float(mask.is_frozen)
        below += int((values <= pivot).sum())
        total += values.numel()
    if total:
        stats["share"] = below / total
    return stats


class MaskSparsityLogger(pl.Callback):
    """Log mask sparsity over training (see module docstring).

    Args:
        every_n_batches: interval in training batches (``pl_module.batches_done``).
        pivot: eq. 3's pivot (0.005).
        history_file: JSON file name under ``trainer.default_root_dir`` (None: do not write).
    """

    def __init__(
        self, every_n_batches: int = 50, pivot: float = PIVOT, history_file: str | None = "mask_history.json"
    ) -> None:
        if every_n_batches < 1:
            raise ValueError(f"MaskSparsityLogger: every_n_batches must be >= 1, got {every_n_batches}")
        self.every_n_batches = every_n_batches
        self.pivot = pivot
        self.history_file = history_file
        self.history: list[dict[str, float]] = []

    def record(self, pl_module: pl.LightningModule, step: int) -> dict[str, float]:
        stats = mask_statistics(mask_layers(pl_module.generator), self.pivot)
        self.history.append({"batch": float(step), **stats})
        return stats

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        done = int(getattr(pl_module, "batches_done", batch_idx + 1))
        if done % self.every_n_batches:
            return
        stats = self.record(pl_module, done)
        if stats:
            for logger in trainer.loggers:
                logger.log_metrics({f"masks/{k}": v for k, v in stats.items()}, step=done)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.history_file or not trainer.is_global_zero:
            return
        masks = mask_layers(pl_module.generator)
        if not masks:
            return
        final = {name: mask.values().detach().cpu().tolist() for name, mask in masks.items()}
        payload = {"pivot": self.pivot, "history": self.history, "final_values": final}
        atomic_write_json(payload, os.path.join(trainer.default_root_dir, self.history_file))
