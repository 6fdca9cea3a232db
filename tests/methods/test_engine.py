"""The adversarial engine and the compression base: phases, freezing, EMA, checkpoints, errors."""

import math
import os

import pytest
import pytorch_lightning as pl
import torch
from _tiny import (
    DictDataModule,
    TinyCondDiscriminator,
    TinyCondGenerator,
    TinyImageGenerator,
    TinyPatchDiscriminator,
    quiet_trainer,
    tiny_discriminator,
    tiny_stylegan2,
)
from PIL import Image

from lightning_gancomp.callbacks import GanCheckpoint, SampleGrid
from lightning_gancomp.callbacks.grids import LABEL_WIDTH, PAD
from lightning_gancomp.checkpoints import load_discriminator, load_generator
from lightning_gancomp.losses import FeatureDistillation, PathLengthPenalty, PixelLoss, R1Penalty
from lightning_gancomp.methods import AdversarialModule, CompressionModule, NonFiniteLossError
from lightning_gancomp.nets.base import CheckpointMismatchError
from lightning_gancomp.nets.contract import style_w_plus


def compression(**kwargs):
    defaults = dict(
        teacher=tiny_stylegan2(8),
        student=tiny_stylegan2(4),
        discriminator=tiny_discriminator(),
        losses=[PixelLoss(3.0)],
        r1=R1Penalty(),
        r1_interval=2,
        path_length=PathLengthPenalty(),
        pl_interval=2,
    )
    defaults.update(kwargs)
    return CompressionModule(**defaults)


def test_teacher_frozen_unchanged_and_never_optimised():
    module = compression()
    before = {k: v.clone() for k, v in module.teacher.state_dict().items()}
    trainer = quiet_trainer(limit_train_batches=3)
    trainer.fit(module, DictDataModule())
    optimised = {id(p) for opt in trainer.optimizers for g in opt.param_groups for p in g["params"]}
    assert not optimised & {id(p) for p in module.teacher.parameters()}
    assert not optimised & {id(p) for p in module.generator_ema.parameters()}
    assert all(not p.requires_grad for p in module.teacher.parameters())
    assert not module.teacher.training and not module.generator_ema.training  # survived trainer.train()
    for key, value in module.teacher.state_dict().items():
        if not key.startswith("noises."):
            assert torch.equal(value, before[key]), key
    # the student did learn
    assert module.batches_done == 3


def test_phase_schedule_and_global_step_count():
    module = AdversarialModule(
        tiny_stylegan2(),
        tiny_discriminator(),
        r1=R1Penalty(),
        r1_interval=2,
        path_length=PathLengthPenalty(),
        pl_interval=3,
    )
    ran: list[str] = []
    original = module.phases

    def recording_phases():
        phases = original()
        return [type(p)(p.name, p.optimizer, p.interval, _recorder(p, ran)) for p in phases]

    module.phases = recording_phases
    trainer = quiet_trainer(limit_train_batches=4, max_epochs=2)
    trainer.fit(module, DictDataModule(length=16))
    counts = {name: ran.count(name) for name in ("D main", "D reg", "G main", "G reg")}
    # 8 batches: R1 on batches 0,2,4,6; path length on 0,3,6
    assert counts == {"D main": 8, "D reg": 4, "G main": 8, "G reg": 3}
    assert ran[:4] == ["D main", "D reg", "G main", "G reg"]  # rosinality order
    assert trainer.global_step == sum(counts.values())  # Lightning counts optimizer steps
    assert module.batches_done == 8


def _recorder(phase, ran):
    def run(batch):
        ran.append(phase.name)
        return phase.run(batch)

    return run


