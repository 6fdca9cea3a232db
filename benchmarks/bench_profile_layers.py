"""Where the time goes: teacher vs student forward time per layer kind, next to the share of MACs.

Every submodule gets a forward pre-hook and post-hook; a module's *exclusive* time (its wall time
minus the time of its hooked children) is charged to its layer kind. Kinds (StyleGAN2):

* ``mapping``        — the 8-layer MLP z → w;
* ``modulated conv`` — modulation linear, (de)modulation and the 3×3 conv of every StyledConv;
* ``upsample+blur``  — the FIR filters: ``Blur`` after the transposed conv, ``Upsample`` of the
  ToRGB skip image;
* ``noise``          — ``NoiseInjection``;
* ``bias+act``       — ``FusedLeakyReLU`` (bias, leaky ReLU, gain);
* ``ToRGB``          — the modulated 1×1 conv to RGB, its bias and the skip sum;
* ``rest``           — everything else in the forward (constant input, latent broadcast, Python).

ResNet / U-Net generators: ``conv``, ``norm``, ``activation``, ``padding``, ``rest``.

MACs per kind are counted in the same way (exclusive per module) with
``torch.utils.flop_counter.FlopCounterMode`` (convolutions and matmuls; elementwise ops count 0),
MACs = FLOPs / 2. Teacher and student are timed interleaved (medians of ``--repeats`` runs), one
CPU thread by default. The machine this was developed on is shared: read the shares, not the ms.

    python benchmarks/bench_profile_layers.py --net stylegan2 --batch 1 --repeats 5
    python benchmarks/bench_profile_layers.py --net resnet --ratio 0.75
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from speed_nets import resnet_pair, stylegan2_pair
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

#: Layer kind by class name; a module of another class inherits its parent's kind.
KIND_BY_CLASS = {
    "MappingNetwork": "mapping",
    "StyledConv": "rest",
    "ModulatedConv2d": "modulated conv",
    "Blur": "upsample+blur",
    "Upsample": "upsample+blur",
    "NoiseInjection": "noise",
    "FusedLeakyReLU": "bias+act",
    "ToRGB": "ToRGB",
    "Conv2d": "conv",
    "ConvTranspose2d": "conv",
    "InstanceNorm2d": "norm",
    "BatchNorm2d": "norm",
    "ReLU": "activation",
    "LeakyReLU": "activation",
    "Tanh": "activation",
    "ReflectionPad2d": "padding",
    "ReplicationPad2d": "padding",
}


def layer_kinds(net: nn.Module) -> dict[str, str]:
    """Kind of every named submodule (root = ``rest``); the ToRGB's modulated conv stays ``ToRGB``."""
    kinds: dict[str, str] = {"": "rest"}
    for name, module in net.named_modules():
        if not name:
            continue
        parent = kinds[name.rsplit(".", 1)[0] if "." in name else ""]
        own = KIND_BY_CLASS.get(type(module).__name__)
        if own == "modulated conv" and parent == "ToRGB":
            own = "ToRGB"
        kinds[name] = own or parent
    return kinds


class KindMeter:
    """Charges the exclusive amount of ``meter()`` (time or FLOPs) of each module call to its kind."""

    def __init__(self, net: nn.Module, meter: Callable[[], float]) -> None:
        self.meter = meter
        self.totals: dict[str, float] = {}
        self.stack: list[list[float]] = []  # [start, children]
        self.handles = []
        kinds = layer_kinds(net)
        for name, module in net.named_modules():
            self.handles.append(module.register_forward_pre_hook(self._enter))
            self.handles.append(module.register_forward_hook(self._exit_for(kinds[name])))

    def _enter(self, *_: Any) -> None:
        self.stack.append([self.meter(), 0.0])

    def _exit_for(self, kind: str) -> Callable[..., None]:
        def exit_hook(*_: Any) -> None:
            start, children = self.stack.pop()
            spent = self.meter() - start
            self.totals[kind] = self.totals.get(kind, 0.0) + spent - children
            if self.stack:
                self.stack[-1][1] += spent

        return exit_hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def macs_by_kind(net: nn.Module, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, float]:
    counter = FlopCounterMode(display=False)
    meter = KindMeter(net, lambda: float(counter.get_total_flops()))
    try:
        with torch.no_grad(), counter:
            net(*inputs, **kwargs)
    finally:
        meter.remove()
    return {k: v / 2 for k, v in meter.totals.items()}


