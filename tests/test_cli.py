"""The gancomp command: help/print_config per subcommand, every owned config runs (shrunk),
profile, one-line errors, config saving across repeated runs, end-to-end quickstart."""

import glob
import json
import os
import sys

import pytest
import torch
import yaml
from _cli_helpers import (
    DISTILL,
    QUICKSTART,
    SHRINK_TEACHER,
    config_path,
    run_gancomp,
    write_tiny_teacher,
)

from lightning_gancomp.checkpoints import load_generator
from lightning_gancomp.cli import GancompCLI, GancompTrainer, one_line
from lightning_gancomp.data import UnconditionalDataModule


@pytest.fixture
def teacher_ckpt(tmp_path_factory) -> str:
    """A tiny 32 px teacher (G + D) in our training-checkpoint layout."""
    return write_tiny_teacher(str(tmp_path_factory.mktemp("teacher") / "teacher.ckpt"))


SUBCOMMANDS = ["fit", "validate", "test", "predict", "profile"]
NO_METRICS = ["--model.init_args.metrics=null"]


def single_error_line(err: str) -> str:
    """stderr ends with exactly one ``gancomp: error:`` line and holds no traceback (library
    warnings printed earlier are allowed)."""
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("gancomp: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in err, err[-2000:]
    return errors[0]


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_help_for_every_subcommand(subcommand, capsys):
    code, out, _ = run_gancomp([subcommand, "--help"], capsys)
    assert code == 0 and "--config" in out and "--model" in out
    if subcommand == "profile":
        assert "--repeats" in out and "--batch_size" in out


@pytest.mark.parametrize("subcommand", SUBCOMMANDS)
def test_print_config_for_every_subcommand(subcommand, capsys):
    code, out, _ = run_gancomp([subcommand, "-c", QUICKSTART, "--print_config"], capsys)
    assert code == 0
    config = yaml.safe_load(out)
    assert config["model"]["class_path"] == "lightning_gancomp.methods.GanModule"
    assert config["model"]["init_args"]["r1_interval"] == 16


def test_profile_is_a_trainer_method_listed_in_subcommands():
    assert "profile" in GancompCLI.subcommands()
    assert GancompCLI.subcommands()["profile"] == {"model", "datamodule"}
    assert callable(GancompTrainer.profile)
    assert not {"prune", "export"} & set(GancompCLI.subcommands()) or all(
        hasattr(GancompTrainer, name) for name in ("prune", "export") if name in GancompCLI.subcommands()
    )


def test_unknown_config_key_is_one_line_naming_it(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_gancomp(["fit", "-c", QUICKSTART, "--model.init_args.bogus_key=3"], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gancomp: error:") and "bogus_key" in lines[0]
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  init_args:\n    generator:\n      init_args:\n        widths: 3\n")
    code, _, err = run_gancomp(["fit", "-c", QUICKSTART, "-c", str(bad)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "'widths'" in err and '"generator"' in err
    assert not os.path.exists(tmp_path / "runs")  # nothing written


def test_one_line_keeps_the_reasons():
    message = (
        'Parser key "model":\n  Does not validate against any of the Union subtypes\n  Subtypes: [...]\n'
        "  Errors:\n    - Option 'foo' is not accepted\n"
        "    - Expected a <class 'NoneType'>\n  Given value: x\n"
    )
    assert one_line(message) == "Parser key \"model\": Option 'foo' is not accepted"


def test_wrong_teacher_file_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    code, _, err = run_gancomp(
        [
            "fit",
            "-c",
            DISTILL,
            f"--model.init_args.teacher_path={tmp_path / 'junk.ckpt'}",
            "--trainer.fast_dev_run=1",
        ],
        capsys,
    )
    assert code == 1 and len(err.strip().splitlines()) == 1 and "junk.ckpt" in err


def test_profile_teacher_vs_student(capsys, tmp_path, teacher_ckpt):
    output = tmp_path / "profile.json"
    code, out, _ = run_gancomp(
        [
            "profile",
            "-c",
            DISTILL,
            f"--model.init_args.teacher_path={teacher_ckpt}",
            f"--model.init_args.discriminator_path={teacher_ckpt}",
            "--repeats=2",
            "--warmup=1",
            f"--output={output}",
        ],
        capsys,
    )
    assert code == 0 and "teacher" in out and "student" in out and "ratio" in out
    report = json.loads(output.read_text())
    teacher = load_generator(teacher_ckpt)
    assert report["teacher"]["params"] == sum(p.numel() for p in teacher.parameters())
    assert report["student"]["params"] < report["teacher"]["params"]
    assert report["ratio"]["params"] == pytest.approx(
        report["teacher"]["params"] / report["student"]["params"]
    )
    for side in ("teacher", "student"):
        assert report[side]["macs_cagan"] > 0 and report[side]["macs_torchprofile"] > 0
        assert report[side]["latency"]["median_ms"] > 0


def _fit(args, capsys):
    code, out, err = run_gancomp(["fit", *args], capsys)
    assert code == 0, err[-2000:]
    return out, err


@pytest.mark.parametrize(
    "pieces",
    [
        ["trainer/cpu.yaml"],
        ["logger/csv.yaml"],
        ["logger/wandb_offline.yaml"],
        ["logger/wandb.yaml"],
    ],
    ids=lambda p: p[0],
)
def test_composable_pieces_run_with_the_quickstart(pieces, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    extra = [a for piece in pieces for a in ("-c", config_path(piece))]
    _fit(["-c", QUICKSTART, *extra, *SHRINK_TEACHER, *NO_METRICS], capsys)
    assert glob.glob("runs/**/config.yaml", recursive=True)
    if "wandb" in pieces[0]:  # the sample grid reached W&B as an image
        assert glob.glob("runs/wandb/offline-run-*/files/media/images/samples_*.png")


@pytest.mark.parametrize("piece", ["trainer/gpu.yaml", "trainer/ddp.yaml"])
def test_accelerator_pieces_parse(piece, capsys):
    code, out, _ = run_gancomp(["fit", "-c", QUICKSTART, "-c", config_path(piece), "--print_config"], capsys)
    config = yaml.safe_load(out)
    assert code == 0 and config["trainer"]["accelerator"] == "gpu"
    if piece == "trainer/ddp.yaml":
        assert config["trainer"]["strategy"] == "ddp_find_unused_parameters_true"


def test_full_size_ffhq_teacher_config_runs_shrunk(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_gancomp(
        ["fit", "-c", config_path("teacher", "stylegan2_ffhq256.yaml"), "--print_config"], capsys
    )
    full = yaml.safe_load(out)["model"]["init_args"]
    assert full["generator"]["init_args"]["resolution"] == 256 and full["r1_interval"] == 16
    _fit(
        [
            "-c",
            config_path("teacher", "stylegan2_ffhq256.yaml"),
            "--trainer.accelerator=cpu",
            "--trainer.devices=1",
            "--trainer.strategy=auto",
            "--model.init_args.generator.init_args.resolution=16",
            "--model.init_args.generator.init_args.z_dim=16",
            "--model.init_args.generator.init_args.w_dim=16",
            "--model.init_args.generator.init_args.channels=[8,8,8,8,8,8]",
            "--model.init_args.discriminator.init_args.resolution=16",
            "--model.init_args.discriminator.init_args.channels=[8,8,8]",
            "--data.init_args.path=embedded",
            "--data.init_args.resolution=16",
            "--data.init_args.val_size=4",
            "--data.init_args.num_workers=0",
            "--data.init_args.embedded_length=16",
            *NO_METRICS,
            "--trainer.fast_dev_run=3",
        ],
        capsys,
    )


def test_distill_config_runs(capsys, tmp_path, monkeypatch, teacher_ckpt):
    monkeypatch.chdir(tmp_path)
    _fit(
        [
            "-c",
            DISTILL,
            f"--model.init_args.teacher_path={teacher_ckpt}",
            f"--model.init_args.discriminator_path={teacher_ckpt}",
            "--data.init_args.embedded_length=16",
            "--data.init_args.val_size=4",
            "--trainer.limit_train_batches=2",
            "--trainer.max_epochs=1",
            "--trainer.limit_val_batches=1",
        ],
        capsys,
    )
    student = load_generator("runs/distill/checkpoints/last.ckpt")
    assert student.config["channels"] == [32, 32, 32, 32, 32, 32, 16, 16]
    assert glob.glob("runs/distill/version_0/samples/*.png")


def test_repeated_runs_in_one_directory_keep_saving_config(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    args = ["-c", QUICKSTART, "-c", config_path("logger", "wandb_offline.yaml"), *SHRINK_TEACHER, *NO_METRICS]
    _fit([*args, "--model.init_args.ema_decay=0.5"], capsys)
    _fit([*args, "--model.init_args.ema_decay=0.25"], capsys)  # a second sweep trial, same log dir
    with open("runs/config.yaml") as handle:
        assert yaml.safe_load(handle)["model"]["init_args"]["ema_decay"] == 0.25
    # the rerun overwrote last.ckpt (no last-v1.ckpt that resume commands would miss)
    assert sorted(f for f in os.listdir("runs/quickstart/checkpoints") if f.startswith("last")) == [
        "last.ckpt"
    ]


def test_quickstart_end_to_end_with_metrics_and_test_subcommand(capsys, tmp_path, monkeypatch):
    """The README main job, shrunk: checkpoints, a sample grid, metrics, progress bar."""
    monkeypatch.chdir(tmp_path)
    out, err = _fit(
        [
            "-c",
            QUICKSTART,
            *SHRINK_TEACHER,
            "--trainer.max_epochs=2",
            "--trainer.check_val_every_n_epoch=1",
            "--trainer.log_every_n_steps=1",
        ],
        capsys,
    )
    assert "Epoch 1" in out + err  # the progress bar ran
    assert os.path.isfile("runs/quickstart/checkpoints/last.ckpt")
    assert glob.glob("runs/quickstart/version_0/samples/*.png")
    with open("runs/quickstart/version_0/metrics.csv") as handle:
        header = handle.readline().strip().split(",")
    # the embedded protocol (configs/metrics/embedded_unconditional.yaml); the quickstart recipe has
    # R1 but no path-length term (StyleGAN2-ADA cifar)
    assert {"val/fid", "val/kid", "val/is", "val/precision", "train/g/adv", "train/d/r1"} <= set(header)
    assert "train/g/pl" not in header
    assert {"model/generator_params", "model/generator_macs"} <= set(header)
    g_ema = load_generator("runs/quickstart/checkpoints/last.ckpt")
    assert all(torch.isfinite(p).all() for p in g_ema.parameters())
    code, out, err = run_gancomp(
        ["test", "-c", QUICKSTART, *SHRINK_TEACHER, "--ckpt_path=runs/quickstart/checkpoints/last.ckpt"],
        capsys,
    )
    assert code == 0 and "test/fid" in out + err
    code, out, err = run_gancomp(
        ["validate", "-c", QUICKSTART, *SHRINK_TEACHER, "--ckpt_path=runs/quickstart/checkpoints/last.ckpt"],
        capsys,
    )
    assert code == 0 and "val/fid" in out + err


def test_predict_writes_reproducible_images(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fit(["-c", QUICKSTART, *SHRINK_TEACHER, *NO_METRICS], capsys)
    outputs = []
    for name in ("a", "b"):
        code, _, err = run_gancomp(
            [
                "predict", "-c", QUICKSTART, *SHRINK_TEACHER, *NO_METRICS,
                "--ckpt_path=runs/quickstart/checkpoints/last.ckpt",
                "--trainer.callbacks+=lightning_gancomp.callbacks.ImageWriter",
                f"--trainer.callbacks.output_dir={name}",
            ],
            capsys,
        )  # fmt: skip
        assert code == 0, err[-2000:]
        outputs.append({f: (tmp_path / name / f).read_bytes() for f in sorted(os.listdir(tmp_path / name))})
    assert len(outputs[0]) == 8  # one image per test item (val_size 8)
    assert outputs[0] == outputs[1]  # seeded by batch index
    # without an image writer, predict writes into the run's log directory and says where
    code, out, err = run_gancomp(
        [
            "predict",
            "-c",
            QUICKSTART,
            *SHRINK_TEACHER,
            *NO_METRICS,
            "--ckpt_path=runs/quickstart/checkpoints/last.ckpt",
        ],
        capsys,
    )
    assert code == 0, err[-2000:]
    written = glob.glob("runs/quickstart/version_*/predictions/*.png")
    assert len(written) == 8 and "wrote 8 images to" in out


def test_pix2pix_config_trains_image_to_image_through_the_same_base(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fit(
        [
            "-c", config_path("teacher", "pix2pix_embedded.yaml"),
            "--trainer.limit_train_batches=2", "--trainer.max_epochs=1", "--trainer.limit_val_batches=2",
            "--trainer.log_every_n_steps=1",
            "--data.init_args.embedded_length=16", "--data.init_args.val_size=8",
        ],
        capsys,
    )  # fmt: skip
    generator = load_generator("runs/pix2pix/checkpoints/last.ckpt")
    assert type(generator).__name__ == "ResnetGenerator" and generator.config["ngf"] == 16
    with open("runs/pix2pix/version_0/metrics.csv") as handle:
        header = set(handle.readline().strip().split(","))
    assert {"train/g/rec_l1", "train/d/adv", "val/fid"} <= header
    assert glob.glob("runs/pix2pix/version_0/samples/*.png")


class PoisonedAfter(torch.utils.data.Dataset):
    """Embedded images that turn into NaN after ``after`` items were read (corrupt data mid-run)."""

    def __init__(self, base, after: int) -> None:
        self.base, self.after, self.reads = base, after, 0

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int):
        self.reads += 1
        item = dict(self.base[index])
        if self.reads > self.after:
            item["real_img"] = torch.full_like(item["real_img"], float("nan"))
        return item


class NanDataModule(UnconditionalDataModule):
    """Used by class_path from the NaN test: the 4th training batch (of 8) is NaN."""

    def setup(self, stage=None):
        super().setup(stage)
        if not isinstance(self.train_set, PoisonedAfter):
            self.train_set = PoisonedAfter(self.train_set, after=3 * self.batch_size)


def test_nan_loss_is_one_line_and_keeps_last_good_checkpoint(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_gancomp(
        [
            "fit", "-c", QUICKSTART, *SHRINK_TEACHER, *NO_METRICS,
            "--data=test_cli.NanDataModule", "--data.path=embedded", "--data.resolution=32",
            "--data.batch_size=8", "--data.embedded_length=64", "--data.val_size=8",
            "--trainer.limit_train_batches=8",
            "--trainer.callbacks+=lightning_gancomp.callbacks.GanCheckpoint",
            "--trainer.callbacks.every_n_batches=1", "--trainer.callbacks.dirpath=good",
            "--trainer.callbacks.save_last=true",
        ],
        capsys,
    )  # fmt: skip
    line = single_error_line(err)
    assert code == 1
    assert "non-finite loss in phase 'D main' at batch 3" in line and "good/last.ckpt" in line
    state = torch.load("good/last.ckpt", weights_only=True)
    assert state["gancomp_state"]["batches_done"] == 3
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values() if v.is_floating_point())
    assert not [f for f in os.listdir("good") if ".tmp" in f]


def test_checkpoint_of_another_architecture_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fit(["-c", QUICKSTART, *SHRINK_TEACHER, *NO_METRICS], capsys)
    code, _, err = run_gancomp(
        [
            "fit", "-c", QUICKSTART, *SHRINK_TEACHER, *NO_METRICS, "--trainer.max_epochs=2",
            "--model.init_args.generator.init_args.channels=[16,16,16,16,16,16,16,16]",
            "--ckpt_path=runs/quickstart/checkpoints/last.ckpt",
        ],
        capsys,
    )  # fmt: skip
    line = single_error_line(err)
    assert code == 1 and "last.ckpt [generator]" in line and "first shape conflict" in line


def test_cyclegan_config_trains_unpaired_translation(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fit(
        [
            "-c", config_path("teacher", "cyclegan_embedded.yaml"),
            "--trainer.limit_train_batches=2", "--trainer.max_epochs=1", "--trainer.limit_val_batches=2",
            "--data.init_args.embedded_length=16", "--data.init_args.val_size=8",
        ],
        capsys,
    )  # fmt: skip
    assert type(load_generator("runs/cyclegan/checkpoints/last.ckpt")).__name__ == "ResnetGenerator"
    assert (
        type(load_generator("runs/cyclegan/checkpoints/last.ckpt", key="g_ba")).__name__ == "ResnetGenerator"
    )
    assert glob.glob("runs/cyclegan/version_0/samples/*.png")


def test_checkpoints_are_written_atomically_by_default(tmp_path, monkeypatch):
    from lightning_gancomp.callbacks import AtomicCheckpointIO
    from lightning_gancomp.cli import run_cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["gancomp"])
    cli = run_cli(["fit", "-c", QUICKSTART, *SHRINK_TEACHER, *NO_METRICS, "--trainer.fast_dev_run=2"])
    io = cli.trainer.strategy.checkpoint_io
    assert isinstance(io, AtomicCheckpointIO)
    target = tmp_path / "x.ckpt"
    target.write_bytes(b"old")

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        io.save_checkpoint({"bad": Unpicklable()}, target)
    assert target.read_bytes() == b"old"  # a failed save leaves the previous file intact
    assert os.listdir(tmp_path).count("x.ckpt") == 1 and not [f for f in os.listdir(tmp_path) if ".tmp" in f]
    io.save_checkpoint({"step": torch.tensor(3)}, target)
    assert torch.load(target, weights_only=True)["step"] == 3
