"""End to end on CPU: CoroNetGAN vs its teacher vs an L1-pruned student, on the embedded data.

For one task (``pix2pix``: embedded aligned pairs; ``cyclegan``: embedded unaligned domains) and
the generator of ``configs/coronet/<task>_embedded.yaml`` (ResNet-9 at ngf 16, 32 px), this runs

1. **teacher**: the full generator trained with the plain recipe (``GanModule`` pix2pix /
   ``CycleGanModule``) for ``--epochs`` epochs;
2. **coronet**: ``CoroNetModule`` / ``CoroNetCycleGanModule`` from scratch for the same epochs
   (search to ``--ratio`` of the MACs, materialise, fine-tune), teacher-free;
3. **l1**: the trained teacher pruned by the L1 norm of the outgoing weights, uniform ratio
   chosen so its MACs match the CoroNet student's (``pruning.budget``), then fine-tuned with the
   plain recipe for the same epochs (CycleGAN: both generators pruned, D copied from the teacher);

and prints FID (embedded feature network, NOT Inception: comparable within this table only) of the
A→B generator of each on the test split, MACs (torchprofile, 256 px like GAN Compression's
numbers, and at the data resolution), parameters and wall time::

    python benchmarks/coronet_e2e_embedded.py --task pix2pix
    python benchmarks/coronet_e2e_embedded.py --task cyclegan
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import pytorch_lightning as pl
import torch

from lightning_gancomp.data import PairedDataModule, UnpairedDataModule
from lightning_gancomp.losses import LSGANLoss, NonSaturatingLoss, PixelLoss
from lightning_gancomp.methods import CoroNetCycleGanModule, CoroNetModule, CycleGanModule, GanModule
from lightning_gancomp.methods.coronet import pix2pix_adam
from lightning_gancomp.metrics import GenerativeMetrics
from lightning_gancomp.metrics.complexity import count_parameters, torchprofile_macs
from lightning_gancomp.nets.base import GanNet
from lightning_gancomp.nets.pix2pix import NLayerDiscriminator, ResnetGenerator
from lightning_gancomp.pruning.budget import budget_plan
from lightning_gancomp.pruning.importance import L1Scorer
from lightning_gancomp.pruning.surgery import apply_plan

RES = 32


def generator() -> ResnetGenerator:
    return ResnetGenerator(ngf=16, n_blocks=9, norm="instance")


def discriminator(task: str) -> NLayerDiscriminator:
    if task == "pix2pix":
        return NLayerDiscriminator(6, ndf=16, n_layers=2, norm="batch")
    return NLayerDiscriminator(3, ndf=16, n_layers=2, norm="instance")


def data(task: str, length: int) -> Any:
    cls = PairedDataModule if task == "pix2pix" else UnpairedDataModule
    return cls(
        path="embedded", resolution=RES, batch_size=4, val_size=64, test_size=256, embedded_length=length
    )


def trainer(epochs: int, root: str) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        default_root_dir=root,
    )


def plain_module(task: str, gen: GanNet, disc: GanNet, gen_ba: GanNet | None = None) -> pl.LightningModule:
    if task == "pix2pix":
        return GanModule(
            gen,
            disc,
            pair_discriminator=True,
            adversarial=NonSaturatingLoss(discriminator_scale=0.5),
            losses=[PixelLoss(100.0, "l1", "real_img")],
            use_default_regularizers=False,
            ema_decay=None,
            style_mixing_prob=0.0,
            g_optimizer=pix2pix_adam,
            d_optimizer=pix2pix_adam,
        )
    return CycleGanModule(gen, gen_ba or generator(), disc, discriminator(task))


def coronet_module(task: str, ratio: float, sparsity: float) -> pl.LightningModule:
    search = dict(
        target_ratio=ratio, sparsity=sparsity, check_every=5, max_search_batches=300, mac_resolution=RES
    )
    if task == "pix2pix":
        return CoroNetModule(student=generator(), discriminator=discriminator(task), **search)
    return CoroNetCycleGanModule(
        student=generator(),
        generator_ba=generator(),
        discriminator=discriminator(task),
        discriminator_a=discriminator(task),
        adversarial=LSGANLoss(discriminator_scale=0.5),
        **search,
    )


@torch.no_grad()
def fid(net: GanNet, datamodule: Any) -> float:
    metrics = GenerativeMetrics(metrics=["fid"], feature_extractor="embedded")
    net = net.eval()
    for batch in datamodule.test_dataloader():
        metrics.update(batch["real_img"], real=True)
        metrics.update(net(batch["input_img"]).clamp(-1, 1), real=False)
    return float(metrics.compute()["fid"])


def l1_pruned(net: GanNet, fraction: float) -> GanNet:
    """Uniform L1 (outgoing weights) pruning meeting ``fraction`` of the net's MACs."""
    return apply_plan(net, budget_plan(net, L1Scorer()(net), target_fraction=fraction))


