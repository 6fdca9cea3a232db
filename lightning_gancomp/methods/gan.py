"""Plain GAN training from scratch, e.g. the teacher a compression method starts from.

Defaults follow the StyleGAN2 recipe (Karras et al. 2020; rosinality/stylegan2-pytorch
``train.py``, NVlabs/stylegan2-ada-pytorch ``training/loss.py`` ``StyleGAN2Loss``):
non-saturating logistic loss, lazy R1 (γ = 10, every 16 batches), lazy path length regularisation
(weight 2, every 4 batches, batch shrink 2, decay 0.01), style mixing 0.9, Adam(0.002, (0, 0.99))
with the lazy-regularisation correction ``lr·c, β^c`` (``c = k/(k+1)``), G EMA with a 10k-image
half-life. Other families are configured in YAML: SN-GAN/BigGAN with ``HingeLoss`` and no
regularisers, pix2pix with ``pair_discriminator`` + ``PixelLoss(target=real_img, weight=100)``.

The engine (phases, EMA, checkpoints, evaluation, sampling) is :class:`AdversarialModule`; this
class only fixes the recipe defaults so ``configs/teacher/*.yaml`` stay short.

:class:`CycleGanModule` trains unpaired translation teachers (two generators, two discriminators,
cycle/identity terms, image history pool) on the same engine.
"""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning.cli import OptimizerCallable
from torch import Tensor, nn

from lightning_gancomp.losses import (
    AdversarialLoss,
    CycleConsistencyLoss,
    IdentityLoss,
    LossContext,
    LSGANLoss,
    PathLengthPenalty,
    R1Penalty,
)
from lightning_gancomp.methods.engine import AdversarialModule, Phase
from lightning_gancomp.methods.schedules import LRSchedule
from lightning_gancomp.metrics import GenerativeMetrics
from lightning_gancomp.nets.base import GanNet
from lightning_gancomp.nets.contract import generator_task, is_style_based


class GanModule(AdversarialModule):
    """Train ``generator`` against ``discriminator`` from scratch.

    Args:
        generator, discriminator: the networks (``class_path`` + widths in YAML).
        r1: R1 penalty; default ``R1Penalty(gamma=10)`` (pass ``null`` to disable, e.g. BigGAN).
        path_length: path length penalty; default ``PathLengthPenalty(2)`` for style-based
            generators, none otherwise (pass ``null`` to disable).
        use_default_regularizers: fill ``r1``/``path_length`` with the StyleGAN2 defaults when
            they are not given; set ``false`` to train without regularisation.
        Other arguments as :class:`~lightning_gancomp.methods.engine.AdversarialModule`.
    """

    def __init__(
        self,
        generator: GanNet,
        discriminator: GanNet,
        r1: R1Penalty | None = None,
        path_length: PathLengthPenalty | None = None,
        use_default_regularizers: bool = True,
        **kwargs: Any,
    ) -> None:
        if use_default_regularizers:
            r1 = r1 if r1 is not None else R1Penalty(gamma=10.0)
            if path_length is None and is_style_based(generator):
                path_length = PathLengthPenalty(weight=2.0)
        super().__init__(
            generator=generator, discriminator=discriminator, r1=r1, path_length=path_length, **kwargs
        )


