"""Safe by default (issue 8): no code runs from a checkpoint, no non-finite checkpoint on disk,
one run per directory, nothing half-written, and one ``gancomp: error:`` line for bad input."""

from __future__ import annotations

import errno
import functools
import glob
import hashlib
import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from _cli_helpers import QUICKSTART, SHRINK_TEACHER, run_args, run_gancomp, write_tiny_teacher
from PIL import Image
from test_cli import NO_METRICS, single_error_line
from torch import nn

from lightning_gancomp.atomic import OutputError
from lightning_gancomp.caches import load_cached_weights
from lightning_gancomp.callbacks.guard import LOCK_FILE, RunDirectoryLockedError
from lightning_gancomp.checkpoints import CheckpointError, load_generator
from lightning_gancomp.cli import main, run_cli
from lightning_gancomp.commands.export import export
from lightning_gancomp.commands.prune import PruneError, check_student_plan, prune
from lightning_gancomp.data import DatasetError, UnconditionalDataModule
from lightning_gancomp.data.sources import ImageFolderDataset
from lightning_gancomp.data.transforms import StyleGAN2Transform, decode_image
from lightning_gancomp.methods import CompressionModule
from lightning_gancomp.metrics import GenerativeMetrics
from lightning_gancomp.metrics.features import VGG16FeatureExtractor, weights_only_torch_loads
from lightning_gancomp.metrics.image_metrics import real_stats_cache_path
from lightning_gancomp.nets.base import net_payload
from lightning_gancomp.nets.pix2pix import ResnetGenerator
from lightning_gancomp.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from lightning_gancomp.pruning.importance import L1Scorer
from lightning_gancomp.pruning.plan import PlanError, PruningPlan, UniformPolicy
from lightning_gancomp.stored_config import compare_stored_hyperparameters

TINY_FIT = ["fit", "-c", QUICKSTART, *SHRINK_TEACHER, *NO_METRICS]


