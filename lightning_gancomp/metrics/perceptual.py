"""LPIPS construction, LPIPS diversity, and the teacher–student mean L1 distance of DCP's evaluation.

- LPIPS (Zhang et al., CVPR 2018) from the ``lpips`` package: ``lpips.LPIPS(net=..., pretrained=True)``
  loads the calibrated linear heads shipped inside the package; the VGG-16 / AlexNet backbone comes
  from torchvision's ImageNet weights (torch hub cache, downloaded on first use). Inputs in [-1, 1].
- LPIPS diversity: mean LPIPS between pairs of independently generated samples (higher = more
  diverse), the usual sample-diversity score of GAN papers (e.g. DCP's diversity discussion);
  ``class_lpips_diversity``: the same within each class of a conditional generator, averaged over
  classes (PPCD-GAN Table 1).
- Mean L1 teacher–student distance (DCP, Chung et al., Fig. 4: "averaged L1 distances between 10K
  samples from teacher and student" on the same z). Official script (jiwoogit/DCP-GAN
  ``get_recon.py``): ``z ~ N(0, I)``, ``mean |G_T([z]) - G_S([z])|`` over all pixels of the raw
  [-1, 1] outputs, averaged over batches, and each generator call draws its own noise maps
  (``randomize_noise=True``). That is the default here (noise maps drawn from the seeded
  generator, so the number is reproducible); ``share_noise=True`` gives teacher and student the
  same maps (the distance then measures the generators, not the noise).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from lightning_gancomp.metrics.features import FeatureExtractorUnavailableError, torch_hub_checkpoint_path
from lightning_gancomp.nets.contract import is_style_based


def _torchvision_backbone_file(net: Literal["vgg", "alex"]) -> tuple[str, str]:
    """(url, file name) of the torchvision ImageNet weights LPIPS' backbone loads."""
    from torchvision.models import AlexNet_Weights, VGG16_Weights

    url = VGG16_Weights.IMAGENET1K_V1.url if net == "vgg" else AlexNet_Weights.IMAGENET1K_V1.url
    return url, url.rsplit("/", 1)[-1]


def make_lpips(net: Literal["vgg", "alex"] = "vgg", pretrained_backbone: bool = True) -> nn.Module:
    """Frozen, eval-mode ``lpips.LPIPS`` (inputs in [-1, 1]); ``pretrained_backbone=False``: random trunk.

    Offline without the torchvision backbone weights → one line saying which file to put where.
    """
    import lpips

    if net not in ("vgg", "alex"):
        raise ValueError(f"net={net!r}: expected 'vgg' or 'alex'")
    try:
        with warnings.catch_warnings():  # lpips still passes torchvision's deprecated `pretrained=`
            warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
            model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=not pretrained_backbone, verbose=False)
    except (OSError, RuntimeError) as err:  # URLError/HTTPError are OSErrors; bad hash is RuntimeError
        url, file_name = _torchvision_backbone_file(net)
        raise FeatureExtractorUnavailableError(
            f"LPIPS-{net} backbone weights could not be downloaded ({type(err).__name__}): download {url} "
            f"and put it at {torch_hub_checkpoint_path(file_name)}"
        ) from err
    return model.eval().requires_grad_(False)


@torch.no_grad()
def mean_lpips(
    images_a: torch.Tensor, images_b: torch.Tensor, lpips_net: nn.Module, batch_size: int = 32
) -> float:
    """Mean LPIPS distance between ``images_a[i]`` and ``images_b[i]`` (both [N, 3, H, W] in [-1, 1])."""
    if images_a.shape != images_b.shape:
        raise ValueError(f"image sets differ in shape: {tuple(images_a.shape)} vs {tuple(images_b.shape)}")
    total = 0.0
    for a, b in zip(images_a.split(batch_size), images_b.split(batch_size)):
        total += float(lpips_net(a, b).sum())
    return total / images_a.shape[0]


@torch.no_grad()
def lpips_diversity(
    generate: Callable[[int], torch.Tensor], lpips_net: nn.Module, num_pairs: int, batch_size: int = 16
) -> float:
    """Mean LPIPS between pairs of independent samples; ``generate(n)`` returns n images in [-1, 1]."""
    total = 0.0
    remaining = num_pairs
    while remaining > 0:
        n = min(batch_size, remaining)
        first, second = generate(n), generate(n)
        total += float(lpips_net(first, second).sum())
        remaining -= n
    return total / num_pairs


