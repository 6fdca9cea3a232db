"""What the comparison measures on each arm's final generator (the ``gancomp export`` file) beyond
``gancomp test``'s metrics: size and speed (the functions ``gancomp profile`` uses), the
teacher–student L1 distance and LPIPS diversity (``metrics.perceptual``), and one row of samples
on latents and noise shared by every arm and the teacher.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lightning_gancomp.compare.spec import Protocol
from lightning_gancomp.nets.base import GanNet
from lightning_gancomp.nets.contract import example_inputs, generator_task, is_style_based

#: seed of the latents and noise maps every arm's sample row uses
SHARED_SAMPLE_SEED = 1234


def complexity(net: GanNet, protocol: Protocol) -> dict[str, Any]:
    """Parameters, MACs in both conventions, CPU latency and, with a GPU, GPU latency per batch."""
    from lightning_gancomp.commands.profile import profile_network
    from lightning_gancomp.metrics import complexity as counts

    settings = dict(
        batch_size=protocol.latency_batch_size,
        warmup=protocol.latency_warmup,
        repeats=protocol.latency_repeats,
    )
    repeats = settings["repeats"] if protocol.measure_latency else 1
    row = profile_network(net, counts, settings["batch_size"], "cpu", settings["warmup"], repeats)
    result: dict[str, Any] = {
        "params": row["params"],
        "macs_cagan": row["macs_cagan"],
        "macs_torchprofile": row["macs_torchprofile"],
        "latency_cpu_ms": row["latency"]["median_ms"] if protocol.measure_latency else None,
        "latency_gpu_ms": None,
        "latency_batch_size": settings["batch_size"],
    }
    if protocol.measure_latency and torch.cuda.is_available():
        gpu = profile_network(net, counts, settings["batch_size"], "cuda", settings["warmup"], repeats)
        result["latency_gpu_ms"] = gpu["latency"]["median_ms"]
    return result


def _style_noise(net: nn.Module, rng: torch.Generator) -> list[Tensor]:
    return [torch.randn(tuple(t.shape), generator=rng) for t in net.make_noise()]


@torch.no_grad()
def shared_samples(net: GanNet, count: int, reference: GanNet | None = None) -> Tensor:
    """``count`` images in [-1, 1] on seeded latents (and noise maps drawn with the shapes of
    ``reference``, the teacher): the same inputs for every arm, so rows compare image by image."""
    net = net.eval()
    rng = torch.Generator().manual_seed(SHARED_SAMPLE_SEED)
    if generator_task(net) == "image2image":
        return net(*example_inputs(net, count, seed=SHARED_SAMPLE_SEED)).clamp(-1, 1)
    z = torch.randn(count, int(net.z_dim), generator=rng)
    if is_style_based(net):
        noise = _style_noise(reference if reference is not None else net, rng)
        return net(z, noise=noise, randomize_noise=False).clamp(-1, 1)
    if generator_task(net) == "conditional":
        labels = torch.arange(count) % int(net.num_classes)
        return net(z, labels).clamp(-1, 1)
    return net(z).clamp(-1, 1)


def teacher_student_l1(teacher: GanNet, student: GanNet, samples: int) -> float | None:
    """DCP's distortion measure (``metrics.perceptual.mean_l1_distance``): unconditional only."""
    from lightning_gancomp.metrics.perceptual import mean_l1_distance

    if samples <= 0 or generator_task(student) != "unconditional":
        return None
    return mean_l1_distance(teacher.eval(), student.eval(), samples, share_noise=True)


@torch.no_grad()
def lpips_diversity(net: GanNet, protocol: Protocol) -> float | None:
    """Mean LPIPS between independent sample pairs (unconditional and class-conditional)."""
    from lightning_gancomp.metrics.perceptual import lpips_diversity as diversity
    from lightning_gancomp.metrics.perceptual import make_lpips
    from lightning_gancomp.nets.contract import run_generator, sample_inputs

    if protocol.lpips_pairs <= 0 or generator_task(net) == "image2image":
        return None
    lpips_net = make_lpips(protocol.lpips_net, pretrained_backbone=protocol.lpips_pretrained)
    rng = torch.Generator().manual_seed(SHARED_SAMPLE_SEED + 1)
    net = net.eval()

    def generate(n: int) -> Tensor:
        return run_generator(net, sample_inputs(net, n, generator=rng)).clamp(-1, 1)

    return diversity(generate, lpips_net, protocol.lpips_pairs)


def measure_generator(
    net: GanNet, teacher: GanNet, protocol: Protocol, is_teacher: bool = False
) -> dict[str, Any]:
    """Everything the report needs from one final generator except ``gancomp test``'s metrics
    (``is_teacher``: the teacher's own row, which has no teacher–student distance)."""
    with torch.random.fork_rng(devices=[]):
        result = complexity(net, protocol)
        l1_samples = 0 if is_teacher else protocol.l1_samples
        result["l1_teacher_student"] = teacher_student_l1(teacher, net, l1_samples)
        result["lpips_diversity"] = lpips_diversity(net, protocol)
    return result
