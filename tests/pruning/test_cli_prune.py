"""`gancomp prune / profile / fit / export` on the shrunk embedded CAGAN and DCP configs."""

import json
import os

import pytest
import torch
import yaml
from _cli_helpers import run_args, run_gancomp

from lightning_gancomp.checkpoints import load_generator
from lightning_gancomp.nets.base import net_payload
from lightning_gancomp.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator

TEACHER = [16, 16, 16, 16, 16, 16, 8, 8]
STUDENT = [5, 5, 5, 5, 5, 5, 3, 3]  # removal ratio 0.7


def shrink(tmp_path, teacher):
    """Tiny teacher and D (the student follows from the teacher and the ratio: no widths)."""
    return [
        f"--model.init_args.teacher.init_args.channels=[{','.join(map(str, TEACHER))}]",
        "--model.init_args.discriminator.init_args.channels=[8,8,8,8]",
        f"--model.init_args.teacher_path={teacher}",
        f"--model.init_args.discriminator_path={teacher}",
        f"--model.init_args.student_path={tmp_path / 'pruned.ckpt'}",
        "--model.init_args.metrics=null",
        "--model.init_args.eval_l1_samples=0",
        "--model.init_args.eval_pr_samples=0",
        f"--trainer.default_root_dir={tmp_path / 'run'}",
        "--trainer.logger=false",
        "--trainer.callbacks=[]",
    ]


@pytest.fixture()
def teacher(tmp_path):
    torch.manual_seed(0)
    g = StyleGAN2Generator(32, z_dim=64, w_dim=64, n_mapping=2, channels=TEACHER)
    d = StyleGAN2Discriminator(32, channels=[8, 8, 8, 8])
    path = tmp_path / "teacher.ckpt"
    torch.save({"gancomp_nets": {"g_ema": net_payload(g), "d": net_payload(d)}}, path)
    return path


