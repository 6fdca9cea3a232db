"""ONNX export of any generator (``gancomp export --onnx``), checked in ONNX Runtime.

Inputs by task (``GanNet.task``): unconditional ``z`` [B, z_dim]; conditional ``z`` and ``label``
(int64 [B] class indices: BigGAN / SAGAN); image2image ``image`` [B, C, H, W]. The batch axis
is dynamic (name ``batch``), so one file serves any batch size; image2image files also take
any height and width (``height``, ``width``; fully convolutional nets). StyleGAN-like generators use
their stored noise buffers (``randomize_noise=False``: a deployed generator is deterministic)
and the per-sample-scaled modulated convolution (modulate the input, one conv shared by the
batch, demodulate the output; NVlabs ``fused_modconv=False``), the exact form of StyleGAN2's
Eq. 1-3 whose graph does not fold the batch into the conv groups.

The file is written atomically, then run in ONNX Runtime at two batch sizes and compared with
the PyTorch module; a max abs difference above ``check_tolerance`` (1e-4, fp32) is an error.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lightning_gancomp.atomic import atomic_path
from lightning_gancomp.commands.export import DeterministicGenerator
from lightning_gancomp.nets import contract
from lightning_gancomp.nets.contract import generator_task

#: ONNX opset of the exported graph (supported by onnxruntime ≥ 1.17).
OPSET = 18


@dataclass
class OnnxResult:
    path: str
    input_names: list[str]
    max_abs_diff: float
    checked_batch_sizes: tuple[int, ...]


def input_names(net: nn.Module) -> list[str]:
    task = generator_task(net)
    if task == "image2image":
        return ["image"]
    return ["z", "label"] if task == "conditional" else ["z"]


def dynamic_axes(net: nn.Module) -> dict[str, dict[int, str]]:
    """Batch axis of every input and the output; image2image nets also take any height/width."""
    if generator_task(net) == "image2image":
        image = {0: "batch", 2: "height", 3: "width"}
        return {"image": image, "output": dict(image)}
    return {**{name: {0: "batch"} for name in input_names(net)}, "output": {0: "batch"}}


def deploy_inputs(
    net: nn.Module, batch: int, resolution: int = 64, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Seeded example inputs on the CPU (the image2image size is ``resolution``)."""
    size = resolution if generator_task(net) == "image2image" else None
    return tuple(x.cpu() for x in contract.example_inputs(net, batch, size, seed))


@contextlib.contextmanager
def shared_modulated_convs(net: nn.Module) -> Iterator[None]:
    """Force the per-sample-scaled form of every modulated conv (restored on exit)."""
    from lightning_gancomp.nets.stylegan_layers import ModulatedConv2d

    convs = [m for m in net.modules() if isinstance(m, ModulatedConv2d)]
    saved = [m.fused for m in convs]
    for m in convs:
        m.fused = False
    try:
        yield
    finally:
        for m, fused in zip(convs, saved):
            m.fused = fused


def write_onnx(net: nn.Module, path: str, batch: int = 2, resolution: int = 64, opset: int = OPSET) -> None:
    """Trace ``net`` (eval, CPU, fp32) into ``path`` with a dynamic batch axis."""
    names = input_names(net)
    module = DeterministicGenerator(net).eval()
    inputs = deploy_inputs(net, batch, resolution)
    with (
        shared_modulated_convs(net),
        torch.no_grad(),
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        atomic_path(path) as tmp,
    ):
        # The TorchScript-based exporter handles every family's Python control flow (the
        # shapes seen while tracing are fixed except the batch axis, declared dynamic).
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            inputs,
            tmp,
            input_names=names,
            output_names=["output"],
            dynamic_axes=dynamic_axes(net),
            opset_version=opset,
            dynamo=False,
        )


def onnx_session(path: str, threads: int | None = None, providers: list[str] | None = None):
    """An ONNX Runtime inference session (CPU by default; all graph optimisations on)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=providers or ["CPUExecutionProvider"])


def run_session(session, inputs: tuple[torch.Tensor, ...]) -> np.ndarray:
    feeds = {i.name: x.cpu().numpy() for i, x in zip(session.get_inputs(), inputs)}
    return session.run(None, feeds)[0]


def check_onnx(
    net: nn.Module, path: str, batch_sizes: tuple[int, ...] = (1, 3), resolution: int = 64
) -> float:
    """Max abs difference between ONNX Runtime and PyTorch over ``batch_sizes``."""
    session = onnx_session(path)
    module = DeterministicGenerator(net).eval()
    worst = 0.0
    for batch in batch_sizes:
        inputs = deploy_inputs(net, batch, resolution, seed=batch)
        with torch.no_grad():
            expected = module(*inputs).numpy()
        got = run_session(session, inputs)
        if got.shape != expected.shape:
            raise RuntimeError(f"{path}: ONNX output shape {got.shape} != PyTorch {expected.shape}")
        worst = max(worst, float(np.abs(got - expected).max()))
    return worst


def export_onnx(
    net: nn.Module,
    path: str,
    resolution: int = 64,
    check_tolerance: float = 1e-4,
    log: Callable[[str], None] = print,
) -> OnnxResult:
    """Write ``net`` (a generator, any family) as ONNX and check it in ONNX Runtime."""
    net = net.cpu().eval()
    write_onnx(net, path, resolution=resolution)
    batches = (1, 3)
    diff = check_onnx(net, path, batches, resolution)
    if diff > check_tolerance:
        raise RuntimeError(f"{path}: ONNX Runtime output differs from PyTorch by {diff:.3g}")
    names = input_names(net)
    log(f"ONNX {path}: inputs {names} (dynamic batch); ONNX Runtime vs PyTorch max |diff| {diff:.3g}")
    return OnnxResult(path, names, diff, batches)
