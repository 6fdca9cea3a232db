"""PPCD-GAN method: eq. 8 terms reach the loss, eq. 3 freezes masks after generator steps, the
materialised student is saved at the end of fit, teacher inputs, profile rows."""

import pytest
import torch
from _tiny import DictDataModule, quiet_trainer

from lightning_gancomp.checkpoints import load_generator
from lightning_gancomp.losses import AttentionDistillation, HingeLoss, ProgressivePruningLoss
from lightning_gancomp.methods.ppcd import PPCDModule
from lightning_gancomp.nets.biggan import (
    BigGANDiscriminator,
    BigGANGenerator,
    biggan128_config,
    sagan128_config,
)
from lightning_gancomp.nets.contract import GeneratorInputs
from lightning_gancomp.nets.ppsagan import PPSAGANGenerator

CLASSES = 3


def _module(student=None, losses=None, **kwargs):
    teacher = BigGANGenerator(
        **biggan128_config(
            resolution=32, ch=4, z_dim=12, num_classes=CLASSES, shared_dim=8, attention_resolutions=()
        )
    )
    if student is None:
        student = PPSAGANGenerator(
            **sagan128_config(resolution=32, ch=4, z_dim=16, num_classes=CLASSES, attention_resolutions=()),
            transition_channels=[16, 16, 16],
        )
    if losses is None:
        losses = [
            AttentionDistillation(points=[1, 2], teacher_features="teacher_normalized_features"),
            ProgressivePruningLoss(0.01),
        ]
    discriminator = BigGANDiscriminator(resolution=32, ch=4, num_classes=CLASSES, attention_resolutions=())
    options = dict(adversarial=HingeLoss(), ema_decay=None, style_mixing_prob=0.0, step_seed=0)
    options.update(kwargs)
    return PPCDModule(teacher=teacher, student=student, discriminator=discriminator, losses=losses, **options)


def test_fit_freezes_masks_past_alpha_trains_the_rest_and_saves_the_plain_student(tmp_path):
    torch.manual_seed(0)
    module = _module(alpha=0.7)
    masks = module.generator.mask_layers()
    with torch.no_grad():
        masks["block.0.hidden"].weight[:12] = -0.1  # 12/16 = 0.75 > α: frozen after the 1st G step
        masks["block.1.out"].weight[:8] = -0.1  # 8/16 = 0.5 <= α: stays continuous
    masks["block.2.hidden"].set_binary(torch.tensor([1.0, 0.0] * 8))  # frozen before training
    before = {name: mask.weight.detach().clone() for name, mask in masks.items()}
    teacher_before = {k: v.clone() for k, v in module.teacher.state_dict().items()}
    data = DictDataModule(length=12, resolution=32, kind="conditional", batch_size=4)
    trainer = quiet_trainer(default_root_dir=str(tmp_path), limit_val_batches=0)
    trainer.fit(module, datamodule=data)
    assert module.freeze_batches == {"block.0.hidden": 0}
    frozen = masks["block.0.hidden"]
    assert frozen.is_frozen and frozen.values().tolist() == [0.0] * 12 + [1.0] * 4
    # one Adam step (lr 0.002) before the freeze, none after it; a layer frozen from the start never moves
    assert (frozen.weight - before["block.0.hidden"]).abs().max() <= 0.002 + 1e-6
    assert torch.equal(masks["block.2.hidden"].weight, before["block.2.hidden"])
    assert not masks["block.1.out"].is_frozen
    assert not torch.equal(masks["block.1.out"].weight, before["block.1.out"])  # L_PP + L_ADV + L_CD train it
    logged = trainer.logged_metrics
    assert float(logged["train/g/attention_kd"]) > 0 and float(logged["train/g/l_pp"]) > 0
    assert all(torch.equal(v, teacher_before[k]) for k, v in module.teacher.state_dict().items())
    student = load_generator(str(tmp_path / "student.pt"))
    assert type(student) is BigGANGenerator and student.hidden_channels[0] == 4
    assert student.hidden_channels[2] == 8  # the layer frozen before training
    assert student.stream_channels == module.generator.stream_channels


def test_teacher_gets_the_students_label_and_a_z_cut_or_padded_to_its_size():
    module = _module()
    assert module.teacher.z_dim == 12 and module.generator.z_dim == 16
    z, label = torch.randn(2, 16), torch.tensor([0, 2])
    cut = module.teacher_inputs(GeneratorInputs(2, [z], None, label))
    assert torch.equal(cut.zs[0], z[:, :12]) and torch.equal(cut.label, label)
    module.teacher.z_dim = 20  # a longer teacher z is zero-padded
    padded = module.teacher_inputs(GeneratorInputs(2, [z], None, label)).zs[0]
    assert torch.equal(padded[:, :16], z) and torch.count_nonzero(padded[:, 16:]) == 0


def test_teacher_features_are_the_next_conditional_bn_outputs():
    module = _module()
    assert module.teacher_points() == ["blocks.1.0.bn1", "blocks.2.0.bn1", "output_layer.0"]
    assert _module(teacher_features="block_output").teacher_points() == module.teacher.distillation_points()
    with pytest.raises(ValueError, match="alpha"):
        _module(alpha=1.0)


def test_profile_rows_and_the_student_projected_at_alpha():
    module = _module(alpha=0.7)
    rows = module.profile_networks()
    assert set(rows) == {"teacher", "student", "student_alpha_0.7", "sagan"}
    projected = rows["student_alpha_0.7"]
    assert projected.hidden_channels == [5, 5, 5] and projected.transition_channels == [
        5,
        5,
        5,
    ]  # 16 - int(11.2)
    assert rows["sagan"].transition_channels is None and type(rows["student"]) is BigGANGenerator


def test_plain_student_has_no_materialisation_and_rejects_the_pruning_loss():
    plain = BigGANGenerator(**sagan128_config(resolution=32, ch=4, z_dim=16, num_classes=CLASSES))
    module = _module(student=plain, losses=[ProgressivePruningLoss(0.01)])
    assert module.materialise() is None and module.mask_layers() == {} and module.pruning_recipe() is None
    inputs = module.sample_inputs(2)
    with pytest.raises(ValueError, match="PPSAGANGenerator"):
        module.loss_context_extras(None, {}, inputs, {"pp_masks"})
