"""Every run under configs/ instantiates and trains a batch on CPU.

The runs are discovered, not listed: a run is a YAML file whose leading comments hold its command,
``gancomp fit -c <piece> ... -c <the file itself>`` (configs/README.md), so a new method folder
(configs/ppcd/, configs/coronet/ ...) is tested as soon as its run files exist, and the command a
user copies from a run file is the command tested here.

lightning-hydra-template style: the real YAML stack is used as it is, and only what a CPU test
cannot afford is overridden — widths (every network the config builds has each channel group
shrunk through the net's own ``config_for_group_sizes``, so it keeps its depth and resolution; a
derived student follows from the shrunk teacher and the config's policy), the data (the embedded
dataset at the config's resolution), and weights that cannot be downloaded here (the LPIPS
backbone runs with random weights, the face parser is a randomly initialised BiSeNet). Weight
files the config names are written in our format from the shrunk architectures. One batch runs
with the config's recipe: losses, regularisers, intervals, masks, optimizers, schedules.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re

import pytest
import pytorch_lightning as pl
import torch
import yaml
from _cli_helpers import REPO, discover_runs, run_args, run_gancomp, write_tiny_teacher

from lightning_gancomp.nets.base import NET_REGISTRY, net_payload

RUNS = discover_runs()


class StepRecorder(pl.Callback):
    """Writes the batch count and the logged losses of every training batch to a JSON file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.records: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        losses = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
        self.records.append({"batches_done": pl_module.batches_done, **losses})
        with open(self.path, "w") as handle:
            json.dump(self.records, handle)


def is_net_spec(value) -> bool:
    return isinstance(value, dict) and str(value.get("class_path", "")).rsplit(".", 1)[-1] in NET_REGISTRY


def shrunk_net_spec(spec: dict, width: int) -> dict:
    """The same class and arguments with every channel group at ``width`` (built on meta)."""
    cls = NET_REGISTRY[spec["class_path"].rsplit(".", 1)[1]]
    with torch.device("meta"):
        net = cls(**spec.get("init_args", {}))
    sizes = {group.name: min(group.size, width) for group in net.channel_groups()}
    return {"class_path": spec["class_path"], "init_args": net.config_for_group_sizes(sizes)}


def build(spec: dict):
    return NET_REGISTRY[spec["class_path"].rsplit(".", 1)[1]](**spec["init_args"])


@pytest.fixture()
def offline_weights(monkeypatch):
    """LPIPS with a random backbone and a random-weight face parser: same code paths, no downloads."""
    import lightning_gancomp.losses.distillation as distillation
    import lightning_gancomp.nets.bisenet as bisenet

    real_parser = bisenet.FaceParser

    real_build = distillation.build_lpips
    monkeypatch.setattr(distillation, "build_lpips", lambda net, pretrained: real_build(net, False))
    monkeypatch.setattr(  # importance.FaceParserMask imports the class from nets.bisenet on use
        bisenet,
        "FaceParser",
        lambda weights_path=None, network=None, **kw: real_parser(network=network or bisenet.BiSeNet(), **kw),
    )


def weight_file(model: dict, shrunk: dict[str, dict], tmp_path) -> str:
    """A training-checkpoint-shaped file holding the shrunk teacher (or generator) and
    discriminator; without architectures in the config, the 32 px StyleGAN2 test teacher."""
    path = str(tmp_path / "weights.ckpt")
    generator = shrunk.get("teacher") or shrunk.get("generator")
    if generator is None or "discriminator" not in shrunk:
        return write_tiny_teacher(path)
    torch.manual_seed(0)
    nets = {"g_ema": net_payload(build(generator)), "d": net_payload(build(shrunk["discriminator"]))}
    torch.save({"gancomp_nets": nets}, path)
    return path


def network_overrides(model: dict, tmp_path) -> list[str]:
    """Every network of the config shrunk; every weight file it names written from them (the
    student, derived or given, starts from the teacher: its file is dropped)."""
    shrunk = {
        key: shrunk_net_spec(value, 2 if key == "student" else 4)
        for key, value in model.items()
        if is_net_spec(value)
    }
    overrides = [f"--model.init_args.{key}={json.dumps(spec)}" for key, spec in shrunk.items()]
    files = [key for key in ("teacher_path", "discriminator_path") if model.get(key)]
    if files:
        path = weight_file(model, shrunk, tmp_path)
        overrides += [f"--model.init_args.{key}={path}" for key in files]
    if model.get("student_path"):
        overrides.append("--model.init_args.student_path=null")
    return overrides


ONE_BATCH = [
    "--data.init_args.path=embedded",
    "--data.init_args.batch_size=2",
    "--data.init_args.global_batch_size=null",  # paper configs state the global batch
    "--data.init_args.num_workers=0",
    "--data.init_args.val_size=2",
    "--data.init_args.embedded_length=2",  # one batch (limit_train_batches=1 parses as 100%)
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.strategy=auto",
    "--trainer.precision=32-true",
    "--trainer.max_epochs=1",
    "--trainer.max_steps=-1",
    "--trainer.limit_train_batches=1.0",
    "--trainer.limit_val_batches=0",
    "--trainer.num_sanity_val_steps=0",
    "--trainer.logger=false",
    "--trainer.enable_checkpointing=false",
    "--trainer.enable_progress_bar=false",
    "--trainer.callbacks=[]",
]


