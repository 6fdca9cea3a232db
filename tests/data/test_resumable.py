"""ResumableDataLoader: a stopped epoch resumed from ``state_dict`` continues the exact order."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from lightning_gancomp.data import (
    DatasetError,
    ResumableDataLoader,
    ResumableSampler,
    UnconditionalDataModule,
)


class Indexed(Dataset):
    """Item ``i`` is ``i``; counts which items were loaded (``num_workers=0`` only)."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.loaded: list[int] = []

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        self.loaded.append(index)
        return torch.tensor(index)


def make_loader(dataset: Dataset, num_workers: int = 0, **kwargs) -> ResumableDataLoader:
    options = {"batch_size": 4, "seed": 7, "num_workers": num_workers, "persistent_workers": num_workers > 0}
    return ResumableDataLoader(dataset, **{**options, **kwargs})


def epoch_batches(loader: ResumableDataLoader, epoch: int, limit: int | None = None) -> list[list[int]]:
    """Batches of one epoch as Lightning drives it: ``iter`` first, then ``set_epoch``, then ``next``."""
    iterator = iter(loader)
    loader.sampler.set_epoch(epoch)
    batches = []
    for batch in iterator:
        batches.append(batch.tolist())
        if limit is not None and len(batches) == limit:
            break
    return batches


@pytest.mark.parametrize("num_workers", [0, 2])
def test_first_batches_plus_resumed_remainder_equal_the_full_epoch(num_workers):
    full_loader = make_loader(Indexed(22), num_workers)
    full = [epoch_batches(full_loader, epoch) for epoch in range(3)]
    assert [len(batches) for batches in full] == [5, 5, 5]  # 22 items, batch 4, last 2 dropped
    flat = sum(full[1], [])
    assert full[1] != full[2] and flat != sorted(flat)  # shuffled, a new order per epoch

    for consumed in (1, 2, 4, 5):
        first = make_loader(Indexed(22), num_workers)
        epoch_batches(first, 0)
        head = epoch_batches(first, 1, limit=consumed)
        state = first.state_dict()
        assert state == {"epoch": 1, "batches_yielded": consumed, "seed": 7, "world_size": 1}

        resumed = make_loader(Indexed(22), num_workers, seed=123)  # the checkpointed seed wins
        resumed.load_state_dict(state)
        tail = epoch_batches(resumed, 1)
        assert head + tail == full[1], consumed
        assert resumed.state_dict()["batches_yielded"] == 5
        assert epoch_batches(resumed, 2) == full[2], consumed  # the next epoch is whole again


def test_skipped_samples_are_never_loaded():
    dataset = Indexed(22)
    loader = make_loader(dataset)
    loader.load_state_dict({"epoch": 0, "batches_yielded": 3, "seed": 7, "world_size": 1})
    tail = epoch_batches(loader, 0)
    assert len(tail) == 2 and sorted(dataset.loaded) == sorted(sum(tail, []))


def test_state_saved_at_epoch_end_starts_the_next_epoch_from_its_first_batch():
    reference = epoch_batches(make_loader(Indexed(22)), 3)
    # Lightning restores the state, creates the iterator, then moves on with set_epoch(epoch + 1)
    loader = make_loader(Indexed(22))
    loader.load_state_dict({"epoch": 2, "batches_yielded": 5, "seed": 7, "world_size": 1})
    assert epoch_batches(loader, 3) == reference
    # a limit_train_batches-shortened epoch end (3 of 5) likewise
    loader = make_loader(Indexed(22))
    loader.load_state_dict({"epoch": 2, "batches_yielded": 3, "seed": 7, "world_size": 1})
    assert epoch_batches(loader, 3) == reference


def test_rank_shards_are_disjoint_deterministic_and_resumable():
    shards = [ResumableSampler(Indexed(16), seed=3, num_replicas=2, rank=rank) for rank in (0, 1)]
    for sampler in shards:
        sampler.set_epoch(4)
    orders = [list(sampler) for sampler in shards]
    permutation = torch.randperm(16, generator=torch.Generator().manual_seed(3 + 4)).tolist()
    assert orders == [permutation[0::2], permutation[1::2]]  # DistributedSampler's interleaving

    for rank, order in enumerate(orders):
        loader = ResumableDataLoader(
            Indexed(16),
            batch_size=2,
            seed=0,
            sampler=ResumableSampler(Indexed(16), seed=3, num_replicas=2, rank=rank),
        )
        loader.load_state_dict({"epoch": 4, "batches_yielded": 2, "seed": 3, "world_size": 2})
        assert sum(epoch_batches(loader, 4), []) == order[4:]


def test_bad_states_fail_with_one_line():
    loader = make_loader(Indexed(22))
    with pytest.raises(DatasetError, match="lacks batches_yielded"):
        loader.load_state_dict({"epoch": 0, "seed": 7, "world_size": 1})
    with pytest.raises(DatasetError, match="sharded for 4 processes, this run has 1"):
        loader.load_state_dict({"epoch": 0, "batches_yielded": 1, "seed": 7, "world_size": 4})


def test_datamodule_shuffle_seed_follows_the_run_seed(monkeypatch):
    def train_seed(run_seed: str, data_seed: int = 0) -> int:
        monkeypatch.setenv("PL_GLOBAL_SEED", run_seed)
        dm = UnconditionalDataModule(
            resolution=8, batch_size=2, val_size=2, embedded_length=10, seed=data_seed
        )
        dm.setup("fit")
        loader = dm.train_dataloader()
        assert isinstance(loader, ResumableDataLoader) and loader.drop_last
        return loader.state_dict()["seed"]

    assert train_seed("5") == train_seed("5")
    assert len({train_seed("5"), train_seed("6"), train_seed("5", data_seed=1)}) == 3
