"""LightningModules: the method engine, the compression base and the methods.

Layout: ``engine.py`` (:class:`AdversarialModule`: phases, optimizers, schedules, EMA, hooks),
``optimization.py`` / ``evaluation.py`` / ``persistence.py`` (its optimizer, sampling/metrics
and checkpoint mixins),
``compression.py`` (:class:`CompressionModule`: teacher, student construction, pruning recipe),
``schedules.py``, and one file per method (``gan.py`` plain/CycleGAN training, ``cagan.py``,
``dcp.py``, ``coronet.py`` / ``coronet_cyclegan.py``). The generator call contract is
:mod:`lightning_gancomp.nets.contract`.
"""

from lightning_gancomp.methods.compression import CompressionModule, PruningRecipe
from lightning_gancomp.methods.coronet import CoroNetModule
from lightning_gancomp.methods.coronet_cyclegan import CoroNetCycleGanModule
from lightning_gancomp.methods.engine import STYLEGAN2_EMA_DECAY, AdversarialModule, NonFiniteLossError, Phase
from lightning_gancomp.methods.gan import CycleGanModule, GanModule, ImagePool
from lightning_gancomp.methods.schedules import ConstantLR, LinearDecayLR, LRSchedule, StepLR
from lightning_gancomp.nets.contract import GeneratorInputs

__all__ = [
    "STYLEGAN2_EMA_DECAY",
    "AdversarialModule",
    "CompressionModule",
    "ConstantLR",
    "CoroNetCycleGanModule",
    "CoroNetModule",
    "CycleGanModule",
    "GanModule",
    "GeneratorInputs",
    "ImagePool",
    "LRSchedule",
    "LinearDecayLR",
    "NonFiniteLossError",
    "Phase",
    "PruningRecipe",
    "StepLR",
]
