"""tools/ship_teacher.py: a finished run becomes a shipped teacher holding only its networks (the
EMA generator instead of the raw one), its fit config, its last grid and its logged metrics."""

import hashlib
import importlib.util
import os

import torch

from lightning_gancomp.checkpoints import load_discriminator, load_generator
from lightning_gancomp.nets.base import net_payload
from lightning_gancomp.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        "ship_teacher", os.path.join(REPO, "tools", "ship_teacher.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_run(run_dir):
    torch.manual_seed(0)
    g, g_ema = (
        StyleGAN2Generator(resolution=8, z_dim=8, w_dim=8, n_mapping=1, channels=[4, 4, 4, 4]) for _ in "ab"
    )
    d = StyleGAN2Discriminator(resolution=8, channels=[4, 4])
    nets = {"g": net_payload(g), "g_ema": net_payload(g_ema), "d": net_payload(d)}
    os.makedirs(run_dir / "checkpoints")
    torch.save(
        {"gancomp_nets": nets, "gancomp_state": {"batches_done": 40}, "epoch": 1},
        run_dir / "checkpoints" / "last.ckpt",
    )
    for version, header, row in ((0, "step,val/fid", "39,9.5"), (1, "step,test/fid,test/kid", "0,7.25,0.5")):
        os.makedirs(run_dir / f"version_{version}" / "samples")
        (run_dir / f"version_{version}" / "metrics.csv").write_text(f"{header}\n{row}\n")
        (run_dir / f"version_{version}" / "config.yaml").write_text(f"# version {version}\n")
    (run_dir / "version_0" / "samples" / "batch_0000040.png").write_bytes(b"png")
    return g_ema


def test_ship_keeps_the_networks_config_grid_and_metrics(tmp_path, monkeypatch):
    tool = load_tool()
    monkeypatch.setattr(tool, "TEACHER_DIR", str(tmp_path / "teachers"))
    os.makedirs(tmp_path / "teachers")
    g_ema = fake_run(tmp_path / "run")
    entry = tool.ship(str(tmp_path / "run"), "toy", "gancomp fit -c configs/teacher/x.yaml", "cpu", 12.0)
    shipped = tmp_path / "teachers" / "toy.pt"
    assert entry["networks"] == ["d", "g_ema"] and entry["batches"] == 40
    assert entry["metrics"] == {"val/fid": 9.5, "test/fid": 7.25, "test/kid": 0.5}
    assert entry["sha256"] == hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert (tmp_path / "teachers" / "toy.yaml").read_text() == "# version 0\n"  # the fit's config
    assert (tmp_path / "teachers" / "toy.png").read_bytes() == b"png"
    loaded = load_generator(shipped)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in g_ema.state_dict().items())
    assert type(load_discriminator(shipped)) is StyleGAN2Discriminator
