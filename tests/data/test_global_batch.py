"""Global batch stated once in a config; the per-device batch derived from the device count."""

from types import SimpleNamespace

import pytest

from lightning_gancomp.data import DatasetError, UnconditionalDataModule


def module(**kwargs):
    return UnconditionalDataModule(path="embedded", resolution=8, embedded_length=64, val_size=4, **kwargs)


@pytest.mark.parametrize(("world", "per_device"), [(1, 16), (2, 8), (4, 4), (8, 2)])
def test_global_batch_is_split_over_the_devices(world, per_device):
    data = module(global_batch_size=16)
    data.trainer = SimpleNamespace(world_size=world)
    data.setup("fit")
    assert data.batch_size == per_device
    assert next(iter(data.train_dataloader()))["real_img"].shape[0] == per_device


def test_global_batch_that_does_not_divide_is_a_one_line_error():
    with pytest.raises(DatasetError, match="global_batch_size=16 does not divide over 3 devices"):
        module(global_batch_size=16).device_batch_size(3)


def test_fixed_device_batch_needs_the_matching_device_count():
    data = module(global_batch_size=16, batch_size=4, fixed_device_batch=True)
    assert data.device_batch_size(4) == 4
    with pytest.raises(DatasetError, match="fixed_device_batch batch_size=4 needs 4 devices, got 2"):
        data.device_batch_size(2)


def test_without_global_batch_the_batch_is_per_device_as_before():
    assert module(batch_size=5).device_batch_size(4) == 5


def test_eval_batch_size_is_per_process_and_not_divided():
    """Under DDP each process batches its own shard of the evaluation items by ``eval_batch_size``;
    only the training batch is derived from ``global_batch_size``."""
    data = module(global_batch_size=16, eval_batch_size=4)
    data.trainer = SimpleNamespace(world_size=2)
    data.setup("fit")
    assert data.batch_size == 8 and data.val_dataloader().batch_size == 4
