"""gancomp prune / export: files written, loadable without training classes, identical outputs."""

import json

import pytest
import torch

from lightning_gancomp.checkpoints import load_discriminator, load_generator
from lightning_gancomp.commands.export import DeterministicGenerator, example_inputs, export
from lightning_gancomp.commands.prune import prune
from lightning_gancomp.nets.base import count_params, net_payload
from lightning_gancomp.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from lightning_gancomp.pruning.importance import ContentAwareScorer, L1Scorer
from lightning_gancomp.pruning.plan import PruningPlan, UniformPolicy
from lightning_gancomp.pruning.surgery import apply_plan

CHANNELS = [16, 12, 12, 10, 10, 8, 8, 6]


@pytest.fixture()
def teacher_file(tmp_path):
    torch.manual_seed(0)
    g = StyleGAN2Generator(32, z_dim=16, w_dim=16, n_mapping=2, channels=CHANNELS)
    d = StyleGAN2Discriminator(32, channels=[8, 8, 8, 8])
    path = tmp_path / "teacher.ckpt"
    torch.save({"gancomp_nets": {"g_ema": net_payload(g), "d": net_payload(d)}}, path)
    return path, g, d


def test_prune_writes_student_with_teacher_weights_and_d_and_plan(teacher_file, tmp_path):
    path, teacher, d = teacher_file
    lines = []
    result = prune(
        str(path),
        str(tmp_path / "student.ckpt"),
        ContentAwareScorer(n_samples=4, batch_size=2, progress=False),
        UniformPolicy(0.5),
        log=lines.append,
    )
    student = load_generator(tmp_path / "student.ckpt")
    assert student.channels == [8, 6, 6, 5, 5, 4, 4, 3]
    plan = PruningPlan.load(tmp_path / "student.plan.json", teacher)
    expected = apply_plan(teacher, plan)
    for key, value in expected.state_dict().items():
        assert torch.equal(student.state_dict()[key], value), key
    assert torch.equal(student.style[1].weight, teacher.style[1].weight)  # mapping net kept
    disc = load_discriminator(tmp_path / "student.ckpt")
    assert all(torch.equal(v, d.state_dict()[k]) for k, v in disc.state_dict().items())
    assert result.before.params == count_params(teacher) and result.after.params == count_params(student)
    assert any(line.startswith("teacher StyleGAN2Generator: params") and "MACs" in line for line in lines)
    assert json.loads((tmp_path / "student.plan.json").read_text())["scorer"]["name"] == "content_aware"


def test_prune_with_an_existing_plan_reproduces_it(teacher_file, tmp_path):
    path, teacher, _ = teacher_file
    first = prune(str(path), str(tmp_path / "a.ckpt"), L1Scorer(), UniformPolicy(0.7), log=lambda _: None)
    second = prune(str(path), str(tmp_path / "b.ckpt"), plan=first.plan_path, log=lambda _: None)
    assert second.plan.groups == first.plan.groups


def test_export_plain_and_torchscript_match_the_checkpoint_generator(teacher_file, tmp_path):
    path, _, _ = teacher_file
    prune(str(path), str(tmp_path / "s.ckpt"), L1Scorer(), UniformPolicy(0.5), log=lambda _: None)
    result = export(
        str(tmp_path / "s.ckpt"),
        str(tmp_path / "g.pt"),
        torchscript=str(tmp_path / "g.ts"),
        torchscript_batch_size=3,
        log=lambda _: None,
    )
    assert result.max_diff_plain == 0.0 and result.max_diff_torchscript <= 1e-6
    plain = load_generator(tmp_path / "g.pt")
    reference = load_generator(tmp_path / "s.ckpt")
    inputs = example_inputs(reference, batch=3, seed=5)
    scripted = torch.jit.load(str(tmp_path / "g.ts"))
    with torch.no_grad():
        expected = DeterministicGenerator(reference)(*inputs)
        assert torch.equal(DeterministicGenerator(plain)(*inputs), expected)
        assert (scripted(*inputs) - expected).abs().max() <= 1e-6
    raw = torch.load(tmp_path / "g.pt", weights_only=True)
    assert raw["class"] == "StyleGAN2Generator" and raw["config"]["channels"] == [8, 6, 6, 5, 5, 4, 4, 3]
