"""GanModule: the StyleGAN2 recipe defaults and a from-scratch run on the embedded data."""

import pytest
import torch
from _tiny import TinyCondDiscriminator, TinyCondGenerator, quiet_trainer, tiny_discriminator, tiny_stylegan2

from lightning_gancomp.data import UnconditionalDataModule
from lightning_gancomp.losses import HingeLoss, NonSaturatingLoss, PathLengthPenalty, R1Penalty
from lightning_gancomp.methods import STYLEGAN2_EMA_DECAY, GanModule


def test_stylegan2_recipe_defaults():
    module = GanModule(tiny_stylegan2(), tiny_discriminator())
    assert isinstance(module.adversarial, NonSaturatingLoss)
    assert isinstance(module.r1, R1Penalty) and module.r1.gamma == 10.0 and module.r1_interval == 16
    assert isinstance(module.path_length, PathLengthPenalty)
    assert (module.path_length.weight, module.path_length.decay, module.path_length.batch_shrink) == (
        2.0,
        0.01,
        2,
    )
    assert module.pl_interval == 4 and module.style_mixing_prob == 0.9
    assert module.ema_decay == pytest.approx(0.5 ** (32 / 10_000)) == STYLEGAN2_EMA_DECAY
    assert [p.name for p in module.phases()] == ["D main", "D reg", "G main", "G reg"]


def test_non_style_generators_get_no_path_length_and_regularisers_can_be_off():
    module = GanModule(TinyCondGenerator(), TinyCondDiscriminator(), adversarial=HingeLoss())
    assert module.path_length is None and module.r1 is not None
    bare = GanModule(TinyCondGenerator(), TinyCondDiscriminator(), use_default_regularizers=False)
    assert bare.r1 is None and bare.path_length is None
    assert [p.name for p in bare.phases()] == ["D main", "G main"]


def test_from_scratch_on_embedded_data_learns_and_keeps_ema_behind():
    torch.manual_seed(0)
    module = GanModule(tiny_stylegan2(8, resolution=16), tiny_discriminator(16), ema_decay=0.9, r1_interval=4)
    data = UnconditionalDataModule(
        path="embedded", resolution=16, batch_size=8, val_size=8, embedded_length=64
    )
    start = {k: v.clone() for k, v in module.generator.state_dict().items()}
    trainer = quiet_trainer(max_epochs=2)
    trainer.fit(module, data)
    assert module.batches_done == 16
    metrics = trainer.callback_metrics
    for key in ("train/d/adv", "train/g/adv", "train/d/r1", "train/g/pl", "train/g/pl_mean"):
        assert torch.isfinite(metrics[key]), key
    assert metrics["train/g/pl_mean"] > 0 and module.path_length.mean_path_length > 0
    moved = [k for k, v in module.generator.state_dict().items() if not torch.equal(v, start[k])]
    assert any(k.startswith("style.") for k in moved) and any(k.startswith("convs.") for k in moved)
    # EMA is strictly between the start and the current weights for a trained tensor
    key = "convs.0.conv.weight"
    ema, now, init = module.generator_ema.state_dict()[key], module.generator.state_dict()[key], start[key]
    assert (ema - now).abs().mean() < (init - now).abs().mean()
    assert not torch.equal(ema, now)
    # the discriminator separates real from generated images better than chance after training
    assert metrics["train/d/real_score"] > metrics["train/d/fake_score"]


def test_image_pool_fills_then_swaps_half_the_time():
    from lightning_gancomp.methods import ImagePool

    torch.manual_seed(0)
    pool = ImagePool(size=4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: images pass through and are stored
    new = -1.0 - torch.arange(200.0).view(200, 1, 1, 1)  # distinct values
    out = pool.query(new)
    from_history = (out != new).flatten()
    assert 0.35 < from_history.float().mean().item() < 0.65  # about half come from the history
    # a history image is one of the first four or a new image queried earlier in the batch
    values, incoming = out.flatten().tolist(), new.flatten().tolist()
    for i, (value, replaced) in enumerate(zip(values, from_history.tolist())):
        if replaced:
            assert value in set(first.flatten().tolist()) | set(incoming[:i])
    assert len(pool.images) == 4
    assert torch.equal(ImagePool(0).query(new), new)


def test_cyclegan_module_trains_both_directions_and_checkpoints_all_nets(tmp_path):
    from _tiny import DictDataModule, TinyImageGenerator, TinyPatchDiscriminator

    from lightning_gancomp.callbacks import GanCheckpoint
    from lightning_gancomp.checkpoints import load_generator
    from lightning_gancomp.losses import LSGANLoss
    from lightning_gancomp.methods import CycleGanModule

    module = CycleGanModule(
        TinyImageGenerator(),
        TinyImageGenerator(),
        TinyPatchDiscriminator(3),
        TinyPatchDiscriminator(3),
        pool_size=4,
    )
    assert isinstance(module.adversarial, LSGANLoss) and module.adversarial.discriminator_scale == 0.5
    assert module.cycle.weight == 10.0 and module.identity.weight == 5.0
    g_opt, d_opt = module.configure_optimizers()
    assert len(g_opt.param_groups[0]["params"]) == 2 * len(list(module.generator.parameters()))
    assert g_opt.param_groups[0]["lr"] == 2e-4 and g_opt.param_groups[0]["betas"] == (0.5, 0.999)
    before_ba = {k: v.clone() for k, v in module.generator_ba.state_dict().items()}
    ckpt = GanCheckpoint(dirpath=tmp_path, every_n_batches=2, save_last=True)
    trainer = quiet_trainer(limit_train_batches=2, callbacks=[ckpt], enable_checkpointing=True)
    trainer.fit(module, DictDataModule(kind="image2image"))
    assert trainer.global_step == 4  # G main + D main per batch
    keys = set(trainer.callback_metrics)
    assert {
        "train/g/cycle_a",
        "train/g/cycle_b",
        "train/g/identity_a",
        "train/g/adv_ab",
        "train/d/adv_a",
    } <= keys
    assert any(not torch.equal(v, before_ba[k]) for k, v in module.generator_ba.state_dict().items())
    state = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert set(state["gancomp_nets"]) == {"g", "d", "g_ba", "d_a"}
    assert state["gancomp_state"]["pools"]["b"].shape[0] == 4  # full pool saved for an exact resume
    assert type(load_generator(tmp_path / "last.ckpt", key="g_ba")).__name__ == "TinyImageGenerator"
    no_identity = CycleGanModule(
        TinyImageGenerator(),
        TinyImageGenerator(),
        TinyPatchDiscriminator(3),
        TinyPatchDiscriminator(3),
        use_identity=False,
    )
    assert no_identity.identity is None