def test_lazy_regularisation_correction_of_optimizers():
    module = AdversarialModule(
        tiny_stylegan2(),
        tiny_discriminator(),
        r1=R1Penalty(),
        r1_interval=16,
        path_length=PathLengthPenalty(),
        pl_interval=4,
    )
    g_opt, d_opt = module.configure_optimizers()
    assert g_opt.param_groups[0]["lr"] == pytest.approx(0.002 * 4 / 5)
    assert d_opt.param_groups[0]["lr"] == pytest.approx(0.002 * 16 / 17)
    assert d_opt.param_groups[0]["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))
    plain = AdversarialModule(tiny_stylegan2(), tiny_discriminator())
    g_plain, _ = plain.configure_optimizers()
    assert g_plain.param_groups[0]["lr"] == pytest.approx(0.002)
    assert g_plain.param_groups[0]["betas"] == (0.0, 0.99)


def test_ema_is_a_lerp_of_parameters_and_copies_buffers():
    module = AdversarialModule(tiny_stylegan2(), tiny_discriminator(), ema_decay=0.75)
    with torch.no_grad():
        for p in module.generator.parameters():
            p.add_(1.0)
        module.generator.latent_avg.fill_(3.0)
    ema_before = [p.clone() for p in module.generator_ema.parameters()]
    module.update_ema()
    for before, ema, g in zip(ema_before, module.generator_ema.parameters(), module.generator.parameters()):
        assert torch.allclose(ema, 0.75 * before + 0.25 * g)
    assert torch.equal(module.generator_ema.latent_avg, module.generator.latent_avg)


def test_style_mixing_crossover_and_shared_inputs():
    module = compression()
    torch.manual_seed(3)
    crossovers = set()
    for _ in range(30):
        inputs = module.sample_inputs(2, mixing_prob=1.0)
        assert len(inputs.zs) == 2
        crossovers.add(inputs.crossover)
        w_plus = style_w_plus(module.teacher, inputs)
        w0, w1 = module.teacher.mapping(inputs.zs[0]), module.teacher.mapping(inputs.zs[1])
        cut = inputs.crossover
        assert torch.allclose(w_plus[:, :cut], w0.unsqueeze(1).expand(-1, cut, -1))
        assert torch.allclose(w_plus[:, cut:], w1.unsqueeze(1).expand(-1, w_plus.shape[1] - cut, -1))
    assert crossovers == set(range(1, module.teacher.n_latent))
    assert len(module.sample_inputs(2, mixing_prob=0.0).zs) == 1


def test_checkpoint_holds_net_payloads_for_load_generator(tmp_path):
    module = compression()
    ckpt_cb = GanCheckpoint(dirpath=tmp_path, every_n_batches=2, save_last=True, save_top_k=-1)
    trainer = quiet_trainer(limit_train_batches=2, callbacks=[ckpt_cb], enable_checkpointing=True)
    trainer.fit(module, DictDataModule())
    last = tmp_path / "last.ckpt"
    g_ema = load_generator(last)
    for key, value in module.generator_ema.state_dict().items():
        assert torch.equal(g_ema.state_dict()[key], value), key
    assert g_ema.config == module.generator.config  # pruned widths travel with the weights
    teacher = load_generator(last, key="teacher")
    assert teacher.config["channels"] == [8] * 4
    assert type(load_discriminator(last)).__name__ == "StyleGAN2Discriminator"
    state = torch.load(last, weights_only=True)
    assert state["gancomp_state"]["batches_done"] == 2
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]
    # named by batches trained (4 optimizer steps per batch would make Lightning's step=8)
    assert sorted(os.listdir(tmp_path)) == ["batch_0000002.ckpt", "last.ckpt"]


def test_resume_with_other_architecture_fails_naming_network(tmp_path):
    module = compression()
    ckpt_cb = GanCheckpoint(dirpath=tmp_path, every_n_batches=1, save_last=True)
    quiet_trainer(limit_train_batches=1, callbacks=[ckpt_cb], enable_checkpointing=True).fit(
        module, DictDataModule()
    )
    other = compression(student=tiny_stylegan2(6))
    with pytest.raises(CheckpointMismatchError, match=r"\[generator\].*first shape conflict"):
        quiet_trainer(limit_train_batches=2, max_epochs=2).fit(
            other, DictDataModule(), ckpt_path=tmp_path / "last.ckpt"
        )


def test_nan_loss_stops_before_the_step_and_keeps_last_good_checkpoint(tmp_path):
    module = AdversarialModule(tiny_stylegan2(), tiny_discriminator())
    ckpt_cb = GanCheckpoint(dirpath=tmp_path, every_n_batches=1, save_last=True)
    # item 13 is in the 4th batch (batch size 4) → batches 0..2 fine, batch 3 poisoned
    data = DictDataModule(length=16, nan_at=13)
    with pytest.raises(
        NonFiniteLossError, match=r"phase 'D main' at batch 3.*last good checkpoint: .*last\.ckpt"
    ):
        quiet_trainer(callbacks=[ckpt_cb], enable_checkpointing=True).fit(module, data)
    state = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert state["gancomp_state"]["batches_done"] == 3
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())
    assert not [f for f in os.listdir(tmp_path) if ".tmp" in f]


