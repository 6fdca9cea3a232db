"""``gancomp export``: a distilled or pruned student (any checkpoint ``load_generator`` reads;
G-EMA by default) → a plain generator file (weights + constructor config, loadable by
``load_generator`` without any training class) and optionally TorchScript. Both are checked to
reproduce the checkpoint's generator on fixed inputs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lightning_gancomp.atomic import atomic_path
from lightning_gancomp.checkpoints import load_generator, save_generator
from lightning_gancomp.commands.prune import method_file
from lightning_gancomp.nets.base import GanNet, count_params


class DeterministicGenerator(nn.Module):
    """Fixed-input wrapper for tracing: StyleGAN-like nets use their stored noise buffers."""

    def __init__(self, net: GanNet) -> None:
        super().__init__()
        self.net = net
        self.stylegan_like = hasattr(net, "mapping") and hasattr(net, "n_latent")

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.stylegan_like:
            return self.net(inputs[0], randomize_noise=False)
        out = self.net(*inputs)
        return out[0] if isinstance(out, (tuple, list)) else out


def example_inputs(net: GanNet, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    task = getattr(net, "task", "unconditional")
    if task == "image2image":
        return (torch.rand(batch, net.in_channels, 64, 64, generator=gen) * 2 - 1,)
    z = torch.randn(batch, net.z_dim, generator=gen)
    if task == "conditional":
        return (z, torch.randint(net.num_classes, (batch,), generator=gen))
    return (z,)


@dataclass
class ExportResult:
    generator: GanNet
    output: str
    torchscript: str | None
    max_diff_plain: float
    max_diff_torchscript: float | None
    onnx: str | None = None
    max_diff_onnx: float | None = None


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
    ``torchscript_batch_size`` only. Both files are reloaded and compared with the checkpoint's
    generator; a difference above ``check_tolerance`` is an error.

    ``onnx``: also write an ONNX file with a dynamic batch (image2image inputs at
    ``onnx_resolution`` px), checked in ONNX Runtime against PyTorch (max abs diff ≤ 1e-4; see
    :mod:`lightning_gancomp.commands.onnx_export`).
    """
    net = (load_generator(checkpoint, key=key) if key else load_generator(checkpoint)).cpu().eval()
    save_generator(net, output)
    inputs = example_inputs(net)
    reference = DeterministicGenerator(net)
    with torch.no_grad():
        expected = reference(*inputs)
        plain = DeterministicGenerator(load_generator(output).eval())(*inputs)
    max_plain = (plain - expected).abs().max().item()
    if max_plain > check_tolerance:
        raise RuntimeError(f"{output}: reloaded generator differs from {checkpoint} by {max_plain:.3g}")
    max_script = None
    if torchscript is not None:
        inputs = example_inputs(net, batch=torchscript_batch_size)
        with torch.no_grad():
            expected = reference(*inputs)
        with torch.no_grad(), warnings.catch_warnings():
            # TorchScript is what users asked for; torch marks jit as deprecated in favour of export
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(reference, inputs, check_trace=False)
        with atomic_path(torchscript) as tmp:
            traced.save(tmp)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            scripted = torch.jit.load(torchscript)(*inputs)
        max_script = (scripted - expected).abs().max().item()
        if max_script > check_tolerance:
            raise RuntimeError(f"{torchscript}: TorchScript output differs by {max_script:.3g}")
    onnx_result = None
    if onnx is not None:
        from lightning_gancomp.commands.onnx_export import export_onnx

        onnx_result = export_onnx(net, onnx, resolution=onnx_resolution, log=lambda _: None)
    log(f"exported {type(net).__name__} ({count_params(net):,} params) to {output}")
    if torchscript is not None:
        log(f"TorchScript {torchscript} traced for batch size {torchscript_batch_size}")
    log(f"reload check: max |diff| {max_plain:.3g}")
    if torchscript is not None:
        log(f"TorchScript {torchscript}: max |diff| {max_script:.3g}")
    if onnx_result is not None:
        log(
            f"ONNX {onnx}: inputs {onnx_result.input_names}, dynamic batch; "
            f"ONNX Runtime vs PyTorch max |diff| {onnx_result.max_abs_diff:.3g}"
        )
    diff_onnx = onnx_result.max_abs_diff if onnx_result else None
    return ExportResult(net, output, torchscript, max_plain, max_script, onnx, diff_onnx)


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
    """``gancomp export -c <config> --checkpoint <ckpt>``: defaults to the config's student file."""
    checkpoint = checkpoint or method_file(model, "student")
    if checkpoint is None:
        raise ValueError("gancomp export needs --checkpoint (a training or pruned checkpoint)")
    return export(
        checkpoint,
        output,
        key=key,
        torchscript=torchscript,
        torchscript_batch_size=torchscript_batch_size,
        log=log,
        onnx=onnx,
    )
