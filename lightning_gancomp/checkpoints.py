"""Load and save generators/discriminators: our format and the official ones.

``load_generator(path, **overrides)`` reads a file with ``torch.load(weights_only=True)``, asks
each registered :class:`CheckpointFormat` (ours first, then the official layouts registered in
``lightning_gancomp.formats``) whether it recognises the content, converts keys to our layout,
rebuilds the network from the widths it infers, and loads the weights strictly. A mismatch is one
message naming missing/unexpected keys and the first shape conflict.

Official checkpoints sometimes pickle harmless Python objects next to the tensors (rosinality's
``args`` is an ``argparse.Namespace``). Those classes are on an explicit allowlist
(:data:`SAFE_GLOBALS`) passed to ``torch.serialization.safe_globals``; nothing else is unpickled.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from lightning_gancomp.nets.base import (
    NET_REGISTRY,
    CheckpointMismatchError,
    GanNet,
    is_net_payload,
    load_state_dict_strict,
    net_from_payload,
    save_net,
)
from lightning_gancomp.pretrained import BuiltinTeacherError, resolve_checkpoint_path

Role = Literal["generator", "discriminator"]

#: Classes that may appear in official checkpoints and carry no code to run.
SAFE_GLOBALS: list[Any] = [argparse.Namespace]


class CheckpointError(ValueError):
    """A checkpoint file cannot be read or is not in any known format."""


@dataclass
class Converted:
    """A checkpoint converted to our layout.

    Attributes:
        net_class: registered class name of the network to build.
        config: constructor arguments (widths inferred from the weights).
        state_dict: weights in our key layout.
        extra: non-weight data worth keeping (e.g. ``{"latent_avg": tensor}``).
        source_format: human-readable name of the detected format, for messages and logs.
    """

    net_class: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    source_format: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointFormat:
    """A recognisable checkpoint layout.

    ``matches(obj)`` looks at the loaded object (dict) without side effects; ``convert(obj, role,
    overrides)`` returns a :class:`Converted` for the requested role or raises CheckpointError.
    """

    name: str
    matches: Callable[[Any], bool]
    convert: Callable[[Any, Role, dict[str, Any]], Converted]


_FORMATS: list[CheckpointFormat] = []


def register_format(fmt: CheckpointFormat) -> CheckpointFormat:
    """Add a format; formats are tried in registration order, ours first."""
    if any(f.name == fmt.name for f in _FORMATS):
        raise ValueError(f"checkpoint format {fmt.name!r} registered twice")
    _FORMATS.append(fmt)
    return fmt


def registered_formats() -> list[str]:
    _ensure_formats_loaded()
    return [f.name for f in _FORMATS]


def _ensure_formats_loaded() -> None:
    # The official converters live in lightning_gancomp.formats; importing the package registers
    # them (kept lazy so nets/ and this module import fast and without cycles).
    import lightning_gancomp.formats  # noqa: F401


def read_checkpoint(path: str | os.PathLike) -> Any:
    """``torch.load`` with ``weights_only=True`` and the allowlist; clear one-line errors.

    ``builtin:<name>`` reads a teacher shipped with the package (:mod:`lightning_gancomp.pretrained`).
    """
    try:
        path = resolve_checkpoint_path(path)
    except BuiltinTeacherError as exc:
        raise CheckpointError(str(exc)) from None
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - turned into one clear line
        raise CheckpointError(
            f"{path}: cannot be read as a weights-only PyTorch checkpoint ({load_error_reason(exc)}). "
            "Pickles that embed code (e.g. NVlabs .pkl) must be converted to a state dict first."
        ) from exc


def load_error_reason(exc: BaseException) -> str:
    """One short clause saying why ``torch.load`` failed (torch's own messages span 10 lines).

    A weights-only refusal names the global the file wanted to run (``GLOBAL builtins.exec``);
    an empty file gives a bare ``EOFError``; a truncated one a zip "central directory" error.
    """
    text = str(exc).strip()
    refused = re.search(r"Unsupported global: (GLOBAL \S+)", text)
    if refused:
        return f"it needs to run code ({refused.group(1)}), refused by the weights-only load"
    if isinstance(exc, EOFError):
        return "the file is empty or truncated"
    if isinstance(exc, IsADirectoryError):
        return "it is a directory, not a file"
    if "central directory" in text or "zip archive" in text:
        return "the file is truncated or not a PyTorch checkpoint"
    first_line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def detect_format(obj: Any, source: str = "checkpoint") -> CheckpointFormat:
    _ensure_formats_loaded()
    for fmt in _FORMATS:
        if fmt.matches(obj):
            return fmt
    keys = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
    raise CheckpointError(
        f"{source}: unrecognised checkpoint layout (top-level keys {keys}); known formats: "
        + ", ".join(f.name for f in _FORMATS)
    )


def convert_checkpoint(
    obj: Any, role: Role = "generator", source: str = "checkpoint", **overrides: Any
) -> Converted:
    fmt = detect_format(obj, source)
    try:
        return fmt.convert(obj, role, dict(overrides))
    except CheckpointMismatchError:
        raise
    except CheckpointError as exc:
        raise CheckpointError(f"{source} ({fmt.name}): {exc}") from exc
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{source} ({fmt.name}): cannot convert: {exc}") from exc


def build_converted(converted: Converted, source: str = "checkpoint") -> GanNet:
    if converted.net_class not in NET_REGISTRY:
        raise CheckpointError(f"{source}: unknown network class {converted.net_class!r}")
    net = NET_REGISTRY[converted.net_class](**converted.config)
    load_state_dict_strict(net, converted.state_dict, f"{source} ({converted.source_format})")
    return net


def _load(path: str | os.PathLike, role: Role, overrides: dict[str, Any]) -> GanNet:
    source = os.fspath(path)
    obj = read_checkpoint(source)
    converted = convert_checkpoint(obj, role, source, **overrides)
    net = build_converted(converted, source)
    if net.role != role:
        raise CheckpointError(f"{source}: holds a {net.role} ({converted.net_class}), not a {role}")
    return net.eval()


def load_generator(path: str | os.PathLike, **overrides: Any) -> GanNet:
    """Load a generator from our format or any supported official checkpoint.

    ``overrides`` settle what the weights cannot tell (e.g. ``key="g"`` to pick the non-EMA
    generator of a rosinality checkpoint, ``upsample="bilinear"`` for a mimicry SN-GAN); each
    format documents its own.
    """
    return _load(path, "generator", overrides)


def load_discriminator(path: str | os.PathLike, **overrides: Any) -> GanNet:
    """Discriminator counterpart of :func:`load_generator`."""
    return _load(path, "discriminator", overrides)


def save_generator(net: GanNet, path: str | os.PathLike, **extra: Any) -> None:
    """Plain generator file: weights + constructor config (widths) + extras."""
    save_net(net, path, extra)


def _convert_own(obj: Any, role: Role, overrides: dict[str, Any]) -> Converted:
    # Our training checkpoints (Lightning .ckpt) store nets under "nets/<name>" payloads.
    payload = obj
    if not is_net_payload(obj):
        nets = obj.get("gancomp_nets", {})
        asked = overrides.pop("key", None)
        if asked is not None and asked not in nets:
            raise CheckpointError(
                f"no network {asked!r} in this training checkpoint; it has: {', '.join(nets)}"
            )
        wanted = asked or ("g_ema" if role == "generator" else "d")
        if wanted not in nets:
            wanted = next((k for k, p in nets.items() if NET_REGISTRY[p["class"]].role == role), None)
        if wanted is None:
            raise CheckpointError(f"no {role} stored in this training checkpoint")
        payload = nets[wanted]
    if overrides:
        raise CheckpointError(f"unused overrides for a lightning_gancomp file: {sorted(overrides)}")
    net = net_from_payload(payload)  # validates class and weights
    return Converted(
        net_class=payload["class"],
        config=dict(net.config),
        state_dict=dict(payload["state_dict"]),
        source_format="lightning_gancomp",
        extra=dict(payload.get("extra", {})),
    )


register_format(
    CheckpointFormat(
        name="lightning_gancomp",
        matches=lambda obj: (
            is_net_payload(obj) or (isinstance(obj, Mapping) and isinstance(obj.get("gancomp_nets"), Mapping))
        ),
        convert=_convert_own,
    )
)
