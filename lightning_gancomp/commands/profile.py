"""``gancomp profile``: parameters, MACs (torchprofile and CAGAN conventions) and latency of the
generators a method holds (teacher and student, or the generator), with their ratios."""

from __future__ import annotations

from typing import Any

import torch

from lightning_gancomp.atomic import atomic_write_json, check_writable


class ProfileError(ValueError):
    """Bad ``gancomp profile`` arguments (a device this machine does not have)."""


def check_device(device: str) -> torch.device:
    """``device`` as a torch.device this machine has, else one line naming it."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ProfileError(f"--device {device!r}: not a device name ({err})") from err
    if parsed.type == "cuda":
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if available == 0 or (parsed.index is not None and parsed.index >= available):
            raise ProfileError(f"--device {device}: this machine has {available} CUDA device(s)")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ProfileError(f"--device {device}: MPS is not available on this machine")
    return parsed


def profile_method(
    model: Any,
    batch_size: int = 1,
    device: str = "cpu",
    warmup: int = 3,
    repeats: int = 10,
    resolution: int | None = None,
    output: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Profile ``model.profile_networks()`` and print the table (``gancomp profile``)."""
    from lightning_gancomp.metrics import complexity

    check_device(device)
    if output:
        check_writable(output, "--output")
    networks = model.profile_networks()
    if not networks:
        raise ProfileError(f"{type(model).__name__} has no generators to profile")
    report: dict[str, dict[str, Any]] = {}
    for name, net in networks.items():
        report[name] = profile_network(net, complexity, batch_size, device, warmup, repeats, resolution)
    if "teacher" in report and "student" in report:
        report["ratio"] = ratios(report["teacher"], report["student"])
    print(format_report(report))
    if output:
        atomic_write_json(report, output)
    return report


def profile_network(
    net: torch.nn.Module,
    complexity: Any,
    batch_size: int,
    device: str,
    warmup: int,
    repeats: int,
    resolution: int | None = None,
) -> dict[str, Any]:
    was_training = net.training
    net.eval()
    try:
        return _profile_rows(net, complexity, batch_size, device, warmup, repeats, resolution)
    finally:
        net.train(was_training)


def _profile_rows(
    net: torch.nn.Module,
    complexity: Any,
    batch_size: int,
    device: str,
    warmup: int,
    repeats: int,
    resolution: int | None,
) -> dict[str, Any]:
    inputs = complexity.example_inputs_for(net, batch_size=1, resolution=resolution)
    row: dict[str, Any] = {
        "class": type(net).__name__,
        "params": int(complexity.count_parameters(net)),
        "macs_torchprofile": int(complexity.torchprofile_macs(net, *inputs)),
    }
    try:
        row["macs_cagan"] = int(complexity.cagan_stylegan2_macs(net))
    except (TypeError, ValueError, AttributeError, KeyError, IndexError):
        row["macs_cagan"] = None  # the CAGAN convention is defined for StyleGAN2 generators only
    batch_inputs = complexity.example_inputs_for(net, batch_size=batch_size, resolution=resolution)
    latency = complexity.measure_latency(
        net, batch_inputs, device=device, batch_size=batch_size, warmup=warmup, repeats=repeats
    )
    row["latency"] = {k: float(v) if isinstance(v, (int, float)) else v for k, v in latency.items()}
    return row


def ratios(teacher: dict[str, Any], student: dict[str, Any]) -> dict[str, float | None]:
    def ratio(key: str) -> float | None:
        t, s = teacher.get(key), student.get(key)
        return float(t) / float(s) if t and s else None

    t_ms = teacher["latency"].get("median_ms")
    s_ms = student["latency"].get("median_ms")
    return {
        "params": ratio("params"),
        "macs_torchprofile": ratio("macs_torchprofile"),
        "macs_cagan": ratio("macs_cagan"),
        "speedup": float(t_ms) / float(s_ms) if t_ms and s_ms else None,
    }


def format_report(report: dict[str, dict[str, Any]]) -> str:
    def num(value: Any) -> str:
        return f"{value:,}" if isinstance(value, int) else ("n/a" if value is None else f"{value:.3g}")

    lines = [
        f"{'network':<10} {'params':>14} {'MACs (torchprofile)':>22} {'MACs (CAGAN)':>18} {'latency ms':>11}"
    ]
    for name, row in report.items():
        if name == "ratio":
            continue
        lines.append(
            f"{name:<10} {num(row['params']):>14} {num(row['macs_torchprofile']):>22} "
            f"{num(row['macs_cagan']):>18} {num(row['latency'].get('median_ms')):>11}"
        )
    if "ratio" in report:
        r = report["ratio"]
        lines.append(
            f"{'ratio':<10} {num(r['params']):>14} {num(r['macs_torchprofile']):>22} "
            f"{num(r['macs_cagan']):>18} {num(r['speedup']):>11}"
        )
    return "\n".join(lines)
