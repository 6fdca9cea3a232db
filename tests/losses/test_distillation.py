"""Pixel, LPIPS, masked, feature and CycleGAN terms."""

import pytest
import torch
from torch import nn

from lightning_gancomp.losses import (
    CycleConsistencyLoss,
    FeatureDistillation,
    IdentityLoss,
    LossContext,
    LPIPSLoss,
    MissingLossInputError,
    PixelLoss,
)


def test_pixel_l1_l2_known_values_and_names():
    student = torch.zeros(1, 3, 2, 2)
    teacher = torch.full((1, 3, 2, 2), 0.5)
    ctx = LossContext(student_img=student, teacher_img=teacher, real_img=-teacher)
    assert PixelLoss(kind="l1")(ctx).item() == pytest.approx(0.5)
    assert PixelLoss(kind="l2")(ctx).item() == pytest.approx(0.25)
    assert PixelLoss(target="real_img")(ctx).item() == pytest.approx(0.5)
    assert PixelLoss().name == "kd_l1" and PixelLoss(masked=True).name == "kd_masked_l1"
    assert PixelLoss(target="real_img").name == "rec_l1"


def test_masked_pixel_loss_ignores_background():
    student = torch.zeros(2, 3, 4, 4)
    teacher = torch.ones(2, 3, 4, 4)
    mask = torch.zeros(2, 1, 4, 4)
    mask[:, :, :2] = 1  # top half is content
    ctx = LossContext(student_img=student, teacher_img=teacher, mask=mask)
    # both images multiplied by the mask: half the pixels differ by 1
    assert PixelLoss(masked=True)(ctx).item() == pytest.approx(0.5)
    teacher_bg_changed = teacher.clone()
    teacher_bg_changed[:, :, 2:] = 7.0
    ctx2 = LossContext(student_img=student, teacher_img=teacher_bg_changed, mask=mask)
    assert PixelLoss(masked=True)(ctx2).item() == pytest.approx(0.5)


def test_missing_input_names_term_and_field():
    with pytest.raises(MissingLossInputError, match=r"PixelLoss.*'mask'"):
        PixelLoss(masked=True)(LossContext(student_img=torch.zeros(1), teacher_img=torch.zeros(1)))


def test_lpips_zero_for_identical_positive_otherwise_and_outside_state_dict():
    term = LPIPSLoss(net="alex", pretrained_backbone=False)
    img = torch.rand(2, 3, 32, 32) * 2 - 1
    same = term(LossContext(student_img=img, teacher_img=img))
    other = term(LossContext(student_img=img, teacher_img=img.flip(-1)))
    assert same.item() == pytest.approx(0.0, abs=1e-6)
    assert other.item() > 0
    holder = nn.Module()
    holder.term = term
    assert list(holder.state_dict()) == [] and list(holder.parameters()) == []


@pytest.mark.parametrize("mode", [None, "bilinear", "area"])
def test_lpips_downsamples_large_images_first(mode):
    # Default: bilinear, align_corners=False (CAGAN train.py Downsample_Image_256).
    kwargs = {} if mode is None else {"resize_mode": mode}
    term = LPIPSLoss(net="alex", pretrained_backbone=False, resize_to=32, **kwargs)
    big = torch.rand(1, 3, 128, 128) * 2 - 1
    resize = dict(mode="area") if mode == "area" else dict(mode="bilinear", align_corners=False)
    small = torch.nn.functional.interpolate(big, size=(32, 32), **resize)
    small_teacher = torch.nn.functional.interpolate(big.flip(-1), size=(32, 32), **resize)
    on_big = term(LossContext(student_img=big, teacher_img=big.flip(-1)))
    on_small = term(LossContext(student_img=small, teacher_img=small_teacher))
    assert on_big.item() == pytest.approx(on_small.item(), rel=1e-5)


def test_feature_distillation_adaptors_match_widths_and_learn():
    term = FeatureDistillation(kind="l2", points=[0, 2])
    term.bind(student_channels=[4, 8, 6], teacher_channels=[16, 32, 24])
    assert [(a.in_channels, a.out_channels) for a in term.adaptors] == [(4, 16), (6, 24)]
    student = [torch.randn(2, c, 4, 4) for c in (4, 8, 6)]
    teacher = [torch.randn(2, c, 4, 4) for c in (16, 32, 24)]
    ctx = LossContext(student_features=student, teacher_features=teacher)
    optimizer = torch.optim.Adam(term.parameters(), lr=0.05)
    first = term(ctx).item()
    for _ in range(50):
        optimizer.zero_grad()
        term(ctx).backward()
        optimizer.step()
    assert term(ctx).item() < first


def test_feature_distillation_requires_bind():
    term = FeatureDistillation()
    ctx = LossContext(student_features=[torch.zeros(1, 2, 2, 2)], teacher_features=[torch.zeros(1, 2, 2, 2)])
    with pytest.raises(RuntimeError, match="bind"):
        term(ctx)


def test_cycle_and_identity_are_l1_with_cyclegan_weights():
    a = torch.zeros(1, 3, 2, 2)
    ctx = LossContext(
        reconstructed_img=a + 0.2, reconstruction_target=a, identity_img=a - 0.3, identity_target=a
    )
    cycle, identity = CycleConsistencyLoss(), IdentityLoss()
    assert cycle(ctx).item() == pytest.approx(0.2) and cycle.weight == 10.0
    assert identity(ctx).item() == pytest.approx(0.3) and identity.weight == 5.0
