"""The generator call contract: how to sample inputs for, run, and read features from any
generator, written once and used by methods, scorers, metrics, complexity and export.

Every :class:`~lightning_gancomp.nets.base.GanNet` *declares* what it is (DESIGN key idea 8);
nothing here guesses with ``hasattr``:

- ``task`` (class attribute): ``"unconditional"`` ``G(z)``, ``"conditional"`` ``G(z, y)`` with
  integer labels ``y`` in ``[0, num_classes)``, or ``"image2image"`` ``G(x)``;
- ``style_based`` (class attribute): a StyleGAN-like generator with a mapping network
  (``mapping(z) -> w``), ``n_latent`` style inputs, and ``forward(w_plus, input_is_latent=True)``;
- ``distillation_points()``: names of submodules whose outputs are the feature maps that feature
  distillation (and attention/relation losses) compare, shallow to deep;
- image-to-image generators: ``in_channels`` and ``example_resolution()``; latent generators:
  ``z_dim`` (and ``num_classes`` when conditional).

A generator may return ``img`` or ``(img, extras)`` (rosinality's signature); callers get ``img``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn


def generator_task(net: nn.Module) -> str:
    """The declared task of a GanNet (``"unconditional"`` for plain modules)."""
    from lightning_gancomp.nets.base import GanNet

    return net.task if isinstance(net, GanNet) else "unconditional"


def is_style_based(net: nn.Module) -> bool:
    """Declared StyleGAN-like (mapping network + W+ synthesis)."""
    from lightning_gancomp.nets.base import GanNet

    return isinstance(net, GanNet) and net.style_based


def first_output(out: Any) -> Tensor:
    """Generators may return ``img`` or ``(img, extras)``."""
    return out[0] if isinstance(out, (tuple, list)) else out


@dataclass
class GeneratorInputs:
    """What one generator call needs; the same object drives teacher and student.

    ``zs`` holds one ``[B, z_dim]`` latent, or two for style mixing with ``crossover`` the first
    W+ layer taken from the second; ``label`` is ``[B]`` (conditional); ``input_img`` the
    image-to-image input ``[B, C, H, W]``.
    """

    batch_size: int
    zs: list[Tensor] | None = None
    crossover: int | None = None
    label: Tensor | None = None
    input_img: Tensor | None = None

    def to(self, device: torch.device | str) -> GeneratorInputs:
        def move(t: Tensor | None) -> Tensor | None:
            return t.to(device) if t is not None else None

        zs = [z.to(device) for z in self.zs] if self.zs is not None else None
        return replace(self, zs=zs, label=move(self.label), input_img=move(self.input_img))


def style_w_plus(net: nn.Module, inputs: GeneratorInputs) -> Tensor:
    """W+ tensor ``[B, n_latent, w_dim]`` from the net's own mapping network (style mixing
    when ``inputs`` holds two latents: layers ``>= crossover`` take the second)."""
    assert inputs.zs is not None, "style-based generators need latents"
    ws = [net.mapping(z) for z in inputs.zs]
    n_latent = int(net.n_latent)
    if len(ws) == 1 or inputs.crossover is None:
        return ws[0].unsqueeze(1).expand(-1, n_latent, -1)
    cut = inputs.crossover
    return torch.cat(
        [ws[0].unsqueeze(1).expand(-1, cut, -1), ws[1].unsqueeze(1).expand(-1, n_latent - cut, -1)], dim=1
    )


def run_generator(net: nn.Module, inputs: GeneratorInputs, w_plus: Tensor | None = None) -> Tensor:
    """One forward of any generator kind; style-based nets get (or build) W+ latents."""
    task = generator_task(net)
    if task == "image2image":
        assert inputs.input_img is not None, "image-to-image generators need an input image"
        return first_output(net(inputs.input_img))
    if is_style_based(net):
        if w_plus is None:
            w_plus = style_w_plus(net, inputs)
        return first_output(net(w_plus, input_is_latent=True))
    assert inputs.zs is not None, f"{type(net).__name__} needs latents"
    if task == "conditional":
        assert inputs.label is not None, f"{type(net).__name__} is class-conditional: it needs labels"
        return first_output(net(inputs.zs[0], inputs.label))
    return first_output(net(inputs.zs[0]))


@contextlib.contextmanager
def capture_outputs(net: nn.Module, names: Sequence[str]) -> Iterator[list[Tensor]]:
    """Collect the forward outputs of the named submodules (in the order of ``names``); the list
    is filled when the ``with`` block ends."""
    slots: dict[str, Tensor] = {}
    ordered: list[Tensor] = []
    handles = []
    for name in names:

        def hook(_module: nn.Module, _args: Any, output: Any, name: str = name) -> None:
            slots[name] = first_output(output)

        handles.append(net.get_submodule(name).register_forward_hook(hook))
    try:
        yield ordered
        missing = [n for n in names if n not in slots]
        if missing:
            raise RuntimeError(f"distillation points never ran: {missing}")
        ordered.extend(slots[n] for n in names)
    finally:
        for handle in handles:
            handle.remove()


def sample_inputs(
    net: nn.Module,
    batch_size: int,
    batch: Mapping[str, Tensor] | None = None,
    mixing_prob: float = 0.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> GeneratorInputs:
    """Latents/labels/inputs for ``batch_size`` samples of ``net``.

    Draws from the global RNG unless a ``torch.Generator`` is given (always on CPU, then moved,
    so a seed gives the same latents on every device). Image-to-image takes ``input_img`` from
    ``batch``. Style-based nets mix two latents with probability ``mixing_prob`` at a crossover
    drawn from ``[1, n_latent)`` (rosinality ``mixing_noise`` + ``inject_index``).
    """
    device = device if device is not None else "cpu"
    if generator_task(net) == "image2image":
        if batch is None or "input_img" not in batch:
            raise ValueError("image-to-image generation needs a batch with 'input_img'")
        return GeneratorInputs(batch_size=batch_size, input_img=batch["input_img"][:batch_size])
    mix = is_style_based(net) and mixing_prob > 0 and float(torch.rand((), generator=generator)) < mixing_prob
    zs = [torch.randn(batch_size, int(net.z_dim), generator=generator).to(device) for _ in range(1 + mix)]
    crossover = int(torch.randint(1, int(net.n_latent), (), generator=generator)) if mix else None
    label = None
    if generator_task(net) == "conditional":
        label = torch.randint(0, int(net.num_classes), (batch_size,), generator=generator).to(device)
    return GeneratorInputs(batch_size=batch_size, zs=zs, crossover=crossover, label=label)


def example_inputs(
    net: nn.Module, batch_size: int = 1, resolution: int | None = None, seed: int = 0
) -> tuple[Tensor, ...]:
    """Seeded positional arguments of one ``net.forward`` call, on the net's device.

    Generators by ``task``: ``(z,)``, ``(z, y)``, or ``(x,)`` at ``resolution`` px (default: the
    net's ``example_resolution()``). Discriminators: ``(img,)`` at their resolution, plus ``y``
    when class-conditional.
    """
    from lightning_gancomp.nets.base import GanNet

    if not isinstance(net, GanNet):
        raise TypeError(f"example_inputs: {type(net).__name__} declares no task (not a GanNet)")
    param = next(iter(net.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    rng = torch.Generator().manual_seed(seed)
    conditional = net.task == "conditional"

    def labels() -> Tensor:
        return torch.randint(0, int(net.num_classes), (batch_size,), generator=rng).to(device)

    if net.role == "discriminator" or net.task == "image2image":
        size = resolution or net.example_resolution()
        img = torch.randn(batch_size, net.in_channels, size, size, generator=rng).to(device)
        return (img, labels()) if conditional and net.role == "discriminator" else (img,)
    z = torch.randn(batch_size, int(net.z_dim), generator=rng).to(device)
    return (z, labels()) if conditional else (z,)


def probe_inputs(net: nn.Module, batch_size: int = 1, resolution: int | None = None) -> GeneratorInputs:
    """Seeded :class:`GeneratorInputs` for a probe forward (feature shapes, export checks)."""
    args = example_inputs(net, batch_size, resolution)
    if generator_task(net) == "image2image":
        return GeneratorInputs(batch_size=batch_size, input_img=args[0])
    label = args[1] if len(args) > 1 else None
    return GeneratorInputs(batch_size=batch_size, zs=[args[0]], label=label)
