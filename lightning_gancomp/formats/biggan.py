"""ajbrock/BigGAN-PyTorch checkpoints: ``G.pth``, ``G_ema.pth``, ``D.pth`` (plain state dicts).

``utils.save_weights`` writes ``G.state_dict()`` etc. with ``torch.save``; the key layout is the
one of :mod:`lightning_gancomp.nets.biggan`, so conversion is only: recognise generator vs
discriminator, tell BigGAN from SAGAN (a shared class embedding ``shared.weight`` and conditional
BNs fed by SN linears ``bn1.gain.weight [C, shared_dim + z_chunk]`` vs per-BN
``nn.Embedding(num_classes, C)`` tables), and read every width from the tensor shapes.

Files written with ``--mybn`` (``myBN``: ``bn1.bn.stored_mean``, ``accumulation_counter``) or
``--cross_replica`` (SyncBN: ``bn1.bn.running_mean``) are mapped onto the plain layout; standing
statistics (``accumulation_counter > 0``) are divided by the counter as ``myBN`` does at eval.

Overrides accepted by ``load_generator`` / ``load_discriminator``:

* ``variant="biggan" | "sagan"``: assert which generator the file holds (one-line error otherwise).
* any constructor argument of :class:`~lightning_gancomp.nets.biggan.BigGANGenerator` /
  ``BigGANDiscriminator`` that the weights cannot tell, e.g. ``sn_eps`` (default 1e-6 for BigGAN
  as in ``launch_BigGAN_bs256x8.sh``, 1e-8 for SAGAN as in ``launch_SAGAN_bs128x2_ema.sh``; it only
  matters for near-zero singular vectors) or ``bn_eps``. Arguments that contradict the weights
  produce the one-line mismatch message of ``load_state_dict_strict``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any

import torch

from lightning_gancomp.checkpoints import CheckpointError, CheckpointFormat, Converted, Role, register_format
from lightning_gancomp.nets.biggan import _D_ARCH, _G_STREAM_MULTIPLIERS, BigGANDiscriminator, BigGANGenerator

FORMAT_NAME = "biggan-pytorch"


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _matches(obj: Any) -> bool:
    if not _is_state_dict(obj) or "blocks.0.0.conv1.u0" not in obj:
        return False
    return "output_layer.2.weight" in obj or ("embed.weight" in obj and "linear.weight" in obj)


def _is_generator(state: Mapping[str, torch.Tensor]) -> bool:
    return "output_layer.2.weight" in state


_WRAPPED_BN = re.compile(
    r"^(.*)\.bn\.(stored_mean|stored_var|running_mean|running_var|accumulation_counter|num_batches_tracked)$"
)


def _unwrap_batchnorms(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map myBN / SyncBN keys (``x.bn.stored_mean``) onto the plain ccbn/bn layout."""
    out: dict[str, torch.Tensor] = {}
    wrapped: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        match = _WRAPPED_BN.match(key)
        if match:
            wrapped.setdefault(match.group(1), {})[match.group(2)] = value
        else:
            out[key] = value
    for prefix, stats in wrapped.items():
        mean = stats.get("stored_mean", stats.get("running_mean"))
        var = stats.get("stored_var", stats.get("running_var"))
        if mean is None or var is None:
            raise CheckpointError(f"{prefix}.bn: batch-norm statistics incomplete ({sorted(stats)})")
        counter = stats.get("accumulation_counter")
        if counter is not None and float(counter.reshape(-1)[0]) > 0:  # standing stats are sums
            mean, var = mean / counter, var / counter
        out[f"{prefix}.stored_mean"], out[f"{prefix}.stored_var"] = mean, var
    return out


def _count_blocks(state: Mapping[str, torch.Tensor]) -> int:
    n = 0
    while f"blocks.{n}.0.conv1.weight" in state:
        n += 1
    return n


def _count_svs(state: Mapping[str, torch.Tensor], prefix: str) -> int:
    n = 0
    while f"{prefix}.u{n}" in state:
        n += 1
    return n


def _attention_layout(state: Mapping[str, torch.Tensor], n: int) -> tuple[list[int], list[int], list[int]]:
    blocks = [i for i in range(n) if f"blocks.{i}.1.theta.weight" in state]
    keys = [int(state[f"blocks.{i}.1.theta.weight"].shape[0]) for i in blocks]
    values = [int(state[f"blocks.{i}.1.g.weight"].shape[0]) for i in blocks]
    return blocks, keys, values


def _compact_widths(config: dict[str, Any], multipliers: list[int], streams: list[int], hidden: list[int],
                    default_hidden: list[int]) -> None:  # fmt: skip
    # Prefer the official "ch" form when the widths are the table's (readable configs), else the
    # explicit lists (pruned or custom networks).
    ch = streams[-1] // multipliers[-1]
    if [m * ch for m in multipliers] == streams and hidden == default_hidden:
        config["ch"] = ch
    else:
        config.update(ch=ch, stream_channels=streams, hidden_channels=hidden)


