"""DCP scoring throughput: batched directions (one forward and one backward over the N directions
of a batch) vs the official per-direction loop, on the same network, seed and latents and the
same gradient path (default ``released``: the official one); the scores must agree.

    python benchmarks/bench_dcp_scoring.py                       # small StyleGAN2, CPU
    python benchmarks/bench_dcp_scoring.py --gradient-path intended
    python benchmarks/bench_dcp_scoring.py --resolution 256 --width 0 --device cuda --samples 100

The two variants run interleaved ``--repeats`` times; prints the median samples/s of both, the
speed ratio and the largest relative score difference (float rounding only).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lightning_gancomp.nets.stylegan2 import StyleGAN2Generator
from lightning_gancomp.pruning.diversity import GRADIENT_PATHS, DiversityAwareScorer


def build_generator(resolution: int, width: int | None, device: str) -> StyleGAN2Generator:
    torch.manual_seed(0)
    if width is None:
        net = StyleGAN2Generator(resolution)
    else:
        n_maps = 2 * (resolution.bit_length() - 1) - 2
        net = StyleGAN2Generator(resolution, z_dim=64, w_dim=64, n_mapping=2, channels=[width] * n_maps)
    return net.to(device).eval()


def timed_scores(net: StyleGAN2Generator, loop: bool, args: argparse.Namespace) -> tuple[dict, float]:
    scorer = DiversityAwareScorer(
        n_samples=args.samples,
        batch_size=args.batch_size,
        n_directions=args.directions,
        n_pca_samples=args.pca_samples,
        gradient_path=args.gradient_path,
        per_direction_loop=loop,
        device=args.device,
        seed=args.seed,
        progress=False,
    )
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    scores = scorer(net)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    return scores, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--width", type=int, default=64, help="uniform width; 0 = config-F widths")
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--directions", type=int, default=10)
    parser.add_argument("--pca-samples", type=int, default=2000)
    parser.add_argument("--gradient-path", choices=GRADIENT_PATHS, default="released")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    net = build_generator(args.resolution, args.width or None, args.device)
    timed_scores(net, False, argparse.Namespace(**{**vars(args), "samples": args.batch_size}))  # warm-up
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeats):  # interleaved, so machine load hits both alike
        for loop in (False, True):
            scores, seconds = timed_scores(net, loop, args)
            times[loop].append(seconds)
            if loop:
                looped = scores
            else:
                batched = scores
    t_batched, t_loop = statistics.median(times[False]), statistics.median(times[True])
    worst = max(((batched[k] - looped[k]).abs().max() / looped[k].abs().max()).item() for k in batched)
    print(
        f"StyleGAN2 {args.resolution}px, {args.samples} samples x {args.directions} directions, "
        f"gradient path {args.gradient_path!r}, on {args.device} (medians of {args.repeats})"
    )
    print(f"batched directions       : {args.samples / t_batched:8.2f} samples/s ({t_batched:.2f} s)")
    print(f"official per-direction loop: {args.samples / t_loop:8.2f} samples/s ({t_loop:.2f} s)")
    print(f"speed ratio              : {t_loop / t_batched:8.2f}x")
    print(f"max relative score difference: {worst:.2e}")


if __name__ == "__main__":
    main()
