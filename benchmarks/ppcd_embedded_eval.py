"""Evaluate the end-to-end embedded PPCD-GAN runs (docs/ppcd.md): the frozen teacher and each run's
materialised student (``<run>/student.pt``, a plain BigGANGenerator) on the embedded test images.

    gancomp fit -c configs/teacher/biggan_embedded.yaml
    gancomp fit -c configs/ppcd/embedded.yaml
    gancomp fit -c configs/ppcd/embedded_no_cd.yaml
    python benchmarks/ppcd_embedded_eval.py runs/ppcd_embedded runs/ppcd_embedded_no_cd

Prints, per network: parameters, MACs (torchprofile), IS and FID in the embedded-data feature net
(NOT Inception: not comparable with paper numbers), intra-class LPIPS diversity averaged over the
classes (AlexNet LPIPS with a *random* backbone: torchvision weights cannot be downloaded here, so
the value is a relative diversity score only), and for each run the per-layer masked share, the
batch at which eq. 3 froze each layer (from ``<run>/mask_history.json``).
"""

from __future__ import annotations

import argparse
import json
import os

import torch

from lightning_gancomp.checkpoints import load_generator
from lightning_gancomp.data import ConditionalDataModule
from lightning_gancomp.metrics import GenerativeMetrics, class_lpips_diversity, make_lpips
from lightning_gancomp.metrics.complexity import count_parameters, default_macs


@torch.no_grad()
def quality(generator: torch.nn.Module, loader: torch.utils.data.DataLoader, seed: int) -> dict[str, float]:
    """IS / FID of class-matched samples against the loader's real images."""
    metrics = GenerativeMetrics(metrics=["fid", "is"], feature_extractor="embedded", is_splits=2)
    rng = torch.Generator().manual_seed(seed)
    for batch in loader:
        real, label = batch["real_img"], batch["label"]
        fake = generator(torch.randn(real.shape[0], generator.z_dim, generator=rng), label).clamp(-1, 1)
        metrics.update(real, real=True)
        metrics.update(fake, real=False)
    return {k: float(v) for k, v in metrics.compute().items()}


def describe_masks(run: str) -> list[str]:
    path = os.path.join(run, "mask_history.json")
    if not os.path.isfile(path):
        return []
    with open(path) as handle:
        history = json.load(handle)
    lines = []
    for name, values in history["final_values"].items():
        frozen = [int(h["batch"]) for h in history["history"] if h.get(f"{name}/frozen") == 1.0]
        frozen_at = frozen[0] if frozen else None
        masked = sum(v <= history["pivot"] for v in values)
        lines.append(
            f"    {name:<16} masked {masked:>3}/{len(values):<3} ({masked / len(values):.2f})  "
            f"frozen by batch {frozen_at if frozen_at is not None else '-'}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="run directories holding student.pt")
    parser.add_argument("--teacher", default="runs/biggan_teacher_embedded/checkpoints/last.ckpt")
    parser.add_argument("--images", type=int, default=512, help="test images (and as many samples)")
    parser.add_argument("--pairs", type=int, default=16, help="LPIPS pairs per class")
    args = parser.parse_args()
    torch.manual_seed(0)
    data = ConditionalDataModule(
        path="embedded", resolution=64, batch_size=32, val_size=64, test_size=args.images
    )
    data.setup("test")
    lpips = make_lpips("alex", pretrained_backbone=False)
    networks = {"teacher": args.teacher, **{run: os.path.join(run, "student.pt") for run in args.runs}}
    for name, path in networks.items():
        net = load_generator(path).eval()
        macs, convention = default_macs(net)
        scores = quality(net, data.test_dataloader(), seed=1)
        diversity = class_lpips_diversity(net, lpips, int(net.num_classes), args.pairs, seed=2)
        print(
            f"{name}: {count_parameters(net):,} params, {macs:,} MACs ({convention}), "
            f"IS {scores['is']:.3f}, FID {scores['fid']:.2f}, intra-class LPIPS {diversity:.4f}"
        )
        if name != "teacher":
            print(f"  widths: hidden {net.hidden_channels}, transition {net.transition_channels}")
            for line in describe_masks(name):
                print(line)


if __name__ == "__main__":
    main()
