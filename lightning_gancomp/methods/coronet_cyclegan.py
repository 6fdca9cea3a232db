"""CoroNetGAN for CycleGAN (unpaired translation): both generators searched to the MAC target.

The search and fine-tune machinery is :class:`~lightning_gancomp.methods.coronet.CoroNetSearchMixin`
(hypernetwork weights via :meth:`run_student`, proximal steps after every ``g`` step, materialise
when both generators meet the target). The training recipe is CycleGAN's (Zhu et al. 2017;
junyanz/pytorch-CycleGAN-and-pix2pix ``models/cycle_gan_model.py`` ``optimize_parameters``):
per batch ``G main`` (both generators: LSGAN adversarial terms, cycle consistency both ways with
λ = 10, identity both ways with 0.5·λ), then ``D main`` (both discriminators on reals and on fakes
from a 50-image history pool, D loss halved), one optimizer over both generators and one over both
discriminators, Adam 2e-4 (0.5, 0.999). Every generator forward goes through :meth:`run_student`,
so the searched generators run with their generated weights.

``generator`` maps A → B (``input_img`` → ``real_img`` domain) and is the one evaluated, sampled
and exported (``student.pt``); ``generator_ba`` maps B → A (its materialised student is saved as
``student_ba.pt`` beside it).
"""

from __future__ import annotations

import copy
import os
from typing import Any

from torch import Tensor, nn

from lightning_gancomp.losses import CycleConsistencyLoss, IdentityLoss, LossContext, LSGANLoss
from lightning_gancomp.methods.compression import CompressionModule
from lightning_gancomp.methods.coronet import CoroNetSearchMixin, pix2pix_adam, search_options
from lightning_gancomp.methods.gan import CycleGanParts
from lightning_gancomp.nets.base import GanNet
from lightning_gancomp.nets.contract import GeneratorInputs
from lightning_gancomp.pruning.hyper import DEFAULT_EMBEDDING, DEFAULT_THRESHOLD, MacTarget


