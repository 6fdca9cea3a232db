"""``gancomp profile``: parameters, MACs (torchprofile and CAGAN conventions) and latency of the
generators a method holds (teacher and student, or the generator), with their ratios.

``backends`` / ``dtypes`` add a deployment table (:mod:`lightning_gancomp.metrics.backends`):
for every backend × dtype, each network's median latency (networks interleaved in one run), the
student's speedup over the teacher on that same backend and dtype, and the output drift from the
network's own fp32 eager output (mean / max abs diff on the same inputs).
"""

from __future__ import annotations

from collections.abc import Sequence
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
    backends: Sequence[str] = (),
    dtypes: Sequence[str] = ("fp32",),
) -> dict[str, Any]:
    """Profile ``model.profile_networks()`` and print the table (``gancomp profile``).

    ``backends`` (``eager``, ``compile``, ``onnxruntime``) × ``dtypes`` (``fp32``, ``fp16``,
    ``int8-dynamic``, ``int8-static``): also the deployment table, under ``report["backends"]``.
    """
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
    if backends:
        rows = backend_rows(networks, backends, dtypes, batch_size, device, warmup, repeats, resolution)
        report["backends"] = rows
        print(format_backend_rows(rows))
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


def backend_rows(
    networks: dict[str, torch.nn.Module],
    backends: Sequence[str],
    dtypes: Sequence[str],
    batch_size: int,
    device: str,
    warmup: int,
    repeats: int,
    resolution: int | None = None,
) -> list[dict[str, Any]]:
    """One row per (backend, dtype, network): latency, speedup over the teacher, drift from fp32."""
    from lightning_gancomp.metrics import backends as deploy
    from lightning_gancomp.metrics.complexity import example_inputs_for

    first = next(iter(networks.values()))
    inputs = example_inputs_for(first, batch_size=batch_size, resolution=resolution)
    inputs = tuple(x.cpu() for x in inputs)
    calibration = [
        tuple(x.cpu() for x in example_inputs_for(first, batch_size, resolution, seed=s)) for s in range(1, 5)
    ]
    references = {n: deploy.make_runner(net, "eager", "fp32")(inputs) for n, net in networks.items()}
    rows: list[dict[str, Any]] = []
    for backend in backends:
        for dtype in dtypes:
            base = {"backend": backend, "dtype": dtype, "batch_size": batch_size, "warmup": warmup}
            try:
                runners = {
                    n: deploy.make_runner(net, backend, dtype, device, calibration=calibration)
                    for n, net in networks.items()
                }
            except deploy.UnsupportedBackend as err:
                rows.append({**base, "network": "all", "unsupported": str(err)})
                continue
            timed = deploy.time_interleaved(runners, inputs, warmup, repeats, device)
            teacher_ms = timed.get("teacher", {}).get("median_ms")
            for name, run in runners.items():
                drift = deploy.output_drift(references[name], run(inputs))
                ms = timed[name]["median_ms"]
                speedup = teacher_ms / ms if teacher_ms and name != "teacher" else None
                rows.append({**base, "network": name, "median_ms": ms, "speedup": speedup, **drift})
    return rows


def format_backend_rows(rows: list[dict[str, Any]]) -> str:
    head = f"{'backend':<12} {'dtype':<13} {'network':<9} {'batch':>5} {'median ms':>10} {'speedup':>8}"
    lines = [head + f" {'mean|diff|':>11} {'max|diff|':>10}"]
    for r in rows:
        start = f"{r['backend']:<12} {r['dtype']:<13} {r['network']:<9} {r['batch_size']:>5}"
        if "unsupported" in r:
            lines.append(f"{start} n/a: {r['unsupported']}")
            continue
        speedup = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
        drift = f"{r['mean_abs_diff']:>11.2e} {r['max_abs_diff']:>10.2e}"
        lines.append(f"{start} {r['median_ms']:>10.2f} {speedup:>8} {drift}")
    return "\n".join(lines)
