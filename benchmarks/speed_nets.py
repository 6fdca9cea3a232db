"""Teacher/student pairs shared by the speed benchmarks (random weights: speed does not depend on them).

* StyleGAN2-256 config F and its CAGAN 0.7 student (``[154]*10 + [77, 77, 39, 39]``, the widths of
  lychenyoko/content-aware-gan-compression's released 0.7 model);
* CycleGAN ResNet-9 (ngf 64, instance norm) and the student a uniform removal ratio gives
  (every channel group, ``pruning.plan.kept_count``: 0.5 keeps 32 of 64, 0.75 keeps 16).
"""

from __future__ import annotations

from lightning_gancomp.nets.base import GanNet
from lightning_gancomp.nets.pix2pix import ResnetGenerator
from lightning_gancomp.nets.stylegan2 import StyleGAN2Generator
from lightning_gancomp.pruning.plan import kept_count

CAGAN_07_CHANNELS = [154] * 10 + [77, 77, 39, 39]


def uniform_student(teacher: GanNet, ratio: float) -> GanNet:
    """The teacher's class at the widths a uniform removal ratio leaves in every channel group."""
    sizes = {g.name: kept_count(g.size, ratio) for g in teacher.channel_groups()}
    return type(teacher)(**teacher.config_for_group_sizes(sizes))


def stylegan2_pair(resolution: int = 256) -> tuple[GanNet, GanNet]:
    teacher = StyleGAN2Generator(resolution)
    if resolution == 256:
        return teacher.eval(), StyleGAN2Generator(256, channels=CAGAN_07_CHANNELS).eval()
    return teacher.eval(), uniform_student(teacher, 0.7).eval()


def resnet_pair(ratio: float) -> tuple[GanNet, GanNet]:
    teacher = ResnetGenerator(ngf=64, n_blocks=9, norm="instance")
    return teacher.eval(), uniform_student(teacher, ratio).eval()
