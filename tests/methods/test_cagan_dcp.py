"""CAGAN / DCP distillation modules: student init, relation loss, main directions, short fits."""

import copy
import os

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from lightning_gancomp.data import UnconditionalDataModule
from lightning_gancomp.losses import LPIPSLoss, PixelLoss
from lightning_gancomp.methods.cagan import CAGANModule
from lightning_gancomp.methods.compression import reinitialise_synthesis
from lightning_gancomp.methods.dcp import DCPModule, main_directions, relation_loss, similarity_matrix
from lightning_gancomp.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from lightning_gancomp.pruning.importance import ContentMask, RandomScorer
from lightning_gancomp.pruning.plan import uniform_plan
from lightning_gancomp.pruning.surgery import apply_plan


def tiny_teacher():
    torch.manual_seed(0)
    return StyleGAN2Generator(
        32, z_dim=16, w_dim=16, n_mapping=2, channels=[16, 12, 12, 10, 10, 8, 8, 6]
    ).eval()


def tiny_pair():
    teacher = tiny_teacher()
    student = apply_plan(teacher, uniform_plan(teacher, RandomScorer()(teacher), 0.5))
    return teacher, student, StyleGAN2Discriminator(32, channels=[8, 8, 8, 8])


def test_random_synthesis_keeps_teacher_mapping_only():
    teacher, student, _ = tiny_pair()
    fresh = reinitialise_synthesis(student, teacher, ("style.",), seed=3)
    for key, value in fresh.state_dict().items():
        if key.startswith("style.") or key == "latent_avg":
            assert torch.equal(value, teacher.state_dict()[key]), key
    assert not torch.equal(fresh.conv1.conv.weight, student.conv1.conv.weight)
    assert fresh.channels == student.channels
    with pytest.raises(ValueError, match="no mapping tensors match"):
        reinitialise_synthesis(student, teacher, ("nothing.",))


def test_similarity_matrix_matches_official_broadcast_form():
    a, b = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    official = F.cosine_similarity(a.flatten(1)[:, None, :], b.flatten(1)[None, :, :], dim=2)
    assert torch.allclose(similarity_matrix(a, b), official, atol=1e-6)


def test_relation_loss_zero_iff_relations_match():
    a, b = torch.randn(4, 8), torch.randn(4, 8)
    assert relation_loss(a, b, 2 * a, 3 * b).abs() < 1e-6  # cosine similarity is scale-free
    assert relation_loss(a, b, torch.randn(4, 8), torch.randn(4, 8)) > 1e-3
    # KL(teacher || student) with batchmean, teacher rows softmaxed
    s, t = similarity_matrix(a, b), similarity_matrix(b, a)
    expected = (F.softmax(t, 1) * (F.log_softmax(t, 1) - F.log_softmax(s, 1))).sum() / 4
    assert torch.allclose(relation_loss(a, b, b, a), expected, atol=1e-6)


def test_main_directions_are_top_eigenvectors_of_modulation_weights():
    teacher = tiny_teacher()
    dirs = main_directions(teacher, (1, 2), per_layer=3)
    assert dirs.shape == (6, 16)
    w = (
        torch.cat([teacher.convs[0].conv.modulation.weight, teacher.convs[1].conv.modulation.weight])
        .t()
        .double()
    )
    w = w / w.norm(dim=0, keepdim=True)
    gram = w @ w.t()
    top = torch.linalg.eigvalsh(gram).flip(0)[:3]
    for k in range(3):
        v = dirs[k].double()
        assert torch.allclose(gram @ v, top[k] * v, atol=1e-4)
    assert main_directions(teacher, (1, 2), per_layer=3, how="global").shape == (6, 16)