class CoroNetCycleGanModule(CoroNetSearchMixin, CycleGanParts, CompressionModule):
    """CoroNetGAN on CycleGAN: both generators searched to the same target, then fine-tuned.

    Args:
        student / generator_ba: the A→B and B→A generator architectures searched (full width).
        discriminator / discriminator_a: PatchGANs of domain B and domain A.
        cycle / identity / use_identity / pool_size: the CycleGAN terms (λ = 10, 0.5·λ, 50).
        Search arguments as :class:`~lightning_gancomp.methods.coronet.CoroNetModule`.
        **kwargs: the engine's recipe (optimizers, schedules, metrics...; a ``teacher`` for output
            distillation of the A→B generator through ``losses``).
    """

    searched = ("generator", "generator_ba")

    def __init__(
        self,
        student: GanNet | None = None,
        generator_ba: GanNet | None = None,
        discriminator: GanNet | None = None,
        discriminator_a: GanNet | None = None,
        target_ratio: float | None = None,
        target_macs: int | None = None,
        tolerance: float = 0.05,
        sparsity: float = 0.5,
        check_every: int = 100,
        max_search_batches: int | None = None,
        mac_resolution: int = 256,
        embedding_dim: int = DEFAULT_EMBEDDING,
        threshold: float = DEFAULT_THRESHOLD,
        min_channels: int = 1,
        min_keep_fraction: float = 0.0,
        latent_std: float = 1.0,
        mask_forward: bool = True,
        cycle: CycleConsistencyLoss | None = None,
        identity: IdentityLoss | None = None,
        use_identity: bool = True,
        pool_size: int = 50,
        **kwargs: Any,
    ) -> None:
        target = MacTarget(ratio=target_ratio, macs=target_macs, tolerance=tolerance)
        if generator_ba is None or discriminator_a is None:
            raise ValueError("CoroNetCycleGanModule needs generator_ba and discriminator_a")
        kwargs.setdefault("adversarial", LSGANLoss(discriminator_scale=0.5))
        kwargs.setdefault("g_optimizer", pix2pix_adam)
        kwargs.setdefault("d_optimizer", pix2pix_adam)
        kwargs.setdefault("ema_decay", None)
        kwargs.setdefault("style_mixing_prob", 0.0)
        super().__init__(student=student, discriminator=discriminator, **kwargs)
        self.init_cycle_parts(generator_ba, discriminator_a, cycle, identity, use_identity, pool_size)
        options = search_options(
            embedding_dim, threshold, min_channels, min_keep_fraction, latent_std, mask_forward
        )
        self.init_search(target, sparsity, check_every, max_search_batches, mac_resolution, options)

    def translate(self, net: nn.Module, img: Tensor) -> Tensor:
        return self.run_student(net, GeneratorInputs(batch_size=img.shape[0], input_img=img))

    def generator_main(self, batch: dict[str, Tensor]) -> Tensor:
        real_a, real_b = batch["input_img"], batch["real_img"]
        fake_b, fake_a = self.translate(self.generator, real_a), self.translate(self.generator_ba, real_b)
        self._fakes = (fake_a.detach(), fake_b.detach())
        adv_b = self.adversarial.generator_loss(self.discriminator(fake_b))
        adv_a = self.adversarial.generator_loss(self.discriminator_a(fake_a))
        rec_a, rec_b = self.translate(self.generator_ba, fake_b), self.translate(self.generator, fake_a)
        cycle_a = self.cycle(LossContext(reconstructed_img=rec_a, reconstruction_target=real_a))
        cycle_b = self.cycle(LossContext(reconstructed_img=rec_b, reconstruction_target=real_b))
        total = self.adversarial.weight * (adv_a + adv_b) + self.cycle.weight * (cycle_a + cycle_b)
        logs = {
            "adv_ab": adv_b,
            "adv_ba": adv_a,
            f"{self.cycle.name}_a": cycle_a,
            f"{self.cycle.name}_b": cycle_b,
        }
        if self.identity is not None:
            idt_b = self.identity(
                LossContext(identity_img=self.translate(self.generator, real_b), identity_target=real_b)
            )
            idt_a = self.identity(
                LossContext(identity_img=self.translate(self.generator_ba, real_a), identity_target=real_a)
            )
            total = total + self.identity.weight * (idt_a + idt_b)
            logs.update({f"{self.identity.name}_a": idt_a, f"{self.identity.name}_b": idt_b})
        total = total + self.distillation_terms(batch, fake_b, logs)
        logs["total"] = total
        self.log_train("g", logs)
        return total

    def distillation_terms(self, batch: dict[str, Tensor], fake_b: Tensor, logs: dict[str, Tensor]) -> Tensor:
        """Configured ``losses`` (e.g. output KD from an A→B teacher) on the A→B translation."""
        total = fake_b.new_zeros(())
        if not len(self.generator_losses):
            return total
        inputs = GeneratorInputs(batch_size=fake_b.shape[0], input_img=batch["input_img"])
        ctx = LossContext(student_img=fake_b, real_img=batch["real_img"], input_img=batch["input_img"])
        ctx = self.generator_context(ctx, batch, inputs, self.context_needs())
        for term in self.generator_losses:
            value = term(ctx)
            logs[term.name] = value
            total = total + term.weight * value
        return total

    def materialise_ba(self) -> GanNet:
        """The plain B→A student (the engine saves the A→B one)."""
        if self.stage == "search":
            return self.hypers["generator_ba"].materialise()
        return copy.deepcopy(self.generator_ba)

    def on_fit_end(self) -> None:
        super().on_fit_end()
        if self.trainer.is_global_zero:
            from lightning_gancomp.checkpoints import save_generator

            save_generator(
                self.materialise_ba().cpu().eval(),
                os.path.join(self.trainer.default_root_dir, "student_ba.pt"),
            )
