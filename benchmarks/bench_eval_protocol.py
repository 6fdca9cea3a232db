"""Seconds of one validation and one test pass under the embedded evaluation protocol
(configs/metrics/embedded_*.yaml: 512 validation / 2048 test images in batches of 256).

    OMP_NUM_THREADS=1 python benchmarks/bench_eval_protocol.py [config or stack ...]

Each argument is one config (a teacher run) or a ``+``-joined stack (``a.yaml+b.yaml+c.yaml``, a
compression run). The config's model is built by the CLI as ``gancomp validate`` / ``test`` would
(networks with random weights: the cost does not depend on them; weight files the config names are
written from its architectures into a temporary folder), then ``Trainer.validate`` runs twice
(the first pass also computes the real statistics, later validations during ``fit`` reuse them)
and ``Trainer.test`` once on a fresh model (as ``gancomp test``: real statistics computed again,
plus whatever the method adds at test time, e.g. the teacher beside the student, evaluated rather
than read from its cache, and CAGAN's teacher-student L1 and precision/recall curve). Times
exclude process start-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import torch
import yaml

from lightning_gancomp.cli import run_cli
from lightning_gancomp.methods import teacher_eval
from lightning_gancomp.nets.base import NET_REGISTRY, net_payload

QUIET = [
    "--trainer.logger=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.enable_checkpointing=false",
    "--trainer.callbacks=[]",
]
TEACHERS = [f"configs/teacher/{name}_embedded.yaml" for name in ("stylegan2", "sngan", "biggan", "pix2pix")]
DEFAULT = [*TEACHERS, "configs/teacher/cyclegan_embedded.yaml"]


def printed_model(configs: list[str]) -> dict:
    """``model.init_args`` of the stack as the CLI resolves it."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        run_cli(["fit", *[a for c in configs for a in ("-c", c)], "--print_config"])
    return yaml.safe_load(out.getvalue())["model"]["init_args"]


def weight_overrides(model: dict, folder: str) -> list[str]:
    """Random-weight files for the teacher/discriminator files the config names; no student file.
    A config that gives a teacher file without its architecture (the distillation quickstart)
    cannot be measured this way: SystemExit naming it."""
    if model.get("teacher_path") and not model.get("teacher"):
        raise SystemExit("the config names a teacher file but not its architecture: nothing to build")
    nets = {}
    for key, slot in (("teacher", "g_ema"), ("discriminator", "d")):
        spec = model.get(key)
        if isinstance(spec, dict) and spec.get("class_path", "").rsplit(".", 1)[-1] in NET_REGISTRY:
            nets[slot] = net_payload(NET_REGISTRY[spec["class_path"].rsplit(".", 1)[1]](**spec["init_args"]))
    path = os.path.join(folder, "random.ckpt")
    torch.save({"gancomp_nets": nets}, path)
    files = [key for key in ("teacher_path", "discriminator_path") if model.get(key)]
    overrides = [f"--model.init_args.{key}={path}" for key in files]
    return overrides + (["--model.init_args.student_path=null"] if model.get("student_path") else [])


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def measure(stack: str, folder: str) -> dict[str, float]:
    """Seconds of validate (cold, warm) and test (cold) for one config stack."""
    configs = stack.split("+")
    args = [a for c in configs for a in ("-c", c)] + QUIET
    args += weight_overrides(printed_model(configs), folder)
    cli = run_cli(args, run=False)
    data = cli.datamodule
    cold = timed(lambda: cli.trainer.validate(cli.model, datamodule=data, verbose=False))
    warm = timed(lambda: cli.trainer.validate(cli.model, datamodule=data, verbose=False))
    fresh = run_cli(args, run=False)
    test = timed(lambda: fresh.trainer.test(fresh.model, datamodule=fresh.datamodule, verbose=False))
    sizes = (data.val_size, data.test_size, data.eval_batch_size)
    return {"val_cold": cold, "val_warm": warm, "test": test, "sizes": sizes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", nargs="*", default=DEFAULT)
    stacks = parser.parse_args().stacks
    sys.argv = sys.argv[:1]  # LightningCLI warns about arguments it did not get
    print(f"torch threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as folder:
        teacher_eval.DEFAULT_CACHE_DIR = folder  # the teacher beside a student is evaluated, not cached
        for stack in stacks:
            r = measure(stack, folder)
            val, test, batch = r["sizes"]
            print(
                f"{stack}: val {val} images {r['val_cold']:.1f} s (first; later {r['val_warm']:.1f} s), "
                f"test {test} images {r['test']:.1f} s (eval batch {batch})",
                flush=True,
            )


if __name__ == "__main__":
    main()
