"""The paper configs state the official runs' settings (docs/paper-vs-official.md)."""

import glob
import os

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPER = sorted(
    os.path.relpath(p, REPO)
    for p in glob.glob(os.path.join(REPO, "configs", "*", "*_0.[57].yaml"))
    if "sngan" not in p
)


def test_paper_configs_are_found():
    assert len(PAPER) == 16 and sum("/dcp/" in p for p in PAPER) == 8


@pytest.mark.parametrize("config", PAPER)
def test_paper_config_follows_the_official_code(config):
    spec = yaml.safe_load(open(os.path.join(REPO, config)))
    model, data = spec["model"]["init_args"], spec["data"]["init_args"]
    assert model["rescale_equalized"] is False  # official students are plain slices
    assert model["d_style_mixing_prob"] == 0.9  # D's fakes mixed like G's
    assert data["global_batch_size"] == 16  # the paper's batch on any device count
    if "/dcp/" in config:
        assert "discriminator_path" not in model  # released DCP starts from a random D
        assert model["scorer"]["init_args"]["gradient_path"] == "released"
        assert model["r1_mode"] == "joint"  # StyleKD: R1 in the D step's backward
        assert data["batch_size"] == 4 and data["fixed_device_batch"] is True
        assert spec["trainer"]["max_steps"] == 450_000 * 9 // 4  # 2 + 1/4 optimizer steps per batch
    else:
        assert model.get("r1_mode", "separate") == "separate"  # CAGAN: its own R1 step