class ImagePool:
    """History of generated images for the discriminator (Shrivastava et al. 2017; CycleGAN
    ``util/image_pool.py``): until ``size`` images are stored each new image is stored and
    returned; afterwards, with probability 1/2 a stored image is returned and replaced by the new
    one, else the new image is returned. ``size = 0`` disables the pool.
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size = size
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        if self.size == 0:
            return images
        chosen = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                chosen.append(image)
            elif float(torch.rand(())) > 0.5:
                slot = int(torch.randint(0, self.size, ()))
                chosen.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                chosen.append(image)
        return torch.cat(chosen)

    def state(self) -> Tensor | None:
        return torch.cat(self.images).cpu() if self.images else None

    def load(self, stacked: Tensor | None, device: torch.device) -> None:
        self.images = [] if stacked is None else [img.unsqueeze(0).to(device) for img in stacked]


class CycleGanParts:
    """What every CycleGAN-style module shares (junyanz ``cycle_gan_model.py``): both
    discriminators in the ``d`` optimizer, their LSGAN step on history-pool fakes (``backward_D_A``
    / ``backward_D_B``), the second generator and discriminator in the checkpoint payloads, and
    the image pools saved with the checkpoint. The module sets ``generator_ba``,
    ``discriminator_a``, ``pool_a``, ``pool_b`` and, in G main, ``_fakes = (fake_a, fake_b)``."""

    def init_cycle_parts(
        self,
        generator_ba: GanNet,
        discriminator_a: GanNet,
        cycle: CycleConsistencyLoss | None,
        identity: IdentityLoss | None,
        use_identity: bool,
        pool_size: int,
    ) -> None:
        """The second generator and discriminator, the cycle (λ = 10) and identity (0.5·λ) terms
        and the two image pools; called after the engine's constructor."""
        if self.task != "image2image" or generator_task(generator_ba) != "image2image":
            raise ValueError(f"{type(self).__name__} needs two image-to-image generators")
        self.generator_ba = generator_ba
        self.discriminator_a = discriminator_a
        self.cycle = cycle if cycle is not None else CycleConsistencyLoss(10.0)
        self.identity = (identity if identity is not None else IdentityLoss(5.0)) if use_identity else None
        self.pool_a = ImagePool(pool_size)  # fakes of domain A for discriminator_a
        self.pool_b = ImagePool(pool_size)  # fakes of domain B for discriminator
        self._fakes: tuple[Tensor, Tensor] | None = None

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [
            p
            for net in (self.discriminator, self.discriminator_a)
            for p in net.parameters()
            if p.requires_grad
        ]

    def phases(self) -> list[Phase]:
        """G first (its fakes feed the pools), then D, as ``optimize_parameters``."""
        return [
            Phase("G main", "g", 1, self.generator_main),
            Phase("D main", "d", 1, self.discriminator_main),
        ]

    def discriminator_main(self, batch: dict[str, Tensor]) -> Tensor:
        assert self._fakes is not None, "G main runs before D main"
        fake_a, fake_b = self._fakes
        loss_b = self.adversarial.discriminator_loss(
            self.discriminator(batch["real_img"]), self.discriminator(self.pool_b.query(fake_b))
        )
        loss_a = self.adversarial.discriminator_loss(
            self.discriminator_a(batch["input_img"]), self.discriminator_a(self.pool_a.query(fake_a))
        )
        self.log_train("d", {"adv_b": loss_b, "adv_a": loss_a})
        return loss_a + loss_b

    def checkpoint_networks(self) -> dict[str, GanNet]:
        return {**super().checkpoint_networks(), "g_ba": self.generator_ba, "d_a": self.discriminator_a}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["gancomp_state"]["pools"] = {"a": self.pool_a.state(), "b": self.pool_b.state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        pools = checkpoint.get("gancomp_state", {}).get("pools", {})
        self.pool_a.load(pools.get("a"), self.device)
        self.pool_b.load(pools.get("b"), self.device)


class CycleGanModule(CycleGanParts, AdversarialModule):
    """Unpaired image-to-image translation (Zhu et al. 2017, CycleGAN), e.g. the teacher of an
    unpaired compression task. Official: junyanz/pytorch-CycleGAN-and-pix2pix
    ``models/cycle_gan_model.py``.

    ``generator`` maps A → B (``input_img`` → ``real_img`` domain) and is the one evaluated,
    sampled and exported; ``generator_ba`` maps B → A. ``discriminator`` judges domain B,
    ``discriminator_a`` domain A. Per batch: ``G main`` (both generators, LSGAN adversarial terms,
    cycle consistency both ways, identity both ways), then ``D main`` (both discriminators on real
    images and on fakes drawn from a 50-image history pool, D loss halved), as the official
    ``optimize_parameters``. Optimizers cover both generators / both discriminators
    (official: ``itertools.chain``), Adam 2e-4 (0.5, 0.999) by default.

    Args:
        cycle: cycle-consistency term (λ = 10), applied to A→B→A and B→A→B.
        identity: identity term (0.5 · λ = 5), ``G_AB(b) ≈ b`` and ``G_BA(a) ≈ a``; None = off.
        pool_size: discriminator history size (50; 0 = off).
        schedules: learning-rate schedules of ``g`` (both generators) and ``d`` (both
            discriminators); the official recipe is ``LinearDecayLR`` per epoch (``lr_policy='linear'``).
        Others as :class:`~lightning_gancomp.methods.engine.AdversarialModule` (no EMA by default).
    """

    def __init__(
        self,
        generator: GanNet,
        generator_ba: GanNet,
        discriminator: GanNet,
        discriminator_a: GanNet,
        g_optimizer: OptimizerCallable | None = None,
        d_optimizer: OptimizerCallable | None = None,
        schedules: list[LRSchedule] | None = None,
        adversarial: AdversarialLoss | None = None,
        cycle: CycleConsistencyLoss | None = None,
        identity: IdentityLoss | None = None,
        use_identity: bool = True,
        pool_size: int = 50,
        ema_decay: float | None = None,
        metrics: GenerativeMetrics | None = None,
        eval_max_images: int | None = None,
        grid_size: int = 8,
        step_seed: int | None = 0,
        check_finite: bool = True,
    ) -> None:
        super().__init__(
            generator=generator,
            discriminator=discriminator,
            g_optimizer=g_optimizer or _cyclegan_adam,
            d_optimizer=d_optimizer or _cyclegan_adam,
            schedules=schedules,
            adversarial=adversarial if adversarial is not None else LSGANLoss(discriminator_scale=0.5),
            ema_decay=ema_decay,
            style_mixing_prob=0.0,
            metrics=metrics,
            eval_max_images=eval_max_images,
            grid_size=grid_size,
            step_seed=step_seed,
            check_finite=check_finite,
        )
        self.init_cycle_parts(generator_ba, discriminator_a, cycle, identity, use_identity, pool_size)

    def generator_parameters(self) -> list[nn.Parameter]:
        return [p for net in (self.generator, self.generator_ba) for p in net.parameters() if p.requires_grad]

    def generator_main(self, batch: dict[str, Tensor]) -> Tensor:
        real_a, real_b = batch["input_img"], batch["real_img"]
        fake_b = self.generator(real_a)
        fake_a = self.generator_ba(real_b)
        self._fakes = (fake_a.detach(), fake_b.detach())
        adv_b = self.adversarial.generator_loss(self.discriminator(fake_b))
        adv_a = self.adversarial.generator_loss(self.discriminator_a(fake_a))
        cycle_a = self.cycle(
            LossContext(reconstructed_img=self.generator_ba(fake_b), reconstruction_target=real_a)
        )
        cycle_b = self.cycle(
            LossContext(reconstructed_img=self.generator(fake_a), reconstruction_target=real_b)
        )
        total = self.adversarial.weight * (adv_a + adv_b) + self.cycle.weight * (cycle_a + cycle_b)
        logs = {
            "adv_ab": adv_b,
            "adv_ba": adv_a,
            f"{self.cycle.name}_a": cycle_a,
            f"{self.cycle.name}_b": cycle_b,
        }
        if self.identity is not None:
            idt_b = self.identity(LossContext(identity_img=self.generator(real_b), identity_target=real_b))
            idt_a = self.identity(LossContext(identity_img=self.generator_ba(real_a), identity_target=real_a))
            total = total + self.identity.weight * (idt_a + idt_b)
            logs.update({f"{self.identity.name}_a": idt_a, f"{self.identity.name}_b": idt_b})
        logs["total"] = total
        self.log_train("g", logs)
        return total


def _cyclegan_adam(params: Any) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))
