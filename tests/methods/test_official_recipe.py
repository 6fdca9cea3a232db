"""Engine knobs that the official StyleGAN2-compression code uses: style mixing in D's fakes,
StyleKD's joint R1 step, StyleKD's KD-only warm-up (--g_step)."""

import pytest
import torch
from _tiny import DictDataModule, quiet_trainer, tiny_discriminator, tiny_stylegan2

from lightning_gancomp.losses import PathLengthPenalty, PixelLoss, R1Penalty
from lightning_gancomp.methods import AdversarialModule, CompressionModule


def _silent(module):
    module.log_train = lambda side, values: None  # self.log needs a running trainer
    return module


def _batch(n=4, seed=0):
    return {"real_img": torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed)).clamp(-1, 1)}


def _mixed_fraction(module, calls=150):
    seen = []
    original = module.sample_inputs

    def spy(*args, **kwargs):
        inputs = original(*args, **kwargs)
        seen.append(inputs.crossover is not None)
        return inputs

    module.sample_inputs = spy
    torch.manual_seed(0)
    for _ in range(calls):
        module.discriminator_main(_batch(2))
    return sum(seen) / len(seen)


def test_discriminator_fakes_are_style_mixed_like_the_generator_by_default():
    # rosinality / CAGAN / StyleKD: D_Loss_BackProp draws mixing_noise(batch, latent, 0.9)
    module = _silent(AdversarialModule(tiny_stylegan2(), tiny_discriminator()))
    assert module.d_style_mixing_prob == 0.9
    assert _mixed_fraction(module) == pytest.approx(0.9, abs=0.08)
    never = _silent(AdversarialModule(tiny_stylegan2(), tiny_discriminator(), d_style_mixing_prob=0.0))
    assert _mixed_fraction(never, calls=50) == 0.0


def test_joint_r1_is_added_to_the_d_loss_in_the_same_step():
    kwargs = dict(r1=R1Penalty(gamma=10.0), r1_interval=4)
    separate = _silent(AdversarialModule(tiny_stylegan2(), tiny_discriminator(), **kwargs))
    joint = _silent(AdversarialModule(tiny_stylegan2(), tiny_discriminator(), r1_mode="joint", **kwargs))
    joint.load_state_dict(separate.state_dict())
    assert [p.name for p in separate.phases()] == ["D main", "D reg", "G main"]
    assert [p.name for p in joint.phases()] == ["D main", "G main"]
    batch = _batch()
    torch.manual_seed(1)
    plain = separate.discriminator_main(batch)
    real = batch["real_img"].detach().requires_grad_(True)
    weighted, _ = separate.r1(real, separate.discriminator(real))
    torch.manual_seed(1)
    assert joint.discriminator_main(batch).item() == pytest.approx((plain + 4 * weighted).item(), rel=1e-6)
    joint.batches_done = 1  # not an R1 batch: the plain D loss
    torch.manual_seed(1)
    assert joint.discriminator_main(batch).item() == pytest.approx(plain.item(), rel=1e-6)
    with pytest.raises(ValueError, match="r1_mode"):
        AdversarialModule(tiny_stylegan2(), tiny_discriminator(), r1_mode="both")


def test_adversarial_warmup_trains_only_the_distillation_terms_first():
    module = CompressionModule(
        teacher=tiny_stylegan2(8),
        student=tiny_stylegan2(4),
        discriminator=tiny_discriminator(),
        losses=[PixelLoss(3.0)],
        r1=R1Penalty(),
        r1_interval=2,
        path_length=PathLengthPenalty(),
        pl_interval=2,
        adversarial_warmup=2,
    )
    ran = []
    original = module.phases

    def recording():
        return [type(p)(p.name, p.optimizer, p.interval, _record(p, ran)) for p in original()]

    module.phases = recording
    d_before = {k: v.clone() for k, v in module.discriminator.state_dict().items()}
    quiet_trainer(limit_train_batches=2).fit(module, DictDataModule())
    assert ran == ["G main", "G main"]  # StyleKD --g_step: no D update, no path length
    assert all(torch.equal(v, d_before[k]) for k, v in module.discriminator.state_dict().items())
    module.batches_done = 2
    assert [p.name for p in original()] == ["D main", "D reg", "G main", "G reg"]


def _record(phase, ran):
    def run(batch):
        ran.append(phase.name)
        return phase.run(batch)

    return run


def _dcp(**kwargs):
    from lightning_gancomp.methods.dcp import DCPModule

    teacher = tiny_stylegan2(8)
    return DCPModule(
        teacher=teacher,
        student=tiny_stylegan2(4),
        discriminator=tiny_discriminator(),
        relation_weight=0.0,
        **kwargs,
    )


