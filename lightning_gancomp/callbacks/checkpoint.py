"""Checkpointing for manual-optimisation GAN training.

Lightning's ``global_step`` counts optimizer steps; a GAN batch takes 2–4 of them (D main, D reg,
G main, G reg), so ``ModelCheckpoint(every_n_train_steps=n)`` tests ``global_step % n`` on
irregular increments and skips saves. :class:`GanCheckpoint` counts *batches* instead
(``pl_module.batches_done``) and otherwise is a normal ``ModelCheckpoint`` (``save_last``,
``every_n_epochs``, ``monitor`` …).

:class:`AtomicCheckpointIO` writes every checkpoint to a temporary file in the same directory and
renames it into place, so a run killed while saving never leaves a half-written ``last.ckpt``.
"""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins.io import TorchCheckpointIO

from lightning_gancomp.atomic import atomic_torch_save
from lightning_gancomp.checkpoints import CheckpointError, load_error_reason


class GanCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that triggers every ``every_n_batches`` training batches.

    Files are named ``batch_0000800.ckpt`` by default (the batches trained, what the grids and
    logs count), not Lightning's ``epoch=7-step=2063`` whose step counts optimizer steps.

    Args:
        every_n_batches: save after every this many batches (0/None: only the parent's triggers,
            e.g. ``every_n_epochs``). Other arguments are ``ModelCheckpoint``'s; a ``filename``
            may use ``{batch}``.
    """

    def __init__(self, *args: Any, every_n_batches: int | None = None, **kwargs: Any) -> None:
        if kwargs.get("filename") is None and not args:
            kwargs.update(filename="batch_{batch:07d}", auto_insert_metric_name=False)
        super().__init__(*args, **kwargs)
        if every_n_batches is not None and every_n_batches < 0:
            raise ValueError(f"every_n_batches must be >= 0, got {every_n_batches}")
        self.every_n_batches = every_n_batches or 0

    @property
    def state_key(self) -> str:
        # Unique per trigger and directory, so several GanCheckpoints can coexist in one trainer.
        return self._generate_state_key(
            monitor=self.monitor,
            mode=self.mode,
            every_n_batches=self.every_n_batches,
            every_n_epochs=self._every_n_epochs,
            dirpath=self.dirpath,
        )

    def _monitor_candidates(self, trainer: pl.Trainer) -> dict[str, Any]:
        candidates = super()._monitor_candidates(trainer)
        done = getattr(trainer.lightning_module, "batches_done", trainer.global_step)
        candidates.setdefault("batch", torch.tensor(int(done)))
        return candidates

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.every_n_batches < 1:
            return
        done = int(getattr(pl_module, "batches_done", trainer.global_step))
        if done == 0 or done % self.every_n_batches or self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to ``<path>.tmp-<pid>`` then ``os.replace`` (local paths); remote paths as usual.

    Loads are weights-only unless the caller passes ``weights_only=False`` explicitly: Lightning
    would otherwise unpickle an ``http(s)://`` checkpoint with ``weights_only=False``, i.e. run
    whatever code the file carries. A file that cannot be loaded is one :class:`CheckpointError`
    line naming it (empty, truncated, a directory, a pickle that wants to run code).
    """

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        if isinstance(path, (str, os.PathLike)) and os.path.isdir(path):
            raise CheckpointError(f"--ckpt_path {path}: it is a directory, not a checkpoint file")
        try:
            return super().load_checkpoint(
                path,
                map_location=map_location or (lambda storage, loc: storage),
                weights_only=True if weights_only is None else weights_only,
            )
        except FileNotFoundError as exc:
            raise CheckpointError(f"--ckpt_path {path}: no such file") from exc
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one line naming it
            reason = load_error_reason(exc)
            hint = "; pass --weights_only=false only for a file you trust" if "run code" in reason else ""
            raise CheckpointError(f"--ckpt_path {path}: cannot be loaded ({reason}){hint}") from exc

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = os.fspath(path)
        if "://" in path:
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_torch_save(checkpoint, path)
