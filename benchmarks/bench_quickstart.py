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

START, START_CPU = time.perf_counter(), time.process_time()

import argparse  # noqa: E402  (imports are part of what is timed)
import os  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

import pytorch_lightning as pl  # noqa: E402

from lightning_gancomp.cli import run_cli  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def now() -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process: all its threads)."""
    return time.perf_counter(), time.process_time()


class PhaseTimer(pl.Callback):
    """Wall-clock and process-CPU seconds per phase of ``fit``.

    CPU seconds are what the phase would take on idle cores if it ran on one thread at a time;
    on a loaded machine they are the better estimate (wall time also counts waiting for a core).
    """

    def __init__(self) -> None:
        self.spent = {"training batches": [0.0, 0.0], "validation": [0.0, 0.0]}
        self.fit_start = self.fit_end = (0.0, 0.0)
        self._mark = (0.0, 0.0)
        self.batches = 0

    def _add(self, phase: str) -> None:
        wall, cpu = now()
        self.spent[phase][0] += wall - self._mark[0]
        self.spent[phase][1] += cpu - self._mark[1]

    def on_fit_start(self, *_: Any) -> None:
        self.fit_start = now()

    def on_fit_end(self, *_: Any) -> None:
        self.fit_end = now()

    def on_train_batch_start(self, *_: Any) -> None:
        self._mark = now()

    def on_train_batch_end(self, *_: Any) -> None:
        self._add("training batches")
        self.batches += 1

    def on_validation_start(self, *_: Any) -> None:
        self._mark = now()

    def on_validation_end(self, *_: Any) -> None:
        self._add("validation")


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
    end = now()
    start = (START, START_CPU)
    rows = {"start-up (imports, config, build)": [timer.fit_start[i] - start[i] for i in (0, 1)]}
    rows.update(timer.spent)
    fit = [timer.fit_end[i] - timer.fit_start[i] for i in (0, 1)]
    rows["rest of fit (data, logging, checkpoints, loop)"] = [
        fit[i] - sum(v[i] for v in timer.spent.values()) for i in (0, 1)
    ]
    rows["after fit"] = [end[i] - timer.fit_end[i] for i in (0, 1)]
    total = [end[i] - start[i] for i in (0, 1)]
    print(f"quickstart {args.config}: {timer.batches} training batches")
    print(f"  {'phase':<48} {'wall s':>8} {'%':>6} {'CPU s':>8} {'%':>6}")
    for name, (wall, cpu) in [*rows.items(), ("total", total)]:
        print(f"  {name:<48} {wall:8.1f} {100 * wall / total[0]:6.1f} {cpu:8.1f} {100 * cpu / total[1]:6.1f}")


if __name__ == "__main__":
    main()
