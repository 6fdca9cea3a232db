"""DCP: diversity-aware channel pruning (Chung et al., CVPR 2024) — the distillation stage.

DCP changes only the pruning stage (``DiversityAwareScorer`` in
:mod:`lightning_gancomp.pruning.importance`, run by ``gancomp prune``); the student is then
trained with the StyleKD recipe (Xu et al., ECCV 2022; xuguodong03/StyleKD
``distributed_train.py``, which jiwoogit/DCP-GAN reuses):

* GAN + 3·L1(S, T) + 3·LPIPS(S, T) on the same z (CAGAN's terms, configured as loss terms), and
* 30 · relation loss: latent offsets ``w' = w + s·d`` (d a unit "main direction", s ~ N(0, 5²),
  one per sample, the same offset for every layer); at each mimicked block output, the B×B
  cosine-similarity matrix between the flattened features of the original and the offset
  samples is computed for student and teacher, and the loss is
  KL(softmax(teacher rows) || softmax(student rows)) with ``batchmean`` (``--simi_loss kl``);
  ``"mse"`` between the matrices is the other official choice.
* main directions (``--offset_mode main --main_direction split``): for each mimicked block i
  (``range(max(mimic_layer))``), the modulation weights of its two convs, columns normalised;
  the top-5 eigenvectors of ``W Wᵀ`` (w_dim × w_dim). ``global`` pools all blocks and keeps the
  top 5·L. (The official code takes ``np.linalg.eig`` columns [:5], whose order NumPy leaves
  unspecified; we sort by eigenvalue, the evident intent.) ``random``: Gaussian directions.
* mimicked layers ``[2, 3, 4, 5]`` index the block outputs after the 4-px conv, i.e. for 256 px
  the 16/32/64/128-px outputs (``distillation_points()[layer]`` here).

StyleKD knobs: ``style_weight`` (``--kd_style_lambda``, L1 between the student's and the teacher's
W+ latents of the same inputs; 0 in the README) and ``fix_mapping`` (``--fix_w``: the mapping
network gets learning rate 0, i.e. is left out of the optimizer); ``--g_step`` (KD-only warm-up) is
the engine's ``adversarial_warmup``.

The DCP README's training command initialises the synthesis network randomly (``--load 0``),
discarding the pruned weights; the method's premise is pruned-teacher init, so that is the
default and ``student_init: random_synthesis`` gives the README behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_gancomp.losses import LossContext
from lightning_gancomp.methods.cagan import CAGANModule
from lightning_gancomp.nets.base import GanNet
from lightning_gancomp.nets.contract import (
    GeneratorInputs,
    capture_outputs,
    is_style_based,
    run_generator,
    style_w_plus,
)
from lightning_gancomp.pruning.importance import ChannelScorer, DiversityAwareScorer

OffsetMode = Literal["main", "random"]
MainDirection = Literal["split", "global"]
RelationKind = Literal["kl", "mse"]


def similarity_matrix(a: Tensor, b: Tensor, eps: float = 1e-8) -> Tensor:
    """Cosine similarities ``[B, B]`` between flattened rows of ``a`` and ``b``.

    Same values as ``F.cosine_similarity(a[:, None], b[None], dim=2)`` (the official form)
    without materialising the B×B×D broadcast.
    """
    a = F.normalize(a.flatten(1), dim=1, eps=eps)
    b = F.normalize(b.flatten(1), dim=1, eps=eps)
    return a @ b.t()


def relation_loss(
    student_a: Tensor, student_b: Tensor, teacher_a: Tensor, teacher_b: Tensor, kind: RelationKind = "kl"
) -> Tensor:
    """StyleKD relation loss at one layer (``a`` = original samples, ``b`` = offset samples)."""
    s_sim = similarity_matrix(student_a, student_b)
    t_sim = similarity_matrix(teacher_a, teacher_b)
    if kind == "mse":
        return F.mse_loss(s_sim, t_sim)
    return F.kl_div(F.log_softmax(s_sim, dim=1), F.softmax(t_sim, dim=1), reduction="batchmean")


def _modulation_weights(teacher: GanNet, block: int) -> Tensor:
    state = teacher.state_dict()
    keys = [f"convs.{2 * block}.conv.modulation.weight", f"convs.{2 * block + 1}.conv.modulation.weight"]
    missing = [k for k in keys if k not in state]
    if missing:
        raise ValueError(f"main offset directions: the teacher has no {missing[0]} (block {block})")
    return torch.cat([state[k].detach().double().cpu() for k in keys], dim=0).t()  # [w_dim, C1+C2]


def _top_eigenvectors(columns: Tensor, k: int) -> Tensor:
    columns = columns / columns.norm(dim=0, keepdim=True).clamp_min(1e-12)
    values, vectors = torch.linalg.eigh(columns @ columns.t())
    order = torch.argsort(values, descending=True)[:k]
    return vectors[:, order].t()  # [k, w_dim]


def main_directions(
    teacher: GanNet, layers: Sequence[int], per_layer: int = 5, how: MainDirection = "split"
) -> Tensor:
    """StyleKD "main" latent directions from the teacher's modulation weights, ``[K, w_dim]``."""
    blocks = range(max(layers))
    if how == "split":
        return torch.cat(
            [_top_eigenvectors(_modulation_weights(teacher, i), per_layer) for i in blocks]
        ).float()
    pooled = torch.cat([_modulation_weights(teacher, i) for i in blocks], dim=1)
    return _top_eigenvectors(pooled, per_layer * len(blocks)).float()


