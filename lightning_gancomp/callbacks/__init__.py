"""Callbacks: run guard (finite checkpoints, run lock, signals), batch-based checkpoints, atomic
checkpoint files, sample grids, periodic metrics, mask sparsity."""

from lightning_gancomp.callbacks.checkpoint import AtomicCheckpointIO, GanCheckpoint
from lightning_gancomp.callbacks.evaluation import PeriodicEvaluation
from lightning_gancomp.callbacks.guard import NonFiniteCheckpointError, RunGuard
from lightning_gancomp.callbacks.mask_sparsity import MaskSparsityLogger
from lightning_gancomp.callbacks.predictions import ImageWriter
from lightning_gancomp.callbacks.samples import SampleGrid, grid_tensor, save_grid_atomic

__all__ = [
    "AtomicCheckpointIO",
    "GanCheckpoint",
    "ImageWriter",
    "MaskSparsityLogger",
    "NonFiniteCheckpointError",
    "PeriodicEvaluation",
    "RunGuard",
    "SampleGrid",
    "grid_tensor",
    "save_grid_atomic",
]
