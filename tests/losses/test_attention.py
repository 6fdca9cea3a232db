"""Attention-map distillation (PPCD-GAN eq. 4 and 6) on hand-computed values."""

import math

import pytest
import torch

from lightning_gancomp.losses import AttentionDistillation, LossContext
from lightning_gancomp.losses.attention import attention_distance, attention_map


def _maps():
    # teacher: 1 channel, F_T = [3, 4] -> [0.6, 0.8]
    teacher = torch.tensor([math.sqrt(3), 2.0]).view(1, 1, 1, 2)
    # student: 2 channels (different width), F_S = [4 + 0, 2 + 1] = [4, 3] -> [0.8, 0.6]
    student = torch.tensor([[2.0, math.sqrt(2)], [0.0, 1.0]]).view(1, 2, 1, 2)
    return teacher, student


def test_attention_map_sums_squares_over_channels():
    _, student = _maps()
    torch.testing.assert_close(attention_map(student), torch.tensor([[4.0, 3.0]]))
    torch.testing.assert_close(attention_map(-student), attention_map(student))  # |O|^2


def test_eq4_distance_of_normalised_maps_with_different_channel_counts():
    teacher, student = _maps()
    # || [0.6, 0.8] - [0.8, 0.6] ||_2 = sqrt(0.08) (not squared)
    assert attention_distance(teacher, student).item() == pytest.approx(math.sqrt(0.08))
    assert attention_distance(teacher, 5 * teacher).item() == pytest.approx(0.0, abs=1e-7)  # scale-free
    with pytest.raises(ValueError, match="spatial"):
        attention_distance(teacher, torch.ones(1, 2, 2, 2))


def test_eq6_mean_over_the_chosen_points_only():
    teacher, student = _maps()
    orthogonal_t = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    orthogonal_s = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2)  # distance sqrt(2)
    ctx = LossContext(
        teacher_features=[torch.full((1, 3, 1, 2), 9.0), teacher, orthogonal_t],
        student_features=[torch.zeros(1, 3, 1, 2), student, orthogonal_s],  # point 0 would be sqrt(2)
    )
    term = AttentionDistillation(points=[1, 2])
    assert term(ctx).item() == pytest.approx((math.sqrt(0.08) + math.sqrt(2)) / 2)
    assert term.name == "attention_kd"
    assert AttentionDistillation().points == [1, 2, 3, 4]  # PPCD: blocks 2-5


def test_gradient_reaches_the_student_only():
    teacher, student = _maps()
    teacher.requires_grad_(True)
    student.requires_grad_(True)
    ctx = LossContext(teacher_features=[teacher], student_features=[student])
    AttentionDistillation(points=None)(ctx).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0


def test_batch_mean_and_bad_points():
    teacher, student = _maps()
    same_as_teacher = torch.cat([teacher, torch.zeros_like(teacher)], dim=1)  # 2 channels, F = F_T
    ctx = LossContext(
        teacher_features=[torch.cat([teacher, teacher])],
        student_features=[torch.cat([student, same_as_teacher])],
    )
    assert AttentionDistillation(points=[0])(ctx).item() == pytest.approx(math.sqrt(0.08) / 2)
    with pytest.raises(ValueError, match="points"):
        AttentionDistillation(points=[3])(ctx)
