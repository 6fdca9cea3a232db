"""On resume the configuration wins over the checkpoint's optimizer settings (issue 8, item 9).

Lightning restores each optimizer with ``optimizer.load_state_dict``, which brings back the
checkpoint's ``param_groups``: a learning rate (or betas, eps, weight decay) changed in the config
for the resumed run would be silently ignored. :class:`ConfiguredOptimizerSettings` records the
settings ``configure_optimizers`` produced from the config (``on_fit_start``, before the restore),
puts them back after the restore (``on_train_start``) and says so in one line.

Learning rates are compared as the *base* rate (``initial_lr`` when a schedule or the lazy
regularisation correction set it, else ``lr``): a scheduled ``lr`` that decayed since the start is
progress, not a change. A changed base keeps the schedule's progress: the new ``lr`` is the new
base times the checkpoint's ``lr / initial_lr``, and the schedulers' ``base_lrs`` follow.
"""

from __future__ import annotations

import sys
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities.rank_zero import rank_zero_only

Settings = list[list[dict[str, Any]]]  # per optimizer, per param group: settings without "params"


def group_settings(optimizers: list[Any]) -> Settings:
    return [[{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups] for opt in optimizers]


def base_lr(group: dict[str, Any]) -> float:
    return group.get("initial_lr", group["lr"])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


class ConfiguredOptimizerSettings(Callback):
    """Added by ``GancompTrainer``; acts only when ``fit`` resumes from a checkpoint."""

    def __init__(self) -> None:
        self._configured: Settings | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._configured = group_settings(trainer.optimizers) if trainer.ckpt_path else None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._configured is None:
            return
        names = list(getattr(pl_module, "optimizer_names", [])) or [
            str(i) for i in range(len(trainer.optimizers))
        ]
        changes: list[str] = []
        for index, (optimizer, configured) in enumerate(
            zip(trainer.optimizers, self._configured, strict=True)
        ):
            if len(configured) != len(optimizer.param_groups):
                continue  # another parameter layout: Lightning's restore would already have failed
            name = names[index] if index < len(names) else str(index)
            for group_index, (group, wanted) in enumerate(
                zip(optimizer.param_groups, configured, strict=True)
            ):
                changes += self._apply(trainer, optimizer, group_index, group, wanted, name)
        self._configured = None
        if changes:
            summary = "; ".join(changes)
            self._report(
                f"gancomp: note: the config's optimizer settings replace the checkpoint's: {summary}"
            )

    @staticmethod
    def _apply(
        trainer: pl.Trainer,
        optimizer: Any,
        index: int,
        group: dict[str, Any],
        wanted: dict[str, Any],
        name: str,
    ) -> list[str]:
        changes = []
        for key, value in wanted.items():
            if key in ("lr", "initial_lr") or key not in group or _same(group[key], value):
                continue
            changes.append(f"{name} {key} {group[key]} -> {value}")
            group[key] = value
        old_base, new_base = base_lr(group), base_lr(wanted)
        if old_base != new_base:
            changes.append(f"{name} lr {old_base:g} -> {new_base:g}")
            progress = group["lr"] / old_base if old_base else 1.0
            group["lr"] = new_base * progress
            if "initial_lr" in group:
                group["initial_lr"] = new_base
            for config in trainer.lr_scheduler_configs:
                if config.scheduler.optimizer is optimizer and hasattr(config.scheduler, "base_lrs"):
                    config.scheduler.base_lrs[index] = new_base
        return changes

    @staticmethod
    @rank_zero_only
    def _report(line: str) -> None:
        sys.stderr.write(line + "\n")
