"""LightningModules: the shared adversarial engine, the compression base and the methods."""

from lightning_gancomp.methods.base import (
    AdversarialModule,
    CompressionModule,
    GeneratorInputs,
    NonFiniteLossError,
    Phase,
)
from lightning_gancomp.methods.gan import GanModule

__all__ = [
    "AdversarialModule",
    "CompressionModule",
    "GanModule",
    "GeneratorInputs",
    "NonFiniteLossError",
    "Phase",
]