def generator_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Constructor arguments of :class:`BigGANGenerator` that fit an official generator state."""
    n = _count_blocks(state)
    first_stream = int(state["blocks.0.0.conv1.weight"].shape[1])
    cells = int(state["linear.weight"].shape[0]) // first_stream
    bottom_width = int(round(cells**0.5))
    if bottom_width**2 * first_stream != state["linear.weight"].shape[0]:
        raise CheckpointError(f"linear.weight {tuple(state['linear.weight'].shape)} is not C x square")
    resolution = bottom_width * 2**n
    # A plain state dict of a PPCD student (transition layers) writes the stream with the 1x1
    # transition conv instead of conv2.
    writers = [f"blocks.{i}.0.transition.weight" if f"blocks.{i}.0.transition.weight" in state
               else f"blocks.{i}.0.conv2.weight" for i in range(n)]  # fmt: skip
    streams = [first_stream] + [int(state[key].shape[0]) for key in writers]
    hidden = [int(state[f"blocks.{i}.0.conv1.weight"].shape[0]) for i in range(n)]
    shared = "shared.weight" in state
    gain = state["blocks.0.0.bn1.gain.weight"]
    linear_in = int(state["linear.weight"].shape[1])
    config: dict[str, Any] = {"resolution": resolution, "bottom_width": bottom_width, "init": "none",
                              "num_svs": _count_svs(state, "linear"), "shared_embedding": shared}  # fmt: skip
    if shared:
        num_classes, shared_dim = (int(s) for s in state["shared.weight"].shape)
        chunk = int(gain.shape[1]) - shared_dim
        hierarchical = chunk > 0
        z_dim = chunk * (n + 1) if hierarchical else linear_in
        if hierarchical and chunk != linear_in:
            raise CheckpointError(f"z chunk {chunk} (bn1.gain) differs from linear input {linear_in}")
        config.update(num_classes=num_classes, shared_dim=shared_dim, hierarchical=hierarchical, z_dim=z_dim,
                      sn_eps=1e-6)  # fmt: skip
    else:
        config.update(num_classes=int(gain.shape[0]), shared_dim=0, hierarchical=False, z_dim=linear_in,
                      sn_eps=1e-8)  # fmt: skip
    blocks, keys, values = _attention_layout(state, n)
    config.update(attention_resolutions=[bottom_width * 2 ** (i + 1) for i in blocks],
                  attention_key_channels=keys, attention_value_channels=values)  # fmt: skip
    if "blocks.0.0.transition.weight" in state:
        config["transition_channels"] = [int(state[f"blocks.{i}.0.conv2.weight"].shape[0]) for i in range(n)]
    multipliers = _G_STREAM_MULTIPLIERS.get(resolution)
    if multipliers is None or len(multipliers) != len(streams) or bottom_width != 4:
        config.update(ch=streams[-1], stream_channels=streams, hidden_channels=hidden)
    else:
        _compact_widths(config, multipliers, streams, hidden, streams[1:])
    return config


def discriminator_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Constructor arguments of :class:`BigGANDiscriminator` that fit an official D state."""
    n = _count_blocks(state)
    resolution = next((r for r, arch in _D_ARCH.items() if len(arch[0]) == n), None)
    if resolution is None:
        raise CheckpointError(f"a BigGAN discriminator with {n} blocks matches no official resolution")
    multipliers, _, out_resolutions = _D_ARCH[resolution]
    streams = [int(state[f"blocks.{i}.0.conv2.weight"].shape[0]) for i in range(n)]
    hidden = [int(state[f"blocks.{i}.0.conv1.weight"].shape[0]) for i in range(n)]
    blocks, keys, values = _attention_layout(state, n)
    config: dict[str, Any] = {
        "resolution": resolution,
        "num_classes": int(state["embed.weight"].shape[0]),
        "attention_resolutions": [out_resolutions[i] for i in blocks],
        "attention_key_channels": keys,
        "attention_value_channels": values,
        "num_svs": _count_svs(state, "linear"),
        "init": "none",
    }
    _compact_widths(config, multipliers, streams, hidden, streams)
    return config


def _apply_overrides(config: dict[str, Any], overrides: dict[str, Any], net_class: type) -> dict[str, Any]:
    allowed = set(inspect.signature(net_class.__init__).parameters) - {"self"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise CheckpointError(f"{FORMAT_NAME}: unknown overrides {unknown} for {net_class.__name__}")
    return {**config, **overrides}


def _convert(obj: Any, role: Role, overrides: dict[str, Any]) -> Converted:
    state = _unwrap_batchnorms(obj)
    is_generator = _is_generator(state)
    if (role == "generator") != is_generator:
        held = "generator (G.pth/G_ema.pth)" if is_generator else "discriminator (D.pth)"
        loader = "load_generator" if is_generator else "load_discriminator"
        raise CheckpointError(f"{FORMAT_NAME}: this file holds a {held}; use {loader}")
    variant = overrides.pop("variant", None)
    if is_generator:
        config = generator_config(state)
        detected = "biggan" if config["shared_embedding"] else "sagan"
        if variant is not None and variant != detected:
            evidence = "a shared class embedding" if detected == "biggan" else "per-BN class embeddings"
            raise CheckpointError(
                f"{FORMAT_NAME}: expected a {variant} generator but the file holds a {detected} generator "
                f"({evidence})"
            )
        net_class: type = BigGANGenerator
    else:
        if variant is not None:
            raise CheckpointError(f"{FORMAT_NAME}: 'variant' applies to generators only")
        config, net_class = discriminator_config(state), BigGANDiscriminator
    config = _apply_overrides(config, overrides, net_class)
    return Converted(net_class=net_class.__name__, config=config, state_dict=state, source_format=FORMAT_NAME)


register_format(CheckpointFormat(name=FORMAT_NAME, matches=_matches, convert=_convert))
