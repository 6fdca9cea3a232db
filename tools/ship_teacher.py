"""Turn a finished teacher run into a shipped teacher (lightning_gancomp/assets/teachers/).

    python tools/ship_teacher.py RUN_DIR NAME --command "gancomp fit -c configs/teacher/... ..." \
        [--trained-on "2-core CPU, 1 thread"]

RUN_DIR is the run's root (the folder with ``checkpoints/last.ckpt`` and ``version_*/``). Writes
``<NAME>.pt`` (only the networks: the EMA generator where the recipe has one, else the generator,
the discriminator(s) and a CycleGAN's second generator; no optimizer state), ``<NAME>.yaml`` (the
full config LightningCLI saved for the run) and ``<NAME>.png`` (the run's last sample grid), and
records in ``manifest.json``: the files, the config and command, the batches and images trained,
the wall time, the last validation and test metrics (run ``gancomp test -c <config> --ckpt_path
<RUN_DIR>/checkpoints/last.ckpt`` first for the test protocol's numbers) and the file's sha256.
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import json
import os
import shutil
import sys

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from lightning_gancomp.atomic import atomic_path, atomic_write_json  # noqa: E402
from lightning_gancomp.pretrained import MANIFEST, TEACHER_DIR  # noqa: E402


def shipped_networks(nets: dict) -> dict:
    """All payloads except the raw generator when its EMA is stored (the EMA is the teacher)."""
    return {name: payload for name, payload in nets.items() if not (name == "g" and "g_ema" in nets)}


def last_metrics(run_dir: str) -> dict[str, float]:
    """The last logged value of every ``val/*`` and ``test/*`` column of the run's CSV logs (a
    ``gancomp test`` of the finished run logs its test metrics into the next ``version_*``)."""
    found: dict[str, float] = {}
    versions = glob.glob(os.path.join(run_dir, "version_*", "metrics.csv"))
    for path in sorted(versions, key=lambda p: int(p.split("version_")[-1].split(os.sep)[0])):
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                found.update({k: float(v) for k, v in row.items() if k.startswith(("val/", "test/")) and v})
    return found


def newest(pattern: str) -> str | None:
    found = glob.glob(pattern, recursive=True)
    return max(found, key=os.path.getmtime) if found else None


def ship(run_dir: str, name: str, command: str, trained_on: str, wall_s: float | None) -> dict:
    ckpt_path = os.path.join(run_dir, "checkpoints", "last.ckpt")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    state = ckpt.get("gancomp_state", {})
    nets = shipped_networks(ckpt["gancomp_nets"])
    target = os.path.join(TEACHER_DIR, f"{name}.pt")
    with atomic_path(target) as tmp:
        torch.save({"gancomp_nets": nets}, tmp)
    config = min(glob.glob(os.path.join(run_dir, "version_*", "config.yaml")), default=None)  # the fit's
    grid = newest(os.path.join(run_dir, "**", "samples", "batch_*.png"))
    for source, suffix in ((config, "yaml"), (grid, "png")):
        if source:
            shutil.copyfile(source, os.path.join(TEACHER_DIR, f"{name}.{suffix}"))
    with open(target, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    return {
        "file": f"{name}.pt",
        "config": f"{name}.yaml" if config else None,
        "grid": f"{name}.png" if grid else None,
        "command": command,
        "networks": sorted(nets),
        "batches": int(state.get("batches_done", ckpt.get("global_step", 0))),
        "epochs": int(ckpt.get("epoch", 0)) + 1,
        "trained_on": trained_on,
        "wall_s": wall_s,
        "metrics": last_metrics(run_dir),
        "sha256": digest,
        "megabytes": round(os.path.getsize(target) / 1e6, 2),
    }


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("run_dir")
    parser.add_argument("name")
    parser.add_argument("--command", required=True, help="the exact command that trained the run")
    parser.add_argument("--trained-on", default="2-core CPU (1 thread)")
    parser.add_argument("--wall-s", type=float, default=None, help="the run's wall time, seconds")
    args = parser.parse_args()
    os.makedirs(TEACHER_DIR, exist_ok=True)
    entry = ship(args.run_dir, args.name, args.command, args.trained_on, args.wall_s)
    manifest = json.load(open(MANIFEST, encoding="utf-8")) if os.path.isfile(MANIFEST) else {}
    manifest[args.name] = entry
    atomic_write_json(dict(sorted(manifest.items())), MANIFEST)
    print(json.dumps({args.name: entry}, indent=1))


if __name__ == "__main__":
    main()
