"""PPCD-GAN: progressive pruning and class-aware distillation (Vo, Sugimoto, Nakayama, WACV 2022).

No public code exists; the paper text (Vo et al., WACV 2022) is the specification. The pieces:

* student: SAGAN-128 with PP-Res blocks (:class:`~lightning_gancomp.nets.ppsagan.PPSAGANGenerator`:
  learnable masks, eq. 1, and 1x1 transition layers, Sec. 3.2), trained from scratch against
  SAGAN's projection discriminator while the BigGAN teacher stays frozen (Sec. 4.2);
* ``L = 0.01·L_PP + L_CD + L_ADV`` (eq. 8): ``L_PP`` =
  :class:`~lightning_gancomp.losses.sparsity.ProgressivePruningLoss` (eq. 2, 5), ``L_CD`` =
  :class:`~lightning_gancomp.losses.attention.AttentionDistillation` (eq. 4, 6) on the teacher's
  class-conditionally normalised block outputs (context extra ``teacher_normalized_features``,
  see ``nets.ppsagan.normalized_block_outputs``) against the student's block outputs, ``L_ADV`` the
  configured adversarial loss (eq. 7 is the log loss = ``NonSaturatingLoss`` on the G side;
  ``HingeLoss`` is BigGAN-PyTorch's default). Weights are set in the config;
* eq. 3 after every generator optimizer step (:meth:`PPCDModule.after_optimizer_step`): a mask
  layer whose share of values ``<= pivot`` exceeds ``alpha`` is frozen to {0, 1};
* at the end (:meth:`PPCDModule.materialise`): masks and masked channels are removed by the
  channel-group surgery, leaving a plain, smaller ``BigGANGenerator`` (SAGAN configuration with
  transition layers) that computes what the masked student computes.

Teacher and student latents. BigGAN-128 draws z of 120 entries, SAGAN-128 of 128; the paper does
not say how the two are fed. The teacher gets the student's class label and the first
``teacher.z_dim`` entries of the student's z (zero-padded if the teacher's z is longer), so both
see the same sample wherever the sizes allow (our choice).

The same module runs the paper's comparisons with other configs: w/o L_PP (a plain SAGAN student
and ``AttentionDistillation`` only), w/o L_CD (``ProgressivePruningLoss`` only), the two-step
PPCD* (w/o L_CD, then distil the materialised student), "distill only" (a plain half-width
student with an output ``PixelLoss``) and the ℓ1 baseline (``gancomp prune`` with ``L1Scorer``, then
adversarial fine-tuning).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_gancomp.losses import LossContext
from lightning_gancomp.methods.compression import CompressionModule, PruningRecipe
from lightning_gancomp.methods.engine import Phase
from lightning_gancomp.nets.base import GanNet
from lightning_gancomp.nets.biggan import BigGANGenerator
from lightning_gancomp.nets.contract import GeneratorInputs, capture_outputs, run_generator
from lightning_gancomp.nets.masks import PIVOT, LearnableMask
from lightning_gancomp.nets.ppsagan import PP_ARGS, PPSAGANGenerator, normalized_block_outputs
from lightning_gancomp.pruning.masks import materialise

TeacherFeatures = Literal["normalized", "block_output"]


class PPCDModule(CompressionModule):
    """PPCD-GAN training (see module docstring).

    Args:
        alpha: compression-ratio threshold α of eq. 3 (paper: 0.7; ablations 0.5).
        pivot: pivot of eq. 3 (0.005).
        min_keep: channels a frozen layer keeps at least (see ``nets.masks``).
        teacher_features: what ``teacher_normalized_features`` holds: ``"normalized"`` (paper:
            each block output after the teacher's next class-conditional BN) or ``"block_output"``
            (raw block outputs, for the comparison).
        **kwargs: :class:`CompressionModule` arguments (teacher, student, discriminator, losses,
            optimizers, EMA, metrics ...).
    """

    def __init__(
        self,
        alpha: float = 0.7,
        pivot: float = PIVOT,
        min_keep: int = 1,
        teacher_features: TeacherFeatures = "normalized",
        **kwargs: Any,
    ) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"PPCDModule: alpha must be in [0, 1), got {alpha}")
        if teacher_features not in ("normalized", "block_output"):
            raise ValueError(
                f"PPCDModule: teacher_features must be normalized|block_output, got {teacher_features!r}"
            )
        super().__init__(**kwargs)
        self.alpha, self.pivot, self.min_keep = float(alpha), float(pivot), int(min_keep)
        self.teacher_features = teacher_features
        #: batch at which eq. 3 froze each mask layer (this run; also logged).
        self.freeze_batches: dict[str, int] = {}

    # -- masks ------------------------------------------------------------------------------
    def mask_layers(self) -> dict[str, LearnableMask]:
        """The trained student's masks by channel group (empty for a plain student)."""
        net = self.generator
        return net.mask_layers() if isinstance(net, PPSAGANGenerator) else {}

    def after_optimizer_step(self, phase: Phase) -> None:
        """Eq. 3 on every mask layer after each generator step."""
        if phase.optimizer != "g":
            return
        for name, mask in self.mask_layers().items():
            if mask.maybe_freeze(self.alpha, self.pivot, self.min_keep):
                self.freeze_batches[name] = self.batches_done
                self.print(
                    f"ppcd: batch {self.batches_done}: {name} frozen, "
                    f"{int(mask.binary.sum())}/{mask.binary.numel()} channels kept"
                )

    # -- loss context -----------------------------------------------------------------------
    def teacher_inputs(self, inputs: GeneratorInputs) -> GeneratorInputs:
        """The student's inputs with z cut (or zero-padded) to the teacher's size."""
        size = int(getattr(self.teacher, "z_dim", 0))
        if inputs.zs is None or not size or all(z.shape[1] == size for z in inputs.zs):
            return inputs
        zs = [z[:, :size] if z.shape[1] >= size else F.pad(z, (0, size - z.shape[1])) for z in inputs.zs]
        return GeneratorInputs(inputs.batch_size, zs, inputs.crossover, inputs.label, inputs.input_img)

    def teacher_points(self) -> list[str]:
        assert self.teacher is not None
        if self.teacher_features == "normalized":
            return normalized_block_outputs(self.teacher)
        return self.teacher.distillation_points()

    def generator_context(
        self, ctx: LossContext, batch: Mapping[str, Tensor], inputs: GeneratorInputs, needs: set[str]
    ) -> LossContext:
        """Teacher image/features (output KD of "distill only") on the teacher-sized inputs."""
        return super().generator_context(ctx, batch, self.teacher_inputs(inputs), needs)

    def loss_context_extras(
        self, ctx: LossContext, batch: Mapping[str, Tensor], inputs: GeneratorInputs, needs: set[str]
    ) -> dict[str, Any]:
        """``pp_masks`` (the mask layers) and ``teacher_normalized_features`` when a term needs them."""
        extras: dict[str, Any] = {}
        if "pp_masks" in needs:
            masks = list(self.mask_layers().values())
            if not masks:
                student = type(self.generator).__name__
                raise ValueError(f"ProgressivePruningLoss needs a PPSAGANGenerator student, not {student}")
            extras["pp_masks"] = masks
        if "teacher_normalized_features" in needs:
            if self.teacher is None:
                raise ValueError("teacher_normalized_features: PPCDModule has no teacher")
            with torch.no_grad(), capture_outputs(self.teacher, self.teacher_points()) as features:
                run_generator(self.teacher, self.teacher_inputs(inputs))
            extras["teacher_normalized_features"] = features
        return extras

    # -- results ----------------------------------------------------------------------------
    def materialise(self) -> GanNet | None:
        """The plain smaller generator of the evaluation student (G-EMA when kept), or None for a
        plain student (ablation w/o L_PP, distill only, the ℓ1 baseline)."""
        net = self.eval_generator()
        if not isinstance(net, PPSAGANGenerator):
            return None
        return materialise(net, self.pivot, self.min_keep)

    def pruning_recipe(self) -> PruningRecipe | None:
        """None (PPCD prunes while training) unless scorer and policy are configured (the ℓ1
        baseline of the paper's Fig. 4 prunes the teacher with ``gancomp prune`` first)."""
        return super().pruning_recipe()

    def projected_student(self, alpha: float | None = None) -> BigGANGenerator | None:
        """The plain student after removing ``int(α·n)`` channels of every masked layer (what
        eq. 3 leaves when each layer freezes right past α): widths only, fresh weights. None for a
        plain student."""
        net = self.generator
        if not isinstance(net, PPSAGANGenerator):
            return None
        ratio = self.alpha if alpha is None else alpha
        sizes = {
            name: n - int(n * ratio)
            for name, n in ((k, m.weight.numel()) for k, m in net.mask_layers().items())
        }
        config = {k: v for k, v in net.config_for_group_sizes(sizes).items() if k not in PP_ARGS}
        with torch.random.fork_rng(devices=[]):
            return BigGANGenerator(**config)

    def profile_networks(self) -> dict[str, torch.nn.Module]:
        """Teacher, student (materialised), the student projected at α, and the SAGAN it is built
        on (no masks, no transitions) — the rows of the paper's Table 1."""
        networks = super().profile_networks()
        net = self.generator
        if isinstance(net, PPSAGANGenerator):
            projected = self.projected_student()
            assert projected is not None
            networks[f"student_alpha_{self.alpha:g}"] = projected
            base = {k: v for k, v in net.plain_config().items() if k != "transition_channels"}
            with torch.random.fork_rng(devices=[]):
                networks["sagan"] = BigGANGenerator(**base)
        return networks