class _TopHalfMask(ContentMask):
    def __call__(self, img):
        mask = torch.zeros_like(img[:, :1])
        mask[..., : img.shape[-1] // 2, :] = 1
        return mask


def _fit(module, batches=1):
    data = UnconditionalDataModule(
        path="embedded", resolution=32, batch_size=4, val_size=8, embedded_length=64
    )
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=batches,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(module, datamodule=data)
    return trainer


def _terms(masked=False):
    return [
        PixelLoss(3.0, masked=masked),
        LPIPSLoss(3.0, net="alex", pretrained_backbone=False, masked=masked, resize_to=None),
    ]


def test_cagan_fit_trains_student_keeps_teacher_frozen_and_masks_with_teacher_image():
    teacher, student, disc = tiny_pair()
    module = CAGANModule(
        teacher=teacher,
        student=student,
        discriminator=disc,
        losses=_terms(masked=True),
        kd_mask=_TopHalfMask(),
        r1_interval=1,
        pl_interval=1,
        grid_size=4,
    )
    from lightning_gancomp.losses import PathLengthPenalty, R1Penalty

    module.r1, module.path_length = R1Penalty(10.0), PathLengthPenalty(2.0)
    before_student = copy.deepcopy(module.generator.state_dict())
    before_teacher = copy.deepcopy(module.teacher.state_dict())
    trainer = _fit(module)
    logged = trainer.logged_metrics
    assert {"train/g/kd_masked_l1", "train/g/kd_masked_lpips", "train/d/r1"} <= set(logged)
    assert all(torch.isfinite(v) for v in logged.values())
    assert any(not torch.equal(v, module.generator.state_dict()[k]) for k, v in before_student.items())
    assert all(torch.equal(v, module.teacher.state_dict()[k]) for k, v in before_teacher.items())


def test_dcp_fit_logs_relation_loss_and_rejects_bad_layers():
    teacher, student, disc = tiny_pair()
    module = DCPModule(
        teacher=teacher,
        student=copy.deepcopy(student),
        discriminator=disc,
        losses=_terms(),
        relation_layers=(1, 2, 3),
        grid_size=4,
    )
    assert module.offset_directions.shape == (15, 16)
    offsets = module.sample_offsets(6)
    assert offsets.shape == (6, 1, 16)
    trainer = _fit(module)
    assert torch.isfinite(trainer.logged_metrics["train/g/kd_relation"])
    assert trainer.logged_metrics["train/g/kd_relation"] > 0
    with pytest.raises(ValueError, match="relation_layers \\[2, 5\\] out of range"):
        DCPModule(teacher=teacher, student=student, discriminator=disc, relation_layers=(2, 5))


def test_dcp_random_synthesis_init_option():
    teacher, student, disc = tiny_pair()
    pruned_conv1 = student.conv1.conv.weight.detach().clone()
    module = DCPModule(
        teacher=teacher,
        student=student,
        discriminator=disc,
        relation_layers=(1, 2),
        student_init="random_synthesis",
    )
    assert torch.equal(module.generator.style[1].weight, teacher.style[1].weight)
    assert not torch.equal(module.generator.conv1.conv.weight, pruned_conv1)
    assert torch.equal(module.generator_ema.conv1.conv.weight, module.generator.conv1.conv.weight)


def test_embedded_face_mask_learns_the_dataset_masks_and_caches(tmp_path):
    from lightning_gancomp.data.embedded import EmbeddedImages
    from lightning_gancomp.methods.cagan import EmbeddedFaceMask

    provider = EmbeddedFaceMask(steps=40, batch_size=16, cache_dir=str(tmp_path))
    held_out = EmbeddedImages(48, 32, seed=99)
    img = torch.stack([held_out[i]["real_img"] for i in range(48)])
    truth = torch.stack([held_out[i]["mask"] for i in range(48)])
    mask = provider(img)
    assert mask.shape == (48, 1, 32, 32) and set(mask.unique().tolist()) <= {0.0, 1.0}
    iou = (mask * truth).sum() / ((mask + truth) > 0).sum()
    assert iou > 1.5 * truth.mean()  # far better than calling everything content
    assert os.path.exists(provider.cache_path)
    again = EmbeddedFaceMask(steps=40, batch_size=16, cache_dir=str(tmp_path))
    assert torch.equal(again(img), mask)
