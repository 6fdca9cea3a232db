"""Helpers for the CLI-level tests: repository paths, shrunk config overrides, tiny checkpoints."""

from __future__ import annotations

import os

import torch

from lightning_gancomp.nets.base import net_payload
from lightning_gancomp.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(REPO, "configs", "teacher", "stylegan2_embedded.yaml")
DISTILL = os.path.join(REPO, "configs", "distill", "stylegan2_embedded.yaml")

#: ashleve-template style shrinking: tiny widths, tiny data, few batches, no metrics network.
SHRINK_TEACHER = [
    "--model.init_args.generator.init_args.channels=[16,16,16,16,16,16,8,8]",
    "--model.init_args.discriminator.init_args.channels=[8,8,8,8]",
    "--data.init_args.embedded_length=32",
    "--data.init_args.val_size=8",
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=1",
    "--trainer.max_epochs=1",
]


def config_path(*parts: str) -> str:
    return os.path.join(REPO, "configs", *parts)


def write_tiny_teacher(path: str) -> str:
    """A training-checkpoint-shaped file (``gancomp_nets``) holding a 32 px teacher G and D that
    fit the distillation quickstart (z/w 64, mapping 2)."""
    torch.manual_seed(0)
    generator = StyleGAN2Generator(
        resolution=32, z_dim=64, w_dim=64, n_mapping=2, channels=[48] * 6 + [24, 24]
    )
    discriminator = StyleGAN2Discriminator(resolution=32, channels=[8, 8, 8, 8])
    torch.save({"gancomp_nets": {"g_ema": net_payload(generator), "d": net_payload(discriminator)}}, path)
    return path
