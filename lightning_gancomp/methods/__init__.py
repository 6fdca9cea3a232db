"""LightningModules: the shared adversarial engine, the compression base and the methods."""

from lightning_gancomp.methods.base import (
    AdversarialModule,
    CompressionModule,
    GeneratorInputs,
    NonFiniteLossError,
    Phase,
)
from lightning_gancomp.methods.gan import CycleGanModule, GanModule, ImagePool

__all__ = [
    "AdversarialModule",
    "CompressionModule",
    "CycleGanModule",
    "GanModule",
    "GeneratorInputs",
    "ImagePool",
    "NonFiniteLossError",
    "Phase",
]
