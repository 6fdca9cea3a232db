"""Learning-rate schedules of the engine: one per optimizer, stepped per batch or per epoch.

Each schedule is a multiplicative factor of the optimizer's base learning rate as a function of
the number of steps (batches, or epochs) done; the engine wraps it in ``torch.optim.lr_scheduler.
LambdaLR`` and hands it to Lightning, which saves and restores its state with the checkpoint, so a
resumed run continues the schedule exactly. With manual optimisation Lightning does not step
schedulers: :class:`~lightning_gancomp.methods.engine.AdversarialModule` steps ``interval="step"``
schedules after every training batch and ``interval="epoch"`` ones at every epoch end.

Recipes (the configs say which they use):

- constant: StyleGAN2, CAGAN, DCP (rosinality / NVlabs train at a fixed rate);
- linear decay, junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py`` ``get_scheduler``
  (``lr_policy='linear'``): factor ``1 - max(0, epoch + epoch_count - n_epochs) /
  (n_epochs_decay + 1)`` with ``epoch_count = 1`` — constant for ``n_epochs``, then linearly
  towards 0 over ``n_epochs_decay``; mimicry's SN-GAN ``lr_decay='linear'``
  (``torch_mimicry/training/scheduler.py``): ``1 - step / num_steps`` per iteration, i.e. the
  same formula with ``constant = 0`` and ``offset = 0``;
- step decay: PPCD-GAN (Sec. 4.1): ×0.1 at epochs 30, 60 and 90.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Interval = Literal["step", "epoch"]


class LRSchedule:
    """Base: ``factor(count)`` multiplies the base learning rate of optimizer ``optimizer``.

    Args:
        optimizer: name of the optimizer it drives (``"g"`` or ``"d"``, see
            ``AdversarialModule.optimizer_names``).
        interval: ``"step"`` — ``count`` = training batches done; ``"epoch"`` — epochs done.
    """

    def __init__(self, optimizer: str = "g", interval: Interval = "epoch") -> None:
        if interval not in ("step", "epoch"):
            raise ValueError(f"schedule interval must be 'step' or 'epoch', got {interval!r}")
        self.optimizer = optimizer
        self.interval = interval

    def factor(self, count: int) -> float:
        return 1.0

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class ConstantLR(LRSchedule):
    """The base learning rate throughout (factor 1)."""


class LinearDecayLR(LRSchedule):
    """Constant for ``constant`` counts, then linear decay over ``decay`` counts.

    ``factor(n) = 1 - max(0, n + offset - constant) / (decay + offset)``. ``offset=1`` is the
    CycleGAN/pix2pix rule (``epoch_count = 1``; the last epoch runs at ``1 / (decay + 1)``);
    ``offset=0`` with ``constant=0`` is mimicry's ``1 - step / num_steps``. Never below 0.
    """

    def __init__(
        self,
        optimizer: str = "g",
        constant: int = 100,
        decay: int = 100,
        offset: int = 1,
        interval: Interval = "epoch",
    ) -> None:
        super().__init__(optimizer, interval)
        if constant < 0 or decay < 1 or offset < 0:
            raise ValueError(
                f"LinearDecayLR: need constant >= 0, decay >= 1, offset >= 0, got "
                f"{constant}, {decay}, {offset}"
            )
        self.constant, self.decay, self.offset = int(constant), int(decay), int(offset)

    def factor(self, count: int) -> float:
        return max(0.0, 1.0 - max(0, count + self.offset - self.constant) / float(self.decay + self.offset))


class StepLR(LRSchedule):
    """Multiply by ``gamma`` at each milestone: ``factor(n) = gamma ** #{m <= n}``."""

    def __init__(
        self,
        optimizer: str = "g",
        milestones: Sequence[int] = (30, 60, 90),
        gamma: float = 0.1,
        interval: Interval = "epoch",
    ) -> None:
        super().__init__(optimizer, interval)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)

    def factor(self, count: int) -> float:
        return self.gamma ** sum(1 for m in self.milestones if m <= count)
