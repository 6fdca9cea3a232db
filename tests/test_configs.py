"""Every method config (configs/cagan, configs/dcp) instantiates and trains a batch on CPU.

lightning-hydra-template style: the real YAML is used as it is, and only what a CPU test cannot
afford is overridden — widths (every channel group shrunk through the net's own
``config_for_group_sizes``, so the architecture keeps its depth and resolution), the data (the
embedded dataset at the config's resolution), and weights that cannot be downloaded here (the
LPIPS backbone runs with random weights, the face parser is a randomly initialised BiSeNet). The
teacher file is written in our format from the shrunk architecture. One batch runs with the
config's recipe: losses, regularisers, intervals, masks, optimizers.
"""

from __future__ import annotations

import glob
import json
import math
import os
import sys

import pytest
import pytorch_lightning as pl
import torch
import yaml

from lightning_gancomp.cli import main
from lightning_gancomp.nets.base import NET_REGISTRY, net_payload

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(
    os.path.relpath(p, REPO)
    for method in ("cagan", "dcp")
    for p in glob.glob(f"{REPO}/configs/{method}/*.yaml")
)


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


def run_gancomp(args: list[str], capsys) -> tuple[int, str, str]:
    code, saved = 0, sys.argv
    sys.argv = ["gancomp"]
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.argv = saved
    out = capsys.readouterr()
    return code, out.out, out.err


def shrunk_net_spec(spec: dict, width: int) -> dict:
    """The same class and arguments with every channel group at ``width`` (built on meta)."""
    cls = NET_REGISTRY[spec["class_path"].rsplit(".", 1)[1]]
    with torch.device("meta"):
        net = cls(**spec.get("init_args", {}))
    sizes = {group.name: min(group.size, width) for group in net.channel_groups()}
    return {"class_path": spec["class_path"], "init_args": net.config_for_group_sizes(sizes)}


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


def network_overrides(model: dict, tmp_path) -> list[str]:
    """Shrunk networks for the config; a compression config also gets a teacher file."""
    build = lambda spec: NET_REGISTRY[spec["class_path"].rsplit(".", 1)[1]](**spec["init_args"])  # noqa: E731
    discriminator = shrunk_net_spec(model["discriminator"], 4)
    if "teacher" not in model:  # a teacher-training config (GanModule)
        generator = shrunk_net_spec(model["generator"], 4)
        return [
            f"--model.init_args.generator={json.dumps(generator)}",
            f"--model.init_args.discriminator={json.dumps(discriminator)}",
        ]
    teacher, student = shrunk_net_spec(model["teacher"], 4), shrunk_net_spec(model["student"], 2)
    torch.manual_seed(0)
    teacher_file = tmp_path / "teacher.ckpt"
    nets = {"g_ema": net_payload(build(teacher)), "d": net_payload(build(discriminator))}
    torch.save({"gancomp_nets": nets}, teacher_file)
    return [
        f"--model.init_args.teacher={json.dumps(teacher)}",
        f"--model.init_args.student={json.dumps(student)}",
        f"--model.init_args.discriminator={json.dumps(discriminator)}",
        f"--model.init_args.teacher_path={teacher_file}",
        f"--model.init_args.discriminator_path={teacher_file}",
        "--model.init_args.student_path=null",
    ]


@pytest.mark.parametrize("config", CONFIGS)
def test_config_trains_one_batch_shrunk(config, tmp_path, capsys, monkeypatch, offline_weights):
    monkeypatch.chdir(tmp_path)
    path = os.path.join(REPO, config)
    code, out, err = run_gancomp(["fit", "-c", path, "--print_config"], capsys)
    assert code == 0, err[-2000:]
    model = yaml.safe_load(out)["model"]["init_args"]
    record = tmp_path / "steps.json"
    code, _, err = run_gancomp(
        [
            "fit",
            "-c",
            path,
            *network_overrides(model, tmp_path),
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
    assert math.isfinite(step["train/d/adv"]) and math.isfinite(step["train/g/adv"]), step
    if "teacher" in model:  # the config's distillation terms ran, each under its own key
        assert any(k.startswith("train/g/") and k not in ("train/g/total", "train/g/adv") for k in step), step
