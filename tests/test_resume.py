"""A fit killed mid-run (SIGKILL) and resumed from its last checkpoint continues with the same
step count and, with the same seed, reproduces the uninterrupted run's losses."""

import json
import os
import signal
import subprocess
import sys

import pytest
from _cli_helpers import QUICKSTART, REPO, SHRINK_TEACHER

#: 3 batches of 8 per epoch, a checkpoint every 3 batches: every checkpoint falls on an epoch end
EPOCH_END = [
    "--data.init_args.embedded_length=24", "--trainer.limit_train_batches=3", "--trainer.max_epochs=4",
    "--trainer.callbacks.every_n_batches=3",
]  # fmt: skip
#: 5 batches of 8 per epoch (4 items dropped), a checkpoint every 3 batches: the one at batch 6 is
#: 1 batch into epoch 2, so the resumed run must continue that epoch's order from its 2nd batch
MID_EPOCH = [
    "--data.init_args.embedded_length=44", "--trainer.limit_train_batches=5", "--trainer.max_epochs=3",
    "--trainer.callbacks.every_n_batches=3",
]  # fmt: skip


def gancomp_fit(workdir, schedule, extra):
    env = {
        **os.environ,
        "PYTHONPATH": os.path.join(REPO, "tests") + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "disabled",
    }
    args = [
        sys.executable, "-m", "lightning_gancomp.cli", "fit", "-c", QUICKSTART, *SHRINK_TEACHER,
        "--model.init_args.metrics=null", "--trainer.enable_progress_bar=false",
        "--trainer.check_val_every_n_epoch=2",
        "--model.init_args.r1_interval=2", "--model.init_args.pl_interval=3",
        "--trainer.callbacks+=lightning_gancomp.callbacks.GanCheckpoint",
        "--trainer.callbacks.dirpath=ckpt", "--trainer.callbacks.save_last=true", *schedule,
        "--trainer.callbacks+=_resume_probe.LossRecorder", "--trainer.callbacks.path=losses.jsonl",
        *extra,
    ]  # fmt: skip
    os.makedirs(workdir, exist_ok=True)
    return subprocess.run(args, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)


def records(workdir):
    with open(os.path.join(workdir, "losses.jsonl")) as handle:
        return [json.loads(line) for line in handle]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("schedule", "total"),
    [(EPOCH_END, 12), (MID_EPOCH, 15)],
    ids=["checkpoint_at_epoch_end", "checkpoint_mid_epoch"],
)
def test_killed_run_resumes_with_same_steps_and_losses(tmp_path, schedule, total):
    full_dir, cut_dir = tmp_path / "full", tmp_path / "cut"
    full = gancomp_fit(full_dir, schedule, [])
    assert full.returncode == 0, full.stderr[-3000:]
    reference = records(full_dir)
    assert len(reference) == total

    # killed when the 9th batch starts; the last checkpoint is from batch 6 (every 3 batches)
    killed = gancomp_fit(
        cut_dir, schedule, ["--trainer.callbacks+=_resume_probe.KillAt", "--trainer.callbacks.batch=8"]
    )
    assert killed.returncode == -signal.SIGKILL
    assert len(records(cut_dir)) == 8
    assert not [f for f in os.listdir(cut_dir / "ckpt") if ".tmp" in f]

    resumed = gancomp_fit(cut_dir, schedule, ["--ckpt_path=ckpt/last.ckpt"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    continued = records(cut_dir)[8:]  # the resumed run's batches (7th batch onwards)
    assert [r["batches_done"] for r in continued] == list(range(7, total + 1))
    expected = reference[6:]
    assert [r["global_step"] for r in continued] == [r["global_step"] for r in expected]
    assert [r["epoch"] for r in continued] == [r["epoch"] for r in expected]
    for got, want in zip(continued, expected, strict=True):
        assert got["data"] == pytest.approx(want["data"], rel=1e-12), got["batches_done"]  # same images
        assert got["g_total"] == pytest.approx(want["g_total"], rel=1e-6, abs=1e-7), got["batches_done"]
        assert got["d_adv"] == pytest.approx(want["d_adv"], rel=1e-6, abs=1e-7), got["batches_done"]
