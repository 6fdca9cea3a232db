"""Loss terms: small modules with a weight and a log name, chosen by ``class_path`` in YAML.

A method builds one :class:`LossContext` per phase (the tensors it computed: student/teacher
images, real images, content mask, feature maps ...) and asks each configured term for its
*unweighted* value; it then adds ``term.weight * value`` to the phase loss and logs the unweighted
value under ``train/<phase>/<term.name>``. A term declares the context fields it reads in
``requires`` so a method only computes what some term needs (e.g. the teacher image or feature
maps), and a missing field is one clear error naming the term and the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch
from torch import Tensor, nn


@dataclass
class LossContext:
    """Tensors one training phase produced; every field is optional.

    Shapes: images ``[B, 3, H, W]`` in [-1, 1]; ``mask`` ``[B, 1, H, W]`` in {0, 1}; feature lists
    are per distillation point, ``[B, C_i, H_i, W_i]``, student and teacher in the same order.
    """

    student_img: Tensor | None = None  # image of the generator being trained
    teacher_img: Tensor | None = None  # frozen teacher on the same inputs
    real_img: Tensor | None = None  # data batch (pix2pix: the paired target B)
    input_img: Tensor | None = None  # image-to-image generator input (A)
    mask: Tensor | None = None  # content mask (CAGAN: foreground of the face parse)
    d_fake: Tensor | None = None  # discriminator logits on student_img
    student_features: list[Tensor] | None = None
    teacher_features: list[Tensor] | None = None
    reconstructed_img: Tensor | None = None  # CycleGAN: G_BA(G_AB(A))
    reconstruction_target: Tensor | None = None  # CycleGAN: A
    identity_img: Tensor | None = None  # CycleGAN: G_AB(B)
    identity_target: Tensor | None = None  # CycleGAN: B
    #: named tensors a method adds through ``loss_context_extras`` (attention maps, mask values);
    #: a term lists the name in ``requires`` and reads it with ``fetch``
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


class MissingLossInputError(ValueError):
    """A loss term needs a tensor the running method did not compute."""


class LossTerm(nn.Module):
    """Base of every generator-side loss term.

    Args:
        weight: multiplier applied by the method (the logged value is unweighted).
        name: log key suffix (``train/g/<name>``); defaults to the class's ``default_name``.
    """

    #: LossContext fields this term reads.
    requires: ClassVar[tuple[str, ...]] = ()
    default_name: ClassVar[str] = "loss"

    def __init__(self, weight: float = 1.0, name: str | None = None) -> None:
        super().__init__()
        self.weight = float(weight)
        self.name = name or self.default_name

    def needs(self) -> tuple[str, ...]:
        """Context fields this instance reads (may depend on options, e.g. ``masked``)."""
        return self.requires

    def fetch(self, ctx: LossContext, field: str) -> Any:
        """A context field, else a named extra (``ctx.extras``); one error when neither is set."""
        value = getattr(ctx, field) if field in LossContext.field_names() else ctx.extras.get(field)
        if value is None:
            raise MissingLossInputError(
                f"loss term {type(self).__name__} ({self.name!r}) needs {field!r}, which this method "
                "does not provide"
            )
        return value

    def forward(self, ctx: LossContext) -> Tensor:  # pragma: no cover - abstract by contract
        raise TypeError(f"{type(self).__name__} must implement forward(ctx)")

    def extra_repr(self) -> str:
        return f"name={self.name!r}, weight={self.weight}"


def masked(img: Tensor, mask: Tensor | None) -> Tensor:
    """Zero everything outside the content mask (CAGAN content-aware KD masks both images)."""
    if mask is None:
        return img
    if mask.shape[-2:] != img.shape[-2:]:
        mask = torch.nn.functional.interpolate(mask, size=img.shape[-2:], mode="nearest")
    return img * mask
