#!/usr/bin/env bash
# Retrain the shipped embedded teachers (lightning_gancomp/assets/teachers/) with the repository's
# own teacher configs, on one GPU, the five in parallel, and ship each finished run with
# tools/ship_teacher.py (networks, saved config, last grid, manifest entry with its test metrics).
#
#   bash tools/train_embedded_teachers.sh [MAX_TIME]     (MAX_TIME default 00:00:30:00)
#
# The lengths are those of the shipped CPU runs (manifest.json commands); only the device and the
# data loader workers differ. Each run is capped by Lightning's max_time.
set -euo pipefail
max_time=${1:-00:00:30:00}
repo=$(cd "$(dirname "$0")/.." && pwd)
train() {  # name run-dir cores config-args...
  local name=$1 run_dir=$2 cores=$3; shift 3
  local work="/tmp/teachers/$name" start
  mkdir -p "$work"
  (
    cd "$work"
    start=$(date +%s)
    taskset -c "$cores" python3 -m lightning_gancomp.cli fit "$@" --trainer.accelerator=gpu \
      --trainer.devices=1 --trainer.enable_progress_bar=false --trainer.max_time="$max_time" \
      --data.init_args.num_workers=2 >"train.log" 2>&1
    python3 -m lightning_gancomp.cli test "$@" --ckpt_path "$run_dir/checkpoints/last.ckpt" \
      --trainer.accelerator=gpu --trainer.devices=1 >"test.log" 2>&1
    python3 "$repo/tools/ship_teacher.py" "$run_dir" "$name" --trained-on "1 GPU" \
      --wall-s "$(($(date +%s) - start))" --command "gancomp fit ${*//$repo\//}"
  ) || echo "$name failed: see $work/*.log"
}
c="$repo/configs/teacher"
train stylegan2_embedded runs/quickstart 2-4 -c "$c/stylegan2_embedded.yaml" \
  --trainer.max_epochs=200 --data.init_args.embedded_length=4000 &
train biggan_embedded runs/biggan_teacher_embedded 5-7 -c "$c/biggan_embedded.yaml" \
  --trainer.limit_train_batches=150 --data.init_args.embedded_length=19200 &
train sngan_embedded runs/sngan_teacher_embedded 8-10 -c "$c/sngan_embedded.yaml" \
  -c "$c/shipped/sngan_embedded.yaml" &
train pix2pix_embedded runs/pix2pix 11-12 -c "$c/pix2pix_embedded.yaml" \
  --trainer.limit_train_batches=500 --data.init_args.embedded_length=2000 &
train cyclegan_embedded runs/cyclegan 13-15 -c "$c/cyclegan_embedded.yaml" \
  --trainer.limit_train_batches=500 --data.init_args.embedded_length=2000 &
wait