class _Evil:
    """Unpickling this creates ``marker``: the side effect that must never happen."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_malicious_checkpoint(path: str, marker: str) -> str:
    torch.save({"state_dict": {}, "epoch": 0, "payload": _Evil(marker)}, path)
    return path


@pytest.fixture
def http_server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving ``tmp_path / "www"``; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args, **kwargs: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


# -- 1. no code execution from a checkpoint --------------------------------------------------------
def test_malicious_checkpoint_url_runs_no_code(http_server, tmp_path, monkeypatch, capsys):
    url, root = http_server
    marker = tmp_path / "pwned"
    write_malicious_checkpoint(str(root / "evil.ckpt"), str(marker))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # where torch.hub caches the URL
    code, _, err = run_gancomp([*TINY_FIT, f"--ckpt_path={url}/evil.ckpt"], capsys)
    line = single_error_line(err)
    assert code == 1 and not marker.exists()
    assert "evil.ckpt" in line and "GLOBAL" in line and "--weights_only=false" in line


@pytest.mark.parametrize("kind", ["malicious", "truncated", "empty", "directory", "missing"])
def test_bad_local_ckpt_path_is_one_line(kind, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    path = tmp_path / "bad.ckpt"
    if kind == "malicious":
        write_malicious_checkpoint(str(path), str(marker))
    elif kind == "truncated":
        write_malicious_checkpoint(str(path), str(marker))
        path.write_bytes(path.read_bytes()[:40])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    code, _, err = run_gancomp([*TINY_FIT, f"--ckpt_path={path}"], capsys)
    line = single_error_line(err)
    assert code in (1, 2) and "bad.ckpt" in line and not marker.exists()


def test_feature_extractor_weights_are_read_once_and_weights_only(tmp_path):
    marker = tmp_path / "pwned"
    evil = write_malicious_checkpoint(str(tmp_path / "vgg.pth"), str(marker))
    with pytest.raises(ValueError, match="vgg.pth.*GLOBAL"):
        VGG16FeatureExtractor(weights_path=evil)
    assert not marker.exists()
    # The file torch-fidelity asks for is served from memory (a swapped file is never read) and
    # any other torch.load it makes is weights-only even when it asks for weights_only=False.
    good = tmp_path / "good.pth"
    torch.save({"w": torch.ones(2)}, good)
    state = {"w": torch.zeros(2)}
    with weights_only_torch_loads({str(good): state}):
        good.unlink()
        assert torch.load(str(good), weights_only=False) is state
        with pytest.raises(Exception, match="GLOBAL"):
            torch.load(evil, weights_only=False)
    assert not marker.exists()


# -- 3. no non-finite checkpoint -------------------------------------------------------------------
class InfGradients(pl.Callback):
    """Used by class_path: Inf gradients reach the generator in its step of batch 3 while every
    loss is finite (the case the loss check cannot see), so Adam turns its weights into NaN and
    the checkpoint due at the end of that batch would be the first to hold them."""

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        generator = {id(p) for p in pl_module.generator.parameters()}
        is_g = any(id(p) in generator for group in optimizer.param_groups for p in group["params"])
        if pl_module.batches_done == 3 and is_g:
            for group in optimizer.param_groups:
                for param in group["params"]:
                    if param.grad is not None:
                        param.grad.fill_(float("inf"))


def all_finite(path) -> bool:
    state = torch.load(path, weights_only=True)
    tensors = list(state["state_dict"].values())
    for optimizer in state.get("optimizer_states", []):
        tensors += [t for s in optimizer["state"].values() for t in s.values() if torch.is_tensor(t)]
    return all(torch.isfinite(t).all() for t in tensors if t.is_floating_point())


def test_non_finite_step_leaves_only_finite_checkpoints(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_gancomp(
        [
            *TINY_FIT, "--trainer.limit_train_batches=6",
            "--trainer.callbacks+=test_safety.InfGradients",
            "--trainer.callbacks+=lightning_gancomp.callbacks.GanCheckpoint",
            "--trainer.callbacks.every_n_batches=1", "--trainer.callbacks.dirpath=ckpts",
            "--trainer.callbacks.save_last=true", "--trainer.callbacks.save_top_k=-1",
        ],
        capsys,
    )  # fmt: skip
    line = single_error_line(err)
    assert code == 1 and "non-finite" in line
    written = sorted(glob.glob("**/*.ckpt", recursive=True))
    assert "ckpts/last.ckpt" in written and all(all_finite(path) for path in written), written
    named = re.search(r"last (?:finite|good) checkpoint: (\S+\.ckpt)", line)
    assert named and all_finite(named.group(1)), line
    last = torch.load("ckpts/last.ckpt", weights_only=True)
    assert last["gancomp_state"]["batches_done"] == 3  # the state before the Inf step


# -- 4. one run per directory ----------------------------------------------------------------------
def test_second_run_in_a_locked_directory_is_refused_and_a_stale_lock_taken_over(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    holder = subprocess.Popen(["sleep", "60"])  # a live process on this host holding the lock
    try:
        lock = tmp_path / "runs" / "quickstart" / LOCK_FILE
        lock.parent.mkdir(parents=True)
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "started": "now"}))
        code, _, err = run_gancomp(TINY_FIT, capsys)
        line = single_error_line(err)
        assert code == 1 and f"pid {holder.pid}" in line and "runs/quickstart" in line
        assert sorted(os.listdir(lock.parent)) == [LOCK_FILE]  # nothing written by the refused run
        assert json.loads(lock.read_text())["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()
    stale_tmp = tmp_path / "runs" / "quickstart" / "checkpoints" / f"last.tmp-{holder.pid}.ckpt"
    stale_tmp.parent.mkdir()
    stale_tmp.write_bytes(b"half written")
    code, _, err = run_gancomp(TINY_FIT, capsys)  # the holder is gone: its lock is stale
    assert code == 0, err[-2000:]
    assert os.path.isfile("runs/quickstart/checkpoints/last.ckpt") and not lock.exists()
    assert not stale_tmp.exists()


class HoldTheRun(pl.Callback):
    """Used by class_path: pauses the first fit at its first batch until the test releases it."""

    started = threading.Event()
    release = threading.Event()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        HoldTheRun.started.set()
        assert HoldTheRun.release.wait(120)


def test_two_concurrent_fits_on_one_directory_one_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["gancomp"])
    results = {}

    def first_run():
        try:
            main([*TINY_FIT, "--trainer.callbacks+=test_safety.HoldTheRun"])
            results["first"] = 0
        except SystemExit as exc:
            results["first"] = exc.code

    thread = threading.Thread(target=first_run)
    thread.start()
    try:
        assert HoldTheRun.started.wait(120)
        with pytest.raises(RunDirectoryLockedError, match=f"pid {os.getpid()}"):
            run_cli(TINY_FIT)
    finally:
        HoldTheRun.release.set()
        thread.join()
    assert results["first"] == 0 and os.path.isfile("runs/quickstart/checkpoints/last.ckpt")


# -- 8. SIGTERM / SIGINT ---------------------------------------------------------------------------
class SignalAtBatch(pl.Callback):
    """Used by class_path: the process receives ``signum`` during batch 1 (of 4)."""

    def __init__(self, signum: int = 15) -> None:
        self.signum = signum

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if pl_module.batches_done == 1:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_a_final_checkpoint_exits_nonzero_and_resumes(signum, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    four = [*TINY_FIT, "--trainer.limit_train_batches=4"]
    code, _, err = run_gancomp(
        [
            *four,
            "--trainer.callbacks+=test_safety.SignalAtBatch",
            f"--trainer.callbacks.signum={int(signum)}",
        ],
        capsys,
    )
    line = single_error_line(err)
    last = "runs/quickstart/checkpoints/last.ckpt"
    assert (
        code == 128 + signum
        and f"stopped by {signal.Signals(signum).name} after batch 2" in line
        and last in line
    )
    assert torch.load(last, weights_only=True)["gancomp_state"]["batches_done"] == 2
    assert not (tmp_path / "runs" / "quickstart" / LOCK_FILE).exists()
    if signum == signal.SIGTERM:  # the same checkpoint either way: resume it once
        code, _, err = run_gancomp([*four, f"--ckpt_path={last}"], capsys)
        assert code == 0, err[-2000:]
        assert torch.load(last, weights_only=True)["gancomp_state"]["batches_done"] == 4


# -- 5. export: all or nothing ---------------------------------------------------------------------
@pytest.fixture
def exported_before(tmp_path):
    """A tiny training checkpoint and an existing export (b"old") that failures must keep."""
    checkpoint = write_tiny_teacher(str(tmp_path / "teacher.ckpt"))
    old = tmp_path / "g.pt"
    old.write_bytes(b"old export")
    return checkpoint, old


def export_args(checkpoint, *extra):
    return ["export", "-c", QUICKSTART, f"--checkpoint={checkpoint}", *extra]


@pytest.mark.parametrize(
    "case, expected",
    [
        ("batch0", "--torchscript_batch_size must be >= 1, got 0"),
        ("folder_is_a_file", "/ts is a file, not a folder"),
        ("same_as_checkpoint", "is the input --checkpoint"),
        ("unknown_key", "no network 'ema' in this training checkpoint; it has: g_ema, d"),
    ],
)
def test_failed_export_keeps_every_existing_file_byte_for_byte(
    case, expected, exported_before, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    checkpoint, old = exported_before
    (tmp_path / "ts").write_bytes(b"a file where a folder is expected")
    ts_old = tmp_path / "g.ts"
    ts_old.write_bytes(b"old trace")
    args = {
        "batch0": [f"--output={old}", f"--torchscript={ts_old}", "--torchscript_batch_size=0"],
        "folder_is_a_file": [f"--output={old}", f"--torchscript={tmp_path / 'ts' / 'g.ts'}"],
        "same_as_checkpoint": [f"--output={checkpoint}"],
        "unknown_key": [f"--output={old}", "--key=ema"],
    }[case]
    checkpoint_bytes = open(checkpoint, "rb").read()
    code, _, err = run_gancomp(export_args(checkpoint, *args), capsys)
    line = single_error_line(err)
    assert code == 1 and expected in line, line
    assert old.read_bytes() == b"old export" and ts_old.read_bytes() == b"old trace"
    assert open(checkpoint, "rb").read() == checkpoint_bytes
    assert not [name for name in os.listdir(tmp_path) if ".tmp-" in name]


def test_export_replaces_both_files_only_after_both_succeeded(exported_before, tmp_path, monkeypatch):
    checkpoint, old = exported_before
    ts = tmp_path / "g.ts"
    ts.write_bytes(b"old trace")
    real_save = torch.jit.ScriptModule.save

    def failing_save(self, path, *args, **kwargs):
        real_save(self, path, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(torch.jit.ScriptModule, "save", failing_save)
    with pytest.raises(OutputError, match="No space left on device"):
        export(checkpoint, str(old), torchscript=str(ts), log=lambda _: None)
    assert old.read_bytes() == b"old export" and ts.read_bytes() == b"old trace"
    monkeypatch.setattr(torch.jit.ScriptModule, "save", real_save)
    export(checkpoint, str(old), torchscript=str(ts), log=lambda _: None)
    assert load_generator(old).channels == load_generator(checkpoint).channels and torch.jit.load(str(ts))


# -- 6. prune: student and plan move together ------------------------------------------------------
@pytest.fixture
def teacher_file(tmp_path):
    torch.manual_seed(0)
    g = StyleGAN2Generator(32, z_dim=16, w_dim=16, n_mapping=2, channels=[16, 12, 12, 10, 10, 8, 8, 6])
    path = tmp_path / "teacher.ckpt"
    torch.save({"gancomp_nets": {"g_ema": net_payload(g)}}, path)
    return str(path)


def quiet_prune(teacher, output, ratio):
    return prune(teacher, output, L1Scorer(), UniformPolicy(ratio), log=lambda _: None)


def test_prune_writes_student_and_plan_together_and_plan_knows_its_student(
    teacher_file, tmp_path, monkeypatch
):
    student, plan = tmp_path / "s.ckpt", tmp_path / "s.plan.json"
    quiet_prune(teacher_file, str(student), 0.5)
    old_student, old_plan = student.read_bytes(), plan.read_bytes()
    assert (
        PruningPlan.load(plan, student=student).student["sha256"] == hashlib.sha256(old_student).hexdigest()
    )

    def disk_full(self):
        raise OSError(errno.ENOSPC, "No space left on device", str(plan))

    monkeypatch.setattr(PruningPlan, "to_json", disk_full)  # the plan write fails after the student's
    with pytest.raises(OutputError, match="s.plan.json.*No space left"):
        quiet_prune(teacher_file, str(student), 0.25)
    assert student.read_bytes() == old_student and plan.read_bytes() == old_plan
    assert sorted(os.listdir(tmp_path)) == ["s.ckpt", "s.plan.json", "teacher.ckpt"]
    monkeypatch.undo()

    other = tmp_path / "other"
    other.mkdir()
    quiet_prune(teacher_file, str(other / "s.ckpt"), 0.25)
    os.replace(other / "s.ckpt", student)  # a student from another run beside the old plan
    with pytest.raises(PlanError, match="another student than .*s.ckpt"):
        PruningPlan.load(plan, student=student)
    method = CompressionModule(
        student_path=str(student), discriminator=StyleGAN2Discriminator(32, channels=[8] * 4)
    )
    with pytest.raises(PlanError, match="different prune runs"):
        check_student_plan(method)  # what the CLI runs for the configured student_path


def test_prune_refuses_outputs_over_the_teacher_before_scoring(teacher_file, tmp_path):
    before = open(teacher_file, "rb").read()
    with pytest.raises(PruneError, match="is the teacher checkpoint"):
        quiet_prune(teacher_file, teacher_file, 0.5)
    with pytest.raises(OutputError, match="file is a file, not a folder"):
        (tmp_path / "file").write_bytes(b"")
        quiet_prune(teacher_file, str(tmp_path / "file" / "s.ckpt"), 0.5)
    assert open(teacher_file, "rb").read() == before


# -- 7. 16-bit images ------------------------------------------------------------------------------
#: 16-bit grey levels of the dataset's images and the [-1, 1] values they must train as.
SIXTEEN_BIT = {0: -1.0, 32896: 128 / 127.5 - 1, 65535: 1.0}


class RecordRealImages(pl.Callback):
    """Used by class_path: keeps the real images of every training batch."""

    seen: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        RecordRealImages.seen.append(batch["real_img"].detach().clone())


def test_16_bit_png_dataset_trains_on_scaled_not_clipped_values(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "grey16"
    folder.mkdir()
    for index in range(12):
        level = list(SIXTEEN_BIT)[index % 3]
        Image.fromarray(np.full((32, 32), level, dtype=np.uint16)).save(folder / f"{index:02d}.png")
    assert Image.open(folder / "01.png").mode == "I;16"
    RecordRealImages.seen = []
    data = [f"--data.init_args.path={folder}", "--data.init_args.val_size=4", "--data.init_args.batch_size=4"]
    code, _, err = run_gancomp(
        [*TINY_FIT, *data, "--trainer.callbacks+=test_safety.RecordRealImages"], capsys
    )
    assert code == 0, err[-2000:]
    images = torch.cat(RecordRealImages.seen)
    assert len(images) == 8
    per_image = images.flatten(1)
    assert torch.equal(per_image.min(1).values, per_image.max(1).values)  # flat grey stays flat
    found = sorted({round(v, 5) for v in per_image[:, 0].tolist()})
    assert found == sorted(round(v, 5) for v in SIXTEEN_BIT.values())


def test_32_bit_and_float_images_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "float.tif"
    Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)).save(path)
    with pytest.raises(DatasetError, match="^[^ ]*float.tif: floating-point pixels"):
        decode_image(open(path, "rb"), str(path))


# -- 9. optimizer settings changed on resume -------------------------------------------------------
def adam(which: str, lr: float, beta1: float) -> list[str]:
    return [
        f"--model.init_args.{which}_optimizer=torch.optim.Adam",
        f"--model.init_args.{which}_optimizer.lr={lr}",
        f"--model.init_args.{which}_optimizer.betas=[{beta1},0.99]",
    ]


def test_changed_optimizer_settings_apply_on_resume_with_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_gancomp([*TINY_FIT, *adam("g", 0.002, 0.0), *adam("d", 0.002, 0.0)], capsys)
    assert code == 0, err[-2000:]
    last = "runs/quickstart/checkpoints/last.ckpt"
    resume = [*TINY_FIT, "--trainer.max_epochs=2", f"--ckpt_path={last}"]
    code, _, err = run_gancomp([*resume, *adam("g", 0.001, 0.0), *adam("d", 0.002, 0.5)], capsys)
    assert code == 0, err[-2000:]
    notes = [line for line in err.splitlines() if "optimizer settings" in line]
    # lazy regularisation correction c = k/(k+1) on D only (R1 every 16: betas^(16/17)); the
    # quickstart's 32-px recipe has no path length term, so G's lr is used as given
    assert len(notes) == 1 and "g lr 0.002 -> 0.001" in notes[0] and "d betas" in notes[0], notes
    g_state, d_state = torch.load(last, weights_only=True)["optimizer_states"]
    assert g_state["param_groups"][0]["lr"] == pytest.approx(0.001)
    assert d_state["param_groups"][0]["betas"][0] == pytest.approx(0.5 ** (16 / 17))
    code, _, err = run_gancomp([*TINY_FIT, "--trainer.max_epochs=3", f"--ckpt_path={last}",
                             *adam("g", 0.001, 0.0), *adam("d", 0.002, 0.5)], capsys)  # fmt: skip
    assert code == 0 and "optimizer settings" not in err  # unchanged settings: no note


# -- 2. stored hyper-parameters never rewrite the config ------------------------------------------
def with_hyperparameters(path: str, hparams: dict) -> str:
    state = torch.load(path, weights_only=True)
    state["hyper_parameters"] = hparams
    torch.save(state, path)
    return path


def test_checkpoint_hyperparameters_do_not_override_the_config(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["gancomp"])
    run_cli(TINY_FIT)
    last = with_hyperparameters("runs/quickstart/checkpoints/last.ckpt", {"grid_size": 3, "ema_decay": 0.99})
    capsys.readouterr()
    cli = run_cli([*TINY_FIT, f"--ckpt_path={last}"])  # max_epochs reached: restores, trains nothing
    assert cli.model.grid_size == 16  # the config's value, not the file's 3
    notes = [line for line in capsys.readouterr().err.splitlines() if "hyper-parameters" in line]
    assert len(notes) == 1 and "grid_size checkpoint 3, config 16" in notes[0] and "ema_decay" not in notes[0]

    generator = {
        "class_path": "lightning_gancomp.nets.stylegan2.StyleGAN2Generator",
        "init_args": {"channels": [8] * 8},
    }
    with_hyperparameters(last, {"generator": generator})
    code, _, err = run_gancomp([*TINY_FIT, f"--ckpt_path={last}"], capsys)
    line = single_error_line(err)
    assert code == 1 and "builds other networks than the config" in line and "generator.init_args" in line
    configured = {"class_path": "lightning_gancomp.methods.GanModule", "init_args": {"grid_size": 16}}
    with pytest.raises(CheckpointError, match="trained with model lightning_gancomp.methods.CAGAN"):
        compare_stored_hyperparameters(
            "x.ckpt", {"_class_path": "lightning_gancomp.methods.CAGAN"}, configured
        )


# -- 10. one line for every user error -------------------------------------------------------------
CAGAN = run_args("cagan/ffhq256_embedded.yaml")  # -c recipe -c dataset -c run
TEACHER_WIDTHS = "[16,16,16,16,16,16,8,8]"


def cagan_args(tmp_path, teacher: str | None) -> list[str]:
    """The embedded CAGAN config shrunk to a tiny 32 px teacher (as tests/pruning/test_cli_prune)."""
    args = [
        *CAGAN,
        f"--model.init_args.teacher.init_args.channels={TEACHER_WIDTHS}",  # student [5 x 6, 3, 3] at 0.7
        "--model.init_args.discriminator.init_args.channels=[8,8,8,8]",
        f"--model.init_args.student_path={tmp_path / 'pruned.ckpt'}",
        "--model.init_args.metrics=null",
        "--model.init_args.scorer=lightning_gancomp.pruning.importance.L1Scorer",
    ]  # fmt: skip
    return args + [f"--model.init_args.teacher_path={teacher or 'null'}"]


@pytest.fixture
def tiny_teacher_file(tmp_path):
    torch.manual_seed(0)
    g = StyleGAN2Generator(32, z_dim=64, w_dim=64, n_mapping=2, channels=[16] * 6 + [8, 8])
    path = tmp_path / "teacher.ckpt"
    torch.save({"gancomp_nets": {"g_ema": net_payload(g)}}, path)
    return str(path)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("ratio_above_one", "removal ratio must be in [0, 1), got 1.5"),
        ("ratio_negative", "removal ratio must be in [0, 1), got -0.1"),
        ("plan_missing", "plan file not found"),
        ("plan_malformed", "bad.plan.json: invalid JSON"),
        ("image2image_teacher", "holds a ResnetGenerator that differs from the configured teacher"),
        ("no_teacher_path", "needs a teacher checkpoint"),
        ("output_folder_is_a_file", "afile is a file, not a folder"),
    ],
)
def test_prune_errors_are_one_line(case, expected, tiny_teacher_file, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.plan.json").write_text("{not json")
    (tmp_path / "afile").write_text("")
    pix2pix = tmp_path / "pix2pix.ckpt"
    torch.save({"gancomp_nets": {"g": net_payload(ResnetGenerator(ngf=4, n_blocks=1))}}, pix2pix)
    teacher, extra = tiny_teacher_file, []
    if case.startswith("ratio"):
        extra = [f"--model.init_args.policy.init_args.ratio={1.5 if case == 'ratio_above_one' else -0.1}"]
    elif case.startswith("plan"):
        extra = [f"--plan={tmp_path / ('missing' if case == 'plan_missing' else 'bad')}.plan.json"]
    elif case == "image2image_teacher":
        teacher = str(pix2pix)
    elif case == "no_teacher_path":
        teacher = None
    elif case == "output_folder_is_a_file":
        extra = [f"--output={tmp_path / 'afile' / 's.ckpt'}"]
    code, _, err = run_gancomp(["prune", *cagan_args(tmp_path, teacher), *extra], capsys)
    line = single_error_line(err)
    assert code in (1, 2) and expected in line, line
    assert not (tmp_path / "pruned.ckpt").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_missing_gpu_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_gancomp([*TINY_FIT, "--trainer.accelerator=gpu"], capsys)
    assert code == 1 and "trainer.accelerator=gpu: this machine has no CUDA GPU" in single_error_line(err)
    code, _, err = run_gancomp(["profile", "-c", QUICKSTART, "--device=cuda", "--repeats=1"], capsys)
    assert code == 1 and "--device cuda: this machine has 0 CUDA device(s)" in single_error_line(err)


def test_data_resolution_different_from_the_network_names_both(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_gancomp([*TINY_FIT, "--data.init_args.resolution=64"], capsys)
    line = single_error_line(err)
    assert code == 1 and "data resolution 64" in line and "generator's 32" in line


def test_malformed_yaml_names_the_file_and_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  init_args:\n    grid_size: [1, 2\n")
    code, _, err = run_gancomp([*TINY_FIT, "-c", str(bad)], capsys)
    line = single_error_line(err)
    assert code == 2 and f"{bad}: malformed YAML at line" in line


def test_corrupt_caches_are_recomputed_not_fatal(tmp_path):
    class Toy(nn.Module):
        num_features, num_logits, tag, description = 4, 0, "toy", "toy features"

        def forward(self, img):
            return img.float().flatten(1)[:, :4], img.new_zeros(len(img), 0)

    path = real_stats_cache_path(str(tmp_path), "toy", "toy")
    for content in (b"", b"\x80\x04garbage", b"PK\x03\x04truncated"):
        with open(path, "wb") as handle:
            handle.write(content)
        metrics = GenerativeMetrics(
            metrics=("fid",), feature_extractor=Toy(), dataset_key="toy", cache_dir=str(tmp_path)
        )
        with pytest.warns(UserWarning, match="unreadable real-statistics cache.*recomputing"):
            assert metrics.needs_real_images  # measured again instead of crashing
    net = nn.Linear(2, 2)
    assert not load_cached_weights(net, str(tmp_path / "absent.pt"), "face-mask network")
    torch.save({"weight": torch.zeros(3, 3)}, tmp_path / "other.pt")
    with pytest.warns(UserWarning, match="does not fit"):
        assert not load_cached_weights(net, str(tmp_path / "other.pt"), "face-mask network")
    torch.save(net.state_dict(), tmp_path / "good.pt")
    assert load_cached_weights(nn.Linear(2, 2), str(tmp_path / "good.pt"), "face-mask network")


class BrokenImages(UnconditionalDataModule):
    """Used by class_path: image 0 is fine (the setup check passes), images 1-7 are corrupt PNGs
    that a DataLoader worker meets while training."""

    def setup(self, stage=None):
        super().setup(stage)
        folder = os.path.join(os.getcwd(), "broken")
        os.makedirs(folder, exist_ok=True)
        Image.new("RGB", (32, 32), (10, 20, 30)).save(os.path.join(folder, "0.png"))
        for index in range(1, 8):
            with open(os.path.join(folder, f"{index}.png"), "wb") as handle:
                handle.write(b"\x89PNG\r\n\x1a\nnot really")
        self.train_set = ImageFolderDataset(folder, StyleGAN2Transform(32))


def test_corrupt_image_in_a_worker_is_the_original_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = [
        "--data=test_safety.BrokenImages", "--data.path=embedded", "--data.resolution=32",
        "--data.batch_size=4", "--data.embedded_length=16", "--data.val_size=4", "--data.num_workers=1",
    ]  # fmt: skip
    code, _, err = run_gancomp(["fit", "-c", QUICKSTART, *SHRINK_TEACHER, *NO_METRICS, *data], capsys)
    line = single_error_line(err)
    assert code == 1 and line.startswith("gancomp: error: cannot decode image") and "broken" in line
    assert "Traceback" not in line and "Caught" not in line and "DataLoader worker" not in line


def test_unknown_checkpoint_layout_names_the_file(tmp_path):
    path = tmp_path / "odd.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(CheckpointError, match="odd.pt: unrecognised checkpoint layout"):
        load_generator(path)
