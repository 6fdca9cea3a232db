"""Optimizers and learning-rate schedules of the engine (mixed into
:class:`~lightning_gancomp.methods.engine.AdversarialModule`).

One optimizer per network side (``g``: the generator and trainable loss terms plus what a method
adds through ``generator_parameters``; ``d``: the discriminator), injected as
``OptimizerCallable``; default Adam(0.002, (0, 0.99)) as StyleGAN2. Lazily regularised sides get
StyleGAN2's correction (paper App. B): ``lr·c``, ``betas^c``, ``c = k/(k+1)``. Schedules
(``methods.schedules``) are wrapped in ``LambdaLR`` and returned to Lightning, which saves and
restores them; with manual optimisation the engine steps them itself.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class OptimizationMixin:
    """``configure_optimizers``, named optimizer lookup and schedule stepping."""

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

    def configure_optimizers(self) -> Any:
        g_factory = self.g_optimizer_factory or self._default_adam
        d_factory = self.d_optimizer_factory or self._default_adam
        g_opt = g_factory(self.generator_parameters())
        d_opt = d_factory(self.discriminator_parameters())
        if self.lazy_reg_correction and self.path_length is not None:
            self.lazy_correct(g_opt, self.pl_interval)
        if self.lazy_reg_correction and self.r1 is not None:
            self.lazy_correct(d_opt, self.r1_interval)
        optimizers = [g_opt, d_opt]
        if not self.schedules:
            return optimizers
        by_name = dict(zip(self.optimizer_names, optimizers, strict=True))
        schedulers = [
            torch.optim.lr_scheduler.LambdaLR(by_name[s.optimizer], lr_lambda=s.factor)
            for s in self.schedules
        ]
        return optimizers, schedulers

    def named_optimizer(self, name: str) -> Any:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        return optimizers[self.optimizer_names.index(name)]

    def step_schedules(self, interval: str) -> None:
        """Advance the schedules of this interval by one (``"step"``: after each batch)."""
        if not self.schedules:
            return
        schedulers = self.lr_schedulers()
        schedulers = schedulers if isinstance(schedulers, list) else [schedulers]
        for schedule, scheduler in zip(self.schedules, schedulers, strict=True):
            if schedule.interval == interval:
                scheduler.step()

    def on_train_epoch_end(self) -> None:
        self.step_schedules("epoch")
