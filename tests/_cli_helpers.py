"""Helpers for the CLI-level tests: running ``gancomp``, the runs under configs/, shrunk config
overrides, tiny checkpoints."""

from __future__ import annotations

import glob
import os
import re
import sys

import torch

from lightning_gancomp.cli import main
from lightning_gancomp.nets.base import net_payload
from lightning_gancomp.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(REPO, "configs", "teacher", "stylegan2_embedded.yaml")
DISTILL = os.path.join(REPO, "configs", "distill", "stylegan2_embedded.yaml")

#: ashleve-template style shrinking: tiny widths, tiny data, few batches, no metrics network.
SHRINK_TEACHER = [
    "--model.init_args.generator.init_args.channels=[16,16,16,16,16,16,8,8]",
    "--model.init_args.discriminator.init_args.channels=[8,8,8,8]",
    "--data.init_args.embedded_length=32",
    "--data.init_args.val_size=8",
    "--data.init_args.test_size=8",
    "--trainer.limit_train_batches=2",
    "--trainer.limit_val_batches=1",
    "--trainer.max_epochs=1",
]


def run_gancomp(args: list[str], capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``gancomp <args>``, run in this process."""
    code = 0
    saved_argv = sys.argv
    sys.argv = ["gancomp"]  # as from a shell: no pytest arguments for Lightning to warn about
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.argv = saved_argv
    out = capsys.readouterr()
    return code, out.out, out.err


def config_path(*parts: str) -> str:
    return os.path.join(REPO, "configs", *parts)


#: a run's command in its file's header: ``#   gancomp fit -c configs/a.yaml -c configs/b.yaml``
RUN_COMMAND = re.compile(r"^#\s*gancomp fit((?:\s+-c\s+\S+)+)\s*$")


def run_stack(run: str) -> list[str]:
    """The config files (repository-relative) of the run that ``run`` (``configs/...yaml``)
    defines: the ``gancomp fit -c ...`` line in its leading comments whose last file is itself.
    Empty when ``run`` is a piece (a method recipe, dataset, ratio, mask, trainer or logger file)."""
    with open(os.path.join(REPO, run)) as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            match = RUN_COMMAND.match(line.strip())
            if match:
                files = match.group(1).split()[1::2]
                if files[-1] == run:
                    return files
    return []


def discover_runs() -> list[str]:
    """Every run under configs/ (``configs/<folder>/<run>.yaml``), found by its header command."""
    paths = glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True)
    relative = sorted(os.path.relpath(p, REPO) for p in paths)
    return [path for path in relative if run_stack(path)]


def run_args(run: str) -> list[str]:
    """``-c`` arguments (absolute paths) of the run defined by ``run`` (``cagan/ffhq256_0.7.yaml``
    or ``configs/cagan/ffhq256_0.7.yaml``)."""
    relative = run if run.startswith("configs/") else os.path.join("configs", run)
    stack = run_stack(relative)
    if not stack:
        raise ValueError(f"{relative} defines no run (no '# gancomp fit -c ... -c {relative}' header line)")
    return [arg for path in stack for arg in ("-c", os.path.join(REPO, path))]


def write_tiny_teacher(path: str) -> str:
    """A training-checkpoint-shaped file (``gancomp_nets``) holding a 32 px teacher G and D that
    fit the distillation quickstart (z/w 64, mapping 2)."""
    torch.manual_seed(0)
    generator = StyleGAN2Generator(
        resolution=32, z_dim=64, w_dim=64, n_mapping=2, channels=[48] * 6 + [24, 24]
    )
    discriminator = StyleGAN2Discriminator(resolution=32, channels=[8, 8, 8, 8])
    torch.save({"gancomp_nets": {"g_ema": net_payload(generator), "d": net_payload(discriminator)}}, path)
    return path
