"""Shared machinery of the channel scorers: the scorer base classes, how generators are sampled
and run for scoring (:class:`GeneratorAdapter`), the official batching and the reduction of weight
gradients to one number per channel. The scorers themselves are in
:mod:`lightning_gancomp.pruning.importance` and :mod:`lightning_gancomp.pruning.diversity`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from lightning_gancomp.nets.base import ChannelGroup, GanNet, TensorSlice
from lightning_gancomp.nets.contract import generator_task, is_style_based
from lightning_gancomp.pruning.plan import Scores

# -- helpers ------------------------------------------------------------------------------------


def pick_device(device: str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def batch_sizes(n_samples: int, batch_size: int) -> list[int]:
    """Official batching: ``n // b`` batches, the last one also takes the remainder."""
    if n_samples < 1 or batch_size < 1:
        raise ValueError(f"n_samples and batch_size must be >= 1 (got {n_samples}, {batch_size})")
    n_batch = max(n_samples // batch_size, 1)
    if n_samples < batch_size:
        return [n_samples]
    return [batch_size] * (n_batch - 1) + [batch_size + n_samples % batch_size]


def _progress(iterable: Iterable, total: int, desc: str, enabled: bool) -> Iterator:
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm  # progress bar with ETA

    yield from tqdm(iterable, total=total, desc=desc, unit="batch", dynamic_ncols=True)


def _scored_groups(net: GanNet, groups: list[ChannelGroup]) -> dict[str, ChannelGroup]:
    """The groups by name, after checking that every scored member is a parameter (gradient
    scorers differentiate with respect to them)."""
    params = dict(net.named_parameters())
    out = {}
    for group in groups:
        missing = [m.key for m in group.scored_members() if m.key not in params]
        if missing:
            raise ValueError(f"group {group.name}: scored tensor {missing[0]} is not a parameter")
        out[group.name] = group
    return out


def _reduce_to_channels(
    tensor: torch.Tensor, member: TensorSlice, size: int, how: Literal["mean", "sum"], leading: int = 0
) -> torch.Tensor:
    """``tensor`` has ``leading`` batch dims then the member's shape; returns ``[*lead, size]``
    from the group's window only (a concatenated input also holds other groups' channels)."""
    dim = member.dim + leading
    moved = member.window(tensor, size, leading).movedim(dim, -1)  # [..., C*block]
    lead_shape = moved.shape[:leading]
    flat = moved.reshape(*lead_shape, -1, moved.shape[-1])  # [*lead, rest, C*block]
    flat = flat.reshape(*lead_shape, flat.shape[-2], -1, member.block)  # [*lead, rest, C, block]
    flat = flat.movedim(-2, leading)  # [*lead, C, rest, block]
    flat = flat.reshape(*lead_shape, flat.shape[leading], -1)
    return flat.mean(-1) if how == "mean" else flat.sum(-1)


def _group_grad_scores(
    grads: dict[str, torch.Tensor], groups: dict[str, ChannelGroup], leading: int
) -> dict[str, torch.Tensor]:
    # mean |grad| per channel; several scored members are averaged.
    out = {}
    for name, group in groups.items():
        parts = [
            _reduce_to_channels(grads[m.key].abs(), m, group.size, "mean", leading)
            for m in group.scored_members()
        ]
        out[name] = torch.stack(parts).mean(0)
    return out


# -- generator adapters -------------------------------------------------------------------------


@dataclass
class GeneratorAdapter:
    """How to sample latents and run a generator, for scoring.

    StyleGAN-like nets (``mapping`` + ``input_is_latent``) perturb and synthesise in W with fixed
    noise maps; other unconditional/conditional nets use z as the latent (DCP's PCA is then
    over z). Image-to-image generators need ``inputs`` (batches of input images).
    """

    net: GanNet
    inputs: Iterable[torch.Tensor] | None = None

    @property
    def stylegan_like(self) -> bool:
        return is_style_based(self.net)

    def sample_latents(self, batch: int, gen: torch.Generator, device: torch.device) -> dict[str, Any]:
        task = generator_task(self.net)
        if task == "image2image":
            raise ValueError(
                f"{type(self.net).__name__} is image-to-image: scoring needs input batches (inputs=...)"
            )
        z = torch.randn(batch, self.net.z_dim, generator=gen).to(device)
        sample: dict[str, Any] = {"z": z}
        if task == "conditional":
            sample["label"] = torch.randint(self.net.num_classes, (batch,), generator=gen).to(device)
        if self.stylegan_like:
            sample["noise"] = self.noise_like(batch, gen, device)
        return sample

    def noise_like(self, batch: int, gen: torch.Generator, device: torch.device) -> list[torch.Tensor]:
        """Per-sample noise maps (shapes from ``make_noise``), drawn from ``gen`` for reproducibility."""
        return [torch.randn((batch, *n.shape[1:]), generator=gen).to(device) for n in self.net.make_noise(1)]

    def latent(self, sample: dict[str, Any]) -> torch.Tensor:
        if self.stylegan_like:
            with torch.no_grad():
                return self.net.mapping(sample["z"])
        return sample["z"]

    def synthesize(
        self,
        latent: torch.Tensor,
        sample: dict[str, Any],
        repeat: int = 1,
        params: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Images from latents ``[repeat·B, D]`` (direction-major), the sample's noise/labels
        repeated; ``params`` replaces some parameters (``torch.func.functional_call``)."""
        if self.stylegan_like:
            noise = [n.repeat(repeat, *([1] * (n.dim() - 1))) for n in sample["noise"]]
            args, kwargs = (latent,), {"input_is_latent": True, "noise": noise, "randomize_noise": False}
        elif "label" in sample:
            args, kwargs = (latent, sample["label"].repeat(repeat)), {}
        else:
            args, kwargs = (latent,), {}
        if params is None:
            return self.net(*args, **kwargs)
        return torch.func.functional_call(self.net, params, args, kwargs, strict=False)

    def generate(self, sample: dict[str, Any]) -> torch.Tensor:
        if "input_img" in sample:
            return self.net(sample["input_img"])
        if self.stylegan_like:
            return self.net(sample["z"], noise=sample["noise"], randomize_noise=False)
        return self.synthesize(sample["z"], sample)

    def input_batches(self, sizes: list[int], gen: torch.Generator, device: torch.device) -> Iterator[dict]:
        if generator_task(self.net) != "image2image":
            for size in sizes:
                yield self.sample_latents(size, gen, device)
            return
        if self.inputs is None:
            raise ValueError(f"{type(self.net).__name__} is image-to-image: scoring needs inputs=")
        iterator = iter(self.inputs)
        for _ in sizes:
            try:
                batch = next(iterator)
            except StopIteration:
                iterator = iter(self.inputs)
                batch = next(iterator)
            if isinstance(batch, dict):
                batch = batch["input_img"]
            yield {"input_img": batch.to(device)}


class ChannelScorer:
    """Base of scorers: ``scorer(net) -> {group name: float tensor [C]}``, higher = keep."""

    def __call__(self, net: GanNet) -> Scores:
        raise TypeError(f"{type(self).__name__} must implement __call__(net)")

    def describe(self) -> dict[str, Any]:
        return {"name": type(self).__name__}


#: Backwards-friendly alias used in type hints.
Scorer = ChannelScorer


class _GradientScorer(ChannelScorer):
    """Shared machinery: parameters of the scored members, autograd, device, progress."""

    def __init__(self, device: str | None, seed: int, progress: bool) -> None:
        self.device = device
        self.seed = seed
        self.progress = progress

    def _prepare(self, net: GanNet) -> tuple[GanNet, list[ChannelGroup], dict, list[str], torch.device]:
        device = pick_device(self.device)
        net = net.to(device).eval()
        groups = net.channel_groups()
        scored_groups = _scored_groups(net, groups)
        keys = sorted({m.key for group in scored_groups.values() for m in group.scored_members()})
        return net, groups, scored_groups, keys, device

    @staticmethod
    def _params(net: GanNet, keys: list[str]) -> list[nn.Parameter]:
        params = dict(net.named_parameters())
        return [params[k] for k in keys]