def test_conditional_generator_and_discriminator_get_labels():
    module = AdversarialModule(TinyCondGenerator(), TinyCondDiscriminator(), r1=R1Penalty(), r1_interval=1)
    trainer = quiet_trainer(limit_train_batches=2)
    trainer.fit(module, DictDataModule(kind="conditional"))
    inputs = module.sample_inputs(64)
    assert inputs.label is not None and set(inputs.label.tolist()) == {0, 1, 2}
    ((label, grid),) = module.grid_rows()
    assert label == "generated" and grid.shape == (16, 3, 8, 8)


def test_image_to_image_compression_with_pair_discriminator(tmp_path):
    module = CompressionModule(
        teacher=TinyImageGenerator(width=8),
        student=TinyImageGenerator(width=2),
        discriminator=TinyPatchDiscriminator(in_channels=6),
        pair_discriminator=True,
        losses=[PixelLoss(100.0, target="real_img"), PixelLoss(1.0), FeatureDistillation(1.0)],
        r1=None,
    )
    assert [(a.in_channels, a.out_channels) for a in module.generator_losses[2].adaptors] == [(2, 8)]
    grid_cb = SampleGrid(every_n_batches=1)
    trainer = quiet_trainer(limit_train_batches=2, callbacks=[grid_cb], default_root_dir=tmp_path)
    trainer.fit(module, DictDataModule(kind="image2image"))
    g_params = {id(p) for p in trainer.optimizers[0].param_groups[0]["params"]}
    assert {id(p) for p in module.generator_losses[2].parameters()} <= g_params  # adaptors trained with G
    assert set(trainer.callback_metrics) >= {"train/g/rec_l1", "train/g/kd_l1", "train/g/kd_feat_l2"}
    rows = module.grid_rows()
    assert [label for label, _ in rows] == ["input", "teacher", "student"]
    assert all(images.shape == (4, 3, 8, 8) for _, images in rows)
    assert os.path.isfile(grid_cb.last_path)
    real = Image.open(os.path.join(os.path.dirname(grid_cb.last_path), "real.png"))
    # 8-px images shown at 128 px: labelled input and real rows of 4 images
    assert real.size == (LABEL_WIDTH + 8 * (128 + PAD) + PAD, 2 * (128 + PAD) + PAD)


class CountingMetrics:
    needs_real_images = True

    """Stands in for GenerativeMetrics: records what the module feeds it."""

    def __init__(self):
        self.real = self.fake = 0
        self.extractor = torch.nn.Linear(2, 2)  # a "feature net" that must not reach checkpoints

    def to(self, device):
        return self

    def reset(self):
        self.real = self.fake = 0

    def update(self, imgs, real):
        assert imgs.min() >= -1 and imgs.max() <= 1
        if real:
            self.real += imgs.shape[0]
        else:
            self.fake += imgs.shape[0]

    def compute(self):
        return {"fid": float(self.real + 1000 * self.fake)}


def test_validation_feeds_metrics_and_keeps_them_out_of_state_dict():
    metrics = CountingMetrics()
    module = AdversarialModule(tiny_stylegan2(), tiny_discriminator(), metrics=metrics, eval_max_images=4)
    assert not [k for k in module.state_dict() if "extractor" in k]
    trainer = quiet_trainer(limit_train_batches=1)
    trainer.validate(module, DictDataModule())
    # eval_max_images=4 → one batch of 4 reals and 4 fakes
    assert trainer.callback_metrics["val/fid"].item() == 4 + 4000
    assert math.isfinite(trainer.callback_metrics["val/fid"].item())


def test_path_length_requires_style_based_generator():
    with pytest.raises(ValueError, match="style-based"):
        AdversarialModule(TinyCondGenerator(), TinyCondDiscriminator(), path_length=PathLengthPenalty())


