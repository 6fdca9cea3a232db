"""``gancomp export``: a distilled or pruned student (any checkpoint ``load_generator`` reads;
G-EMA by default) → a plain generator file (weights + constructor config, loadable by
``load_generator`` without any training class) and optionally TorchScript. Both are checked to
reproduce the checkpoint's generator on fixed inputs.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lightning_gancomp.atomic import atomic_paths, check_writable
from lightning_gancomp.checkpoints import load_generator, save_generator
from lightning_gancomp.commands.prune import compression_method
from lightning_gancomp.methods.engine import AdversarialModule
from lightning_gancomp.nets import contract
from lightning_gancomp.nets.base import GanNet, count_params
from lightning_gancomp.nets.contract import generator_task, is_style_based


class DeterministicGenerator(nn.Module):
    """Fixed-input wrapper for tracing: StyleGAN-like nets use their stored noise buffers."""

    def __init__(self, net: GanNet) -> None:
        super().__init__()
        self.net = net
        self.stylegan_like = is_style_based(net)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.stylegan_like:
            return self.net(inputs[0], randomize_noise=False)
        out = self.net(*inputs)
        return out[0] if isinstance(out, (tuple, list)) else out


def example_inputs(net: GanNet, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Check inputs of the export round trip (image-to-image at 64 px: fast, any depth up to 6)."""
    resolution = 64 if generator_task(net) == "image2image" else None
    return contract.example_inputs(net, batch, resolution, seed)


@dataclass
class ExportResult:
    generator: GanNet
    output: str
    torchscript: str | None
    max_diff_plain: float
    max_diff_torchscript: float | None
    onnx: str | None = None
    max_diff_onnx: float | None = None


class ExportError(ValueError):
    """Bad ``gancomp export`` arguments (same file in and out, batch size < 1)."""


def check_export_arguments(
    checkpoint: str, output: str, torchscript: str | None, torchscript_batch_size: int
) -> None:
    """Everything that can be refused before the checkpoint is read or a file is touched."""
    if torchscript is not None and torchscript_batch_size < 1:
        raise ExportError(f"--torchscript_batch_size must be >= 1, got {torchscript_batch_size}")
    outputs = {"--output": output} | ({"--torchscript": torchscript} if torchscript else {})
    for flag, path in outputs.items():
        if os.path.abspath(path) == os.path.abspath(checkpoint):
            raise ExportError(f"{flag} {path} is the input --checkpoint: exporting over it would destroy it")
    if torchscript is not None and os.path.abspath(torchscript) == os.path.abspath(output):
        raise ExportError(f"--torchscript and --output are the same file {output}")
    for flag, path in outputs.items():
        check_writable(path, flag)


def _max_diff(net: nn.Module, expected: torch.Tensor, inputs: tuple[torch.Tensor, ...]) -> float:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return (net(*inputs) - expected).abs().max().item()


