"""MAC ratio vs measured speedup of compressed generators, per deployment backend.

Rows: the StyleGAN2-256 CAGAN-0.7 student (``[154]*10 + [77, 77, 39, 39]``) and the CycleGAN
ResNet-9 students at uniform removal ratios 0.5 and 0.75 (``speed_nets.py``). For every backend
(``eager``, ``onnxruntime``, ``compile``) and dtype the teacher and the student run interleaved
(``metrics.backends.time_interleaved``: medians of ``--repeats``), and the table shows

    MAC ratio (torchprofile) | measured speedup | share of the ideal = speedup / MAC ratio

plus, for quantised dtypes, the student's output drift from its fp32 output (mean abs diff).
Random weights (speed does not depend on them). On a shared machine the absolute ms are noise;
the ratios (same run, interleaved, medians) are what to read.

    python benchmarks/bench_speedup.py                                   # CPU, batch 1
    python benchmarks/bench_speedup.py --backends eager,onnxruntime,compile --dtypes fp32,int8-dynamic
    python benchmarks/bench_speedup.py --device cuda --batch 64 --backends eager,compile --dtypes fp32,fp16
"""

from __future__ import annotations

import argparse
import time

import torch
from speed_nets import resnet_pair, stylegan2_pair

from lightning_gancomp.metrics import backends as deploy
from lightning_gancomp.metrics.complexity import example_inputs_for, torchprofile_macs

ROWS = {
    "StyleGAN2-256 CAGAN-0.7": lambda: stylegan2_pair(256),
    "ResNet-9 uniform 0.5": lambda: resnet_pair(0.5),
    "ResNet-9 uniform 0.75": lambda: resnet_pair(0.75),
}


def bench_row(name: str, args: argparse.Namespace) -> list[str]:
    torch.manual_seed(0)
    teacher, student = ROWS[name]()
    inputs = tuple(x.cpu() for x in example_inputs_for(teacher, batch_size=args.batch))
    one = example_inputs_for(teacher, batch_size=1)
    mac_ratio = torchprofile_macs(teacher, *one) / torchprofile_macs(student, *one)
    calibration = [tuple(x.cpu() for x in example_inputs_for(teacher, 2, seed=s)) for s in range(1, 5)]
    reference = deploy.make_runner(student, "eager", "fp32", args.device)(inputs).cpu()
    lines = []
    for backend in args.backends.split(","):
        for dtype in args.dtypes.split(","):
            try:
                start = time.perf_counter()
                runners = {
                    n: deploy.make_runner(net, backend, dtype, args.device, calibration=calibration)
                    for n, net in (("teacher", teacher), ("student", student))
                }
                prepare = time.perf_counter() - start
            except deploy.UnsupportedBackend as err:
                lines.append(f"{name:<25} {backend:<12} {dtype:<13} n/a: {err}")
                continue
            timed = deploy.time_interleaved(runners, inputs, args.warmup, args.repeats, args.device)
            t_ms, s_ms = timed["teacher"]["median_ms"], timed["student"]["median_ms"]
            speedup = t_ms / s_ms
            drift = deploy.output_drift(reference, runners["student"](inputs).cpu())["mean_abs_diff"]
            lines.append(
                f"{name:<25} {backend:<12} {dtype:<13} {t_ms:>9.1f} {s_ms:>9.1f} {mac_ratio:>7.2f}x "
                f"{speedup:>7.2f}x {speedup / mac_ratio:>6.2f} {drift:>9.1e} {prepare:>7.1f}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--backends", default="eager,onnxruntime")
    parser.add_argument("--dtypes", default="fp32")
    parser.add_argument(
        "--rows", default=",".join(ROWS), help="comma-separated subset of: " + ", ".join(ROWS)
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, device {args.device}, batch {args.batch}, {torch.get_num_threads()} "
        f"CPU thread(s); teacher/student interleaved, medians of {args.repeats} (ms are load-dependent, "
        "read the ratios)"
    )
    print(
        f"{'student':<25} {'backend':<12} {'dtype':<13} {'teacher':>9} {'student':>9} {'MACs':>8} "
        f"{'speedup':>8} {'share':>6} {'drift':>9} {'prep s':>7}"
    )
    for name in args.rows.split(","):
        for line in bench_row(name.strip(), args):
            print(line, flush=True)


if __name__ == "__main__":
    main()