def _generator_device(generator: nn.Module) -> torch.device:
    for tensor in generator.parameters():
        return tensor.device
    return torch.device("cpu")


def _has_noise_inputs(net: nn.Module) -> bool:
    # declared style-based nets, and any generator offering per-layer noise maps
    return is_style_based(net) or hasattr(net, "make_noise")


def _noise_maps(net: nn.Module, n: int, rng: torch.Generator, device: torch.device) -> list[torch.Tensor]:
    """Per-sample noise maps ``[n, ...]`` in the shapes of ``net.make_noise()``, drawn from ``rng``."""
    return [torch.randn((n, *t.shape[1:]), generator=rng).to(device) for t in net.make_noise()]


@torch.no_grad()
def mean_l1_distance(
    teacher: nn.Module,
    student: nn.Module,
    num_samples: int = 10000,
    batch_size: int = 16,
    share_noise: bool = False,
    seed: int = 0,
    generator_kwargs: dict[str, Any] | None = None,
) -> float:
    """Mean |teacher(z) − student(z)| over pixels of ``num_samples`` images on shared z (DCP, Fig. 4).

    Args:
        teacher, student: unconditional generators ``G(z) -> [B, 3, H, W]`` with the same ``z_dim``.
        num_samples: images (DCP: 10,000).
        batch_size: images per forward.
        share_noise: generators with noise inputs (``make_noise``) get the same per-sample noise
            maps; ``False`` (default, official ``get_recon.py``) draws independent maps for each.
        seed: seeds z (and shared noise), so the number is reproducible.
        generator_kwargs: extra keyword arguments for both generator calls (e.g. ``truncation``).

    Returns:
        Mean absolute difference of the raw outputs (images in [-1, 1] → the value is in [0, 2]).
    """
    if teacher.z_dim != student.z_dim:
        raise ValueError(f"teacher z_dim {teacher.z_dim} != student z_dim {student.z_dim}")
    device = _generator_device(teacher)
    rng = torch.Generator(device="cpu").manual_seed(seed)
    kwargs = dict(generator_kwargs or {})
    total = 0.0
    remaining = num_samples
    while remaining > 0:
        n = min(batch_size, remaining)
        z = torch.randn(n, teacher.z_dim, generator=rng).to(device)
        teacher_kwargs, student_kwargs = dict(kwargs), dict(kwargs)
        if _has_noise_inputs(teacher) and _has_noise_inputs(student):
            teacher_noise = _noise_maps(teacher, n, rng, device)
            student_noise = teacher_noise if share_noise else _noise_maps(student, n, rng, device)
            teacher_kwargs.update(noise=teacher_noise, randomize_noise=False)
            student_kwargs.update(noise=student_noise, randomize_noise=False)
        teacher_img = teacher(z, **teacher_kwargs)
        student_img = student(z.to(_generator_device(student)), **student_kwargs).to(device)
        total += float((teacher_img - student_img).abs().mean(dim=(1, 2, 3)).sum())
        remaining -= n
    return total / num_samples


@torch.no_grad()
def class_lpips_diversity(
    generator: nn.Module,
    lpips_net: nn.Module,
    num_classes: int,
    pairs_per_class: int = 50,
    batch_size: int = 16,
    seed: int = 0,
) -> float:
    """Intra-class LPIPS diversity of a class-conditional ``G(z, y)``, averaged over classes
    (PPCD-GAN Table 1 "LPIPS ... we report the average over all the classes"): for every class,
    mean LPIPS between pairs of samples of that class on independent z. Seeded (reproducible)."""
    device = _generator_device(generator)
    rng = torch.Generator(device="cpu").manual_seed(seed)
    z_dim = int(generator.z_dim)
    per_class = []
    for label in range(num_classes):

        def generate(n: int, label: int = label) -> torch.Tensor:
            z = torch.randn(n, z_dim, generator=rng).to(device)
            y = torch.full((n,), label, dtype=torch.long, device=device)
            return generator(z, y).clamp(-1, 1)

        per_class.append(lpips_diversity(generate, lpips_net, pairs_per_class, batch_size))
    return sum(per_class) / num_classes
