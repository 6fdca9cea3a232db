"""Attention-map distillation (Zagoruyko & Komodakis, ICLR 2017, "Paying more attention to
attention"), in the form of PPCD-GAN's class-aware distillation (Vo et al., WACV 2022, Sec. 3.3).

* attention map of a feature map ``O`` ``[C, H, W]``: ``F = Σ_c |O(c, :, :)|²`` ``[H, W]``;
* eq. 4: ``ℓ_CD = || F_T / ||F_T||_2 - F_S / ||F_S||_2 ||_2`` (maps flattened; the norm is not
  squared), per sample, averaged over the batch;
* eq. 6: ``L_CD`` = mean of ``ℓ_CD`` over the chosen distillation points (PPCD-GAN: residual
  blocks 2 to 5 of 5, i.e. points 1, 2, 3, 4 counting from 0, L = 4).

Summing over channels makes teacher and student of different widths comparable (only the spatial
sizes must agree). What the features are is the method's choice: PPCD-GAN feeds the teacher's
block outputs *after class-conditional normalisation* (see ``nets.ppsagan.normalized_block_outputs``)
and the student's raw block outputs; any method can use the term on its distillation points.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from lightning_gancomp.losses.base import LossContext, LossTerm

#: PPCD-GAN eq. 6: blocks 2..5 (0-based indices of the distillation points).
PPCD_POINTS = (1, 2, 3, 4)


def attention_map(features: Tensor) -> Tensor:
    """``F = Σ_c |O_c|²``, flattened: ``[B, C, H, W] -> [B, H*W]``."""
    return features.pow(2).sum(dim=1).flatten(1)


def normalized_attention(features: Tensor, eps: float = 1e-12) -> Tensor:
    """``F / ||F||_2`` per sample (eps guards an all-zero map)."""
    att = attention_map(features)
    return att / att.norm(dim=1, keepdim=True).clamp_min(eps)


def attention_distance(teacher: Tensor, student: Tensor) -> Tensor:
    """Eq. 4 per sample ``[B]``; teacher and student may have different channel counts."""
    if teacher.shape[0] != student.shape[0] or teacher.shape[-2:] != student.shape[-2:]:
        raise ValueError(
            f"attention distillation: teacher {tuple(teacher.shape)} and student {tuple(student.shape)} "
            "need the same batch and spatial size"
        )
    return (normalized_attention(teacher) - normalized_attention(student)).norm(dim=1)


class AttentionDistillation(LossTerm):
    """Eq. 6: ``L_CD = (1/L) Σ_k ℓ_CD_k`` (eq. 4, batch mean) over ``points``.

    Args:
        weight: multiplier (PPCD-GAN eq. 8: 1).
        points: indices into the feature lists (default blocks 2-5 of PPCD-GAN); None = all.
        student_features / teacher_features: context entries holding the feature lists (a
            LossContext field or a method extra, e.g. PPCD's normalised teacher features).
        name: log key suffix.
    """

    requires: ClassVar[tuple[str, ...]] = ("student_features", "teacher_features")
    default_name: ClassVar[str] = "attention_kd"

    def __init__(
        self,
        weight: float = 1.0,
        points: list[int] | None = list(PPCD_POINTS),  # noqa: B006 - copied below
        student_features: str = "student_features",
        teacher_features: str = "teacher_features",
        name: str | None = None,
    ) -> None:
        super().__init__(weight, name)
        self.points = None if points is None else list(points)
        self.student_field = student_features
        self.teacher_field = teacher_features

    def needs(self) -> tuple[str, ...]:
        return (self.student_field, self.teacher_field)

    def select(self, available: int) -> list[int]:
        chosen = list(range(available)) if self.points is None else self.points
        bad = [i for i in chosen if not -available <= i < available]
        if bad or not chosen:
            raise ValueError(
                f"AttentionDistillation: points {chosen} do not fit {available} distillation points"
            )
        return chosen

    def forward(self, ctx: LossContext) -> Tensor:
        student = self.fetch(ctx, self.student_field)
        teacher = self.fetch(ctx, self.teacher_field)
        if len(student) != len(teacher):
            raise ValueError(
                f"AttentionDistillation: {len(student)} student and {len(teacher)} teacher feature maps"
            )
        chosen = self.select(len(student))
        losses = [attention_distance(teacher[i].detach(), student[i]).mean() for i in chosen]
        return torch.stack(losses).mean()
