"""Wall time of the quickstart (``gancomp fit -c configs/teacher/stylegan2_embedded.yaml``) by phase.

Runs the real command in a temporary directory with one extra timing callback and prints

* start-up: Python/torch/Lightning imports, config parsing, building model and data;
* training batches: ``on_train_batch_start`` → ``on_train_batch_end`` (the G/D forwards and
  backwards, losses, optimiser steps, ``self.log`` calls);
* validation: sampling and the embedded FID/KID/IS;
* the rest: data loading between batches, logging, checkpoints and sample grids, Lightning's loop.

    python benchmarks/bench_quickstart.py [--config PATH] [extra gancomp overrides...]
"""

from __future__ import annotations

import time

START = time.perf_counter()

import argparse  # noqa: E402  (imports are part of what is timed)
import os  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

import pytorch_lightning as pl  # noqa: E402

from lightning_gancomp.cli import run_cli  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PhaseTimer(pl.Callback):
    """Wall-clock seconds per phase of ``fit``."""

    def __init__(self) -> None:
        self.seconds = {"training batches": 0.0, "validation": 0.0}
        self.fit_start = self.fit_end = 0.0
        self._mark = 0.0
        self.batches = 0

    def on_fit_start(self, *_: Any) -> None:
        self.fit_start = time.perf_counter()

    def on_fit_end(self, *_: Any) -> None:
        self.fit_end = time.perf_counter()

    def on_train_batch_start(self, *_: Any) -> None:
        self._mark = time.perf_counter()

    def on_train_batch_end(self, *_: Any) -> None:
        self.seconds["training batches"] += time.perf_counter() - self._mark
        self.batches += 1

    def on_validation_start(self, *_: Any) -> None:
        self._mark = time.perf_counter()

    def on_validation_end(self, *_: Any) -> None:
        self.seconds["validation"] += time.perf_counter() - self._mark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=os.path.join(REPO, "configs/teacher/stylegan2_embedded.yaml"))
    args, overrides = parser.parse_known_args()
    timer = PhaseTimer()
    config = os.path.abspath(args.config)
    with tempfile.TemporaryDirectory() as workdir:
        os.chdir(workdir)
        run_cli(
            ["fit", "-c", config, "--trainer.enable_progress_bar=false", *overrides],
            trainer_defaults={"callbacks": [timer]},
        )
    end = time.perf_counter()
    total = end - START
    startup = timer.fit_start - START
    rest = (timer.fit_end - timer.fit_start) - sum(timer.seconds.values())
    rows = {"start-up": startup, **timer.seconds, "rest of fit (data, logging, checkpoints, loop)": rest}
    rows["after fit"] = end - timer.fit_end
    print(f"quickstart {args.config}: {total:.1f} s wall, {timer.batches} training batches")
    for name, seconds in rows.items():
        print(f"  {name:<48} {seconds:7.1f} s  {100 * seconds / total:5.1f} %")


if __name__ == "__main__":
    main()
