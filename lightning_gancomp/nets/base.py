"""Common base of every network: constructor arguments as data, channel groups, save/load.

Key ideas:

1. *A pruned network is the same class with other widths.* Every network captures the arguments
   of its constructor in ``self.config`` (JSON-able: ints, floats, strings, bools, lists, dicts,
   None). ``save_net`` stores that config beside the weights, so ``load_net`` rebuilds the exact
   (possibly pruned) network without knowing the plan that made it.
2. *Channel groups are declared by the network.* ``channel_groups()`` lists every prunable
   feature map: each :class:`ChannelGroup` names the state-dict tensors that write it
   (role ``"out"``), read it (``"in"``) or carry per-channel data beside it (``"aux"``: biases,
   norm parameters, modulation linears, spectral-norm vectors, noise...). A residual stream is
   one group. A layer that reads a concatenation names each part as a window (``offset``) of
   its input dim, one group per part. Scorers, masks, hypernetworks and surgery only speak in
   groups, so any scorer works on any architecture, and ``config_for_group_sizes`` tells how
   group sizes map back to constructor arguments.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from lightning_gancomp.atomic import atomic_torch_save

NET_FORMAT = "lightning_gancomp.net"
NET_FORMAT_VERSION = 1

#: Every GanNet subclass by class name; ``load_net`` rebuilds only classes listed here, so a
#: checkpoint can never name arbitrary code to run.
NET_REGISTRY: dict[str, type[GanNet]] = {}


@dataclass(frozen=True)
class TensorSlice:
    """One tensor of the state dict that has one entry (or ``block`` entries) per channel.

    Attributes:
        key: state-dict key, e.g. ``"convs.0.conv.weight"``.
        dim: the dimension that indexes the group's channels.
        role: ``"out"`` writes the feature map, ``"in"`` reads it (its gradient is the
            "outgoing weight" gradient CAGAN/DCP score), ``"aux"`` is anything else per channel.
        block: consecutive entries per channel along ``dim``; e.g. a Linear whose output is
            reshaped to ``[C, 4, 4]`` has ``block=16``.
        equalized_fan_in: the layer multiplies this weight by ``1/sqrt(fan_in)`` at run time
            (StyleGAN2's equalized learning rate) with ``dim`` the input dim, so slicing it
            changes the runtime scale; surgery rescales by ``sqrt(kept/total)`` entries along
            ``dim`` to keep the function (see pruning.surgery).
        offset: the group's channels occupy entries ``[offset, offset + size * block)`` along
            ``dim`` (its *window*). Other entries of the tensor belong to other groups or are
            fixed: a layer reading a concatenation reads each part at its own offset (a U-Net
            up conv reads ``cat([skip, up_path])``; StyleGAN2's final D conv reads
            ``cat([features, stddev])``, whose last entry no group owns).
    """

    key: str
    dim: int
    role: Literal["out", "in", "aux"]
    block: int = 1
    equalized_fan_in: bool = False
    offset: int = 0

    def stop(self, size: int) -> int:
        """End (exclusive) of the window of a group of ``size`` channels."""
        return self.offset + size * self.block

    def window(self, tensor: torch.Tensor, size: int, leading: int = 0) -> torch.Tensor:
        """The entries of ``tensor`` that belong to the group (a view along ``dim``);
        ``leading`` extra batch dims come first (e.g. per-direction gradients)."""
        return tensor.narrow(self.dim + leading, self.offset, size * self.block)


@dataclass(frozen=True)
class ChannelGroup:
    """A prunable feature map: a set of channels that must be kept or removed together.

    Attributes:
        name: unique, stable name (used in plans and logs), e.g. ``"b8.conv0.in"``.
        size: current number of channels.
        members: every tensor slice that must be cut when a channel goes.
        score_keys: keys of ``"in"`` members whose gradients gradient-based scorers read (CAGAN:
            the conv that reads the map; for the last map, the last ToRGB). Empty → all ``"in"``.
        min_size: surgery never keeps fewer channels than this.
    """

    name: str
    size: int
    members: tuple[TensorSlice, ...]
    score_keys: tuple[str, ...] = ()
    min_size: int = 1

    def members_with_role(self, role: str) -> tuple[TensorSlice, ...]:
        return tuple(m for m in self.members if m.role == role)

    def scored_members(self) -> tuple[TensorSlice, ...]:
        inputs = self.members_with_role("in")
        if not self.score_keys:
            return inputs
        return tuple(m for m in inputs if m.key in self.score_keys)


class ChannelGroupError(ValueError):
    """A channel-group declaration or a requested group size is inconsistent."""


def _jsonable(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, where) for k, v in value.items()}
    raise TypeError(
        f"{where}: constructor argument of type {type(value).__name__} cannot be saved with the "
        "weights; networks take plain ints/floats/strings/lists as arguments"
    )


class GanNet(nn.Module):
    """Base class of all generators and discriminators.

    Subclasses only write a normal typed ``__init__``; its bound arguments (defaults filled in)
    become ``self.config``. Subclasses that can be pruned override ``channel_groups`` and
    ``config_for_group_sizes``.
    """

    config: dict[str, Any]
    #: "generator" or "discriminator"; used by checkpoint loaders for clear errors.
    role: ClassVar[str] = "generator"
    #: What the net computes (the generator call contract, ``nets.contract``): ``G(z)``,
    #: ``G(z, y)`` / ``D(img, y)`` with class labels, or ``G(x)`` image-to-image.
    task: ClassVar[Literal["unconditional", "conditional", "image2image"]] = "unconditional"
    #: StyleGAN-like: ``mapping(z) -> w``, ``n_latent`` style inputs, ``forward(w_plus,
    #: input_is_latent=True)``.
    style_based: ClassVar[bool] = False
    #: Image channels read (discriminators, image-to-image generators); nets set their own.
    in_channels: int = 3
    #: Constructor arguments that only choose how fresh weights are initialised (not the
    #: architecture): a file's network may differ in them from the configured one.
    initialisation_arguments: ClassVar[tuple[str, ...]] = ()

    def distillation_points(self) -> list[str]:
        """Submodule names whose outputs feature distillation compares (shallow to deep)."""
        return []

    def example_resolution(self) -> int:
        """Image size of example inputs (profiling, export checks): the configured
        ``resolution``, else 256 (the pix2pix/CycleGAN benchmark size)."""
        return int(self.config.get("resolution") or 256)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__name__ in NET_REGISTRY and NET_REGISTRY[cls.__name__] is not cls:
            existing = NET_REGISTRY[cls.__name__]
            if f"{existing.__module__}.{existing.__qualname__}" != f"{cls.__module__}.{cls.__qualname__}":
                raise TypeError(f"two GanNet classes named {cls.__name__}")
        NET_REGISTRY[cls.__name__] = cls
        if "__init__" in cls.__dict__:
            cls.__init__ = _capturing_init(cls, cls.__dict__["__init__"])

    # -- pruning interface --------------------------------------------------------------------
    def channel_groups(self) -> list[ChannelGroup]:
        """Prunable channel groups of this network (empty: not prunable)."""
        return []

    def config_for_group_sizes(self, sizes: Mapping[str, int]) -> dict[str, Any]:
        """Constructor arguments of the same network with the given group sizes.

        ``sizes`` maps group names to new sizes; groups not named keep their size.
        """
        if sizes:
            raise ChannelGroupError(f"{type(self).__name__} declares no prunable channel groups")
        return dict(self.config)

    def checked_group_sizes(self, sizes: Mapping[str, int]) -> dict[str, int]:
        """``sizes`` as ints, after checking every name is a declared group and every size is at
        least that group's ``min_size`` (one-line ChannelGroupError otherwise). For use by
        ``config_for_group_sizes`` implementations."""
        known = {group.name: group for group in self.channel_groups()}
        unknown = sorted(set(sizes) - set(known))
        if unknown:
            raise ChannelGroupError(
                f"{type(self).__name__}: unknown channel groups {unknown} (known: {sorted(known)})"
            )
        for name, size in sizes.items():
            if int(size) < known[name].min_size:
                raise ChannelGroupError(
                    f"{type(self).__name__}: group {name} size {size} below minimum {known[name].min_size}"
                )
        return {name: int(size) for name, size in sizes.items()}

    def with_config(self, **changes: Any) -> GanNet:
        """A fresh instance of the same class with some constructor arguments changed."""
        return type(self)(**{**self.config, **changes})


def _capturing_init(cls: type, init: Any) -> Any:
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self: GanNet, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if type(self) is cls:  # the most derived constructor defines the config
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments.pop("self")
            for name, param in signature.parameters.items():
                if param.kind is inspect.Parameter.VAR_KEYWORD:
                    arguments.update(arguments.pop(name, {}))
                elif param.kind is inspect.Parameter.VAR_POSITIONAL:
                    raise TypeError(f"{cls.__name__}: *args constructors cannot be saved")
            self.config = _jsonable(arguments, cls.__name__)

    return wrapped


# -- validation -------------------------------------------------------------------------------
def validate_channel_groups(net: GanNet) -> list[ChannelGroup]:
    """Check every declaration: each member exists, its window fits the tensor along ``dim``,
    and no two windows on the same tensor and dim overlap (one entry, one owner).

    A window smaller than the tensor's extent is allowed (concatenations, fixed entries such as
    a minibatch-stddev channel), so widths are also checked by surgery's strict reload.
    Raises ChannelGroupError naming the first inconsistent group/key; returns the groups.
    """
    state = net.state_dict()
    groups = net.channel_groups()
    names = [g.name for g in groups]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ChannelGroupError(f"{type(net).__name__}: duplicate channel group names {dup}")
    for group in groups:
        if not group.members_with_role("in"):
            raise ChannelGroupError(f"group {group.name}: no 'in' member reads it")
        for member in group.members:
            _check_member_fits(group, member, state)
        for key in group.score_keys:
            if key not in {m.key for m in group.members_with_role("in")}:
                raise ChannelGroupError(f"group {group.name}: score key {key} is not an 'in' member")
    check_disjoint_windows(groups)
    return groups


def _check_member_fits(group: ChannelGroup, member: TensorSlice, state: Mapping[str, torch.Tensor]) -> None:
    if member.key not in state:
        raise ChannelGroupError(f"group {group.name}: no tensor {member.key!r}")
    tensor = state[member.key]
    if member.dim >= tensor.dim():
        raise ChannelGroupError(
            f"group {group.name}: {member.key} has {tensor.dim()} dims, member dim {member.dim}"
        )
    if member.offset < 0:
        raise ChannelGroupError(f"group {group.name}: {member.key} has negative offset {member.offset}")
    if member.stop(group.size) > tensor.shape[member.dim]:
        raise ChannelGroupError(
            f"group {group.name}: {member.key} has {tensor.shape[member.dim]} entries along dim "
            f"{member.dim}, expected {member.stop(group.size)} (offset {member.offset} + size "
            f"{group.size} x block {member.block})"
        )


def member_windows(groups: list[ChannelGroup]) -> dict[tuple[str, int], list[tuple[int, int, str]]]:
    """Every ``(key, dim)`` that some group cuts, with its ``(start, stop, group name)`` windows
    sorted by start."""
    windows: dict[tuple[str, int], list[tuple[int, int, str]]] = {}
    for group in groups:
        for member in group.members:
            windows.setdefault((member.key, member.dim), []).append(
                (member.offset, member.stop(group.size), group.name)
            )
    return {where: sorted(spans) for where, spans in windows.items()}


def check_disjoint_windows(groups: list[ChannelGroup]) -> None:
    """Two members may cut the same tensor along the same dim only in disjoint windows: an
    entry owned twice would be kept by one plan and dropped by another."""
    for (key, dim), spans in member_windows(groups).items():
        for (start_a, stop_a, name_a), (start_b, stop_b, name_b) in zip(spans, spans[1:]):
            if start_b < stop_a:
                raise ChannelGroupError(
                    f"{key} dim {dim}: window [{start_a}, {stop_a}) of {name_a} overlaps "
                    f"[{start_b}, {stop_b}) of {name_b}"
                )


# -- state-dict loading with one clear message ------------------------------------------------
class CheckpointMismatchError(ValueError):
    """A state dict does not fit the network it is loaded into."""


def describe_mismatch(net: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> str | None:
    """One message naming missing/unexpected keys and the first shape conflict, or None."""
    own = net.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    conflict = next(
        (
            f"{k}: checkpoint {tuple(state_dict[k].shape)} vs network {tuple(own[k].shape)}"
            for k in own
            if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
        ),
        None,
    )
    if not (missing or unexpected or conflict):
        return None

    def preview(keys: list[str]) -> str:
        head = ", ".join(keys[:5])
        return head + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")

    parts = []
    if missing:
        parts.append(f"missing keys: {preview(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {preview(unexpected)}")
    if conflict:
        parts.append(f"first shape conflict: {conflict}")
    return f"{source} does not fit {type(net).__name__}: " + "; ".join(parts)


def load_state_dict_strict(
    net: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint"
) -> None:
    problem = describe_mismatch(net, state_dict, source)
    if problem:
        raise CheckpointMismatchError(problem)
    net.load_state_dict(dict(state_dict), strict=True)


# -- our own file format ----------------------------------------------------------------------
def net_payload(net: GanNet, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The dict ``save_net`` writes: class name, constructor config, weights, extras."""
    return {
        "format": NET_FORMAT,
        "version": NET_FORMAT_VERSION,
        "class": type(net).__name__,
        "config": dict(net.config),
        "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "extra": dict(extra or {}),
    }


def save_net(net: GanNet, path: str | os.PathLike, extra: Mapping[str, Any] | None = None) -> None:
    """Write weights + widths atomically (a temp file renamed into place: nothing half-written)."""
    atomic_torch_save(net_payload(net, extra), path)


def is_net_payload(obj: Any) -> bool:
    return isinstance(obj, Mapping) and obj.get("format") == NET_FORMAT


def net_from_payload(payload: Mapping[str, Any], source: str = "checkpoint") -> GanNet:
    name = payload.get("class")
    if name not in NET_REGISTRY:
        known = ", ".join(sorted(NET_REGISTRY))
        raise CheckpointMismatchError(f"{source}: unknown network class {name!r} (known: {known})")
    net = NET_REGISTRY[name](**payload["config"])
    load_state_dict_strict(net, payload["state_dict"], source)
    return net


def load_net(path: str | os.PathLike) -> GanNet:
    """Rebuild a network saved by ``save_net`` (weights_only: no code is unpickled)."""
    payload = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    if not is_net_payload(payload):
        raise CheckpointMismatchError(f"{os.fspath(path)}: not a lightning_gancomp network file")
    return net_from_payload(payload, os.fspath(path))


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
