"""Hypernetwork-generated convolution weights over a network's channel groups (CoroNetGAN / DHP).

CoroNetGAN (Kumar et al., "CoroNetGAN: Controlled Pruning of GANs via Hypernetworks", Fig. 1,
``papers/coronetgan_*.txt``) attaches a latent vector to every convolution of the generator; a
hypernetwork generates the conv weights from the latent vectors, and sparsifying the latent
vectors prunes the channels. The paper publishes no code; the mechanism is Differentiable
Hyper Pruning (Li et al., "DHP", ECCV 2020; ofsoundof/dhp ``model_dhp/dhp_base.py``, class
``conv_dhp`` and ``DHP_Base``), which this module re-implements from its description:

* Per convolution with input latent ``z_in`` (length Cin) and output latent ``z_out`` (Cout), and
  per-element embeddings of size E (default 8)::

      W0 = z_in z_outᵀ + b0                  [Cin, Cout]
      W1 = W0[..., None] · w1 + b1           [Cin, Cout, E]
      W2 = Σ_e w2[..., e] · W1[..., e] + b2  [Cin, Cout, k²]

  reshaped to ``[Cout, Cin, k, k]`` (Conv2d) or ``[Cin, Cout, k, k]`` (ConvTranspose2d).
  Initialisation as DHP: ``w1 ~ U(±√3)``, ``w2 ~ U(±√3 / √(E·Cin·k²))`` (hyperfan-in), biases 0,
  latents ``N(0, 1)`` — with ``|z| ≈ 1`` the generated weights have variance ``1 / (Cin·k²)``.
* Latent vectors live on channel *groups* (``GanNet.channel_groups``), not on convolutions: the
  output latent of a conv is the latent of the group that owns its output channels, its input
  latent the concatenation of the latents of the groups whose windows make its input (a U-Net
  up conv reads ``cat([skip, up])``). A residual stream is one group, so every conv writing or
  reading it shares one latent vector (DHP's ``resnet_dhp_share``) and skips stay consistent.
  Entries no group owns (image channels of the first conv's input and of the last conv's
  output) get their own latent that is never pruned: input and output layers are fixed.
* Proximal gradient (``DHP_Base.proximal_operator`` / ``soft_thresholding``): after each
  optimizer step, every group whose count of ``|z| ≥ threshold`` is above its floor takes
  ``z ← sign(z)·max(|z| − λ·lr, 0)``. A channel is pruned when ``|z| < threshold`` (5e-3), but
  each group keeps at least its floor of largest-``|z|`` channels (``DHP_Base.remain_channels``
  and the masks ``|z| ≥ min(threshold, floor-th largest |z|)``).
* Materialisation (``DHP_Base.reset_after_searching``): generate the weights once, keep the
  unpruned channels, drop the hypernetwork. Here that is the ordinary surgery
  (``pruning.surgery.apply_plan``) on a copy holding the generated weights, so the result is the
  same class with smaller widths, saved and loaded like any student.

Masked forward. DHP's search forward uses the unmasked generated weights, so a pruned channel
(``z = 0``) still contributes through the biases ``b0, b1, b2`` and the materialised network is
only close to the searched one. With ``mask_forward=True`` (default) the generated weights of
pruned input and output channels are zeroed during the search: the searched network then *is*
the materialised one (equal outputs, tested to 1e-5), and a pruned channel receives no gradient
from the loss. ``mask_forward=False`` is DHP's behaviour.

Controllable compression (the paper's claim; its mechanism is not published): the search stops
when the MACs of the kept channels (:class:`~lightning_gancomp.pruning.mac_model.GroupMacModel`,
torchprofile convention) reach the target within a tolerance. So that one proximal step cannot
jump past the lower end of the tolerance, :meth:`HyperGenerator.proximal_step` takes the lowest
MACs allowed and gives back, largest pre-step ``|z|`` first, the channels that step removed
until the MACs are back above it (this addition is ours, documented in docs/coronet.md).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from lightning_gancomp.nets.base import GanNet, member_windows
from lightning_gancomp.pruning.mac_model import GroupMacModel
from lightning_gancomp.pruning.plan import GroupPlan, PruningPlan
from lightning_gancomp.pruning.surgery import apply_plan

#: DHP ``embedding_dim`` default.
DEFAULT_EMBEDDING = 8
#: DHP ``prune_threshold`` used by CoroNetGAN (|z| below it = pruned channel).
DEFAULT_THRESHOLD = 5e-3


class HyperNetworkError(ValueError):
    """The network cannot be expressed with hypernetwork-generated convolutions."""


@dataclass(frozen=True)
class Segment:
    """A run of entries along one conv weight dim: a group's window or ``length`` fixed entries."""

    group: str | None  # None: fixed (image channels), latent ``fixed_key``
    length: int
    block: int = 1
    fixed_key: str = ""


