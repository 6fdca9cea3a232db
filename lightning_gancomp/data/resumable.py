"""A training DataLoader whose position survives a checkpoint: resuming mid-epoch continues the
same sample order where the killed run stopped.

Lightning (2.x, ``FitLoop.on_save_checkpoint`` / ``CombinedLoader._state_dicts``) stores
``state_dict()`` of every training loader that has ``state_dict``/``load_state_dict`` and calls
``load_state_dict`` on resume before iterating. A plain shuffling DataLoader draws a new order after
a restart, so a mid-epoch resume sees different batches than the uninterrupted run.

* :class:`ResumableSampler` -- the order is a permutation fixed by ``(seed, epoch)`` (the
  ``DistributedSampler`` recipe: ``randperm(n, seed + epoch)``, interleaved per-rank shards, the
  shard padded to equal length), so it can be regenerated after a restart. It subclasses
  ``DistributedSampler``, so under DDP Lightning keeps it instead of injecting its own sampler
  (``DataConnector._requires_distributed_sampler``); rank and world size are read from
  ``torch.distributed`` when it is initialised. Skipping consumed samples happens here, in the main
  process: skipped items are never loaded or decoded, and worker processes are unaffected.
* :class:`ResumableDataLoader` -- counts the batches handed to the training loop and restores that
  count. Lightning creates the epoch's iterator (``FitLoop.setup_data``) *before* it calls
  ``set_epoch`` on a resume, and worker-backed iterators draw indices as soon as they are created;
  the loader therefore returns an iterator that starts the real one at its first ``next``, after
  ``set_epoch``. A restored skip applies only to the epoch it was saved in: a checkpoint taken at
  an epoch end restores ``(epoch e, all batches)``, Lightning then moves to epoch ``e + 1`` and the
  new epoch starts from its first sample.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from lightning_gancomp.data.errors import DatasetError

STATE_KEYS = ("epoch", "batches_yielded", "seed", "world_size")


def run_shuffle_seed(data_seed: int = 0) -> int:
    """Shuffle seed of a run: ``seed_everything``'s seed (``PL_GLOBAL_SEED``, the seed Lightning gives
    its own DistributedSampler) mixed with the data module's ``seed``; fits in a signed 63-bit int."""
    run_seed = int(os.environ.get("PL_GLOBAL_SEED", "0"))
    digest = hashlib.sha256(f"{run_seed},{data_seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def process_group_shape() -> tuple[int, int]:
    """(world size, rank) of the default process group; (1, 0) when not distributed."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` order (fixed by seed and epoch) that can start ``skip`` samples into
    this rank's shard of one given epoch.

    Args:
        dataset: the sized dataset to sample.
        shuffle: permute per epoch (``randperm`` seeded with ``seed + epoch``) or keep index order.
        seed: shuffle seed.
        num_replicas, rank: the shard; None reads them from ``torch.distributed`` (1, 0 when it is
            not initialised).
    """

    def __init__(
        self,
        dataset: Dataset,
        shuffle: bool = True,
        seed: int = 0,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        world_size, own_rank = process_group_shape()
        super().__init__(
            dataset,
            num_replicas=world_size if num_replicas is None else num_replicas,
            rank=own_rank if rank is None else rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=False,
        )
        self._skip_epoch: int | None = None
        self._skip_samples = 0

    def skip_in_epoch(self, epoch: int, samples: int) -> None:
        """Make the next iteration of ``epoch`` (only that epoch) start ``samples`` into the shard."""
        if samples < 0:
            raise DatasetError(f"cannot skip a negative number of samples ({samples})")
        self._skip_epoch, self._skip_samples = epoch, samples

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())  # indices only: cheap, nothing is loaded
        skip = self._skip_samples if self._skip_epoch == self.epoch else 0
        self._skip_epoch, self._skip_samples = None, 0  # a skip is used once
        return iter(indices[skip:])


class _ResumableIterator(Iterator[Any]):
    """Starts the DataLoader's own iterator at the first ``next`` (after Lightning's ``set_epoch``)
    and counts the batches it hands out, in the main process."""

    def __init__(self, loader: ResumableDataLoader) -> None:
        self.loader = loader
        self.inner: Iterator[Any] | None = None

    def __iter__(self) -> _ResumableIterator:
        return self

    def __len__(self) -> int:
        return len(self.loader)

    def __next__(self) -> Any:
        if self.inner is None:
            self.inner = self.loader._start_epoch()
        batch = next(self.inner)
        self.loader._batches_yielded += 1
        return batch


class ResumableDataLoader(DataLoader):
    """Training DataLoader with a checkpointable position (``state_dict`` / ``load_state_dict``).

    Args:
        dataset: sized training dataset.
        batch_size: per-process batch size.
        shuffle: per-epoch permutation (seed + epoch) or index order.
        seed: shuffle seed (see :func:`run_shuffle_seed`).
        drop_last: drop the last incomplete batch of each epoch (kept on resume: the skipped
            prefix is whole batches, so the remainder ends where the full epoch would).
        sampler: None builds a :class:`ResumableSampler`; Lightning passes its own sampler when it
            rebuilds the loader (``overfit_batches``), which then cannot resume mid-epoch.
        num_workers, pin_memory, persistent_workers, loader_options: as ``DataLoader`` (Lightning
            passes every ``DataLoader`` argument when it rebuilds a loader).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        sampler: Sampler | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        **loader_options: Any,
    ) -> None:
        if sampler is None:
            sampler = ResumableSampler(dataset, shuffle=shuffle, seed=seed)
        super().__init__(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
            **loader_options,
        )
        self._iteration_epoch = getattr(sampler, "epoch", 0)
        self._batches_yielded = 0

    def __iter__(self) -> _ResumableIterator:  # type: ignore[override]
        return _ResumableIterator(self)

    def _start_epoch(self) -> Iterator[Any]:
        """The DataLoader's own iterator for the sampler's current epoch; resets the batch count
        unless this iteration continues a restored epoch."""
        epoch = getattr(self.sampler, "epoch", 0)
        resumes = isinstance(self.sampler, ResumableSampler) and self.sampler._skip_epoch == epoch
        skipped = self.sampler._skip_samples // self.batch_size if resumes else 0  # type: ignore[attr-defined,operator]
        self._iteration_epoch, self._batches_yielded = epoch, skipped
        return super().__iter__()

    def state_dict(self) -> dict[str, int]:
        """Epoch of the latest iteration, batches of it handed out (restored ones included), the
        shuffle seed and the world size the shard was cut for."""
        return {
            "epoch": self._iteration_epoch,
            "batches_yielded": self._batches_yielded,
            "seed": int(getattr(self.sampler, "seed", 0)),
            "world_size": int(getattr(self.sampler, "num_replicas", 1)),
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue after ``state``: the next iteration of its epoch skips the batches already handed
        out (at the sampler, nothing is loaded); the following epochs run whole."""
        missing = [key for key in STATE_KEYS if key not in state]
        if missing:
            raise DatasetError(f"training loader state lacks {', '.join(missing)}: {state!r}")
        if not isinstance(self.sampler, ResumableSampler):
            raise DatasetError(
                f"cannot restore the training loader position with sampler {type(self.sampler).__name__}; "
                "it needs a ResumableSampler"
            )
        if state["world_size"] != self.sampler.num_replicas:
            raise DatasetError(
                f"checkpoint's training loader was sharded for {state['world_size']} processes, this run has "
                f"{self.sampler.num_replicas}; mid-epoch resume needs the same number of processes"
            )
        epoch, batches = int(state["epoch"]), int(state["batches_yielded"])
        self.sampler.seed = int(state["seed"])  # the checkpointed order, even if the run seed changed
        self.sampler.set_epoch(epoch)
        self.sampler.skip_in_epoch(epoch, batches * self.batch_size)  # type: ignore[operator]
        self._iteration_epoch, self._batches_yielded = epoch, batches
