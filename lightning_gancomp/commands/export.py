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

from lightning_gancomp.atomic import atomic_path
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


def export(
    checkpoint: str,
    output: str,
    key: str | None = None,
    torchscript: str | None = None,
    torchscript_batch_size: int = 1,
    check_tolerance: float = 1e-5,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Write the checkpoint's generator (G-EMA unless ``key`` says otherwise) as a plain file.

    ``torchscript``: also write a traced module (inputs: z, or z and labels, or an image; the
    StyleGAN2 trace uses the stored noise buffers). A trace records shapes: StyleGAN2's
    modulated convs fold the batch into conv groups, so the module runs at
    ``torchscript_batch_size`` only. Both files are reloaded and compared with the checkpoint's
    generator; a difference above ``check_tolerance`` is an error.
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
    log(f"exported {type(net).__name__} ({count_params(net):,} params) to {output}")
    if torchscript is not None:
        log(f"TorchScript {torchscript} traced for batch size {torchscript_batch_size}")
    log(f"reload check: max |diff| {max_plain:.3g}")
    if torchscript is not None:
        log(f"TorchScript {torchscript}: max |diff| {max_script:.3g}")
    return ExportResult(net, output, torchscript, max_plain, max_script)


def export_method(
    model: Any,
    checkpoint: str | None = None,
    output: str = "generator.pt",
    key: str | None = None,
    torchscript: str | None = None,
    torchscript_batch_size: int = 1,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """``gancomp export -c <config> --checkpoint <ckpt>``: defaults to the config's student file.

    A method whose student is materialised (PPCD masks, CoroNet hypernetworks: the engine's
    ``materialise`` hook) exports the plain generator it stands for: the training checkpoint is
    loaded into the configured method (weights only) and materialised first.
    """
    method = compression_method(model, "export") if isinstance(model, AdversarialModule) else None
    checkpoint = checkpoint or (method.source_file("student") if method is not None else None)
    if checkpoint is None:
        raise ValueError("gancomp export needs --checkpoint (a training or pruned checkpoint)")
    settings = dict(key=key, torchscript=torchscript, torchscript_batch_size=torchscript_batch_size, log=log)
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