@dataclass(frozen=True)
class ConvLayout:
    """Where a convolution's input and output latents come from."""

    key: str  # state-dict key of the weight, e.g. "blocks.0.conv1.weight"
    transposed: bool
    kernel: tuple[int, ...]
    inputs: tuple[Segment, ...]
    outputs: tuple[Segment, ...]


def _safe(name: str) -> str:
    # ParameterDict / ModuleDict keys cannot contain '.'
    return name.replace(".", "__")


def _segments(net: GanNet, key: str, dim: int, extent: int, fixed_key: str) -> tuple[Segment, ...]:
    """Split the ``extent`` entries of ``key`` along ``dim`` into group windows and fixed runs."""
    sizes = {g.name: g.size for g in net.channel_groups()}
    segments: list[Segment] = []
    cursor, n_fixed = 0, 0
    for start, stop, name in member_windows(net.channel_groups()).get((key, dim), []):
        if start > cursor:
            segments.append(Segment(None, start - cursor, fixed_key=f"{fixed_key}{n_fixed}"))
            n_fixed += 1
        segments.append(Segment(name, stop - start, block=(stop - start) // sizes[name]))
        cursor = stop
    if cursor < extent:
        segments.append(Segment(None, extent - cursor, fixed_key=f"{fixed_key}{n_fixed}"))
    return tuple(segments)


def conv_layouts(net: GanNet) -> list[ConvLayout]:
    """One layout per Conv2d / ConvTranspose2d of ``net`` (grouped convolutions are refused)."""
    layouts = []
    for name, module in net.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            continue
        if module.groups != 1:
            raise HyperNetworkError(f"{name}: grouped convolutions are not supported")
        transposed = isinstance(module, nn.ConvTranspose2d)
        in_dim, out_dim = (0, 1) if transposed else (1, 0)
        key, shape = f"{name}.weight", module.weight.shape
        layouts.append(
            ConvLayout(
                key=key,
                transposed=transposed,
                kernel=tuple(shape[2:]),
                inputs=_segments(net, key, in_dim, shape[in_dim], f"{_safe(name)}__in"),
                outputs=_segments(net, key, out_dim, shape[out_dim], f"{_safe(name)}__out"),
            )
        )
    return layouts


class HyperConvWeights(nn.Module):
    """DHP's per-element hypernetwork of one convolution (``conv_dhp.calc_weight``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_taps: int, embedding_dim: int) -> None:
        super().__init__()
        shape = (in_channels, out_channels)
        bound1 = math.sqrt(3.0)
        bound2 = math.sqrt(3.0) * math.sqrt(1.0 / (embedding_dim * in_channels * kernel_taps))
        self.weight1 = nn.Parameter(torch.empty(*shape, embedding_dim).uniform_(-bound1, bound1))
        self.weight2 = nn.Parameter(torch.empty(*shape, kernel_taps, embedding_dim).uniform_(-bound2, bound2))
        self.bias0 = nn.Parameter(torch.zeros(shape))
        self.bias1 = nn.Parameter(torch.zeros(*shape, embedding_dim))
        self.bias2 = nn.Parameter(torch.zeros(*shape, kernel_taps))

    def forward(self, z_in: torch.Tensor, z_out: torch.Tensor) -> torch.Tensor:
        """``[Cin, Cout, k²]`` weights from the input and output latents."""
        w0 = z_in[:, None] * z_out[None, :] + self.bias0
        w1 = w0[..., None] * self.weight1 + self.bias1
        return torch.einsum("iote,ioe->iot", self.weight2, w1) + self.bias2


class HyperGenerator(nn.Module):
    """A GanNet whose convolution weights come from a hypernetwork over channel-group latents.

    Call it like the wrapped net (``forward`` runs ``net`` with generated conv weights through
    ``torch.func.functional_call``; every other parameter and buffer is the net's own and is
    trained as usual). The net's stored conv weights are frozen and unused until
    :meth:`materialise`.

    Args:
        net: the full-width generator (any GanNet declaring channel groups).
        embedding_dim: DHP embedding size E.
        threshold: ``|z|`` below which a channel is pruned.
        min_channels, min_keep_fraction: per-group floor ``max(min_size, min_channels,
            ceil(size · min_keep_fraction))``; below it no proximal step is taken and the
            largest latents are kept.
        latent_std: initial latent scale (DHP ``std``).
        mask_forward: zero pruned channels' generated weights during the search (see the module
            docstring; False = DHP).
        mac_model: MACs at any group sizes (needed by :meth:`macs` and the overshoot guard).
    """

    def __init__(
        self,
        net: GanNet,
        embedding_dim: int = DEFAULT_EMBEDDING,
        threshold: float = DEFAULT_THRESHOLD,
        min_channels: int = 1,
        min_keep_fraction: float = 0.0,
        latent_std: float = 1.0,
        mask_forward: bool = True,
        mac_model: GroupMacModel | None = None,
    ) -> None:
        super().__init__()
        groups = net.channel_groups()
        if not groups:
            raise HyperNetworkError(f"{type(net).__name__} declares no channel groups to prune")
        self.net = net
        self.threshold, self.mask_forward, self.mac_model = float(threshold), mask_forward, mac_model
        self.layouts = conv_layouts(net)
        self.group_sizes = {g.name: g.size for g in groups}
        self.floors = {
            g.name: min(g.size, max(g.min_size, min_channels, math.ceil(g.size * min_keep_fraction)))
            for g in groups
        }
        if len({_safe(n) for n in self.group_sizes}) != len(self.group_sizes):
            raise HyperNetworkError(f"{type(net).__name__}: group names collide once '.' is replaced")
        self.latents = nn.ParameterDict(
            {_safe(g.name): nn.Parameter(torch.randn(g.size) * latent_std) for g in groups}
        )
        fixed = [s for lay in self.layouts for s in lay.inputs + lay.outputs if s.group is None]
        self.fixed_latents = nn.ParameterDict(
            {s.fixed_key: nn.Parameter(torch.randn(s.length) * latent_std) for s in fixed}
        )
        self.hyper = nn.ModuleDict(
            {
                _safe(lay.key): HyperConvWeights(
                    sum(s.length for s in lay.inputs),
                    sum(s.length for s in lay.outputs),
                    math.prod(lay.kernel),
                    embedding_dim,
                )
                for lay in self.layouts
            }
        )
        state = net.state_dict(keep_vars=True)
        for lay in self.layouts:
            state[lay.key].requires_grad_(False)  # replaced by generated weights

    # -- latents and masks --------------------------------------------------------------------
    def latent(self, group: str) -> nn.Parameter:
        return self.latents[_safe(group)]

    def group_mask(self, group: str) -> torch.Tensor:
        """Kept channels of ``group``: ``|z| ≥ threshold``, or its floor of largest ``|z|`` when
        fewer pass (DHP's ``|z| ≥ min(threshold, floor-th largest)``, exactly ``floor`` channels
        when ties at zero would keep more)."""
        magnitude = self.latent(group).detach().abs()
        kept = magnitude >= self.threshold
        floor = self.floors[group]
        if int(kept.sum()) < floor:
            kept = torch.zeros_like(kept)
            kept[torch.argsort(magnitude, descending=True, stable=True)[:floor]] = True
        return kept

    def masks(self) -> dict[str, torch.Tensor]:
        return {name: self.group_mask(name) for name in self.group_sizes}

    def kept_sizes(self) -> dict[str, int]:
        return {name: int(mask.sum()) for name, mask in self.masks().items()}

    def macs(self) -> int:
        """MACs of the network the current masks stand for (torchprofile convention)."""
        if self.mac_model is None:
            raise HyperNetworkError("HyperGenerator.macs needs a mac_model")
        return self.mac_model.macs(self.kept_sizes())

    def _dim_vector(self, segments: tuple[Segment, ...], masks: Mapping[str, torch.Tensor] | None) -> Any:
        parts = []
        for seg in segments:
            if seg.group is None:
                value = self.fixed_latents[seg.fixed_key]
                parts.append(value if masks is None else torch.ones_like(value))
            else:
                value = self.latent(seg.group)
                value = value if masks is None else masks[seg.group].to(value)
                parts.append(value.repeat_interleave(seg.block) if seg.block > 1 else value)
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    # -- weights and forward ------------------------------------------------------------------
    def conv_weight(self, layout: ConvLayout, masks: Mapping[str, torch.Tensor] | None) -> torch.Tensor:
        """The generated weight of one conv in its module's layout (masked when ``masks``)."""
        z_in, z_out = self._dim_vector(layout.inputs, None), self._dim_vector(layout.outputs, None)
        raw = self.hyper[_safe(layout.key)](z_in, z_out)
        if masks is not None:
            keep_in = self._dim_vector(layout.inputs, masks)
            keep_out = self._dim_vector(layout.outputs, masks)
            raw = raw * (keep_in[:, None] * keep_out[None, :])[..., None]
        if not layout.transposed:
            raw = raw.permute(1, 0, 2)
        return raw.reshape(*raw.shape[:2], *layout.kernel)

    def conv_weights(self, masked: bool | None = None) -> dict[str, torch.Tensor]:
        """Every generated conv weight by state-dict key (``masked`` defaults to ``mask_forward``)."""
        masks = self.masks() if (self.mask_forward if masked is None else masked) else None
        return {lay.key: self.conv_weight(lay, masks) for lay in self.layouts}

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return functional_call(self.net, self.conv_weights(), args, kwargs)

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Latents, hypernetworks and the net's own non-conv parameters (biases, norms)."""
        return [p for p in self.parameters() if p.requires_grad]

    # -- proximal step ------------------------------------------------------------------------
    @torch.no_grad()
    def proximal_step(self, step: float, min_macs: int | None = None, max_macs: int | None = None) -> int:
        """Soft-threshold every group above its floor by ``step`` (= λ·lr); returns the channels
        pruned by this step.

        With ``min_macs`` the step never takes the MACs below it: the channels it removed are
        given back, largest pre-step ``|z|`` first, skipping one whose return would lift the MACs
        above ``max_macs`` (so a step can land inside the window ``[min_macs, max_macs]`` by
        pruning a cheaper channel); if no such landing exists, channels are given back in order
        until the MACs are at least ``min_macs``.
        """
        before = {name: self.latent(name).detach().clone() for name in self.group_sizes}
        kept_before = self.masks()
        for name, z in before.items():
            if int((z.abs() >= self.threshold).sum()) > self.floors[name]:
                self.latent(name).copy_(z.sign() * (z.abs() - step).clamp_min(0.0))
        if min_macs is not None and self.macs() < min_macs:
            self._give_back(before, kept_before, min_macs, max_macs)
        kept_after = self.masks()
        return sum(int((kept_before[name] & ~kept_after[name]).sum()) for name in self.group_sizes)

    def _give_back(
        self,
        before: Mapping[str, torch.Tensor],
        kept_before: Mapping[str, torch.Tensor],
        min_macs: int,
        max_macs: int | None,
    ) -> None:
        # candidates: channels kept before the step whose latent it took below the threshold (a
        # floor-kept channel at 0 included), largest pre-step |z| first
        candidates = sorted(
            (
                (float(before[name][i].abs()), name, i)
                for name in self.group_sizes
                for i in torch.nonzero(kept_before[name] & (self.latent(name).abs() < self.threshold))
                .flatten()
                .tolist()
            ),
            reverse=True,
        )
        for skip_above in ((max_macs,) if max_macs is not None else ()) + (None,):
            for _, name, i in candidates:
                if self.latent(name)[i].abs() >= self.threshold:
                    continue  # already given back
                after = self.latent(name)[i].clone()
                self.latent(name)[i] = before[name][i]
                macs = self.macs()
                if skip_above is not None and macs > skip_above:
                    self.latent(name)[i] = after
                    continue
                if macs >= min_macs:
                    return

    # -- materialisation ----------------------------------------------------------------------
    def plan(self) -> PruningPlan:
        """The kept channels of every group as a pruning plan (policy = the search settings)."""
        groups = {
            name: GroupPlan(self.group_sizes[name], tuple(torch.nonzero(mask).flatten().tolist()))
            for name, mask in self.masks().items()
        }
        policy = {"name": "coronet_hypernetwork", "threshold": self.threshold}
        return PruningPlan(type(self.net).__name__, groups, {"name": "latent_magnitude"}, policy)

    @torch.no_grad()
    def materialise(self) -> GanNet:
        """The plain network with the kept channels and the generated weights (no hypernetwork)."""
        weights = self.conv_weights(masked=True)
        plain = copy.deepcopy(self.net)
        state = plain.state_dict(keep_vars=True)
        for key, value in weights.items():
            state[key].data.copy_(value)
            state[key].requires_grad_(True)
        return apply_plan(plain, self.plan())


# -- controllable compression ---------------------------------------------------------------------
@dataclass(frozen=True)
class MacTarget:
    """What the search compresses to: ``ratio`` of the full network's MACs or absolute ``macs``
    (torchprofile convention), reached when the MACs are within ``± tolerance`` of it."""

    ratio: float | None = None
    macs: int | None = None
    tolerance: float = 0.05

    def __post_init__(self) -> None:
        if (self.ratio is None) == (self.macs is None):
            raise HyperNetworkError("the compression target needs exactly one of target_ratio or target_macs")
        if self.ratio is not None and not 0.0 < self.ratio <= 1.0:
            raise HyperNetworkError(f"target_ratio must be in (0, 1], got {self.ratio}")
        if self.macs is not None and self.macs <= 0:
            raise HyperNetworkError(f"target_macs must be positive, got {self.macs}")
        if not 0.0 <= self.tolerance < 1.0:
            raise HyperNetworkError(f"target tolerance must be in [0, 1), got {self.tolerance}")

    def goal(self, full_macs: int) -> int:
        goal = int(round(full_macs * self.ratio)) if self.ratio is not None else int(self.macs or 0)
        if goal > full_macs:
            raise HyperNetworkError(f"target of {goal:,} MACs is above the full network's {full_macs:,}")
        return goal

    def bounds(self, full_macs: int) -> tuple[int, int]:
        """Lowest and highest MACs that count as reached."""
        goal = self.goal(full_macs)
        return math.ceil(goal * (1.0 - self.tolerance)), math.floor(goal * (1.0 + self.tolerance))


class ProximalSearch:
    """The proximal sparsification of one :class:`HyperGenerator` towards a :class:`MacTarget`.

    After every optimizer step of the generator, :meth:`step` applies the proximal operator with
    step ``sparsity · lr`` (DHP ``proximal_operator(lr)`` with ``regularization_factor``), never
    taking the MACs below the target's lower bound; every ``check_every`` steps it compares the
    MACs with the upper bound and, once below it, the search of this generator is over (no more
    proximal steps; the caller materialises).
    """

    def __init__(
        self, hyper: HyperGenerator, target: MacTarget, sparsity: float, check_every: int = 1
    ) -> None:
        if hyper.mac_model is None:
            raise HyperNetworkError("ProximalSearch needs a HyperGenerator with a mac_model")
        if sparsity < 0 or check_every < 1:
            raise HyperNetworkError(
                f"sparsity must be >= 0 and check_every >= 1, got {sparsity}, {check_every}"
            )
        self.hyper, self.target, self.sparsity, self.check_every = hyper, target, float(sparsity), check_every
        self.full_macs = hyper.mac_model.full_macs
        self.goal = target.goal(self.full_macs)
        self.low, self.high = target.bounds(self.full_macs)
        self.steps = 0
        self.reached = self.full_macs <= self.high

    def step(self, lr: float) -> bool:
        """One proximal step after an optimizer step with learning rate ``lr``; True once the
        target is reached."""
        if self.reached:
            return True
        self.hyper.proximal_step(self.sparsity * lr, min_macs=self.low, max_macs=self.high)
        self.steps += 1
        if self.steps % self.check_every == 0 and self.hyper.macs() <= self.high:
            self.reached = True
        return self.reached

    def summary(self) -> dict[str, float]:
        """MACs, their ratio to the full network, the target and kept channels per group."""
        macs = self.hyper.macs()
        logs = {
            "macs": float(macs),
            "macs_ratio": macs / self.full_macs,
            "target_macs": float(self.goal),
            "reached": float(self.reached),
        }
        logs.update({f"kept/{name}": float(n) for name, n in self.hyper.kept_sizes().items()})
        return logs
