"""DataModules inside Lightning: Trainer loop, loader flags, LightningCLI-style parsing."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from jsonargparse import ArgumentParser
from torch.utils.data import SequentialSampler

from lightning_gancomp.data import (
    ConditionalDataModule,
    DatasetError,
    PairedDataModule,
    ResumableSampler,
    UnconditionalDataModule,
    UnpairedDataModule,
)


class _ShapeCheckingModule(pl.LightningModule):
    """Records the batches Lightning hands over."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)
        self.seen: list[dict[str, tuple]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append({key: (tuple(value.shape), value.dtype) for key, value in batch.items()})
        return self.layer(batch["real_img"].mean((2, 3))).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/mean", batch["real_img"].mean(), batch_size=batch["real_img"].shape[0])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trainer_runs_on_the_paired_datamodule_with_contract_batches():
    dm = PairedDataModule(resolution=16, batch_size=4, val_size=4, embedded_length=16)
    module = _ShapeCheckingModule()
    trainer = pl.Trainer(
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        accelerator="cpu",
    )
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == 2
    expected = {
        "input_img": ((4, 3, 16, 16), torch.float32),
        "real_img": ((4, 3, 16, 16), torch.float32),
        "mask": ((4, 1, 16, 16), torch.float32),
    }
    assert module.seen == [expected, expected]


@pytest.mark.parametrize("cls", [UnconditionalDataModule, ConditionalDataModule, UnpairedDataModule])
def test_loader_flags(cls):
    dm = cls(resolution=8, batch_size=3, val_size=5, embedded_length=10, pin_memory=False)
    dm.setup("fit")
    train, val = dm.train_dataloader(), dm.val_dataloader()
    assert isinstance(train.sampler, ResumableSampler) and train.drop_last and len(train) == 3
    assert isinstance(val.sampler, SequentialSampler) and not val.drop_last and len(val) == 2
    assert not train.persistent_workers and not train.pin_memory


def test_conditional_embedded_knows_num_classes_before_setup():
    assert ConditionalDataModule().num_classes == 10
    dm = ConditionalDataModule(num_classes=4, resolution=8, batch_size=4, val_size=4, embedded_length=8)
    assert dm.num_classes == 4
    dm.setup("fit")
    assert sorted({int(dm.train_set[i]["label"]) for i in range(8)}) == [0, 1, 2, 3]


def test_cli_parses_typed_arguments_and_rejects_unknown_format():
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(pl.LightningDataModule, "data")
    config = parser.parse_args(
        [
            "--data.class_path=lightning_gancomp.data.UnconditionalDataModule",
            "--data.init_args.format=lsun_lmdb",
        ]
    )
    assert config.data.init_args.format == "lsun_lmdb"
    with pytest.raises(Exception, match="data"):
        parser.parse_args(
            [
                "--data.class_path=lightning_gancomp.data.UnconditionalDataModule",
                "--data.init_args.format=bogus",
            ]
        )


def test_unpaired_direction_btoa_exchanges_the_domains_in_every_split():
    from lightning_gancomp.data import UnpairedDataModule

    kwargs = dict(path="embedded", resolution=16, batch_size=2, val_size=2, embedded_length=4)
    ab, ba = UnpairedDataModule(**kwargs), UnpairedDataModule(**kwargs, direction="BtoA")
    ab.setup(), ba.setup()
    for forward, backward in (
        (ab.train_set, ba.train_set),
        (ab.val_set, ba.val_set),
        (ab.test_set, ba.test_set),
    ):
        x, y = forward[1], backward[1]
        assert torch.equal(x["input_img"], y["real_img"]) and torch.equal(x["real_img"], y["input_img"])
        assert "mask" not in y


@pytest.mark.parametrize("cls", [UnconditionalDataModule, ConditionalDataModule, PairedDataModule])
def test_eval_batch_size_batches_validation_and_test_not_training(cls):
    dm = cls(resolution=8, batch_size=2, val_size=10, test_size=7, eval_batch_size=4, embedded_length=6)
    dm.setup("fit")
    assert [len(b["real_img"]) for b in dm.val_dataloader()] == [4, 4, 2]
    assert [len(b["real_img"]) for b in dm.test_dataloader()] == [4, 3]
    assert [len(b["real_img"]) for b in dm.train_dataloader()] == [2, 2, 2]


def test_eval_batch_size_defaults_to_the_training_batch():
    dm = UnconditionalDataModule(resolution=8, batch_size=3, val_size=5, embedded_length=6)
    dm.setup("fit")
    assert dm.eval_batch_size is None and dm.val_dataloader().batch_size == 3


@pytest.mark.parametrize("key", ["eval_batch_size", "test_size"])
def test_eval_sizes_below_one_are_a_one_line_error(key):
    with pytest.raises(DatasetError, match=f"^{key} must be >= 1, got 0$"):
        UnconditionalDataModule(resolution=8, **{key: 0})
