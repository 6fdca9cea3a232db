"""Two-process CPU (gloo) DDP fit of a tiny GAN through the CLI and configs/trainer/ddp.yaml."""

import json
import os
import subprocess
import sys

import pytest
from _cli_helpers import QUICKSTART, REPO, SHRINK_TEACHER, config_path

from lightning_gancomp.checkpoints import load_generator


@pytest.mark.slow
def test_two_process_gloo_fit_completes_with_synchronised_weights(tmp_path):
    probe_dir = tmp_path / "probe"
    args = [
        sys.executable, "-m", "lightning_gancomp.cli", "fit",
        "-c", QUICKSTART, "-c", config_path("trainer", "ddp.yaml"),
        *SHRINK_TEACHER,
        "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.limit_train_batches=3",
        "--data.init_args.embedded_length=48",  # 48 items / 2 ranks / batch 8 = 3 batches per rank
        "--trainer.enable_progress_bar=false", "--model.init_args.metrics=null",
        "--trainer.callbacks+=_ddp_probe.WeightChecksum", f"--trainer.callbacks.out_dir={probe_dir}",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.path.join(REPO, "tests") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "disabled",
    }
    result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads((probe_dir / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in records] == [2, 2]
    assert {r["backend"] for r in records} == {"gloo"}
    assert [r["batches_done"] for r in records] == [3, 3]
    # gradients were averaged: both replicas hold the same weights after training
    for name in ("generator", "discriminator", "generator_ema"):
        assert records[0]["sums"][name] == pytest.approx(records[1]["sums"][name], rel=1e-9, abs=1e-9), name
    assert load_generator(tmp_path / "runs" / "quickstart" / "checkpoints" / "last.ckpt") is not None
