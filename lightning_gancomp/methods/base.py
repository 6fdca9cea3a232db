"""Shared LightningModule engine for adversarial training, and the compression base.

:class:`AdversarialModule` owns what every GAN training run here has in common (DESIGN key idea 5):

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

  Lightning's ``global_step`` counts *optimizer steps* (2–4 per batch here), so intervals, EMA,
  checkpoints and seeds use :attr:`batches_done`, the number of training batches processed,
  which is saved in checkpoints;
- style mixing for style-based generators (StyleGAN2 paper Sec. 2 / StyleGAN Sec. 3.1: with
  probability ``style_mixing_prob`` two latents, one crossover layer drawn in ``[1, n_latent-1]``
  for the whole batch, rosinality ``mixing_noise`` + ``inject_index``). We build the W+ tensor
  ourselves so teacher and student can share the crossover and path length can differentiate
  with respect to it;
- deterministic per-batch seeding (``step_seed``): the global RNG is reseeded from
  ``(step_seed, batches_done, rank)`` before each batch, so a resumed run draws the same ``z``,
  noise maps and mixing as the uninterrupted run;
- a non-finite loss stops training *before* the optimizer step (all ranks agree), so the last
  checkpoint on disk is the last good state; the error names the phase, the batch and the
  checkpoint;
- sample generation (``generate``, ``grid_images``) for metrics, grids and ``predict``;
  validation/test feed real and generated images to a metrics object kept out of the module
  tree (Inception or other feature nets never land in checkpoints);
- checkpoints carry ``checkpoint["gancomp_nets"]`` (``nets.base.net_payload`` of each network)
  so ``lightning_gancomp.checkpoints.load_generator(ckpt)`` rebuilds the generator from the
  Lightning checkpoint alone; resuming with a different architecture fails with one line naming
  the network and the first mismatching key.

:class:`CompressionModule` adds a frozen teacher (``requires_grad_(False)``, eval mode kept through
``train()`` calls, never in an optimizer; frozen before Lightning wraps the module with DDP), the
student loaded from a file or built from a config, a discriminator optionally loaded from the
teacher's checkpoint, and teacher outputs/feature maps/content masks in the loss context.

Generators of every task go through the same code: unconditional ``G(z)`` (style-based nets get
W+ inputs), conditional ``G(z, y)`` with ``D(img, y)``, image-to-image ``G(x)`` with a pair
discriminator ``D(cat(x, img))`` (pix2pix) or a plain one (CycleGAN).

Subclasses (CAGAN, DCP, ...) typically override :meth:`CompressionModule.content_mask`,
:meth:`generator_context`, :meth:`extra_generator_losses` or :meth:`phases`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.cli import OptimizerCallable
from torch import Tensor, nn

from lightning_gancomp.losses import (
    AdversarialLoss,
    FeatureDistillation,
    LossContext,
    LossTerm,
    NonSaturatingLoss,
    PathLengthPenalty,
    R1Penalty,
)
from lightning_gancomp.metrics import GenerativeMetrics
from lightning_gancomp.nets.base import CheckpointMismatchError, GanNet, describe_mismatch, net_payload

#: CAGAN / rosinality G-EMA decay: half-life of 10k images at 32 images per step.
STYLEGAN2_EMA_DECAY = 0.5 ** (32 / 10_000)

NetName = Literal["ema", "generator", "teacher"]


class NonFiniteLossError(RuntimeError):
    """A training loss became NaN/inf; training stopped before the optimizer step."""


# -- generator plumbing ------------------------------------------------------------------------
def generator_task(net: nn.Module) -> str:
    return getattr(net, "task", "unconditional")


def is_style_based(net: nn.Module) -> bool:
    """StyleGAN-like: a mapping network and a per-layer latent count."""
    return hasattr(net, "mapping") and hasattr(net, "n_latent")


def first_output(out: Any) -> Tensor:
    """Generators may return ``img`` or ``(img, extras)`` (rosinality's signature)."""
    return out[0] if isinstance(out, (tuple, list)) else out


@dataclass
class GeneratorInputs:
    """What one generator call needs; the same object drives teacher and student.

    ``zs`` holds one ``[B, z_dim]`` latent, or two for style mixing with ``crossover`` the first
    W+ layer taken from the second; ``label`` is ``[B]`` (conditional); ``input_img`` the
    image-to-image input ``[B, C, H, W]``.
    """

    batch_size: int
    zs: list[Tensor] | None = None
    crossover: int | None = None
    label: Tensor | None = None
    input_img: Tensor | None = None


def style_w_plus(net: nn.Module, inputs: GeneratorInputs) -> Tensor:
    """W+ tensor ``[B, n_latent, w_dim]`` from the net's own mapping network."""
    assert inputs.zs is not None
    ws = [net.mapping(z) for z in inputs.zs]
    n_latent = int(net.n_latent)
    if len(ws) == 1 or inputs.crossover is None:
        return ws[0].unsqueeze(1).expand(-1, n_latent, -1)
    cut = inputs.crossover
    return torch.cat(
        [ws[0].unsqueeze(1).expand(-1, cut, -1), ws[1].unsqueeze(1).expand(-1, n_latent - cut, -1)], dim=1
    )


def run_generator(net: nn.Module, inputs: GeneratorInputs, w_plus: Tensor | None = None) -> Tensor:
    """One forward of any generator kind; style-based nets get (or build) W+ latents."""
    task = generator_task(net)
    if task == "image2image":
        assert inputs.input_img is not None, "image-to-image generators need batch['input_img']"
        return first_output(net(inputs.input_img))
    if is_style_based(net):
        if w_plus is None:
            w_plus = style_w_plus(net, inputs)
        return first_output(net(w_plus, input_is_latent=True))
    assert inputs.zs is not None
    if task == "conditional":
        return first_output(net(inputs.zs[0], inputs.label))
    return first_output(net(inputs.zs[0]))


@contextlib.contextmanager
def capture_outputs(net: nn.Module, names: Sequence[str]) -> Iterator[list[Tensor]]:
    """Collect the forward outputs of the named submodules (in the order of ``names``)."""
    slots: dict[str, Tensor] = {}
    ordered: list[Tensor] = []
    handles = []
    for name in names:

        def hook(_module: nn.Module, _args: Any, output: Any, name: str = name) -> None:
            slots[name] = first_output(output)

        handles.append(net.get_submodule(name).register_forward_hook(hook))
    try:
        yield ordered
        missing = [n for n in names if n not in slots]
        if missing:
            raise RuntimeError(f"distillation points never ran: {missing}")
        ordered.extend(slots[n] for n in names)
    finally:
        for handle in handles:
            handle.remove()


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


# -- the engine -----------------------------------------------------------------------------------
class AdversarialModule(pl.LightningModule):
    """Generator + discriminator + G-EMA with StyleGAN2-style lazy regularisation.

    Args:
        generator: the network trained (a student in compression).
        discriminator: its discriminator.
        g_optimizer: optimizer factory for generator parameters (+ trainable loss terms, e.g.
            feature adaptors). Default Adam(lr 0.002, betas (0, 0.99)) as StyleGAN2.
        d_optimizer: optimizer factory for the discriminator; same default.
        adversarial: adversarial objective (default non-saturating logistic).
        losses: extra generator loss terms (distillation, reconstruction, ...), each logged as
            ``train/g/<name>``.
        r1: R1 penalty on reals (None = off); ``r1_interval``: lazy interval (StyleGAN2: 16).
        path_length: path length penalty (style-based generators only); ``pl_interval`` (4).
        generator_interval: one G step every this many batches, D steps on every batch
            (SN-GAN's ``n_dis`` = 5, pfnet-research/sngan_projection and mimicry; 1 = StyleGAN2).
        style_mixing_prob: probability of style mixing per batch (style-based only; 0.9).
        ema_decay: G-EMA decay per batch (None = no EMA; evaluation then uses ``generator``).
        lazy_reg_correction: apply ``lr·c, beta^c`` for lazily regularised networks.
        pair_discriminator: image-to-image only: D sees ``cat(input_img, img)`` (pix2pix).
        metrics: object with ``update(imgs, real: bool)``, ``compute() -> dict``, ``reset()``
            (``lightning_gancomp.metrics.GenerativeMetrics``); kept out of the state dict.
        eval_max_images: stop feeding metrics after this many real images per evaluation (None:
            every validation batch).
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
        adversarial: AdversarialLoss | None = None,
        losses: list[LossTerm] | None = None,
        r1: R1Penalty | None = None,
        r1_interval: int = 16,
        path_length: PathLengthPenalty | None = None,
        pl_interval: int = 4,
        generator_interval: int = 1,
        style_mixing_prob: float = 0.9,
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
        self.generator = generator
        self.discriminator = discriminator
        self.generator_ema = freeze(copy.deepcopy(generator)) if ema_decay is not None else None
        self.ema_decay = ema_decay
        self.g_optimizer_factory = g_optimizer
        self.d_optimizer_factory = d_optimizer
        self.adversarial = adversarial if adversarial is not None else NonSaturatingLoss()
        self.generator_losses = nn.ModuleList(losses or [])
        self.r1 = r1
        self.r1_interval = r1_interval
        self.path_length = path_length
        self.pl_interval = pl_interval
        self.generator_interval = generator_interval
        self.style_mixing_prob = style_mixing_prob
        self.lazy_reg_correction = lazy_reg_correction
        self.pair_discriminator = pair_discriminator
        self._metrics = _OutsideModuleTree(metrics) if metrics is not None else None
        self.eval_max_images = eval_max_images
        self.grid_size = grid_size
        self.step_seed = step_seed
        self.check_finite = check_finite
        self.batches_done = 0
        self._eval_images_seen = 0
        self._grid_inputs: GeneratorInputs | None = None
        self._validate_setup()

    # -- construction checks -------------------------------------------------------------------
    def _validate_setup(self) -> None:
        if getattr(self.generator, "role", "generator") != "generator":
            raise ValueError(f"generator: {type(self.generator).__name__} is a {self.generator.role}")
        if getattr(self.discriminator, "role", "discriminator") != "discriminator":
            raise ValueError(
                f"discriminator: {type(self.discriminator).__name__} is a {self.discriminator.role}"
            )
        if self.path_length is not None and not is_style_based(self.generator):
            raise ValueError(
                f"path_length needs a style-based generator (mapping + n_latent); "
                f"{type(self.generator).__name__} is not"
            )
        if self.pair_discriminator and self.task != "image2image":
            raise ValueError("pair_discriminator only applies to image-to-image generators")

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

    # -- optimizers ----------------------------------------------------------------------------
    def generator_parameters(self) -> list[nn.Parameter]:
        params = list(self.generator.parameters()) + list(self.generator_losses.parameters())
        return [p for p in params if p.requires_grad]

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.discriminator.parameters() if p.requires_grad]

    @staticmethod
    def _default_adam(params: Any) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=0.002, betas=(0.0, 0.99))

    @staticmethod
    def lazy_correct(optimizer: torch.optim.Optimizer, interval: int) -> None:
        """StyleGAN2 lazy-regularisation correction: ``lr·c``, ``betas^c``, ``c = k/(k+1)``."""
        ratio = interval / (interval + 1)
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] * ratio
            if "betas" in group:
                group["betas"] = tuple(beta**ratio for beta in group["betas"])
            # ``initial_lr`` lets schedulers created later start from the corrected value.
            group["initial_lr"] = group["lr"]

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        g_factory = self.g_optimizer_factory or self._default_adam
        d_factory = self.d_optimizer_factory or self._default_adam
        g_opt = g_factory(self.generator_parameters())
        d_opt = d_factory(self.discriminator_parameters())
        if self.lazy_reg_correction and self.path_length is not None:
            self.lazy_correct(g_opt, self.pl_interval)
        if self.lazy_reg_correction and self.r1 is not None:
            self.lazy_correct(d_opt, self.r1_interval)
        return [g_opt, d_opt]

    def named_optimizer(self, name: str) -> Any:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        return optimizers[self.optimizer_names.index(name)]

    # -- inputs --------------------------------------------------------------------------------
    def sample_inputs(
        self,
        batch_size: int,
        batch: Mapping[str, Tensor] | None = None,
        mixing_prob: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> GeneratorInputs:
        """Latents/labels/inputs for ``batch_size`` samples (draws from the global RNG unless a
        ``torch.Generator`` is given; image-to-image takes ``input_img`` from the batch)."""
        net = self.generator
        device = self.device
        if self.task == "image2image":
            if batch is None or "input_img" not in batch:
                raise ValueError("image-to-image generation needs a batch with 'input_img'")
            return GeneratorInputs(batch_size=batch_size, input_img=batch["input_img"][:batch_size])
        z_dim = int(net.z_dim)
        mix = (
            is_style_based(net)
            and mixing_prob > 0
            and float(torch.rand((), generator=generator)) < mixing_prob
        )
        count = 2 if mix else 1
        zs = [torch.randn(batch_size, z_dim, generator=generator).to(device) for _ in range(count)]
        crossover = int(torch.randint(1, int(net.n_latent), (), generator=generator)) if mix else None
        label = None
        if self.task == "conditional":
            label = torch.randint(0, int(net.num_classes), (batch_size,), generator=generator).to(device)
        return GeneratorInputs(batch_size=batch_size, zs=zs, crossover=crossover, label=label)

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
    def phases(self) -> list[Phase]:
        """Phases of one batch, in order (rosinality: D main, D reg, G main, G reg)."""
        phases = [Phase("D main", "d", 1, self.discriminator_main)]
        if self.r1 is not None:
            phases.append(Phase("D reg", "d", self.r1_interval, self.discriminator_reg))
        phases.append(Phase("G main", "g", self.generator_interval, self.generator_main))
        if self.path_length is not None:
            # every pl_interval-th *generator* step
            phases.append(Phase("G reg", "g", self.pl_interval * self.generator_interval, self.generator_reg))
        return phases

    def discriminator_main(self, batch: dict[str, Tensor]) -> Tensor:
        real_img = batch["real_img"]
        inputs = self.sample_inputs(real_img.shape[0], batch)
        with torch.no_grad():
            fake_img = run_generator(self.generator, inputs)
        d_fake = self.discriminate(fake_img, inputs)
        d_real = self.discriminate(real_img, self.real_inputs(batch))
        loss = self.adversarial.discriminator_loss(d_real, d_fake)
        self.log_train(
            "d", {self.adversarial.name: loss, "real_score": d_real.mean(), "fake_score": d_fake.mean()}
        )
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
        batch_size = batch["real_img"].shape[0]
        inputs = self.sample_inputs(batch_size, batch, mixing_prob=self.style_mixing_prob)
        needs = self.context_needs()
        features_needed = "student_features" in needs
        points = self.generator.distillation_points() if features_needed else []
        with capture_outputs(self.generator, points) as student_features:
            student_img = run_generator(self.generator, inputs)
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
        ctx = self.generator_context(ctx, batch, inputs, needs)
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
        fake_img = run_generator(self.generator, inputs, w_plus=w_plus)
        weighted, value, mean_length = self.path_length(fake_img, w_plus)
        self.log_train("g", {self.path_length.name: value, f"{self.path_length.name}_mean": mean_length})
        return weighted * self.pl_interval + 0.0 * fake_img.reshape(-1)[0]

    # -- extension points for methods -----------------------------------------------------------
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
            key = f"train/{side}/{name}"
            self.log(
                key,
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
        if self.batches_done % self.generator_interval == 0:
            self.update_ema()  # only after generator steps
        self.batches_done += 1
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
    # the number of batches done (an epoch boundary on resume from an end-of-epoch checkpoint)
    # makes the order a function of the position in training, so a resumed run sees the same
    # batches as the uninterrupted one. (A mid-epoch resume needs a stateful dataloader.)
    def on_fit_start(self) -> None:
        self.reseed(-1, self.batches_done)

    def on_sanity_check_end(self) -> None:
        self.reseed(-1, self.batches_done)

    def on_train_epoch_start(self) -> None:
        self.reseed(-1, self.batches_done)

    def on_train_start(self) -> None:
        """Log ``model/<name>_params`` and ``model/<name>_macs`` (CAGAN convention for StyleGAN2,
        torchprofile otherwise) of the generators once, so runs can be compared by size."""
        if self.trainer.is_global_zero and self.loggers:
            sizes = self.model_complexity()
            for logger in self.loggers:
                logger.log_metrics(sizes, step=0)

    def model_complexity(self) -> dict[str, float]:
        from lightning_gancomp.metrics import complexity

        sizes: dict[str, float] = {}
        for name, net in self.profile_networks().items():
            sizes[f"model/{name}_params"] = float(complexity.count_parameters(net))
            try:
                sizes[f"model/{name}_macs"] = float(complexity.cagan_stylegan2_macs(net))
            except (TypeError, ValueError, AttributeError, KeyError, IndexError):
                was_training = net.training
                net.eval()
                try:
                    inputs = complexity.example_inputs_for(net, batch_size=1)
                    sizes[f"model/{name}_macs"] = float(complexity.torchprofile_macs(net, *inputs))
                finally:
                    net.train(was_training)
        return sizes

    # -- sampling ------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        inputs: GeneratorInputs,
        net: NetName = "ema",
    ) -> Tensor:
        """Images ``[B, 3, H, W]`` (unclamped) from the chosen network in eval mode."""
        module = self.network(net)
        was_training = module.training
        module.eval()
        try:
            return run_generator(module, inputs)
        finally:
            module.train(was_training)

    def network(self, net: NetName) -> nn.Module:
        if net == "ema":
            return self.eval_generator()
        if net == "generator":
            return self.generator
        raise ValueError(f"{type(self).__name__} has no {net!r} network")

    def fixed_grid_inputs(self, batch: Mapping[str, Tensor] | None = None) -> GeneratorInputs:
        """Fixed inputs for sample grids: seeded latents (labels cycling through classes) or the
        first images of a batch for image-to-image."""
        size = self.grid_size
        if self.task == "image2image":
            assert batch is not None
            inputs = batch["input_img"][:size].detach()
            return GeneratorInputs(batch_size=inputs.shape[0], input_img=inputs)
        rng = torch.Generator().manual_seed(1234)
        inputs = self.sample_inputs(size, generator=rng)
        if self.task == "conditional":
            inputs.label = torch.arange(size, device=self.device) % int(self.generator.num_classes)
        return inputs

    def grid_images(self) -> tuple[Tensor, int]:
        """(images ``[N, 3, H, W]`` clamped to [-1, 1], images per row) for a sample grid."""
        inputs = self._grid_inputs or self.fixed_grid_inputs()
        inputs = _to_device(inputs, self.device)
        images = self.generate(inputs, "ema")
        if inputs.input_img is not None and inputs.input_img.shape[1] == images.shape[1]:
            # image-to-image grids show input | output pairs
            images = torch.stack([inputs.input_img, images], dim=1).flatten(0, 1)
            return images.clamp(-1, 1), 2
        return images.clamp(-1, 1), _row_length(images.shape[0])

    # -- evaluation ------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._start_evaluation()

    def on_test_epoch_start(self) -> None:
        self._start_evaluation()

    def _start_evaluation(self) -> None:
        # Same latents at every evaluation, and no effect on what training draws next.
        self.reseed(-2, self.batches_done)
        self._eval_images_seen = 0
        if self.metrics is not None:
            self.metrics.to(self.device)
            self.metrics.reset()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.evaluation_step(batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.evaluation_step(batch)

    def evaluation_step(self, batch: Mapping[str, Tensor]) -> None:
        """Feed the batch's real images and as many generated ones to the metrics."""
        if self.metrics is None:
            return
        if self.eval_max_images is not None and self._eval_images_seen >= self.eval_max_images:
            return
        self._eval_images_seen += self.feed_metrics(batch)

    @torch.no_grad()
    def feed_metrics(self, batch: Mapping[str, Tensor]) -> int:
        """Real images of ``batch`` and class-/input-matched generated images (G-EMA) into the
        metrics; returns the number of real images."""
        assert self.metrics is not None
        real_img = batch["real_img"]
        inputs = self.sample_inputs(real_img.shape[0], batch)
        if self.task == "conditional" and "label" in batch:
            inputs.label = batch["label"]  # class-matched fakes
        fake_img = self.generate(inputs, "ema").clamp(-1, 1)
        if getattr(self.metrics, "needs_real_images", True):  # real statistics may be cached
            self.metrics.update(real_img, real=True)
        self.metrics.update(fake_img, real=False)
        return int(real_img.shape[0])

    @torch.no_grad()
    def evaluate_loader(self, loader: Any, max_images: int | None = None) -> dict[str, float]:
        """Metrics over a dataloader's real images (at most ``max_images``) outside the
        validation loop (``callbacks.PeriodicEvaluation``, scripts)."""
        if self.metrics is None:
            return {}
        self.metrics.to(self.device)
        self.metrics.reset()
        seen = 0
        for batch in loader:
            batch = {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in batch.items()}
            seen += self.feed_metrics(batch)
            if max_images is not None and seen >= max_images:
                break
        results = {k: float(v) for k, v in self.metrics.compute().items()}
        self.metrics.reset()
        return results

    def on_validation_epoch_end(self) -> None:
        self._finish_evaluation("val")

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation("test")

    def _finish_evaluation(self, prefix: str) -> None:
        if self.metrics is None or self._eval_images_seen == 0:
            return
        results = self.metrics.compute()
        for name, value in results.items():
            self.log(f"{prefix}/{name}", float(value), prog_bar=name == "fid", sync_dist=False)
        self.metrics.reset()

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """Generated images in [-1, 1] for a predict batch (its size, labels or inputs); latents
        are seeded by the batch index, so repeated predictions give the same images."""
        self.reseed(-3, batch_idx)
        reference = batch.get("real_img", batch.get("input_img"))
        inputs = self.sample_inputs(reference.shape[0], batch)
        if self.task == "conditional" and "label" in batch:
            inputs.label = batch["label"]
        return self.generate(inputs, "ema").clamp(-1, 1)

    # -- checkpoints -----------------------------------------------------------------------------
    def checkpoint_networks(self) -> dict[str, GanNet]:
        """Networks stored as ``gancomp_nets`` payloads (``load_generator`` picks ``g_ema``)."""
        nets: dict[str, GanNet] = {"g": self.generator, "d": self.discriminator}
        if self.generator_ema is not None:
            nets["g_ema"] = self.generator_ema
        return nets

    def profile_networks(self) -> dict[str, nn.Module]:
        """Generators ``gancomp profile`` measures, by display name."""
        return {"generator": self.eval_generator()}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gancomp_nets"] = {
            name: net_payload(net) for name, net in self.checkpoint_networks().items()
        }
        checkpoint["gancomp_state"] = {"batches_done": self.batches_done}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        source = getattr(self.trainer, "ckpt_path", None) if self._trainer is not None else None
        self.check_checkpoint_fits(checkpoint.get("state_dict", {}), source or "checkpoint")
        self.batches_done = int(checkpoint.get("gancomp_state", {}).get("batches_done", 0))

    def check_checkpoint_fits(self, state_dict: Mapping[str, Tensor], source: str) -> None:
        """One clear error naming the first network whose weights do not fit the config."""
        for name, child in self.named_children():
            prefix = f"{name}."
            own = {k for k in child.state_dict()}
            theirs = {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
            if not own and not theirs:
                continue
            problem = describe_mismatch(child, theirs, f"{source} [{name}]")
            if problem:
                raise CheckpointMismatchError(
                    problem + " (the checkpoint was trained with another architecture than this config)"
                )
        known = tuple(f"{name}." for name, _ in self.named_children())
        unexpected = [k for k in state_dict if not k.startswith(known)]
        if unexpected:
            raise CheckpointMismatchError(
                f"{source}: unexpected keys {unexpected[:5]} for {type(self).__name__}"
            )


def _row_length(count: int) -> int:
    root = int(count**0.5)
    return root if root * root == count else min(count, 8)


def _to_device(inputs: GeneratorInputs, device: torch.device) -> GeneratorInputs:
    def move(t: Tensor | None) -> Tensor | None:
        return t.to(device) if t is not None else None

    return GeneratorInputs(
        batch_size=inputs.batch_size,
        zs=[z.to(device) for z in inputs.zs] if inputs.zs is not None else None,
        crossover=inputs.crossover,
        label=move(inputs.label),
        input_img=move(inputs.input_img),
    )


# -- compression ------------------------------------------------------------------------------------
def resolve_network(
    net: GanNet | None, path: str | None, what: str, loader: Callable[[str], GanNet]
) -> GanNet | None:
    """Exactly one of a configured network or a file; the file is loaded with ``loader``."""
    if net is not None and path is not None:
        raise ValueError(f"give either {what} or {what}_path, not both")
    if path is not None:
        return loader(os.path.expanduser(path))
    return net


class CompressionModule(AdversarialModule):
    """Distil a frozen teacher into a (pruned) student with adversarial training.

    Args:
        teacher / teacher_path: the teacher network, or a checkpoint file (ours or any official
            layout ``checkpoints.load_generator`` reads). Frozen; never optimised.
        student / student_path: the student, built from its config (e.g. a pruned width list)
            or loaded from a file (``gancomp prune`` output). Defaults to a copy of the teacher.
        discriminator / discriminator_path: the discriminator, or a file to load it from (the
            teacher's training checkpoint: "initialised from the teacher's D", CAGAN/StyleKD).
        teacher_noise: "independent" (official CAGAN: teacher and student draw their own noise
            maps) — kept explicit so methods can document it.
        **kwargs: the training recipe, passed to :class:`AdversarialModule` (optimizers, loss
            terms, R1/path length and their intervals, EMA, metrics...); ``losses`` holds the
            distillation terms (e.g. ``PixelLoss`` 3 + ``LPIPSLoss`` 3 for CAGAN).
    """

    def __init__(
        self,
        teacher: GanNet | None = None,
        teacher_path: str | None = None,
        student: GanNet | None = None,
        student_path: str | None = None,
        discriminator: GanNet | None = None,
        discriminator_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        from lightning_gancomp.checkpoints import load_discriminator, load_generator

        teacher_net = resolve_network(teacher, teacher_path, "teacher", load_generator)
        if teacher_net is None:
            raise ValueError("CompressionModule needs a teacher (teacher or teacher_path)")
        student_net = resolve_network(student, student_path, "student", load_generator)
        if student_net is None:
            student_net = copy.deepcopy(teacher_net)
        d_net = resolve_network(discriminator, discriminator_path, "discriminator", load_discriminator)
        if d_net is None:
            raise ValueError("CompressionModule needs a discriminator (discriminator or discriminator_path)")
        if generator_task(student_net) != generator_task(teacher_net):
            raise ValueError(
                f"student task {generator_task(student_net)!r} differs from "
                f"teacher task {generator_task(teacher_net)!r}"
            )
        super().__init__(
            generator=student_net,
            discriminator=d_net,
            **kwargs,
        )
        # Frozen here, in __init__, i.e. before any strategy wraps the module with DDP.
        self.teacher = freeze(teacher_net)
        self.bind_feature_terms()

    @property
    def student(self) -> nn.Module:
        return self.generator

    def frozen_modules(self) -> list[nn.Module]:
        return [*super().frozen_modules(), self.teacher]

    def network(self, net: NetName) -> nn.Module:
        return self.teacher if net == "teacher" else super().network(net)

    def checkpoint_networks(self) -> dict[str, GanNet]:
        return {**super().checkpoint_networks(), "teacher": self.teacher}

    def profile_networks(self) -> dict[str, nn.Module]:
        return {"teacher": self.teacher, "student": self.eval_generator()}

    def grid_images(self) -> tuple[Tensor, int]:
        """Teacher row(s) above student row(s) for the same inputs (image-to-image: input,
        teacher, student per row)."""
        inputs = _to_device(self._grid_inputs or self.fixed_grid_inputs(), self.device)
        teacher = self.generate(inputs, "teacher").clamp(-1, 1)
        student = self.generate(inputs, "ema").clamp(-1, 1)
        if inputs.input_img is not None and inputs.input_img.shape[1] == student.shape[1]:
            return torch.stack([inputs.input_img, teacher, student], dim=1).flatten(0, 1), 3
        return torch.cat([teacher, student]), teacher.shape[0]

    # -- feature distillation setup ----------------------------------------------------------------
    @torch.no_grad()
    def distillation_channels(self) -> tuple[list[int], list[int]]:
        """Channels of every distillation point (student, teacher), from one probe forward."""
        points_s = self.generator.distillation_points()
        points_t = self.teacher.distillation_points()
        if len(points_s) != len(points_t):
            raise ValueError(
                f"student has {len(points_s)} distillation points, teacher {len(points_t)}: not comparable"
            )
        probe = self._probe_inputs()
        was_training = self.generator.training
        self.generator.eval()
        try:
            with capture_outputs(self.generator, points_s) as student_features:
                run_generator(self.generator, probe)
            with capture_outputs(self.teacher, points_t) as teacher_features:
                run_generator(self.teacher, probe)
        finally:
            self.generator.train(was_training)
        return [f.shape[1] for f in student_features], [f.shape[1] for f in teacher_features]

    def _probe_inputs(self) -> GeneratorInputs:
        rng = torch.Generator().manual_seed(0)
        if self.task == "image2image":
            channels = int(getattr(self.generator, "in_channels", 3))
            size = int(getattr(self.generator, "resolution", 64))
            return GeneratorInputs(batch_size=1, input_img=torch.zeros(1, channels, size, size))
        return self.sample_inputs(1, generator=rng)

    def bind_feature_terms(self) -> None:
        terms = [t for t in self.generator_losses if isinstance(t, FeatureDistillation)]
        if not terms:
            return
        student_channels, teacher_channels = self.distillation_channels()
        for term in terms:
            term.bind(student_channels, teacher_channels)

    # -- loss context --------------------------------------------------------------------------------
    def generator_context(
        self, ctx: LossContext, batch: Mapping[str, Tensor], inputs: GeneratorInputs, needs: set[str]
    ) -> LossContext:
        if needs & {"teacher_img", "teacher_features", "mask"}:
            points = self.teacher.distillation_points() if "teacher_features" in needs else []
            with torch.no_grad(), capture_outputs(self.teacher, points) as teacher_features:
                ctx.teacher_img = run_generator(self.teacher, inputs)
            if "teacher_features" in needs:
                ctx.teacher_features = teacher_features
        if "mask" in needs:
            ctx.mask = self.content_mask(ctx, batch)
        return ctx

    def content_mask(self, ctx: LossContext, batch: Mapping[str, Tensor]) -> Tensor:
        """Content mask ``[B, 1, H, W]`` for masked distillation terms.

        Default: all ones (CAGAN's choice for non-face data). CAGAN's content-aware KD overrides
        this with the face-parsing mask of ``ctx.teacher_img``. A batch ``mask`` cannot be used:
        it belongs to the real images, not to the generated ones.
        """
        assert ctx.student_img is not None
        img = ctx.student_img
        return torch.ones(img.shape[0], 1, *img.shape[-2:], device=img.device, dtype=img.dtype)
