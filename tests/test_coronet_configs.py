"""Every CoroNet config (configs/coronet) parses with the CLI and trains one batch on CPU with
shrunk widths (the real YAML, only networks, data and trainer hardware overridden, as
tests/test_configs.py does for CAGAN/DCP)."""

from __future__ import annotations

import glob
import json
import math
import os

import pytest
import yaml
from test_configs import REPO, run_gancomp, shrunk_net_spec

CONFIGS = sorted(os.path.relpath(p, REPO) for p in glob.glob(f"{REPO}/configs/coronet/*.yaml"))
NETS = ("student", "generator_ba", "discriminator", "discriminator_a")
#: torchprofile MACs of the full ResNet-9 generator at 256 px (GAN Compression's count)
RESNET9_MACS = 56_799_264_768
#: torchprofile MACs of the full ResNet-9 generator at 256 px (GAN Compression's count)
RESNET9_MACS = 56_799_264_768


def test_every_task_and_budget_has_a_config():
    names = {os.path.basename(c)[: -len(".yaml")] for c in CONFIGS}
    for task in ("edges2shoes_resnet", "edges2shoes_unet", "horse2zebra", "zebra2horse", "summer2winter"):
        assert {f"{task}_0.5", f"{task}_0.25"} <= names, task
    assert {"edges2shoes_resnet_4.81G", "horse2zebra_2.67G"} <= names
    assert {"pix2pix_embedded", "pix2pix_unet_embedded", "cyclegan_embedded"} <= names


@pytest.mark.parametrize("config", CONFIGS)
def test_coronet_config_trains_one_batch_shrunk(config, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = os.path.join(REPO, config)
    code, out, err = run_gancomp(["fit", "-c", path, "--print_config"], capsys)
    assert code == 0, err[-2000:]
    parsed = yaml.safe_load(out)
    model = parsed["model"]["init_args"]
    assert (model.get("target_ratio") is None) != (model.get("target_macs") is None)
    overrides = [
        f"--model.init_args.{net}={json.dumps(shrunk_net_spec(model[net], 4))}"
        for net in NETS
        if model.get(net)
    ]
    if model.get("target_macs") is not None:  # an absolute budget of the full-width generator
        assert model["target_macs"] < RESNET9_MACS
        overrides += ["--model.init_args.target_macs=null", "--model.init_args.target_ratio=0.5"]
    record = tmp_path / "steps.json"
    code, _, err = run_gancomp(
        [
            "fit",
            "-c",
            path,
            *overrides,
            "--data.init_args.path=embedded",
            "--data.init_args.batch_size=2",
            "--data.init_args.num_workers=0",
            "--data.init_args.val_size=2",
            "--data.init_args.embedded_length=2",
            "--trainer.accelerator=cpu",
            "--trainer.max_epochs=1",
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
    (step,) = json.loads(record.read_text())
    assert step["batches_done"] == 1 and math.isfinite(step["train/g/total"])
    assert os.path.isfile(tmp_path / "run" / "student.pt")


def test_a_bad_target_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = os.path.join(REPO, "configs/coronet/pix2pix_embedded.yaml")
    code, _, err = run_gancomp(["fit", "-c", path, "--model.init_args.target_ratio=1.5"], capsys)
    assert code != 0
    assert err.strip().splitlines()[-1] == "gancomp: error: target_ratio must be in (0, 1], got 1.5"