def test_runs_are_discovered():
    """The paper runs of CAGAN and DCP and the teacher runs are found by their header command."""
    folders = {run.split("/")[1] for run in RUNS}
    assert {"cagan", "dcp", "teacher", "distill"} <= folders, RUNS
    assert "configs/cagan/ffhq256_0.7.yaml" in RUNS and "configs/cagan/stylegan2.yaml" not in RUNS


def test_every_config_file_is_a_run_or_used_by_one():
    """A YAML file under configs/ without its header command would silently go untested: each is a
    run, or named by a run's stack, a sub-config path, or configs/README.md."""
    configs = os.path.join(REPO, "configs")
    files = {os.path.normpath(p) for p in glob.glob(os.path.join(configs, "**", "*.yaml"), recursive=True)}
    named: set[str] = set()
    for path in [*files, os.path.join(configs, "README.md")]:
        with open(path) as handle:
            text = handle.read()
        for ref in re.findall(r"[\w./-]+\.yaml", text):
            base = os.path.dirname(configs) if ref.startswith("configs/") else os.path.dirname(path)
            named.add(os.path.normpath(os.path.join(base, ref)))
    runs = {os.path.normpath(os.path.join(os.path.dirname(configs), run)) for run in RUNS}
    orphans = sorted(os.path.relpath(p, configs) for p in files - runs - named)
    assert not orphans, f"configs neither run nor used (add a '#   gancomp fit -c ...' header): {orphans}"


@pytest.mark.parametrize("run", RUNS)
def test_run_trains_one_batch_shrunk(run, tmp_path, capsys, monkeypatch, offline_weights):
    monkeypatch.chdir(tmp_path)
    stack = run_args(run)
    code, out, err = run_gancomp(["fit", *stack, "--print_config"], capsys)
    assert code == 0, err[-2000:]
    model = yaml.safe_load(out)["model"]["init_args"]
    record = tmp_path / "steps.json"
    code, _, err = run_gancomp(
        [
            "fit",
            *stack,
            *network_overrides(model, tmp_path),
            *ONE_BATCH,
            "--trainer.callbacks+=test_configs.StepRecorder",
            f"--trainer.callbacks.path={record}",
            f"--trainer.default_root_dir={tmp_path / 'run'}",
        ],
        capsys,
    )
    assert code == 0, err[-3000:]
    steps = json.loads(record.read_text())
    assert len(steps) == 1, [s["batches_done"] for s in steps]
    (step,) = steps
    assert step["batches_done"] == 1
    assert any(k.startswith("train/d/") for k in step) and any(k.startswith("train/g/") for k in step), step
    assert all(math.isfinite(v) for v in step.values()), step
    if model.get("losses") and model.get("teacher"):  # the distillation terms ran, each under its key
        assert any(k.startswith("train/g/") and k not in ("train/g/total", "train/g/adv") for k in step), step


def test_paper_runs_derive_the_student_from_the_ratio(capsys, tmp_path, monkeypatch):
    """No run writes student widths next to a uniform ratio: the student is the teacher at the
    widths the policy implies (154 = 512 - int(512 * 0.7) ... for FFHQ-256 at 0.7)."""
    from lightning_gancomp.pruning.plan import UniformPolicy

    monkeypatch.chdir(tmp_path)
    code, out, err = run_gancomp(["fit", *run_args("cagan/ffhq256_0.7.yaml"), "--print_config"], capsys)
    assert code == 0, err[-2000:]
    model = yaml.safe_load(out)["model"]["init_args"]
    assert model["student"] is None and model["policy"]["init_args"]["ratio"] == 0.7
    with torch.device("meta"):
        teacher = NET_REGISTRY["StyleGAN2Generator"](**model["teacher"]["init_args"])
    widths = UniformPolicy(0.7).widths(teacher)
    assert teacher.config_for_group_sizes(widths)["channels"] == [154] * 10 + [77, 77, 39, 39]
    configs = os.path.join(REPO, "configs")
    for path in glob.glob(os.path.join(configs, "**", "*.yaml"), recursive=True):
        with open(path) as handle:
            init_args = ((yaml.safe_load(handle) or {}).get("model") or {}).get("init_args") or {}
        assert not (init_args.get("student") and init_args.get("policy")), f"{path}: widths next to a policy"


@pytest.mark.parametrize("run", ["teacher/cyclegan_embedded.yaml", "teacher/pix2pix_embedded.yaml"])
def test_image_to_image_teachers_use_the_official_linear_decay(run, capsys):
    """junyanz lr_policy='linear': constant for n_epochs, then linear over n_epochs_decay, per
    epoch, for G and D (offset 1: epoch_count = 1), scaled to the config's run length."""
    code, out, err = run_gancomp(["fit", *run_args(run), "--print_config"], capsys)
    assert code == 0, err[-2000:]
    parsed = yaml.safe_load(out)
    schedules = {
        s["init_args"]["optimizer"]: s["init_args"] for s in parsed["model"]["init_args"]["schedules"]
    }
    assert sorted(schedules) == ["d", "g"]
    for schedule in schedules.values():
        assert schedule["offset"] == 1 and schedule["interval"] == "epoch"
        assert schedule["constant"] + schedule["decay"] == parsed["trainer"]["max_epochs"]
