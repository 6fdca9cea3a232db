"""StyleGAN2 generator step time: our upsampling path vs the naive zero-insertion path.

What is compared: one forward + backward of the same StyleGAN2 generator (same weights, same
inputs, same noise) with its upsampling modulated convolutions computed two ways:

* ``ours``  — grouped transposed convolution with stride 2, then the [1,3,3,1] blur (NVlabs
  ``conv2d_resample`` fast path; rosinality's fused path), as in ``lightning_gancomp.nets``;
* ``naive`` — zero insertion to 2× resolution, FIR filter, then the 3×3 conv at 2× resolution
  (NVlabs' generic reference path / the zero-insertion CPU fallback users hit with rosinality's
  ``op`` module).

A third line times the shared-weight form our modules use in training mode (modulate the
activations, one conv for the batch, demodulate the outputs; NVlabs ``fused_modconv=False``).
All produce the same image (the max abs differences are printed); the script reports
milliseconds per image and the ratios. Runs on CPU, and on CUDA when available.

    python benchmarks/bench_stylegan2.py --resolution 256 --batch 2 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
import types
from collections.abc import Callable

import torch
import torch.nn.functional as F

from lightning_gancomp.nets.stylegan2 import StyleGAN2Generator
from lightning_gancomp.nets.stylegan_layers import ModulatedConv2d, upfirdn2d


def naive_upsampling_forward(self: ModulatedConv2d, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Zero insertion + FIR (gain 4, pad 3/2) + true 3x3 convolution at the upsampled size."""
    batch, in_channels, height, width = x.shape
    k = self.kernel_size
    weight = self.modulated_weight(style)  # [B, out, in, k, k]
    stuffed = x.new_zeros(batch, in_channels, 2 * height, 2 * width)
    stuffed[..., ::2, ::2] = x
    blurred = upfirdn2d(stuffed, self.blur.kernel, pad=(3, 2))  # blur.kernel already carries the gain 4
    blurred = blurred.reshape(1, batch * in_channels, blurred.shape[2], blurred.shape[3])
    weight = torch.flip(weight, [3, 4]).reshape(batch * self.out_channels, in_channels, k, k)
    out = F.conv2d(blurred, weight, groups=batch)
    return out.reshape(batch, self.out_channels, out.shape[2], out.shape[3])


def use_naive_upsampling(g: StyleGAN2Generator) -> StyleGAN2Generator:
    for module in g.modules():
        if isinstance(module, ModulatedConv2d) and module.upsample:
            module.forward = types.MethodType(naive_upsampling_forward, module)
    return g


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(
    steps: dict[str, Callable[[], None]], device: torch.device, warmup: int, repeats: int
) -> dict[str, float]:
    """Median seconds per step; variants are timed round-robin so load drifts hit all alike."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def set_fused(g: StyleGAN2Generator, fused: bool) -> StyleGAN2Generator:
    for module in g.modules():
        if isinstance(module, ModulatedConv2d):
            module.fused = fused
    return g


def bench(device: torch.device, resolution: int, batch: int, warmup: int, repeats: int) -> None:
    torch.manual_seed(0)
    grouped = set_fused(StyleGAN2Generator(resolution).to(device), True)
    shared = set_fused(StyleGAN2Generator(resolution).to(device), False)
    naive = use_naive_upsampling(set_fused(StyleGAN2Generator(resolution).to(device), True))
    shared.load_state_dict(grouped.state_dict())
    naive.load_state_dict(grouped.state_dict())
    z = torch.randn(batch, grouped.z_dim, device=device)
    noise = grouped.make_noise(batch, device=device)
    with torch.no_grad():
        reference = grouped(z, noise=noise)
        diff_naive = (naive(z, noise=noise) - reference).abs().max().item()
        diff_shared = (shared(z, noise=noise) - reference).abs().max().item()

    def step(g: StyleGAN2Generator) -> Callable[[], None]:
        def run() -> None:
            g.zero_grad(set_to_none=True)
            g(z, noise=noise).square().mean().backward()

        return run

    medians = time_steps(
        {"grouped": step(grouped), "naive": step(naive), "shared": step(shared)}, device, warmup, repeats
    )
    t_grouped, t_naive, t_shared = medians["grouped"], medians["naive"], medians["shared"]
    ms = {
        name: 1000 * t / batch
        for name, t in (("grouped", t_grouped), ("naive", t_naive), ("shared", t_shared))
    }
    header = f"[{device.type}] StyleGAN2-{resolution} G forward+backward, batch {batch}, median of {repeats}"
    print(f"{header} (ms/img):")
    print(f"  ours, grouped per-sample weights:      {ms['grouped']:9.1f}")
    naive_ratio, shared_ratio = t_naive / t_grouped, t_grouped / t_shared
    print(f"  naive zero-insertion upsampling:       {ms['naive']:9.1f}   naive/ours = {naive_ratio:.2f}x")
    print(
        f"  ours, shared weights (training mode):  {ms['shared']:9.1f}   grouped/shared = {shared_ratio:.2f}x"
    )
    print(f"  output max abs diff vs grouped: naive {diff_naive:.2e}, shared {diff_shared:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--gpu-batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    if not args.skip_cpu:
        bench(torch.device("cpu"), args.resolution, args.batch, args.warmup, args.repeats)
    if torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name()}")
        bench(
            torch.device("cuda"), args.resolution, args.gpu_batch, max(args.warmup, 3), max(args.repeats, 10)
        )
    else:
        print("CUDA not available: GPU timing skipped")


if __name__ == "__main__":
    main()
