"""The method engine: adversarial training that every method here runs on.

:class:`AdversarialModule` owns what every GAN training run has in common (DESIGN key ideas 5, 7):

- a trainable generator ``generator`` (the student in compression), a discriminator
  ``discriminator``, and ``generator_ema``, an exponential moving average of the generator's
  weights (Karras et al. 2018, ProGAN Sec. 4; StyleGAN2 ``G_ema``) used for evaluation and samples;
- manual optimisation in named phases, StyleGAN2 style (NVlabs/stylegan2-ada-pytorch
  ``training/training_loop.py`` phases ``Gmain, Greg, Dmain, Dreg``; rosinality ``train.py`` runs
  D first, then G; we follow rosinality's order, the code CAGAN/DCP build on):

  ``D main``  adversarial loss on reals and detached fakes, one D optimizer step;
  ``D reg``   R1 on reals every ``r1_interval`` batches, loss × interval, one D step;
  ``G main``  adversarial loss + configured loss terms (``losses``), one G step;
  ``G reg``   path length every ``pl_interval`` batches on ``batch // batch_shrink`` samples,
              loss × interval, one G step;
  then the G-EMA update. Lazy regularisation corrects the optimizers as in StyleGAN2 (paper
  App. B; rosinality ``g_reg_ratio``): ``lr · c`` and ``betas ** c`` with ``c = k / (k + 1)``.
  Lightning's ``global_step`` counts *optimizer steps*, so intervals, EMA, checkpoints and seeds
  use :attr:`batches_done`, the number of training batches processed (saved in checkpoints);
- learning-rate schedules per optimizer (``methods.schedules``), saved and resumed with the
  checkpoint;
- style mixing for style-based generators (StyleGAN2 Sec. 2: with probability
  ``style_mixing_prob`` two latents, one crossover layer for the whole batch);
- deterministic per-batch seeding (``step_seed``): a resumed run draws the same ``z``, noise maps
  and mixing as the uninterrupted run;
- a non-finite loss stops training *before* the optimizer step (all ranks agree).

**Hooks a method overrides** (the whole extension surface; README "Add a method"):

- :meth:`run_student` — wrap or replace the student's forward (masks, hypernetwork weights);
  every place the engine runs the trained generator or its EMA goes through it;
- :meth:`generator_parameters` — what the ``g`` optimizer trains (add method-owned modules);
- :meth:`after_optimizer_step` — after each optimizer step of a named phase (proximal steps,
  mask freezing, budget checks);
- :meth:`loss_context_extras` — named extra tensors for loss terms (feature/attention maps, mask
  values), read by terms that list the name in ``requires``;
- :meth:`materialise` — the plain smaller generator a training-time student stands for; saved at
  the end of fit as ``<default_root_dir>/student.pt`` and used by ``gancomp export``;
- :meth:`phases` — the phases of one batch.

Optimizers and schedules, evaluation and sampling, and checkpoint payloads live in
:mod:`methods.optimization`, :mod:`methods.evaluation` and :mod:`methods.persistence` (mixed in
here).
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import OptimizerCallable
from torch import Tensor, nn

from lightning_gancomp.losses import (
    AdversarialLoss,
    LossContext,
    LossTerm,
    NonSaturatingLoss,
    PathLengthPenalty,
    R1Penalty,
)
from lightning_gancomp.methods.evaluation import EvaluationMixin
from lightning_gancomp.methods.optimization import OptimizationMixin
from lightning_gancomp.methods.persistence import PersistenceMixin
from lightning_gancomp.methods.schedules import LRSchedule
from lightning_gancomp.metrics import GenerativeMetrics
from lightning_gancomp.nets.base import GanNet
from lightning_gancomp.nets.contract import (
    GeneratorInputs,
    capture_outputs,
    generator_task,
    is_style_based,
    run_generator,
    sample_inputs,
    style_w_plus,
)

#: CAGAN / rosinality G-EMA decay: half-life of 10k images at 32 images per step.
STYLEGAN2_EMA_DECAY = 0.5 ** (32 / 10_000)


class NonFiniteLossError(RuntimeError):
    """A training loss became NaN/inf; training stopped before the optimizer step."""


def freeze(module: nn.Module) -> nn.Module:
    """Frozen copy semantics: no gradients, eval mode (BN/dropout fixed)."""
    module.requires_grad_(False)
    return module.eval()


class _OutsideModuleTree:
    """Holds an object (metrics with their feature network) without registering it as a
    submodule: no state dict, no optimizer, no DDP."""

    def __init__(self, module: Any) -> None:
        self.module = module


@dataclass(frozen=True)
class Phase:
    """A named step of one training batch.

    Attributes:
        name: log-friendly name, e.g. ``"D main"``.
        optimizer: name in :attr:`AdversarialModule.optimizer_names` whose parameters it trains.
        interval: runs on batches with ``batches_done % interval == 0``.
        run: ``batch -> loss`` (already multiplied by ``interval`` for lazy regularisers).
    """

    name: str
    optimizer: str
    interval: int
    run: Callable[[dict[str, Tensor]], Tensor]


def _derived_seed(*parts: int) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


class AdversarialModule(OptimizationMixin, EvaluationMixin, PersistenceMixin, pl.LightningModule):
    """Generator + discriminator + G-EMA with StyleGAN2-style lazy regularisation.

    Args:
        generator: the network trained (a student in compression).
        discriminator: its discriminator.
        g_optimizer: optimizer factory for generator parameters (+ trainable loss terms, e.g.
            feature adaptors). Default Adam(lr 0.002, betas (0, 0.99)) as StyleGAN2.
        d_optimizer: optimizer factory for the discriminator; same default.
        schedules: learning-rate schedules (``methods.schedules``), each naming its optimizer;
            none = constant rates.
        adversarial: adversarial objective (default non-saturating logistic).
        losses: extra generator loss terms (distillation, reconstruction, ...), each logged as
            ``train/g/<name>``.
        r1: R1 penalty on reals (None = off); ``r1_interval``: lazy interval (StyleGAN2: 16).
        r1_mode: ``"separate"`` — R1 in its own D step (``D reg``; rosinality / CAGAN
            ``D_Reg_BackProp``); ``"joint"`` — every ``r1_interval``-th batch R1 is added to the D
            loss on the same real prediction, one backward and one step (StyleKD / DCP
            ``distributed_train.py``).
        path_length: path length penalty (style-based generators only); ``pl_interval`` (4).
        generator_interval: one G step every this many batches, D steps on every batch
            (SN-GAN's ``n_dis`` = 5, pfnet-research/sngan_projection and mimicry; 1 = StyleGAN2).
        style_mixing_prob: probability of style mixing per batch (style-based only; 0.9).
        d_style_mixing_prob: the same for the fakes of the D step; None = ``style_mixing_prob``
            (rosinality, CAGAN, StyleKD/DCP and NVlabs all mix D's fakes like G's), 0 = never.
        adversarial_warmup: batches of distillation only at the start: no D steps, no
            adversarial term and no path length before it (StyleKD ``--g_step``; 0 = off).
        ema_decay: G-EMA decay per batch (None = no EMA; evaluation then uses ``generator``).
        lazy_reg_correction: apply ``lr·c, beta^c`` for lazily regularised networks.
        pair_discriminator: image-to-image only: D sees ``cat(input_img, img)`` (pix2pix).
        metrics: ``GenerativeMetrics`` (kept out of the state dict).
        eval_max_images: stop feeding metrics after this many real images per evaluation.
        grid_size: number of images in sample grids.
        step_seed: base of the per-batch reseeding, combined with ``seed_everything``'s seed
            (None = leave the global RNG alone).
        check_finite: stop on a non-finite loss before the optimizer step.
    """

    #: Names of the optimizers returned by ``configure_optimizers``, in order.
    optimizer_names: tuple[str, ...] = ("g", "d")

    def __init__(
        self,
        generator: GanNet,
        discriminator: GanNet,
        g_optimizer: OptimizerCallable | None = None,
        d_optimizer: OptimizerCallable | None = None,
        schedules: list[LRSchedule] | None = None,
        adversarial: AdversarialLoss | None = None,
        losses: list[LossTerm] | None = None,
        r1: R1Penalty | None = None,
        r1_interval: int = 16,
        r1_mode: Literal["separate", "joint"] = "separate",
        path_length: PathLengthPenalty | None = None,
        pl_interval: int = 4,
        generator_interval: int = 1,
        style_mixing_prob: float = 0.9,
        d_style_mixing_prob: float | None = None,
        adversarial_warmup: int = 0,
        ema_decay: float | None = STYLEGAN2_EMA_DECAY,
        lazy_reg_correction: bool = True,
        pair_discriminator: bool = False,
        metrics: GenerativeMetrics | None = None,
        eval_max_images: int | None = None,
        grid_size: int = 16,
        step_seed: int | None = 0,
        check_finite: bool = True,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        if min(r1_interval, pl_interval, generator_interval) < 1:
            raise ValueError(
                "r1_interval, pl_interval and generator_interval must be >= 1, got "
                f"{r1_interval}, {pl_interval}, {generator_interval}"
            )
        if r1_mode not in ("separate", "joint"):
            raise ValueError(f"r1_mode must be 'separate' or 'joint', got {r1_mode!r}")
        self.generator, self.discriminator = generator, discriminator
        self.generator_ema = freeze(copy.deepcopy(generator)) if ema_decay is not None else None
        self.ema_decay = ema_decay
        self.g_optimizer_factory, self.d_optimizer_factory = g_optimizer, d_optimizer
        self.schedules = list(schedules or [])
        self.adversarial = adversarial if adversarial is not None else NonSaturatingLoss()
        self.generator_losses = nn.ModuleList(losses or [])
        self.r1, self.r1_interval, self.r1_mode = r1, r1_interval, r1_mode
        self.path_length, self.pl_interval = path_length, pl_interval
        self.generator_interval = generator_interval
        self.style_mixing_prob = style_mixing_prob
        self.d_style_mixing_prob = style_mixing_prob if d_style_mixing_prob is None else d_style_mixing_prob
        self.adversarial_warmup = adversarial_warmup
        self.lazy_reg_correction = lazy_reg_correction
        self.pair_discriminator = pair_discriminator
        self._metrics = _OutsideModuleTree(metrics) if metrics is not None else None
        self.eval_max_images, self.grid_size = eval_max_images, grid_size
        self.step_seed, self.check_finite = step_seed, check_finite
        self.batches_done = 0
        self._eval_images_seen = 0
        self._grid_inputs: GeneratorInputs | None = None
        self._validate_setup()

    # -- construction checks -------------------------------------------------------------------
    def _validate_setup(self) -> None:
        if self.generator.role != "generator":
            raise ValueError(f"generator: {type(self.generator).__name__} is a {self.generator.role}")
        if self.discriminator.role != "discriminator":
            raise ValueError(
                f"discriminator: {type(self.discriminator).__name__} is a {self.discriminator.role}"
            )
        if self.path_length is not None and not is_style_based(self.generator):
            raise ValueError(
                f"path_length needs a style-based generator; {type(self.generator).__name__} is not"
            )
        if self.pair_discriminator and self.task != "image2image":
            raise ValueError("pair_discriminator only applies to image-to-image generators")
        unknown = sorted({s.optimizer for s in self.schedules} - set(self.optimizer_names))
        if unknown:
            raise ValueError(
                f"schedules name unknown optimizers {unknown} (known: {list(self.optimizer_names)})"
            )

    @property
    def task(self) -> str:
        return generator_task(self.generator)

    @property
    def metrics(self) -> GenerativeMetrics | None:
        return self._metrics.module if self._metrics is not None else None

    def frozen_modules(self) -> list[nn.Module]:
        """Modules that stay in eval mode and out of every optimizer."""
        return [self.generator_ema] if self.generator_ema is not None else []

    def train(self, mode: bool = True) -> AdversarialModule:
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        return self

    def eval_generator(self) -> nn.Module:
        """The generator used for metrics, grids and predictions (G-EMA when present)."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    # -- hooks ---------------------------------------------------------------------------------
    def run_student(self, net: nn.Module, inputs: GeneratorInputs, w_plus: Tensor | None = None) -> Tensor:
        """Hook: one forward of the trained generator ``net`` (``generator`` or its EMA copy).

        Default: the plain forward (``nets.contract.run_generator``). Methods whose student is
        more than its weights override it: masks applied by forward hooks, or weights generated by
        a hypernetwork and swapped in with ``torch.func.functional_call``.
        """
        return run_generator(net, inputs, w_plus)

    def generator_parameters(self) -> list[nn.Parameter]:
        """Hook: parameters of the ``g`` optimizer (generator + trainable loss terms); methods
        add the modules they own (mask logits, hypernetworks)."""
        params = list(self.generator.parameters()) + list(self.generator_losses.parameters())
        return [p for p in params if p.requires_grad]

    def after_optimizer_step(self, phase: Phase) -> None:
        """Hook: runs right after the optimizer step of ``phase`` (default: nothing)."""

    def loss_context_extras(
        self, ctx: LossContext, batch: Mapping[str, Tensor], inputs: GeneratorInputs, needs: set[str]
    ) -> dict[str, Any]:
        """Hook: named extra tensors for the loss terms of G main (``ctx.extras``); ``needs`` is
        the union of the configured terms' ``needs()``. Default: none."""
        return {}

    def materialise(self) -> GanNet | None:
        """Hook: the plain, smaller generator of the same family the training-time student stands
        for (masks removed, generated weights baked, zero channels cut), or None when the
        generator already is plain (default)."""
        return None

    # -- inputs --------------------------------------------------------------------------------
    def sample_inputs(
        self,
        batch_size: int,
        batch: Mapping[str, Tensor] | None = None,
        mixing_prob: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> GeneratorInputs:
        """Inputs for ``batch_size`` samples of the trained generator (``nets.contract``)."""
        return sample_inputs(self.generator, batch_size, batch, mixing_prob, generator, self.device)

    def discriminate(
        self, img: Tensor, inputs: GeneratorInputs | None = None, label: Tensor | None = None
    ) -> Tensor:
        """D logits; conditional D gets labels, a pair D gets ``cat(input_img, img)``."""
        if self.task == "conditional":
            label = label if label is not None else (inputs.label if inputs is not None else None)
            return self.discriminator(img, label)
        if self.pair_discriminator:
            assert inputs is not None and inputs.input_img is not None
            return self.discriminator(torch.cat([inputs.input_img, img], dim=1))
        return self.discriminator(img)

    def real_inputs(self, batch: Mapping[str, Tensor]) -> GeneratorInputs:
        """Inputs that pair with the real images (their labels / input images)."""
        size = batch["real_img"].shape[0]
        return GeneratorInputs(batch_size=size, label=batch.get("label"), input_img=batch.get("input_img"))

    # -- phases --------------------------------------------------------------------------------
    @property
    def warming_up(self) -> bool:
        """Within ``adversarial_warmup``: distillation only (StyleKD ``--g_step``)."""
        return self.batches_done < self.adversarial_warmup

    def phases(self) -> list[Phase]:
        """Phases of one batch, in order (rosinality: D main, D reg, G main, G reg)."""
        if self.warming_up:
            return [Phase("G main", "g", self.generator_interval, self.generator_main)]
        phases = [Phase("D main", "d", 1, self.discriminator_main)]
        if self.r1 is not None and self.r1_mode == "separate":
            phases.append(Phase("D reg", "d", self.r1_interval, self.discriminator_reg))
        phases.append(Phase("G main", "g", self.generator_interval, self.generator_main))
        if self.path_length is not None:
            # every pl_interval-th *generator* step
            phases.append(Phase("G reg", "g", self.pl_interval * self.generator_interval, self.generator_reg))
        return phases

    def discriminator_main(self, batch: dict[str, Tensor]) -> Tensor:
        real_img = batch["real_img"]
        inputs = self.sample_inputs(real_img.shape[0], batch, mixing_prob=self.d_style_mixing_prob)
        with torch.no_grad():
            fake_img = self.run_student(self.generator, inputs)
        d_fake = self.discriminate(fake_img, inputs)
        joint_r1 = (
            self.r1 is not None and self.r1_mode == "joint" and self.batches_done % self.r1_interval == 0
        )
        if joint_r1:
            real_img = real_img.detach().requires_grad_(True)
        d_real = self.discriminate(real_img, self.real_inputs(batch))
        loss = self.adversarial.discriminator_loss(d_real, d_fake)
        logs = {self.adversarial.name: loss, "real_score": d_real.mean(), "fake_score": d_fake.mean()}
        if joint_r1:  # StyleKD: R1 on the same real prediction, in the same backward
            assert self.r1 is not None
            weighted, logs[self.r1.name] = self.r1(real_img, d_real)
            loss = loss + weighted * self.r1_interval
        self.log_train("d", logs)
        return loss

    def discriminator_reg(self, batch: dict[str, Tensor]) -> Tensor:
        assert self.r1 is not None
        real_img = batch["real_img"].detach().requires_grad_(True)
        d_real = self.discriminate(real_img, self.real_inputs(batch))
        weighted, value = self.r1(real_img, d_real)
        self.log_train("d", {self.r1.name: value})
        # "+ 0 * d_real[0]": rosinality keeps D's output in the graph for DDP's reducer.
        return weighted * self.r1_interval + 0.0 * d_real.reshape(-1)[0]

    def generator_main(self, batch: dict[str, Tensor]) -> Tensor:
        inputs = self.sample_inputs(batch["real_img"].shape[0], batch, mixing_prob=self.style_mixing_prob)
        needs = self.context_needs()
        features_needed = "student_features" in needs
        points = self.generator.distillation_points() if features_needed else []
        rgb_points = self.generator.rgb_skip_points() if "student_rgbs" in needs else []
        with capture_outputs(self.generator, points + rgb_points) as captured:
            student_img = self.run_student(self.generator, inputs)
        student_features = captured[: len(points)]
        if self.warming_up:  # StyleKD --g_step: no adversarial term yet
            d_fake = None
            adversarial = student_img.new_zeros(())
        else:
            d_fake = self.discriminate(student_img, inputs)
            adversarial = self.adversarial.generator_loss(d_fake)
        ctx = LossContext(
            student_img=student_img,
            real_img=batch["real_img"],
            input_img=inputs.input_img,
            mask=batch.get("mask"),
            d_fake=d_fake,
            student_features=student_features if features_needed else None,
        )
        if rgb_points:  # CAGAN kd_mode Intermediate: every ToRGB output of the skip architecture
            ctx.extras["student_rgbs"] = captured[len(points) :]
        ctx = self.generator_context(ctx, batch, inputs, needs)
        ctx.extras.update(self.loss_context_extras(ctx, batch, inputs, needs))
        total = self.adversarial.weight * adversarial
        logs: dict[str, Tensor] = {self.adversarial.name: adversarial}
        for term in self.generator_losses:
            value = term(ctx)
            logs[term.name] = value
            total = total + term.weight * value
        for name, (weight, value) in self.extra_generator_losses(ctx, batch, inputs).items():
            logs[name] = value
            total = total + weight * value
        logs["total"] = total
        self.log_train("g", logs)
        return total

    def generator_reg(self, batch: dict[str, Tensor]) -> Tensor:
        assert self.path_length is not None
        size = max(1, batch["real_img"].shape[0] // self.path_length.batch_shrink)
        inputs = self.sample_inputs(size, batch, mixing_prob=self.style_mixing_prob)
        w_plus = style_w_plus(self.generator, inputs)
        fake_img = self.run_student(self.generator, inputs, w_plus=w_plus)
        weighted, value, mean_length = self.path_length(fake_img, w_plus)
        self.log_train("g", {self.path_length.name: value, f"{self.path_length.name}_mean": mean_length})
        return weighted * self.pl_interval + 0.0 * fake_img.reshape(-1)[0]

    # -- loss context --------------------------------------------------------------------------
    def context_needs(self) -> set[str]:
        needs: set[str] = set()
        for term in self.generator_losses:
            needs.update(term.needs())
        return needs

    def generator_context(
        self, ctx: LossContext, batch: Mapping[str, Tensor], inputs: GeneratorInputs, needs: set[str]
    ) -> LossContext:
        """Fill further context fields (compression adds teacher outputs and masks)."""
        return ctx

    def extra_generator_losses(
        self, ctx: LossContext, batch: Mapping[str, Tensor], inputs: GeneratorInputs
    ) -> dict[str, tuple[float, Tensor]]:
        """Method-specific generator terms ``{log name: (weight, unweighted value)}``."""
        return {}

    # -- the loop ------------------------------------------------------------------------------
    def log_train(self, side: str, values: Mapping[str, Tensor]) -> None:
        for name, value in values.items():
            self.log(
                f"train/{side}/{name}",
                value.detach(),
                prog_bar=name == "total" or name == self.adversarial.name,
                on_step=True,
                on_epoch=False,
                batch_size=1,
            )

    def reseed(self, *parts: int) -> None:
        """Seed the global RNG from (run seed, ``step_seed``, position, rank). The run seed is
        ``seed_everything``'s (``PL_GLOBAL_SEED``), so runs with different seeds draw differently."""
        if self.step_seed is not None:
            run_seed = int(os.environ.get("PL_GLOBAL_SEED", "0"))
            torch.manual_seed(_derived_seed(run_seed, self.step_seed, *parts, self.global_rank))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.reseed(self.batches_done)
        if self._grid_inputs is None:
            self._grid_inputs = self.fixed_grid_inputs(batch)
        for phase in self.phases():
            if self.batches_done % phase.interval:
                continue
            optimizer = self.named_optimizer(phase.optimizer)
            self.toggle_optimizer(optimizer)
            optimizer.zero_grad(set_to_none=True)
            loss = phase.run(batch)
            self.ensure_finite(phase.name, loss)
            self.manual_backward(loss)
            optimizer.step()
            self.untoggle_optimizer(optimizer)
            self.after_optimizer_step(phase)
        if self.batches_done % self.generator_interval == 0:
            self.update_ema()  # only after generator steps
        self.batches_done += 1
        self.step_schedules("step")
        self.log("trainer/batches", float(self.batches_done), on_step=True, on_epoch=False, batch_size=1)

    def ensure_finite(self, phase: str, loss: Tensor) -> None:
        if not self.check_finite:
            return
        finite = bool(torch.isfinite(loss.detach()).all())
        if self.trainer.strategy.reduce_boolean_decision(finite, all=True):
            return
        checkpoint = self.latest_checkpoint_path()
        kept = f"last good checkpoint: {checkpoint}" if checkpoint else "no checkpoint was written yet"
        raise NonFiniteLossError(
            f"non-finite loss in phase '{phase}' at batch {self.batches_done} "
            f"(value {loss.detach().float().item()}); "
            f"training stopped before the optimizer step, {kept}"
        )

    def latest_checkpoint_path(self) -> str | None:
        """The newest checkpoint any checkpoint callback wrote in this run (None if none)."""
        paths = [
            path
            for callback in self.trainer.checkpoint_callbacks
            for path in (getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", ""))
            if path and os.path.isfile(path)
        ]
        return max(paths, key=os.path.getmtime) if paths else None

    @torch.no_grad()
    def update_ema(self) -> None:
        """``ema = decay·ema + (1-decay)·g`` on parameters; buffers (noise, latent_avg, BN
        statistics) are copied (NVlabs ``training_loop.py``)."""
        if self.generator_ema is None:
            return
        decay = float(self.ema_decay)
        for ema_p, p in zip(self.generator_ema.parameters(), self.generator.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1.0 - decay)
        for ema_b, b in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            ema_b.copy_(b)

    # The data order of an epoch comes from the global RNG when its DataLoader iterator is
    # created: for epoch 0 and right after a resume that happens after ``on_fit_start`` / the
    # sanity check, for later epochs after ``on_train_epoch_start``. Reseeding at all three from
    # the number of batches done makes the order a function of the position in training.
    def on_fit_start(self) -> None:
        self.reseed(-1, self.batches_done)

    def on_sanity_check_end(self) -> None:
        self.reseed(-1, self.batches_done)

    def on_train_epoch_start(self) -> None:
        self.reseed(-1, self.batches_done)

    def on_fit_end(self) -> None:
        """Save :meth:`materialise`'s plain generator as ``<default_root_dir>/student.pt``."""
        if not self.trainer.is_global_zero:
            return
        net = self.materialise()
        if net is None:
            return
        from lightning_gancomp.checkpoints import save_generator
        from lightning_gancomp.metrics.complexity import default_macs

        path = os.path.join(self.trainer.default_root_dir, "student.pt")
        save_generator(net.cpu().eval(), path)
        macs, convention = default_macs(net)
        print(
            f"materialised {type(net).__name__}: {sum(p.numel() for p in net.parameters()):,} params, "
            f"{macs:,} MACs ({convention}) -> {path}"
        )
