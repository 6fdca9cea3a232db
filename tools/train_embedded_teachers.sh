#!/usr/bin/env bash
# Train the shipped embedded teachers (lightning_gancomp/assets/teachers/) with the repository's own
# teacher configs, on one GPU, the five in parallel, then keep each run's networks (gancomp_nets:
# G, G-EMA where the recipe has one, D) as a small teacher file.
#
#   bash tools/train_embedded_teachers.sh OUT_DIR [MAX_TIME]     (MAX_TIME default 00:00:03:30)
#
# Only the training length and the data loader workers differ from the configs (longer epochs at
# the config's batch size, and the StyleGAN2 quickstart at batch 32); every recipe value is the
# config's. Each run is capped by Lightning's max_time.
set -euo pipefail
out=${1:?output folder}
max_time=${2:-00:00:03:30}
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
run() {  # name config cores extra-args...
  local name=$1 config=$2 cores=$3; shift 3
  mkdir -p "/tmp/teachers/$name"
  (cd "/tmp/teachers/$name" && taskset -c "$cores" python3 -m lightning_gancomp.cli fit -c "$repo/$config" \
    --trainer.accelerator=gpu --trainer.devices=1 --trainer.enable_progress_bar=false \
    --trainer.max_time="$max_time" --data.init_args.num_workers=2 "$@" >"$out/train_$name.log" 2>&1 \
    || echo "$name failed: see train_$name.log")
}
run stylegan2 configs/teacher/stylegan2_embedded.yaml 2-4 --trainer.limit_train_batches=1500 \
  --data.init_args.batch_size=32 --data.init_args.embedded_length=48000 &
run biggan configs/teacher/biggan_embedded.yaml 5-7 --trainer.limit_train_batches=1000 \
  --data.init_args.embedded_length=16000 &
run sngan configs/cagan/cifar10_sngan_teacher_embedded.yaml 8-10 --trainer.limit_train_batches=300 \
  --data.init_args.embedded_length=4800 &
run pix2pix configs/teacher/pix2pix_embedded.yaml 11-12 --trainer.limit_train_batches=2000 \
  --data.init_args.embedded_length=8000 &
run cyclegan configs/teacher/cyclegan_embedded.yaml 13-15 --trainer.limit_train_batches=2000 \
  --data.init_args.embedded_length=8000 &
wait
python3 - "$out" <<'PY'
import glob, os, sys, torch
out = sys.argv[1]
for run in sorted(glob.glob("/tmp/teachers/*")):
    name = os.path.basename(run)
    found = sorted(glob.glob(f"{run}/runs/**/last.ckpt", recursive=True), key=os.path.getmtime)
    if not found:
        print(f"{name}: no checkpoint"); continue
    ckpt = torch.load(found[-1], map_location="cpu", weights_only=True)
    state = ckpt.get("gancomp_state", {})
    torch.save({"gancomp_nets": ckpt["gancomp_nets"], "gancomp_state": state}, f"{out}/{name}.pt")
    grids = sorted(glob.glob(f"{run}/runs/**/samples/batch_*.png", recursive=True), key=os.path.getmtime)
    print(f"{name}: {found[-1]} batches_done={state.get('batches_done')} nets={sorted(ckpt['gancomp_nets'])}"
          f" -> {os.path.getsize(f'{out}/{name}.pt') / 1e6:.1f} MB; last grid {grids[-1] if grids else None}")
PY