def describe(name: str, net: GanNet, datamodule: Any, seconds: float) -> dict[str, Any]:
    x256, xres = torch.randn(1, 3, 256, 256), torch.randn(1, 3, RES, RES)
    return {
        "run": name,
        "fid": fid(net, datamodule),
        "macs_256": torchprofile_macs(net, x256),
        "macs_res": torchprofile_macs(net, xres),
        "params": count_parameters(net),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=["pix2pix", "cyclegan"], default="pix2pix")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--length", type=int, default=400, help="embedded training items (batch 4)")
    parser.add_argument("--ratio", type=float, default=0.25)
    parser.add_argument("--sparsity", type=float, default=40.0)
    parser.add_argument("--root", default="runs/coronet_e2e")
    args = parser.parse_args()
    dm = data(args.task, args.length)
    dm.setup("fit")
    rows = []

    pl.seed_everything(0)
    start = time.perf_counter()
    teacher = plain_module(args.task, generator(), discriminator(args.task))
    trainer(args.epochs, f"{args.root}/{args.task}_teacher").fit(teacher, dm)
    rows.append(describe("teacher", teacher.generator, dm, time.perf_counter() - start))

    pl.seed_everything(0)
    start = time.perf_counter()
    coronet = coronet_module(args.task, args.ratio, args.sparsity)
    trainer(args.epochs, f"{args.root}/{args.task}_coronet").fit(coronet, dm)
    student = coronet.materialise()
    rows.append(describe(f"coronet ({coronet.stage})", student, dm, time.perf_counter() - start))

    pl.seed_everything(0)
    start = time.perf_counter()
    fraction = rows[-1]["macs_256"] / rows[0]["macs_256"]
    pruned = l1_pruned(copy.deepcopy(teacher.generator), fraction)
    pruned_ba = l1_pruned(copy.deepcopy(teacher.generator_ba), fraction) if args.task == "cyclegan" else None
    baseline = plain_module(args.task, pruned, copy.deepcopy(teacher.discriminator), pruned_ba)
    if args.task == "cyclegan":
        baseline.discriminator_a.load_state_dict(teacher.discriminator_a.state_dict())
    trainer(args.epochs, f"{args.root}/{args.task}_l1").fit(baseline, dm)
    rows.append(describe("l1 + fine-tune", baseline.generator, dm, time.perf_counter() - start))

    print(
        f"\n{args.task} on embedded data, ResNet-9 ngf 16, {RES} px, "
        f"{args.epochs} epochs of {args.length // 4} batches"
    )
    print(f"{'run':<20} {'FID':>8} {'MACs@256':>14} {'MACs@' + str(RES):>12} {'params':>10} {'time s':>8}")
    for row in rows:
        print(
            f"{row['run']:<20} {row['fid']:>8.2f} {row['macs_256']:>14,} {row['macs_res']:>12,} "
            f"{row['params']:>10,} {row['seconds']:>8.0f}"
        )


if __name__ == "__main__":
    main()
