"""The paper configs state the official runs' settings (docs/paper-vs-official.md)."""

import glob
import os

import pytest
import yaml
from _cli_helpers import REPO, run_args, run_gancomp

PAPER = sorted(  # the StyleGAN2 paper runs (their effective config: recipe + dataset + run file)
    os.path.relpath(p, REPO)
    for method in ("cagan", "dcp")
    for p in glob.glob(os.path.join(REPO, "configs", method, "*_0.[57].yaml"))
    if "sngan" not in p
)


def test_paper_configs_are_found():
    assert len(PAPER) == 16 and sum("/dcp/" in p for p in PAPER) == 8


@pytest.mark.parametrize("config", PAPER)
def test_paper_config_follows_the_official_code(config, capsys):
    code, out, err = run_gancomp(["fit", *run_args(config), "--print_config"], capsys)
    assert code == 0, err[-2000:]
    spec = yaml.safe_load(out)
    model, data = spec["model"]["init_args"], spec["data"]["init_args"]
    assert model["rescale_equalized"] is False  # official students are plain slices
    assert model["d_style_mixing_prob"] == 0.9  # D's fakes mixed like G's
    assert data["global_batch_size"] == 16  # the paper's batch on any device count
    if "/dcp/" in config:
        assert model["discriminator_path"] is None  # released DCP starts from a random D
        assert model["scorer"]["init_args"]["gradient_path"] == "released"
        assert model["r1_mode"] == "joint"  # StyleKD: R1 in the D step's backward
        assert data["batch_size"] == 4 and data["fixed_device_batch"] is True
        assert spec["trainer"]["max_steps"] == 450_000 * 9 // 4  # 2 + 1/4 optimizer steps per batch
    else:
        assert model.get("r1_mode", "separate") == "separate"  # CAGAN: its own R1 step
