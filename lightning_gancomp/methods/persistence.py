"""Checkpoint payloads of the engine: every network as a ``gancomp_nets`` payload and the batch
counter, and one clear error when a checkpoint does not fit the configured networks.

``checkpoint["gancomp_nets"]`` holds ``nets.base.net_payload`` of each network, so
``checkpoints.load_generator(ckpt)`` rebuilds the generator from the Lightning checkpoint alone.
Mixed into :class:`~lightning_gancomp.methods.engine.AdversarialModule`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from lightning_gancomp.nets.base import CheckpointMismatchError, GanNet, describe_mismatch, net_payload


class PersistenceMixin:
    """``gancomp_nets`` payloads, ``batches_done``, and the architecture check on load."""

    def checkpoint_networks(self) -> dict[str, GanNet]:
        """Networks stored as ``gancomp_nets`` payloads (``load_generator`` picks ``g_ema``)."""
        nets: dict[str, GanNet] = {"g": self.generator, "d": self.discriminator}
        if self.generator_ema is not None:
            nets["g_ema"] = self.generator_ema
        return nets

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gancomp_nets"] = {
            name: net_payload(net) for name, net in self.checkpoint_networks().items()
        }
        checkpoint["gancomp_state"] = {"batches_done": self.batches_done}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        source = self.trainer.ckpt_path if self._trainer is not None else None
        self.check_checkpoint_fits(checkpoint.get("state_dict", {}), source or "checkpoint")
        self.batches_done = int(checkpoint.get("gancomp_state", {}).get("batches_done", 0))

    def check_checkpoint_fits(self, state_dict: Mapping[str, Tensor], source: str) -> None:
        """One clear error naming the first network whose weights do not fit the config."""
        for name, child in self.named_children():
            prefix = f"{name}."
            own = set(child.state_dict())
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
