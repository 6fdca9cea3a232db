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

Training steps (``--steps``): one G step (non-saturating loss through D, backward into G) and one
D step (real + detached fake, backward into D), same weights and batch, interleaved medians:

* with ``--reference PATH`` (a local rosinality/stylegan2-pytorch checkout, never committed):
  its ``model.py`` imported with the CUDA builds disabled (``torch.utils.cpp_extension.load``
  replaced by a stub, so ``op`` takes its pure-PyTorch CPU path), our weights loaded into it;
* without it: the naive form of our own ops (FIR filters as ``[N·C, 1, H, W]`` single-channel
  convs — our implementation before the depthwise form — and the batch-grouped modulated conv
  in training), which is what the printout then says.

    python benchmarks/bench_stylegan2.py --steps --resolution 64 --batch 4 --reference ~/stylegan2-pytorch
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import types
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from lightning_gancomp.nets import stylegan_layers
from lightning_gancomp.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
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


def single_channel_upfirdn2d(
    x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad=(0, 0)
) -> torch.Tensor:
    """Our FIR filter before the depthwise form: each channel as its own [N·C, 1, H, W] image."""
    px0, px1, py0, py1 = pad if len(pad) == 4 else (pad[0], pad[1], pad[0], pad[1])
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    out = x.reshape(n * c, 1, h, w)
    weight = kernel.to(x)
    if up > 1:
        out = F.conv_transpose2d(out, weight.view(1, 1, kh, kw), stride=up)
        out = F.pad(out, [px0 - kw + 1, px1 - kw + up, py0 - kh + 1, py1 - kh + up])[:, :, ::down, ::down]
    else:
        out = F.pad(out, [px0, px1, py0, py1])
        out = F.conv2d(out, torch.flip(weight, [0, 1]).view(1, 1, kh, kw), stride=down)
    return out.reshape(n, c, out.shape[2], out.shape[3])


@contextlib.contextmanager
def naive_ops() -> Iterator[None]:
    """Single-channel FIR filters and grouped modulated convs while active."""
    saved = stylegan_layers.upfirdn2d
    stylegan_layers.upfirdn2d = single_channel_upfirdn2d
    try:
        yield
    finally:
        stylegan_layers.upfirdn2d = saved


def import_rosinality(path: str) -> types.ModuleType:
    """rosinality's model.py with its CUDA extension builds replaced by a stub (CPU fallbacks run)."""
    import torch.utils.cpp_extension as cpp

    saved = cpp.load
    cpp.load = lambda *args, **kwargs: types.SimpleNamespace()
    sys.path.insert(0, path)
    try:
        import model as rosinality_model  # type: ignore[import-not-found]
    finally:
        cpp.load = saved
        sys.path.remove(path)
    return rosinality_model


def training_pairs(
    resolution: int, reference: str | None
) -> dict[str, tuple[torch.nn.Module, torch.nn.Module]]:
    torch.manual_seed(0)
    g, d = StyleGAN2Generator(resolution).train(), StyleGAN2Discriminator(resolution).train()
    if reference is None:
        g_naive, d_naive = StyleGAN2Generator(resolution), StyleGAN2Discriminator(resolution)
        g_naive.load_state_dict(g.state_dict())
        d_naive.load_state_dict(d.state_dict())
        set_fused(g_naive, True)
        return {"ours": (g, d), "naive": (g_naive.train(), d_naive.train())}
    ros = import_rosinality(reference)
    g_ref, d_ref = ros.Generator(resolution, 512, 8), ros.Discriminator(resolution)
    state = {k: v for k, v in g.state_dict().items() if k != "latent_avg"}
    g_ref.load_state_dict(state)
    d_ref.load_state_dict(d.state_dict())
    return {"ours": (g, d), "rosinality": (g_ref.train(), d_ref.train())}


def step_functions(
    name: str, g: torch.nn.Module, d: torch.nn.Module, z: torch.Tensor, real: torch.Tensor
) -> dict[str, Callable[[], None]]:
    def generate() -> torch.Tensor:
        return g([z])[0] if name == "rosinality" else g(z)

    def context():
        return naive_ops() if name == "naive" else contextlib.nullcontext()

    def g_step() -> None:
        with context():
            g.zero_grad(set_to_none=True)
            F.softplus(-d(generate())).mean().backward()

    def d_step() -> None:
        with context():
            d.zero_grad(set_to_none=True)
            with torch.no_grad():
                fake = generate()
            (F.softplus(d(fake)).mean() + F.softplus(-d(real)).mean()).backward()

    return {f"G {name}": g_step, f"D {name}": d_step}


def bench_steps(args: argparse.Namespace) -> None:
    pairs = training_pairs(args.resolution, args.reference)
    other = "rosinality" if args.reference else "naive"
    z = torch.randn(args.batch, 512)
    real = torch.randn(args.batch, 3, args.resolution, args.resolution)
    steps: dict[str, Callable[[], None]] = {}
    for name, (g, d) in pairs.items():
        steps.update(step_functions(name, g, d, z, real))
    medians = time_steps(steps, torch.device("cpu"), args.warmup, args.repeats)
    what = (
        f"rosinality/stylegan2-pytorch at {args.reference} (CPU path, CUDA builds disabled)"
        if args.reference
        else "the NAIVE FORM OF OUR OWN OPS (single-channel FIR, grouped modconv) — no --reference given"
    )
    print(
        f"StyleGAN2-{args.resolution} training steps, batch {args.batch}, medians of {args.repeats}, "
        f"vs {what}:"
    )
    for phase in ("G", "D"):
        ours, theirs = medians[f"{phase} ours"], medians[f"{phase} {other}"]
        print(
            f"  {phase} step: ours {1000 * ours:8.1f} ms   {other} {1000 * theirs:8.1f} ms   "
            f"speedup {theirs / ours:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", action="store_true", help="time G and D training steps instead")
    parser.add_argument("--reference", default=None, help="path of a rosinality/stylegan2-pytorch checkout")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--gpu-batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-cpu", action="store_true")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    if args.steps:
        bench_steps(args)
        return
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