def test_cagan_prune_profile_fit_export_through_the_cli(tmp_path, teacher, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = run_args("cagan/ffhq256_embedded.yaml")
    common = shrink(tmp_path, teacher)
    mask = [
        "--model.init_args.scorer.init_args.n_samples=4",
        "--model.init_args.scorer.init_args.batch_size=2",
        "--model.init_args.scorer.init_args.mask.init_args.steps=5",
        f"--model.init_args.scorer.init_args.mask.init_args.cache_dir={tmp_path}",
        "--model.init_args.kd_mask.init_args.steps=5",
        f"--model.init_args.kd_mask.init_args.cache_dir={tmp_path}",
    ]
    profile = ["profile", *config, *common, "--repeats=1", "--warmup=0", "--backends=[onnxruntime]"]
    code, out, err = run_gancomp(profile, capsys)
    assert code == 0, err
    assert "teacher" in out and "student" in out  # sizes from the config alone: no file read yet
    assert "onnxruntime  fp32          student" in out  # the deployment table
    code, out, err = run_gancomp(["prune", *config, *common, *mask], capsys)
    assert code == 0, err
    assert "teacher StyleGAN2Generator: params" in out and "MAC reduction" in out
    student = load_generator(tmp_path / "pruned.ckpt")
    assert student.channels == STUDENT and os.path.exists(tmp_path / "pruned.plan.json")
    fit = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=0"]
    fit += [
        "--model.init_args.r1=null",
        "--model.init_args.path_length=null",
    ]  # regularisers: tested elsewhere
    light = tmp_path / "light_losses.yaml"  # L1 only: no VGG to build in a unit test
    light.write_text(
        "model:\n  init_args:\n    losses:\n      - class_path: lightning_gancomp.losses.PixelLoss\n"
        "        init_args: {weight: 3.0, masked: true}\n"
    )
    data = [
        "--data.init_args.embedded_length=16",
        "--data.init_args.val_size=4",
        "--data.init_args.batch_size=4",
    ]
    code, _, err = run_gancomp(["fit", *config, "-c", str(light), *common, *mask, *fit, *data], capsys)
    assert code == 0, err
    code, out, err = run_gancomp(
        [
            "export",
            *config,
            *common,
            f"--checkpoint={tmp_path / 'pruned.ckpt'}",
            f"--output={tmp_path / 'g.pt'}",
            f"--onnx={tmp_path / 'g.onnx'}",
        ],
        capsys,
    )
    assert code == 0, err
    assert load_generator(tmp_path / "g.pt").channels == STUDENT
    assert (tmp_path / "g.onnx").stat().st_size > 0 and "ONNX Runtime vs PyTorch max |diff|" in out
    # a pruned checkpoint is a valid starting point for `test` (its generator is the student)
    test = ["--trainer.limit_test_batches=1", f"--ckpt_path={tmp_path / 'pruned.ckpt'}"]
    code, _, err = run_gancomp(["test", *config, *common, *mask, *data, *test], capsys)
    assert code == 0, err
    assert "is not a training checkpoint; its generator is tested" in err


def test_dcp_prune_warns_when_config_student_differs_and_missing_teacher_is_one_line(
    tmp_path, teacher, capsys
):
    config = run_args("dcp/church256_embedded.yaml")
    common = shrink(tmp_path, teacher)
    student = {  # written widths (ratio 0.7) that the pruning at ratio 0.5 below does not produce
        "class_path": "lightning_gancomp.nets.stylegan2.StyleGAN2Generator",
        "init_args": {"resolution": 32, "z_dim": 64, "w_dim": 64, "n_mapping": 2, "channels": STUDENT},
    }
    scorer = [
        "--model.init_args.scorer.init_args.n_samples=4",
        "--model.init_args.scorer.init_args.n_pca_samples=100",
        "--model.init_args.scorer.init_args.n_directions=3",
        "--model.init_args.policy.init_args.ratio=0.5",
        f"--model.init_args.student={json.dumps(student)}",
    ]
    code, out, err = run_gancomp(["prune", *config, *common, *scorer], capsys)
    assert code == 0, err
    assert "warning: the configured student differs" in out
    assert load_generator(tmp_path / "pruned.ckpt").channels == [8, 8, 8, 8, 8, 8, 4, 4]
    code, _, err = run_gancomp(
        ["prune", *config, *common, *scorer, f"--teacher_path={tmp_path / 'nope.ckpt'}"], capsys
    )
    assert code == 1 and len(err.strip().splitlines()) == 1 and "nope.ckpt" in err


def _fail_metric_network_downloads(monkeypatch):
    """Any attempt to build Inception or VGG-16 (cached weights or not) fails the test."""
    import torch_fidelity.feature_extractor_inceptionv3 as tf_inception
    import torch_fidelity.feature_extractor_vgg16 as tf_vgg16

    def _built(*args, **kwargs):
        raise AssertionError("a metric network was built (weights requested)")

    monkeypatch.setattr(tf_inception, "load_state_dict_from_url", _built)
    monkeypatch.setattr(tf_vgg16, "torchvision_load_pretrained_vgg16", _built)


@pytest.mark.parametrize("method", ["cagan", "dcp"])
def test_paper_config_with_inception_metrics_profiles_without_building_them(
    tmp_path, capsys, monkeypatch, method
):
    monkeypatch.chdir(tmp_path)
    _fail_metric_network_downloads(monkeypatch)
    config = run_args(f"{method}/ffhq256_0.7.yaml")
    code, out, err = run_gancomp(["fit", *config, "--print_config"], capsys)
    metrics = yaml.safe_load(out)["model"]["init_args"]["metrics"]["init_args"]
    assert code == 0 and metrics["feature_extractor"] == "inception"
    assert metrics["precision_recall_extractor"] == "vgg16" and "fid" in metrics["metrics"]
    # full 256 px depth, few channels: the paper config's networks, only narrower; the student
    # follows from the teacher and the ratio, and its file (not pruned yet) is read only at fit
    tiny = ["--model.init_args.teacher.init_args.channels=[16,16,16,16,16,16,16,16,16,16,8,8,8,8]"]
    code, out, err = run_gancomp(["profile", *config, *tiny, "--repeats=1", "--warmup=0"], capsys)
    assert code == 0, err
    assert "teacher" in out and "student" in out


@pytest.mark.parametrize(
    "run",
    [
        "cagan/cifar10_sngan_0.7.yaml",
        "cagan/cifar10_sngan_0.5.yaml",
        "cagan/cifar10_sngan_embedded.yaml",
        "teacher/sngan_embedded.yaml",
    ],
)
def test_sngan_configs_train_with_n_dis_5_and_mimicry_linear_decay(capsys, run):
    """mimicry's SN-GAN CIFAR-10 recipe: one G step per 5 D steps, Adam 2e-4 (0.0, 0.9), batch 64,
    100k G steps; Lightning counts D and G optimizer steps, so max_steps = 100k x 6. Both learning
    rates decay linearly to 0 per step (lr_decay='linear') over exactly the run's batches."""
    code, out, err = run_gancomp(["fit", *run_args(run), "--print_config"], capsys)
    assert code == 0, err
    parsed = yaml.safe_load(out)
    model, trainer = parsed["model"]["init_args"], parsed["trainer"]
    assert model["generator_interval"] == 5
    for side in ("g_optimizer", "d_optimizer"):
        assert model[side]["init_args"]["lr"] == 2e-4 and model[side]["init_args"]["betas"] == [0.0, 0.9]
    if "embedded" not in run:
        assert parsed["data"]["init_args"]["batch_size"] == 64
        assert trainer["max_steps"] == 100_000 * (model["generator_interval"] + 1)
        batches = 100_000 * model["generator_interval"]
    else:
        batches = trainer["max_epochs"] * trainer["limit_train_batches"]
    schedules = {s["init_args"]["optimizer"]: s for s in model["schedules"]}
    assert sorted(schedules) == ["d", "g"]
    for schedule in schedules.values():
        assert schedule["class_path"].endswith("LinearDecayLR")
        assert schedule["init_args"] == {
            "optimizer": schedule["init_args"]["optimizer"],
            "constant": 0,
            "decay": batches,
            "offset": 0,
            "interval": "step",
        }