def test_stylekd_fix_w_leaves_the_mapping_out_of_the_optimizer():
    mapping = {id(p) for p in _dcp().generator.style.parameters()}
    fixed = _dcp(fix_mapping=True)
    trained = {id(p) for p in fixed.generator_parameters()}
    assert not trained & {id(p) for p in fixed.generator.style.parameters()}
    assert {id(p) for p in fixed.generator.conv1.parameters()} <= trained
    assert mapping  # the default trains it (StyleKD --fix_w 0)
    g_opt, _ = fixed.configure_optimizers()
    assert sum(p.numel() for g in g_opt.param_groups for p in g["params"]) < sum(
        p.numel() for p in fixed.generator.parameters()
    )


def test_stylekd_style_loss_is_l1_between_student_and_teacher_w():
    from lightning_gancomp.losses import LossContext
    from lightning_gancomp.nets.contract import style_w_plus

    module = _dcp(style_weight=2.0)
    inputs = module.sample_inputs(3)
    ctx = LossContext(student_img=torch.zeros(3, 3, 8, 8))
    weight, value = module.extra_generator_losses(ctx, {}, inputs)["kd_style"]
    expected = (style_w_plus(module.generator, inputs) - style_w_plus(module.teacher, inputs)).abs().mean()
    assert weight == 2.0 and value.item() == pytest.approx(expected.item(), rel=1e-6) and value > 0
    module.generator.style.load_state_dict(module.teacher.style.state_dict())  # same mapping: 0
    assert module.extra_generator_losses(ctx, {}, inputs)["kd_style"][1].item() == pytest.approx(
        0.0, abs=1e-7
    )
    assert "kd_style" not in _dcp().extra_generator_losses(ctx, {}, inputs)


def test_intermediate_kd_compares_every_rgb_skip_output():
    # CAGAN kd_mode='Intermediate': L1 on every ToRGB output (4 px .. output), teacher vs student.
    from lightning_gancomp.losses import IntermediateRGBLoss
    from lightning_gancomp.nets.contract import capture_outputs

    net = tiny_stylegan2(8, resolution=16)
    assert net.rgb_skip_points() == ["to_rgb1", "to_rgbs.0", "to_rgbs.1"]
    with capture_outputs(net, net.rgb_skip_points()) as rgbs:
        img = net(torch.randn(2, 8), randomize_noise=False)
    assert [r.shape[-1] for r in rgbs] == [4, 8, 16] and torch.equal(rgbs[-1], img)

    term = IntermediateRGBLoss(3.0)
    seen = []
    original = term.forward

    def spy(ctx):
        value = original(ctx)
        seen.append((ctx, value))
        return value

    term.forward = spy
    module = _silent(
        CompressionModule(
            teacher=tiny_stylegan2(8, resolution=16),
            student=tiny_stylegan2(4, resolution=16),
            discriminator=tiny_discriminator(16),
            losses=[term],
        )
    )
    module.generator_main({"real_img": torch.zeros(2, 3, 16, 16)})
    ctx, value = seen[0]
    student, teacher = ctx.extras["student_rgbs"], ctx.extras["teacher_rgbs"]
    assert len(student) == len(teacher) == 3 and torch.equal(student[-1], ctx.student_img)
    assert torch.equal(teacher[-1], ctx.teacher_img)
    expected = sum((t - s).abs().mean() for s, t in zip(student, teacher))
    assert value.item() == pytest.approx(expected.item(), rel=1e-6) and value > 0


def test_metrics_log_records_the_real_statistics_and_counts(tmp_path):
    import numpy as np
    import yaml
    from pytorch_lightning.loggers import CSVLogger

    from lightning_gancomp.metrics import GenerativeMetrics

    class MeanFeatures(torch.nn.Module):
        num_features, num_logits, tag, description = 3, 2, "mean3", "toy channel means"

        def forward(self, img_uint8):
            return img_uint8.float().mean(dim=(2, 3)), torch.zeros(img_uint8.shape[0], 2)

    np.savez(tmp_path / "stats.npz", mu=np.zeros(3), sigma=np.eye(3))
    metrics = GenerativeMetrics(
        metrics=("fid",), feature_extractor=MeanFeatures(), real_statistics_path=str(tmp_path / "stats.npz")
    )
    module = AdversarialModule(tiny_stylegan2(), tiny_discriminator(), metrics=metrics, eval_max_images=4)
    trainer = quiet_trainer(logger=CSVLogger(tmp_path, name="log"))
    trainer.validate(module, DictDataModule())
    hparams = yaml.safe_load(open(tmp_path / "log" / "version_0" / "hparams.yaml"))
    assert hparams["val_protocol/real_statistics"] == f"precomputed {tmp_path / 'stats.npz'}"
    assert hparams["val_protocol/num_generated_images"] == 4
    assert hparams["val_protocol/features"] == "toy channel means"
