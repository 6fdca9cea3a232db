"""Model complexity: parameters, MACs in two conventions, and latency.

Two MAC conventions are reported because the papers use different ones:

* :func:`torchprofile_macs` — ``torchprofile.profile_macs`` on a traced forward (mit-han-lab
  convention used by GAN Compression, PPCD-GAN, CoroNetGAN): a conv counts ``output elements ×
  Cin/groups × k²``, a transposed conv counts at its *output* resolution, matmuls their
  multiply-adds; every op of the traced graph is counted (blur, demodulation, noise...).
* :func:`cagan_stylegan2_macs` — CAGAN's analytic StyleGAN2 count
  (lychenyoko/content-aware-gan-compression ``Util/Calculators.py``): modulated 3×3 convs
  ``Cin·Cout·9·H·W`` with the upsampling conv counted at its *input* resolution, ToRGB
  ``Cin·3·H·W``, every mapping-layer weight once, every modulation-linear weight once; biases,
  noise, blur and demodulation ignored. 256 px config F = 45,124,673,536; 1024 px =
  74,266,894,336 (the constants in that file).
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn

from lightning_gancomp.nets.contract import example_inputs
from lightning_gancomp.nets.stylegan2 import StyleGAN2Generator

STYLE_CONV_KERNEL = 3
RGB_CHANNELS = 3


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (buffers such as noise maps or ``latent_avg`` excluded)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def torchprofile_macs(module: nn.Module, *example_inputs: Any) -> int:
    """MACs of one forward with ``example_inputs`` counted by ``torchprofile.profile_macs``.

    The module is traced in eval mode without gradients; its training mode is restored.
    """
    from torchprofile import profile_macs

    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # torchprofile warns once per op kind it does not count (add, pad, ...) and the JIT
            # tracer about Python-side shape logic; neither changes the count.
            warnings.filterwarnings("ignore", message="No handlers found")
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            return int(profile_macs(module, args=tuple(example_inputs)))
    finally:
        module.train(was_training)


def _stylegan2_state(generator: nn.Module | Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    state = generator if isinstance(generator, Mapping) else generator.state_dict()
    if "conv1.conv.weight" not in state or "input.input" not in state:
        name = type(generator).__name__
        raise TypeError(f"cagan_stylegan2_macs needs a StyleGAN2 generator (rosinality layout), got {name}")
    return state


def stylegan2_net_shape(generator: nn.Module | Mapping[str, torch.Tensor]) -> list[int]:
    """CAGAN ``Get_Network_Shape``: input width of ``conv1`` and every ``convs.j``, then the last output."""
    state = _stylegan2_state(generator)
    n_convs = sum(1 for k in state if k.startswith("convs.") and k.endswith(".conv.weight"))
    keys = ["conv1.conv.weight"] + [f"convs.{j}.conv.weight" for j in range(n_convs)]
    return [int(state[k].shape[2]) for k in keys] + [int(state[keys[-1]].shape[1])]


def cagan_stylegan2_macs(
    generator: nn.Module | Mapping[str, torch.Tensor], detail: bool = False
) -> int | dict[str, int]:
    """CAGAN's analytic MAC count of a StyleGAN2 generator (module or rosinality-layout state dict).

    Works on ``meta``-device networks (only shapes are read). ``detail=True`` returns the four
    parts and the total.
    """
    state = _stylegan2_state(generator)
    shape = stylegan2_net_shape(state)
    # Feature map i (CAGAN MAP_SIZE[i]) is 4·2^(i//2) px: conv i reads map i, so the upsampling
    # conv is counted at its input resolution.
    map_size = [4 * 2 ** (i // 2) for i in range(len(shape))]
    k2 = STYLE_CONV_KERNEL**2
    conv = sum(shape[i] * shape[i + 1] * k2 * map_size[i] ** 2 for i in range(len(shape) - 1))
    to_rgb = sum(shape[2 * i + 1] * RGB_CHANNELS * map_size[2 * i + 1] ** 2 for i in range(len(shape) // 2))
    mapping = sum(v.numel() for k, v in state.items() if "style" in k and "weight" in k)
    modulation = sum(v.numel() for k, v in state.items() if "modulation.weight" in k)
    total = conv + to_rgb + mapping + modulation
    if detail:
        return {"conv": conv, "to_rgb": to_rgb, "mapping": mapping, "modulation": modulation, "total": total}
    return int(total)


def example_inputs_for(
    net: nn.Module, batch_size: int = 1, resolution: int | None = None, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Seeded inputs for one forward of a generator or discriminator (``nets.contract``)."""
    return example_inputs(net, batch_size, resolution, seed)


