"""Learning-rate schedules: known factors per kind, the engine steps them per batch / per epoch,
and a resumed run continues the schedule exactly."""

import pytest
import torch
from _tiny import DictDataModule, quiet_trainer, tiny_discriminator, tiny_stylegan2

from lightning_gancomp.callbacks import GanCheckpoint
from lightning_gancomp.methods import AdversarialModule, ConstantLR, LinearDecayLR, StepLR


def test_linear_decay_is_cyclegans_rule_and_mimicrys():
    cyclegan = LinearDecayLR(constant=3, decay=2)  # n_epochs 3, n_epochs_decay 2, epoch_count 1
    assert [cyclegan.factor(e) for e in range(5)] == pytest.approx([1, 1, 1, 2 / 3, 1 / 3])
    mimicry = LinearDecayLR(constant=0, decay=10, offset=0, interval="step")  # 1 - step / num_steps
    assert [mimicry.factor(s) for s in (0, 5, 10, 12)] == pytest.approx([1.0, 0.5, 0.0, 0.0])


def test_step_decay_is_ppcds_rule():
    ppcd = StepLR(milestones=[30, 60, 90], gamma=0.1)
    assert [ppcd.factor(e) for e in (0, 29, 30, 59, 60, 90, 99)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.001, 0.001]
    )
    assert ConstantLR().factor(1000) == 1.0
    with pytest.raises(ValueError, match="interval"):
        StepLR(interval="batch")


def _module():
    torch.manual_seed(0)
    schedules = [
        LinearDecayLR("g", constant=2, decay=8, offset=0, interval="step"),
        StepLR("d", milestones=[1], gamma=0.5, interval="epoch"),
    ]
    return AdversarialModule(tiny_stylegan2(), tiny_discriminator(), schedules=schedules, ema_decay=None)


def _lrs(module):
    return [opt.param_groups[0]["lr"] for opt in module.optimizers()]


def test_engine_steps_schedules_and_resume_continues_them(tmp_path):
    # 4 batches per epoch, 2 epochs: g decays per batch after 2 constant ones, d halves after epoch 1
    full = _module()
    trainer = quiet_trainer(max_epochs=2, limit_val_batches=0)
    trainer.fit(full, DictDataModule())
    assert _lrs(full) == pytest.approx([0.002 * (1 - (8 - 2) / 8), 0.002 * 0.5])

    first = _module()
    ckpt = GanCheckpoint(dirpath=str(tmp_path), every_n_batches=4, save_last=True)
    quiet_trainer(max_epochs=1, limit_val_batches=0, enable_checkpointing=True, callbacks=[ckpt]).fit(
        first, DictDataModule()
    )
    assert _lrs(first) == pytest.approx([0.002 * (1 - (4 - 2) / 8), 0.002 * 0.5])
    resumed = _module()
    quiet_trainer(max_epochs=2, limit_val_batches=0).fit(
        resumed, DictDataModule(), ckpt_path=str(tmp_path / "last.ckpt")
    )
    assert _lrs(resumed) == pytest.approx(_lrs(full))


def test_schedule_naming_an_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="unknown optimizers \\['x'\\]"):
        AdversarialModule(tiny_stylegan2(), tiny_discriminator(), schedules=[ConstantLR("x")])