def _trace(reference: DeterministicGenerator, inputs: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    with torch.no_grad(), warnings.catch_warnings():
        # TorchScript is what users asked for; torch marks jit as deprecated in favour of export
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return torch.jit.trace(reference, inputs, check_trace=False)


def export(
    checkpoint: str,
    output: str,
    key: str | None = None,
    torchscript: str | None = None,
    torchscript_batch_size: int = 1,
    check_tolerance: float = 1e-5,
    log: Callable[[str], None] = print,
    onnx: str | None = None,
    onnx_resolution: int = 256,
) -> ExportResult:
    """Write the checkpoint's generator (G-EMA unless ``key`` says otherwise) as a plain file.

    ``torchscript``: also write a traced module (inputs: z, or z and labels, or an image; the
    StyleGAN2 trace uses the stored noise buffers). A trace records shapes: StyleGAN2's
    modulated convs fold the batch into conv groups, so the module runs at
    ``torchscript_batch_size`` only. ``onnx``: also write an ONNX file with a dynamic batch
    (image2image inputs at ``onnx_resolution`` px), checked in ONNX Runtime against PyTorch (max
    abs diff ≤ 1e-4; :mod:`lightning_gancomp.commands.onnx_export`).

    Every file is written to a temporary, reloaded and compared with the checkpoint's generator
    (a difference above the tolerance is an error), and all are moved into place only when every
    step succeeded: a failure leaves existing files untouched.
    """
    check_export_arguments(checkpoint, output, torchscript, torchscript_batch_size)
    net = (load_generator(checkpoint, key=key) if key else load_generator(checkpoint)).cpu().eval()
    extras = [path for path in (torchscript, onnx) if path is not None]
    with atomic_paths(output, *extras) as temporaries:
        named = dict(zip([output, *extras], temporaries, strict=True))
        max_plain = _write_plain(net, named[output], check_tolerance, f"{output}: reloaded generator")
        max_script = None
        if torchscript is not None:
            max_script = _write_torchscript(net, named[torchscript], torchscript_batch_size, check_tolerance)
        onnx_result = None
        if onnx is not None:
            from lightning_gancomp.commands.onnx_export import export_onnx

            onnx_result = export_onnx(net, named[onnx], resolution=onnx_resolution, log=lambda _: None)
    log(f"exported {type(net).__name__} ({count_params(net):,} params) to {output}")
    log(f"reload check: max |diff| {max_plain:.3g}")
    if torchscript is not None:
        log(f"TorchScript {torchscript} (batch size {torchscript_batch_size}): max |diff| {max_script:.3g}")
    if onnx_result is not None:
        log(
            f"ONNX {onnx}: inputs {onnx_result.input_names}, dynamic batch; "
            f"ONNX Runtime vs PyTorch max |diff| {onnx_result.max_abs_diff:.3g}"
        )
    diff_onnx = onnx_result.max_abs_diff if onnx_result else None
    return ExportResult(net, output, torchscript, max_plain, max_script, onnx, diff_onnx)


def _write_plain(net: GanNet, path: str, tolerance: float, what: str) -> float:
    save_generator(net, path)
    inputs = example_inputs(net)
    with torch.no_grad():
        expected = DeterministicGenerator(net)(*inputs)
    diff = _max_diff(DeterministicGenerator(load_generator(path).eval()), expected, inputs)
    if diff > tolerance:
        raise RuntimeError(f"{what} differs by {diff:.3g}")
    return diff


def _write_torchscript(net: GanNet, path: str, batch_size: int, tolerance: float) -> float:
    reference = DeterministicGenerator(net)
    inputs = example_inputs(net, batch=batch_size)
    with torch.no_grad():
        expected = reference(*inputs)
    _trace(reference, inputs).save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        scripted = torch.jit.load(path)
    diff = _max_diff(scripted, expected, inputs)
    if diff > tolerance:
        raise RuntimeError(f"TorchScript output differs by {diff:.3g}")
    return diff


def export_method(
    model: Any,
    checkpoint: str | None = None,
    output: str = "generator.pt",
    key: str | None = None,
    torchscript: str | None = None,
    torchscript_batch_size: int = 1,
    log: Callable[[str], None] = print,
    onnx: str | None = None,
) -> ExportResult:
    """``gancomp export -c <config> --checkpoint <ckpt>``: defaults to the config's student file.

    A method whose student is materialised (PPCD masks, CoroNet hypernetworks: the engine's
    ``materialise`` hook) exports the plain generator it stands for: the training checkpoint is
    loaded into the configured method (weights only) and materialised first.
    """
    if checkpoint is None:  # the default is the configured student: only compression methods have one
        checkpoint = compression_method(model, "export without --checkpoint").source_file("student")
    if checkpoint is None:
        raise ExportError("gancomp export needs --checkpoint (a training or pruned checkpoint)")
    check_export_arguments(checkpoint, output, torchscript, torchscript_batch_size)
    settings = dict(
        key=key, torchscript=torchscript, torchscript_batch_size=torchscript_batch_size, log=log, onnx=onnx
    )
    materialised = materialise_checkpoint(model, checkpoint) if key is None else None
    if materialised is None:
        return export(checkpoint, output, **settings)
    with tempfile.TemporaryDirectory() as folder:
        plain = os.path.join(folder, "materialised.pt")
        save_generator(materialised, plain)
        log(f"materialised {type(materialised).__name__} from {checkpoint}")
        return export(plain, output, **settings)


def materialise_checkpoint(model: Any, checkpoint: str) -> GanNet | None:
    """``model.materialise()`` after loading a training checkpoint's weights into the method;
    None for methods whose generator already is plain (or files that are not training checkpoints)."""
    if not isinstance(model, AdversarialModule) or type(model).materialise is AdversarialModule.materialise:
        return None
    payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "state_dict" not in payload:
        return None
    model.check_checkpoint_fits(payload["state_dict"], checkpoint)
    model.load_state_dict(payload["state_dict"])
    return model.materialise()