def test_teacher_or_student_file_paths(tmp_path):
    from lightning_gancomp.checkpoints import save_generator

    save_generator(tiny_stylegan2(8), tmp_path / "teacher.pt")
    save_generator(tiny_stylegan2(4), tmp_path / "student.pt")
    module = CompressionModule(
        teacher_path=str(tmp_path / "teacher.pt"),
        student_path=str(tmp_path / "student.pt"),
        discriminator=tiny_discriminator(),
    )
    assert module.teacher.config["channels"] == [8] * 4 and module.student.config["channels"] == [4] * 4
    # architecture + file: built now (profile needs no file), the file's weights come at setup
    deferred = CompressionModule(
        teacher=tiny_stylegan2(8),
        teacher_path=str(tmp_path / "teacher.pt"),
        discriminator=tiny_discriminator(),
    )
    stored = load_generator(str(tmp_path / "teacher.pt")).state_dict()
    assert not torch.equal(deferred.teacher.conv1.conv.weight, stored["conv1.conv.weight"])
    deferred.setup("fit")
    assert all(torch.equal(v, stored[k]) for k, v in deferred.teacher.state_dict().items())
    assert deferred.source_file("teacher") == str(tmp_path / "teacher.pt")


def test_periodic_evaluation_callback_every_n_batches_leaves_training_rng_alone():
    from lightning_gancomp.callbacks import PeriodicEvaluation

    class Recorder(pl.Callback):
        def __init__(self):
            self.losses = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.losses.append(float(trainer.callback_metrics["train/g/total"]))

    def run(with_eval):
        torch.manual_seed(0)
        module = AdversarialModule(tiny_stylegan2(), tiny_discriminator(), metrics=CountingMetrics())
        evaluation = PeriodicEvaluation(every_n_batches=2, max_images=4)
        recorder = Recorder()
        callbacks = [recorder] + ([evaluation] if with_eval else [])
        quiet_trainer(limit_train_batches=4, callbacks=callbacks).fit(module, DictDataModule())
        return evaluation, recorder.losses

    evaluation, losses = run(True)
    _, losses_without = run(False)
    assert [done for done, _ in evaluation.history] == [2, 4]
    assert all(results == {"fid": 4 + 4000.0} for _, results in evaluation.history)  # 4 real + 4 fake
    assert losses == losses_without  # evaluating does not change what training draws


def test_generator_interval_is_sngan_n_dis():
    module = AdversarialModule(
        TinyCondGenerator(), TinyCondDiscriminator(), generator_interval=3, ema_decay=0.5
    )
    ran: list[str] = []
    original = module.phases
    module.phases = lambda: [type(p)(p.name, p.optimizer, p.interval, _recorder(p, ran)) for p in original()]
    ema_updates = []
    update = module.update_ema
    module.update_ema = lambda: (ema_updates.append(module.batches_done), update())
    trainer = quiet_trainer(limit_train_batches=4, max_epochs=2)
    trainer.fit(module, DictDataModule(kind="conditional", length=16))
    assert ran.count("D main") == 8 and ran.count("G main") == 3  # G on batches 0, 3, 6
    assert ema_updates == [0, 3, 6]  # the EMA follows generator steps only
    assert trainer.global_step == 11


def test_step_reseeding_follows_the_run_seed(monkeypatch):
    module = AdversarialModule(tiny_stylegan2(), tiny_discriminator())
    draws = {}
    for seed in ("1", "2", "1"):
        monkeypatch.setenv("PL_GLOBAL_SEED", seed)
        module.reseed(5)
        draws.setdefault(seed, []).append(torch.randn(3))
    assert torch.equal(draws["1"][0], draws["1"][1])  # same run seed + position → same draw
    assert not torch.equal(draws["1"][0], draws["2"][0])  # another seed_everything → other draws
    module.step_seed = None
    torch.manual_seed(7)
    expected = torch.randn(3)
    torch.manual_seed(7)
    module.reseed(5)
    assert torch.equal(torch.randn(3), expected)  # step_seed=None leaves the RNG alone


def test_a_file_may_differ_from_the_config_in_initialisation_arguments_only():
    from lightning_gancomp.methods.compression import check_same_architecture
    from lightning_gancomp.nets.biggan import BigGANGenerator

    def net(**kw):
        return BigGANGenerator(resolution=32, ch=4, num_classes=3, attention_resolutions=(), **kw)

    check_same_architecture(net(init="none"), net(init="ortho"), "teacher", "t.pt")  # converted official file
    with pytest.raises(CheckpointMismatchError, match="ch: file 4 vs config 8"):
        check_same_architecture(
            net(),
            BigGANGenerator(resolution=32, ch=8, num_classes=3, attention_resolutions=()),
            "teacher",
            "t.pt",
        )