def times_by_kind(
    nets: dict[str, nn.Module], inputs: tuple[torch.Tensor, ...], kwargs: dict[str, Any], repeats: int
) -> dict[str, dict[str, float]]:
    """Median exclusive seconds per kind; the nets run round-robin so load drifts hit all alike."""
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in nets}
    meters = {name: KindMeter(net, time.perf_counter) for name, net in nets.items()}
    try:
        with torch.no_grad():
            for net in nets.values():  # warm-up
                net(*inputs, **kwargs)
            for _ in range(repeats):
                for name, net in nets.items():
                    meters[name].totals = {}
                    net(*inputs, **kwargs)
                    samples[name].append(dict(meters[name].totals))
    finally:
        for meter in meters.values():
            meter.remove()
    return {
        name: {k: statistics.median(s[k] for s in runs) for k in runs[0]} for name, runs in samples.items()
    }


def build(args: argparse.Namespace) -> tuple[dict[str, nn.Module], tuple[torch.Tensor, ...], dict[str, Any]]:
    torch.manual_seed(0)
    if args.net == "stylegan2":
        teacher, student = stylegan2_pair(args.resolution)
        inputs, kwargs = (torch.randn(args.batch, teacher.z_dim),), {"randomize_noise": False}
    else:
        teacher, student = resnet_pair(args.ratio)
        inputs, kwargs = (torch.rand(args.batch, 3, args.resolution, args.resolution) * 2 - 1,), {}
    return {"teacher": teacher, "student": student}, inputs, kwargs


def report(times: dict[str, dict[str, float]], macs: dict[str, dict[str, float]]) -> str:
    kinds = sorted({k for t in times.values() for k in t}, key=lambda k: -times["teacher"].get(k, 0.0))
    lines = [
        f"{'kind':<16}" + "".join(f"{n + ' ms':>13}{'time %':>8}{'MAC %':>8}" for n in times),
    ]
    for kind in kinds:
        row = f"{kind:<16}"
        for name in times:
            t_total, m_total = sum(times[name].values()), sum(macs[name].values()) or 1.0
            t = times[name].get(kind, 0.0)
            mac_share = 100 * macs[name].get(kind, 0.0) / m_total
            row += f"{1000 * t:>13.1f}{100 * t / t_total:>8.1f}{mac_share:>8.1f}"
        lines.append(row)
    total = f"{'total':<16}"
    for name in times:
        total += f"{1000 * sum(times[name].values()):>13.1f}{100.0:>8.1f}{100.0:>8.1f}"
    lines.append(total)
    t_ratio = sum(times["teacher"].values()) / sum(times["student"].values())
    m_ratio = sum(macs["teacher"].values()) / sum(macs["student"].values())
    lines.append(
        f"MAC ratio {m_ratio:.2f}x, measured speedup {t_ratio:.2f}x, share of ideal {t_ratio / m_ratio:.2f}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", choices=["stylegan2", "resnet"], default="stylegan2")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--ratio", type=float, default=0.5, help="ResNet student: uniform removal ratio")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    nets, inputs, kwargs = build(args)
    macs = {name: macs_by_kind(net, inputs, kwargs) for name, net in nets.items()}
    times = times_by_kind(nets, inputs, kwargs, args.repeats)
    print(
        f"{args.net} {args.resolution}px, batch {args.batch}, {args.threads} thread(s), "
        f"medians of {args.repeats} interleaved runs (exclusive time per layer kind; shared machine: "
        "compare shares, not ms)"
    )
    print(report(times, macs))


if __name__ == "__main__":
    main()