class DCPModule(CAGANModule):
    """StyleKD distillation of a DCP-pruned student (see the module docstring).

    Args (beyond :class:`~lightning_gancomp.methods.cagan.CAGANModule`):
        relation_weight: weight of the relation loss (30); 0 turns it off.
        relation_layers: mimicked block outputs (StyleKD ``--mimic-layer``; 256 px: [2, 3, 4, 5]).
        relation_kind: ``"kl"`` (StyleKD/DCP) or ``"mse"``.
        offset_mode: ``"main"`` (directions from the teacher's modulation weights) or ``"random"``.
        main_direction: ``"split"`` (top-5 per block) or ``"global"``.
        directions_per_layer: eigenvectors kept per block (5).
        offset_weight: std of the offset length (5).
        single_view: compare original samples with themselves (StyleKD ``--single_view``).
        style_weight: weight of L1(W+ student, W+ teacher) (StyleKD ``--kd_style_lambda``; 0).
        fix_mapping: keep the student's mapping network fixed (StyleKD ``--fix_w``).
        scorer: pruning scorer used by ``gancomp prune`` (default: DCP's diversity-aware S^σ).
    """

    def __init__(
        self,
        relation_weight: float = 30.0,
        relation_layers: tuple[int, ...] = (2, 3, 4, 5),
        relation_kind: RelationKind = "kl",
        offset_mode: OffsetMode = "main",
        main_direction: MainDirection = "split",
        directions_per_layer: int = 5,
        offset_weight: float = 5.0,
        single_view: bool = False,
        style_weight: float = 0.0,
        fix_mapping: bool = False,
        scorer: ChannelScorer | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            # DCP's pruning recipe: diversity-aware S^sigma scores, uniform removal ratio 0.7
            scorer=scorer if scorer is not None else DiversityAwareScorer(),
            **kwargs,
        )
        if relation_kind not in ("kl", "mse") or offset_mode not in ("main", "random"):
            raise ValueError(f"relation_kind {relation_kind!r} / offset_mode {offset_mode!r} not supported")
        self.relation_weight = float(relation_weight)
        self.relation_layers = tuple(int(i) for i in relation_layers)
        self.relation_kind = relation_kind
        self.offset_mode = offset_mode
        self.offset_weight = float(offset_weight)
        self.single_view = single_view
        self.style_weight = float(style_weight)
        self.fix_mapping = fix_mapping
        if (fix_mapping or self.style_weight > 0) and not is_style_based(self.generator):
            raise ValueError("fix_mapping / style_weight need a style-based generator (a mapping network)")
        if self.relation_weight > 0:
            self._check_relation_setup()
        directions = (
            main_directions(self.teacher, self.relation_layers, directions_per_layer, main_direction)
            if self.relation_weight > 0 and offset_mode == "main"
            else torch.zeros(0, int(self.teacher.w_dim) if is_style_based(self.teacher) else 1)
        )
        # not persistent: derived from the teacher, and checkpoints hold only the networks
        self.register_buffer("offset_directions", directions, persistent=False)

    def _check_relation_setup(self) -> None:
        if not is_style_based(self.generator):
            raise ValueError("the relation loss perturbs W latents: it needs a style-based generator")
        points = len(self.generator.distillation_points())
        bad = [i for i in self.relation_layers if not 0 <= i < points]
        if bad or not self.relation_layers:
            raise ValueError(
                f"relation_layers {list(self.relation_layers)} out of range: the generator has {points} "
                f"block outputs (index 0 = the 4-px conv)"
            )

    def generator_parameters(self) -> list[torch.nn.Parameter]:
        params = super().generator_parameters()
        if not self.fix_mapping:
            return params
        mapping = {id(p) for p in self.generator.style.parameters()}  # StyleKD --fix_w: lr 0
        return [p for p in params if id(p) not in mapping]

    def context_needs(self) -> set[str]:
        needs = super().context_needs()
        if self.relation_weight > 0:
            needs |= {"student_features", "teacher_features"}
        return needs

    def sample_offsets(self, batch_size: int) -> Tensor:
        """Per-sample latent offsets ``[B, 1, w_dim]``: unit direction × N(0, offset_weight²)."""
        w_dim = int(self.generator.w_dim)
        if self.offset_mode == "main":
            index = torch.randint(self.offset_directions.shape[0], (batch_size,))
            directions = self.offset_directions[index.to(self.offset_directions.device)]
        else:
            directions = torch.randn(batch_size, w_dim, device=self.device)
        directions = directions / directions.norm(dim=1, keepdim=True)
        length = torch.randn(batch_size, 1, device=directions.device) * self.offset_weight
        return (directions * length)[:, None, :]

    def extra_generator_losses(
        self, ctx: LossContext, batch: Mapping[str, Tensor], inputs: GeneratorInputs
    ) -> dict[str, tuple[float, Tensor]]:
        extra = super().extra_generator_losses(ctx, batch, inputs)
        if self.style_weight > 0:  # StyleKD kd_style_loss = F.l1_loss(student_w, teacher_w)
            with torch.no_grad():
                teacher_w = style_w_plus(self.teacher, inputs)
            extra["kd_style"] = (
                self.style_weight,
                F.l1_loss(style_w_plus(self.generator, inputs), teacher_w),
            )
        if self.relation_weight > 0:
            extra["kd_relation"] = (self.relation_weight, self.relation_term(ctx, inputs))
        return extra

    def relation_term(self, ctx: LossContext, inputs: GeneratorInputs) -> Tensor:
        """Sum over the mimicked layers of the relation loss (unweighted)."""
        assert ctx.student_features is not None and ctx.teacher_features is not None
        offsets = self.sample_offsets(inputs.batch_size)
        student_points = self.generator.distillation_points()
        teacher_points = self.teacher.distillation_points()
        if self.single_view:
            student_moved, teacher_moved = ctx.student_features, ctx.teacher_features
        else:
            with capture_outputs(self.generator, student_points) as student_moved:
                self.run_student(
                    self.generator, inputs, w_plus=style_w_plus(self.generator, inputs) + offsets
                )
            with torch.no_grad(), capture_outputs(self.teacher, teacher_points) as teacher_moved:
                run_generator(self.teacher, inputs, w_plus=style_w_plus(self.teacher, inputs) + offsets)
        total = ctx.student_img.new_zeros(())
        for layer in self.relation_layers:
            total = total + relation_loss(
                ctx.student_features[layer],
                student_moved[layer],
                ctx.teacher_features[layer],
                teacher_moved[layer],
                self.relation_kind,
            )
        return total
