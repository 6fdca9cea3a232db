"""Latency where generators are deployed: PyTorch eager, ``torch.compile`` and ONNX Runtime, per data type.

A *runner* is a callable ``inputs -> output tensor`` for one (network, backend, dtype):

* ``eager``       — the module itself (``fp32``; ``fp16`` on CUDA: a half copy of the module);
* ``compile``     — ``torch.compile`` of the module (inductor; ``fp32``, ``fp16`` on CUDA);
* ``onnxruntime`` — the module exported by :mod:`lightning_gancomp.commands.onnx_export`
  (``fp32``), quantised with ONNX Runtime's tools: ``int8-dynamic`` (``quantize_dynamic``:
  int8 weights, activations quantised on the fly) or ``int8-static`` (``quantize_static``, QDQ
  format, per-channel weights, activation ranges calibrated on seeded inputs).

Combinations that a backend does not support (fp16 on CPU, int8 in PyTorch) raise
:class:`UnsupportedBackend`, which the profile reports as ``n/a``.
:func:`time_interleaved` times several runners round-robin and returns medians, so a teacher and
its student are always compared in the same run under the same load.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import torch
from torch import nn

Backend = Literal["eager", "compile", "onnxruntime"]
DType = Literal["fp32", "fp16", "int8-dynamic", "int8-static"]
BACKENDS: tuple[str, ...] = ("eager", "compile", "onnxruntime")
DTYPES: tuple[str, ...] = ("fp32", "fp16", "int8-dynamic", "int8-static")

Runner = Callable[[tuple[torch.Tensor, ...]], torch.Tensor]


class UnsupportedBackend(ValueError):
    """This backend cannot run this data type on this device."""


def make_runner(
    net: nn.Module,
    backend: str,
    dtype: str,
    device: str | torch.device = "cpu",
    workdir: str | None = None,
    calibration: Sequence[tuple[torch.Tensor, ...]] = (),
) -> Runner:
    """A runner for ``net`` (eval, no gradients) on ``backend`` in ``dtype``."""
    from lightning_gancomp.commands.export import DeterministicGenerator

    if backend not in BACKENDS or dtype not in DTYPES:
        raise ValueError(
            f"backend must be one of {BACKENDS} and dtype one of {DTYPES}, got {backend}/{dtype}"
        )
    device = torch.device(device)
    if backend == "onnxruntime":
        return _onnx_runner(net, dtype, device, workdir, calibration)
    if dtype.startswith("int8"):
        raise UnsupportedBackend(f"{dtype} runs through ONNX Runtime's quantisation (backend onnxruntime)")
    if dtype == "fp16" and device.type != "cuda":
        raise UnsupportedBackend("fp16 convolutions are GPU-only here (PyTorch's CPU fp16 kernels are slow)")
    module = DeterministicGenerator(copy.deepcopy(net)).to(device).eval()
    half = dtype == "fp16"
    if half:
        module = module.half()
    if backend == "compile":
        module = torch.compile(module)

    def run(inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        inputs = tuple(_to(x, device, half) for x in inputs)
        with torch.no_grad():
            return module(*inputs).float()

    return run


def _to(x: torch.Tensor, device: torch.device, half: bool) -> torch.Tensor:
    x = x.to(device)
    return x.half() if half and x.is_floating_point() else x


def _onnx_runner(
    net: nn.Module,
    dtype: str,
    device: torch.device,
    workdir: str | None,
    calibration: Sequence[tuple[torch.Tensor, ...]],
) -> Runner:
    from lightning_gancomp.commands.onnx_export import onnx_session, run_session, write_onnx

    if dtype == "fp16":
        raise UnsupportedBackend("fp16 ONNX models are not produced here (export in fp32 or int8)")
    workdir = workdir or tempfile.mkdtemp(prefix="gancomp-onnx-")
    path = os.path.join(workdir, f"{type(net).__name__}-{id(net)}.onnx")
    write_onnx(copy.deepcopy(net).cpu().eval(), path)
    if dtype == "int8-dynamic":
        path = quantize_dynamic_int8(path)
    elif dtype == "int8-static":
        path = quantize_static_int8(path, calibration)
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device.type == "cuda" else None
    session = onnx_session(path, threads=torch.get_num_threads(), providers=providers)

    def run(inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return torch.from_numpy(run_session(session, inputs))

    return run


#: Only convolutions are quantised: they hold the MACs; the small style/affine math (modulation,
#: demodulation, mapping MLP, class embeddings) stays fp32, where int8 would distort every layer.
QUANTIZED_OPS = ["Conv", "ConvTranspose"]


def quantize_dynamic_int8(path: str) -> str:
    """int8 weights, activations quantised per call (ONNX Runtime ``quantize_dynamic``)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = path.replace(".onnx", ".int8-dynamic.onnx")
    with _quiet_quantizer():
        quantize_dynamic(
            path, out, weight_type=QuantType.QInt8, per_channel=True, op_types_to_quantize=QUANTIZED_OPS
        )
    return out


def quantize_static_int8(path: str, calibration: Sequence[tuple[torch.Tensor, ...]]) -> str:
    """QDQ int8 with per-channel weights and activation ranges calibrated on ``calibration``."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if not calibration:
        raise ValueError("int8-static needs calibration inputs")
    names = [i.name for i in _session_inputs(path)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{n: x.numpy() for n, x in zip(names, b)} for b in calibration])

        def get_next(self) -> dict[str, Any] | None:
            return next(self.batches, None)

    out = path.replace(".onnx", ".int8-static.onnx")
    with _quiet_quantizer():
        quantize_static(
            path,
            out,
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=QUANTIZED_OPS,
        )
    return out


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    # ONNX Runtime's quantiser logs advice per node through the root logger.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _session_inputs(path: str) -> list[Any]:
    from lightning_gancomp.commands.onnx_export import onnx_session

    return onnx_session(path).get_inputs()


def time_interleaved(
    runners: dict[str, Runner],
    inputs: tuple[torch.Tensor, ...],
    warmup: int = 3,
    repeats: int = 10,
    device: str | torch.device = "cpu",
) -> dict[str, dict[str, float]]:
    """Median / min ms per runner; runners alternate in every repeat so load drifts hit all alike."""
    device = torch.device(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        for run in runners.values():
            run(inputs)
    sync()
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run(inputs)
            sync()
            times[name].append(1000 * (time.perf_counter() - start))
    return {n: {"median_ms": statistics.median(t), "min_ms": min(t)} for n, t in times.items()}


def output_drift(reference: torch.Tensor, output: torch.Tensor) -> dict[str, float]:
    """Mean and max abs difference of an output from the fp32 eager reference."""
    diff = (output.float().cpu() - reference.float().cpu()).abs()
    return {"mean_abs_diff": float(diff.mean()), "max_abs_diff": float(diff.max())}