MacConvention = Literal["cagan", "torchprofile"]


def mac_convention(net: nn.Module) -> MacConvention:
    """The one place that decides which MAC count a network is reported in: CAGAN's analytic
    count for StyleGAN2 generators (CAGAN / DCP tables), torchprofile otherwise (PPCD-GAN and
    GAN Compression report torchprofile counts)."""
    return "cagan" if isinstance(net, StyleGAN2Generator) else "torchprofile"


def default_macs(net: nn.Module) -> tuple[int, MacConvention]:
    """MACs of one generator forward (batch 1) in its family's convention, and the convention."""
    convention = mac_convention(net)
    if convention == "cagan":
        return int(cagan_stylegan2_macs(net)), convention
    was_training = net.training
    net.eval()
    try:
        return int(torchprofile_macs(net, *example_inputs_for(net, batch_size=1))), convention
    finally:
        net.train(was_training)


def _batched(inputs: tuple[Any, ...], batch_size: int) -> tuple[Any, ...]:
    # Repeat (or cut) every tensor input along dim 0 so the timed call runs ``batch_size`` samples.
    out = []
    for x in inputs:
        if isinstance(x, torch.Tensor) and x.ndim > 0 and x.shape[0] != batch_size:
            reps = -(-batch_size // x.shape[0])
            x = x.repeat(reps, *([1] * (x.ndim - 1)))[:batch_size]
        out.append(x)
    return tuple(out)


def measure_latency(
    module: nn.Module,
    example_inputs: tuple[Any, ...],
    device: str | torch.device = "cpu",
    batch_size: int | None = None,
    warmup: int = 3,
    repeats: int = 10,
) -> dict[str, Any]:
    """Wall-clock time of ``module(*example_inputs)`` in eval mode without gradients.

    Runs ``warmup`` untimed calls, then ``repeats`` timed ones; on CUDA every call is bracketed by
    ``torch.cuda.synchronize`` so the time covers the kernels, not just their launch.
    ``batch_size`` (optional) repeats the inputs along dim 0 to that size. Returns median / mean /
    min / max / std in ms, the median per sample, and the settings. The module's device and mode
    are restored afterwards.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"measure_latency: repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    device = torch.device(device)
    inputs = _batched(tuple(example_inputs), batch_size) if batch_size else tuple(example_inputs)
    first = next((x for x in inputs if isinstance(x, torch.Tensor) and x.ndim > 0), None)
    batch = int(first.shape[0]) if first is not None else 1
    param = next(iter(module.parameters()), None)
    original_device = param.device if param is not None else torch.device("cpu")
    was_training = module.training
    module.to(device).eval()
    inputs = tuple(x.to(device) if isinstance(x, torch.Tensor) else x for x in inputs)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda *_: None)
    times_ms: list[float] = []
    try:
        with torch.no_grad():
            for _ in range(warmup):
                module(*inputs)
            sync(device)
            for _ in range(repeats):
                start = time.perf_counter()
                module(*inputs)
                sync(device)
                times_ms.append((time.perf_counter() - start) * 1000.0)
    finally:
        module.to(original_device).train(was_training)
    median = statistics.median(times_ms)
    return {
        "median_ms": median,
        "mean_ms": statistics.fmean(times_ms),
        "min_ms": min(times_ms),
        "max_ms": max(times_ms),
        "std_ms": statistics.pstdev(times_ms),
        "per_sample_ms": median / batch,
        "batch_size": batch,
        "device": str(device),
        "warmup": warmup,
        "repeats": repeats,
    }
