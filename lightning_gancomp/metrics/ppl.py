"""Perceptual path length (PPL) of a StyleGAN2 generator (Karras et al. StyleGAN 2019 Sec. 3; StyleGAN2 2020).

PPL = E[ d(G(l(t)), G(l(t + ε))) / ε² ] with d = LPIPS, ε = 1e-4, l the interpolation path between
two random latents. Official behaviour followed (NVlabs/stylegan2-ada-pytorch
``metrics/perceptual_path_length.py``; rosinality/stylegan2-pytorch ``ppl.py`` is the same):

- ``space="w"``: z0, z1 ~ N(0, I) → w0, w1 = mapping(z); linear interpolation (lerp) in W.
  ``space="z"``: spherical interpolation (slerp) of z0, z1 (normalised, result normalised), then mapping.
- ``sampling="end"``: t = 0 (path endpoints; StyleGAN2's PPL); ``"full"``: t ~ U(0, 1) (StyleGAN).
- Both images of a pair share the noise maps (fresh random maps per batch).
- ``crop=True`` (faces): keep rows 3/8–7/8 and columns 2/8–6/8 of the image; then images above
  256 px are box-downsampled to 256 px (integer factor).
- Per-pair distance / ε², then the 1st ("lower") and 99th ("higher") percentiles bound the
  samples kept, and PPL is their mean (removes the outliers of degenerate paths).
- NVlabs' presets: ``ppl2_wend`` = W, end, no crop (StyleGAN2 paper); ``ppl_zfull`` = Z, full, crop.
  50,000 samples.

Generator interface (the StyleGAN2 contract): ``G.z_dim``, ``G.resolution``, ``G.mapping(z) -> w``,
``G([w], input_is_latent=True, noise=[...], randomize_noise=False) -> images`` and
``G.make_noise()`` (list of noise maps, one per layer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from torch import nn


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of batches of vectors (rows normalised first; the result has unit norm)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    cos_angle = (a * b).sum(dim=-1, keepdim=True)
    angle = t * torch.acos(cos_angle)
    # Unit vector orthogonal to a in the (a, b) plane.
    ortho = b - cos_angle * a
    ortho = ortho / ortho.norm(dim=-1, keepdim=True)
    out = a * torch.cos(angle) + ortho * torch.sin(angle)
    return out / out.norm(dim=-1, keepdim=True)


def filtered_mean(distances: torch.Tensor, low: float = 1.0, high: float = 99.0) -> float:
    """Mean of the values between the ``low`` ("lower") and ``high`` ("higher") percentiles, inclusive."""
    values = distances.detach().double().cpu().numpy()
    lo = np.percentile(values, low, method="lower")
    hi = np.percentile(values, high, method="higher")
    return float(values[(values >= lo) & (values <= hi)].mean())


def crop_face(img: torch.Tensor) -> torch.Tensor:
    """Central face crop of StyleGAN's PPL: rows [3/8, 7/8), columns [2/8, 6/8) of a square image."""
    if img.shape[2] != img.shape[3]:
        raise ValueError(f"face crop needs square images, got {tuple(img.shape[2:])}")
    c = img.shape[2] // 8
    return img[:, :, c * 3 : c * 7, c * 2 : c * 6]


def box_downsample_to_256(img: torch.Tensor, resolution: int) -> torch.Tensor:
    """Average-pool by ``resolution // 256`` (generators above 256 px are measured at 256 px)."""
    factor = resolution // 256
    if factor <= 1:
        return img
    return torch.nn.functional.avg_pool2d(img, kernel_size=factor, stride=factor)


@torch.no_grad()
def ppl_distances(
    generator: nn.Module,
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    num_samples: int,
    epsilon: float = 1e-4,
    space: Literal["w", "z"] = "w",
    sampling: Literal["end", "full"] = "end",
    crop: bool = False,
    batch_size: int = 16,
    seed: int = 0,
) -> torch.Tensor:
    """Per-sample path-length values d(img(t), img(t+ε)) / ε², shape [num_samples] (before filtering)."""
    if space not in ("w", "z") or sampling not in ("end", "full"):
        raise ValueError(f"space={space!r} (expected 'w'|'z'), sampling={sampling!r} (expected 'end'|'full')")
    device = next(generator.parameters()).device
    rng = torch.Generator(device="cpu").manual_seed(seed)
    results = []
    remaining = num_samples
    while remaining > 0:
        n = min(batch_size, remaining)
        t = torch.rand(n, 1, generator=rng) * (1.0 if sampling == "full" else 0.0)
        z0, z1 = torch.randn(2 * n, generator.z_dim, generator=rng).chunk(2)
        t, z0, z1 = t.to(device), z0.to(device), z1.to(device)
        if space == "w":
            w0, w1 = generator.mapping(torch.cat([z0, z1])).chunk(2)
            w_pair = torch.cat([w0.lerp(w1, t), w0.lerp(w1, t + epsilon)])
        else:
            z_pair = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)])
            w_pair = generator.mapping(z_pair)
        # One set of noise maps per batch, shared by both ends of every pair (maps are [1, 1, H, W]).
        noise = [torch.randn(tuple(m.shape), generator=rng).to(device) for m in generator.make_noise()]
        img = generator([w_pair], input_is_latent=True, noise=noise, randomize_noise=False)
        if crop:
            img = crop_face(img)
        img = box_downsample_to_256(img, int(generator.resolution))
        img_t0, img_t1 = img.chunk(2)
        results.append(distance(img_t0, img_t1).reshape(n).float().cpu() / epsilon**2)
        remaining -= n
    return torch.cat(results)


@torch.no_grad()
def perceptual_path_length(
    generator: nn.Module,
    num_samples: int = 50000,
    epsilon: float = 1e-4,
    space: Literal["w", "z"] = "w",
    sampling: Literal["end", "full"] = "end",
    crop: bool = False,
    batch_size: int = 16,
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    seed: int = 0,
) -> float:
    """PPL of a StyleGAN2 generator (defaults = StyleGAN2's ``ppl2_wend``: W space, endpoints, no crop).

    Args:
        generator: StyleGAN2-contract generator (see module docstring).
        num_samples: latent pairs (papers: 50,000).
        epsilon: step along the path (1e-4).
        space: ``"w"`` (lerp in W) or ``"z"`` (slerp in Z).
        sampling: ``"end"`` (t = 0) or ``"full"`` (t ~ U(0, 1)).
        crop: face crop (FFHQ/CelebA-HQ protocol).
        batch_size: pairs per forward.
        distance: ``d(img_a, img_b) -> [B]`` on images in [-1, 1]; ``None`` → LPIPS-VGG (pretrained).
        seed: seeds latents, t and noise.
    """
    if distance is None:
        from lightning_gancomp.metrics.perceptual import make_lpips

        distance = make_lpips("vgg").to(next(generator.parameters()).device)
    values = ppl_distances(generator, distance, num_samples, epsilon, space, sampling, crop, batch_size, seed)
    return filtered_mean(values)
