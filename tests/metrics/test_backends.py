"""Deployment backends: runners reproduce the module, int8 really quantises, rows are consistent."""

from __future__ import annotations

import onnx
import pytest
import torch

from lightning_gancomp.commands.onnx_export import write_onnx
from lightning_gancomp.commands.profile import backend_rows, format_backend_rows
from lightning_gancomp.metrics import backends as deploy
from lightning_gancomp.nets.pix2pix import ResnetGenerator
from lightning_gancomp.nets.stylegan2 import StyleGAN2Generator

pytest.importorskip("onnxruntime")


def tiny_pair():
    torch.manual_seed(0)
    teacher = StyleGAN2Generator(16, z_dim=8, w_dim=8, n_mapping=2, channels=[16] * 6).eval()
    student = StyleGAN2Generator(16, z_dim=8, w_dim=8, n_mapping=2, channels=[8] * 6).eval()
    return teacher, student


def test_eager_and_onnxruntime_fp32_reproduce_the_module():
    teacher, _ = tiny_pair()
    z = (torch.randn(3, 8),)
    with torch.no_grad():
        expected = teacher(z[0], randomize_noise=False)
    assert torch.equal(deploy.make_runner(teacher, "eager", "fp32")(z), expected)
    assert (deploy.make_runner(teacher, "onnxruntime", "fp32")(z) - expected).abs().max() <= 1e-4


@pytest.mark.parametrize("dtype,op", [("int8-dynamic", "ConvInteger"), ("int8-static", "QuantizeLinear")])
def test_int8_files_hold_quantised_convolutions_and_drift_a_little(dtype, op, tmp_path):
    torch.manual_seed(0)
    net = ResnetGenerator(ngf=4, n_blocks=1).eval()
    path = str(tmp_path / "g.onnx")
    write_onnx(net, path, resolution=32)
    calibration = [(torch.rand(2, 3, 32, 32) * 2 - 1,) for _ in range(3)]
    quantised = (
        deploy.quantize_dynamic_int8(path)
        if dtype == "int8-dynamic"
        else deploy.quantize_static_int8(path, calibration)
    )
    assert op in {node.op_type for node in onnx.load(quantised).graph.node}
    x = (torch.rand(2, 3, 32, 32) * 2 - 1,)
    with torch.no_grad():
        reference = net(x[0])
    drift = deploy.output_drift(
        reference, deploy.make_runner(net, "onnxruntime", dtype, calibration=calibration)(x)
    )
    assert 0 < drift["mean_abs_diff"] < 0.1 * reference.abs().mean()


@pytest.mark.parametrize(
    "backend,dtype",
    [("eager", "int8-dynamic"), ("eager", "fp16"), ("compile", "fp16"), ("onnxruntime", "fp16")],
)
def test_unsupported_combinations_say_so(backend, dtype):
    teacher, _ = tiny_pair()
    with pytest.raises(deploy.UnsupportedBackend):
        deploy.make_runner(teacher, backend, dtype, device="cpu")
    with pytest.raises(ValueError, match="backend must be one of"):
        deploy.make_runner(teacher, "tensorrt", "fp32")


def test_time_interleaved_alternates_the_runners():
    calls: list[str] = []
    runners = {name: (lambda inputs, name=name: calls.append(name)) for name in ("teacher", "student")}
    timed = deploy.time_interleaved(runners, (), warmup=1, repeats=3)
    assert calls == ["teacher", "student"] * 4
    assert set(timed) == {"teacher", "student"} and all(t["median_ms"] >= 0 for t in timed.values())


def test_backend_rows_speedup_is_the_teacher_over_the_student_median(capsys):
    teacher, student = tiny_pair()
    rows = backend_rows(
        {"teacher": teacher, "student": student}, ["eager", "onnxruntime"], ["fp32", "fp16"], 2, "cpu", 1, 3
    )
    measured = [r for r in rows if "unsupported" not in r]
    assert [(r["backend"], r["network"]) for r in measured] == [
        ("eager", "teacher"),
        ("eager", "student"),
        ("onnxruntime", "teacher"),
        ("onnxruntime", "student"),
    ]
    for t, s in zip(measured[::2], measured[1::2]):
        assert s["speedup"] == pytest.approx(t["median_ms"] / s["median_ms"])
        assert t["speedup"] is None and s["mean_abs_diff"] <= 1e-5
    assert sum("unsupported" in r for r in rows) == 2
    assert "n/a: fp16" in format_backend_rows(rows)
