"""Pix2Pix / CycleGAN / GAN Compression checkpoints (``latest_net_G.pth``, ``latest_net_D.pth``).

The reference code (junyanz/pytorch-CycleGAN-and-pix2pix ``models/base_model.py``
``save_networks``; mit-han-lab/gan-compression ``utils/util.py`` ``load_network``) saves the plain
``state_dict()`` of an ``nn.Sequential``-based network, so keys are positional:

* ResnetGenerator: ``model.1`` stem conv, ``model.2`` its norm, ``model.4/5`` and ``model.7/8``
  down convs/norms, ``model.{10+b}.conv_block.{i}`` residual blocks, then the two transposed
  convs ``model.{10+n}``, ``model.{13+n}`` (+ norms one index later) and the output conv
  ``model.{17+n}``. Inside a block the conv indices depend on padding and dropout:
  ``conv_block.1`` / ``.5`` (reflect or replicate padding), ``.1`` / ``.6`` with a Dropout
  (``--use_dropout`` in junyanz; *always* in GAN Compression's ``resnet_generator.py``, whose
  rate defaults to 0), ``.0`` / ``.3`` (or ``.4``) with zero padding.
* UnetGenerator: nested ``UnetSkipConnectionBlock`` s: level 0 ``model.model.{0,3}``, level 1
  ``model.model.1.model.{1,2,5,6}``, deeper levels append ``.model.3``; the innermost level has
  ``.model.{1,3,4}``.
* NLayerDiscriminator: ``model.0`` first conv, ``model.{3i-1}`` / ``model.{3i}`` conv / norm of
  layer ``i``, ``model.{3n+2}`` the output conv.

Everything else is inferred from keys and shapes: widths (``ngf`` and any pruned width), number of
blocks / levels / layers, the norm (BatchNorm has ``weight``/``running_mean``; InstanceNorm with
``affine=False`` has no tensors but its conv has a bias; ``"none"`` has neither), zero padding and
the dropout slot. Checkpoints written by PyTorch < 0.4 (or with ``track_running_stats=True``)
carry ``running_mean``/``running_var``/``num_batches_tracked`` for InstanceNorm layers; the
reference drops them when loading (``__patch_instance_norm_state_dict``), and so do we.

What the keys cannot tell comes from ``overrides`` (any constructor argument of the network, e.g.
``padding_type="replicate"``, ``dropout_rate=0.0``, ``use_dropout=False`` for a U-Net), plus
``flavor="gan_compression"`` = ``clamp_input=True, dropout_rate=0.0`` (GAN Compression's teacher).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

import torch

from lightning_gancomp.checkpoints import CheckpointError, CheckpointFormat, Converted, Role, register_format
from lightning_gancomp.nets.base import CheckpointMismatchError, GanNet
from lightning_gancomp.nets.pix2pix import (
    RESNET_N_SAMPLING,
    NLayerDiscriminator,
    ResnetGenerator,
    UnetGenerator,
)

Flavor = Literal["junyanz", "gan_compression"]
#: (our module prefix, official module prefix) pairs; parameters keep their own names.
ModuleMap = list[tuple[str, str]]

_STATS = {"running_mean", "running_var", "num_batches_tracked"}


# -- official module layouts (shared by import and export) --------------------------------------
def resnet_module_map(n_blocks: int, zero_padding: bool, dropout: bool) -> ModuleMap:
    """Our ResnetGenerator modules and their positional names in the reference ``nn.Sequential``."""
    pairs: ModuleMap = [("stem.conv", "model.1"), ("stem.norm", "model.2")]
    for i in range(RESNET_N_SAMPLING):
        pairs += [(f"down.{i}.conv", f"model.{4 + 3 * i}"), (f"down.{i}.norm", f"model.{5 + 3 * i}")]
    first_block = 3 * RESNET_N_SAMPLING + 4
    conv1 = 0 if zero_padding else 1
    # pad? conv norm relu [dropout] pad? conv norm
    conv2 = conv1 + 3 + int(dropout) + int(not zero_padding)
    for b in range(n_blocks):
        block = f"model.{first_block + b}.conv_block"
        pairs += [
            (f"blocks.{b}.conv1", f"{block}.{conv1}"),
            (f"blocks.{b}.norm1", f"{block}.{conv1 + 1}"),
            (f"blocks.{b}.conv2", f"{block}.{conv2}"),
            (f"blocks.{b}.norm2", f"{block}.{conv2 + 1}"),
        ]
    first_up = first_block + n_blocks
    for i in range(RESNET_N_SAMPLING):
        pairs += [
            (f"up.{i}.conv", f"model.{first_up + 3 * i}"),
            (f"up.{i}.norm", f"model.{first_up + 3 * i + 1}"),
        ]
    pairs.append(("head.conv", f"model.{first_up + 3 * RESNET_N_SAMPLING + 1}"))  # after a ReflectionPad2d
    return pairs


def _unet_level_prefix(level: int) -> str:
    # UnetGenerator.model is level 0; each level's submodule sits at index 1 (level 0, whose
    # Sequential starts with the down conv) or 3 (after LeakyReLU, conv, norm).
    if level == 0:
        return "model"
    return "model.model.1" + ".model.3" * (level - 1)


def unet_module_map(num_downs: int) -> ModuleMap:
    pairs: ModuleMap = [("downs.0.conv", "model.model.0"), ("ups.0.conv", "model.model.3")]
    innermost = num_downs - 1
    for k in range(1, num_downs):
        seq = _unet_level_prefix(k) + ".model"
        pairs.append((f"downs.{k}.conv", f"{seq}.1"))
        if k == innermost:  # LeakyReLU, conv, ReLU, convT, norm
            pairs += [(f"ups.{k}.conv", f"{seq}.3"), (f"ups.{k}.norm", f"{seq}.4")]
        else:  # LeakyReLU, conv, norm, submodule, ReLU, convT, norm[, Dropout]
            pairs += [
                (f"downs.{k}.norm", f"{seq}.2"),
                (f"ups.{k}.conv", f"{seq}.5"),
                (f"ups.{k}.norm", f"{seq}.6"),
            ]
    return pairs


def patchgan_module_map(n_layers: int) -> ModuleMap:
    pairs: ModuleMap = [("layers.0.conv", "model.0")]
    for i in range(1, n_layers + 1):
        pairs += [(f"layers.{i}.conv", f"model.{3 * i - 1}"), (f"layers.{i}.norm", f"model.{3 * i}")]
    pairs.append(("head", f"model.{3 * n_layers + 2}"))
    return pairs


def official_module_map(net: GanNet) -> ModuleMap:
    """The reference layout of one of our pix2pix networks."""
    if isinstance(net, ResnetGenerator):
        block = net.blocks[0] if net.n_blocks else None
        zero = net.config["padding_type"] == "zero"
        dropout = block is not None and isinstance(block.dropout, torch.nn.Dropout)
        return resnet_module_map(net.n_blocks, zero, dropout)
    if isinstance(net, UnetGenerator):
        return unet_module_map(net.num_downs)
    if isinstance(net, NLayerDiscriminator):
        return patchgan_module_map(len(net.layers) - 1)
    raise TypeError(f"{type(net).__name__} has no pix2pix reference layout")


def to_official_state_dict(net: GanNet) -> dict[str, torch.Tensor]:
    """Our weights in the reference key layout (to use them with junyanz / GAN Compression code)."""
    ours_to_official = dict(official_module_map(net))
    out = {}
    for key, value in net.state_dict().items():
        module, param = key.rsplit(".", 1)
        out[f"{ours_to_official[module]}.{param}"] = value.detach().clone()
    return out


# -- reading a state dict -----------------------------------------------------------------------
def _plain_state_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    """The state dict if ``obj`` is a flat {str: tensor} mapping (``module.`` prefix removed)."""
    if not isinstance(obj, Mapping) or not obj:
        return None
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        return None
    if all(k.startswith("module.") for k in obj):  # saved from an nn.DataParallel wrapper
        return {k[len("module.") :]: v for k, v in obj.items()}
    return dict(obj)


def _modules(state: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """``{"model.2": {"weight": ..., "running_mean": ...}, ...}``."""
    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        modules.setdefault(module, {})[param] = value
    return modules


def _drop_stale_instance_norm_stats(state: dict[str, torch.Tensor], norm_modules: list[str]) -> bool:
    """Remove running stats of norm slots that hold stats only (InstanceNorm pre-0.4)."""
    modules = _modules(state)
    dropped = False
    for module in norm_modules:
        params = set(modules.get(module, {}))
        if params and params <= _STATS:
            for param in params:
                del state[f"{module}.{param}"]
            dropped = True
    return dropped


def _infer_norm(modules: Mapping[str, Mapping[str, torch.Tensor]], norm_module: str, conv_module: str) -> str:
    """batch: the norm slot has an affine weight; instance: no norm tensors (or stale stats
    only) but a conv bias; none: neither (the reference gives convs a bias only before IN)."""
    params = modules.get(norm_module, {})
    if "weight" in params:
        return "batch"
    if params and set(params) <= _STATS:
        return "instance"
    return "instance" if "bias" in modules.get(conv_module, {}) else "none"


def _weight(state: Mapping[str, torch.Tensor], module: str, source: str) -> torch.Tensor:
    key = f"{module}.weight"
    if key not in state:
        raise CheckpointMismatchError(f"{source}: missing key {key}")
    return state[key]


def _apply_overrides(
    net_class: type[GanNet], config: dict[str, Any], overrides: dict[str, Any]
) -> dict[str, Any]:
    flavor = overrides.pop("flavor", "junyanz")
    if flavor not in get_args(Flavor):
        raise CheckpointError(f"flavor must be one of {list(get_args(Flavor))}, got {flavor!r}")
    if flavor == "gan_compression":
        if net_class is not ResnetGenerator:
            raise CheckpointError("flavor='gan_compression' applies to ResnetGenerator checkpoints only")
        if not config.get("use_dropout"):
            raise CheckpointError(
                "flavor='gan_compression' but the residual blocks have no Dropout slot (second conv at "
                "conv_block.5, not .6): this is not a GAN Compression ResnetGenerator"
            )
        config.update(clamp_input=True, dropout_rate=0.0)
    allowed = set(inspect.signature(net_class.__init__).parameters) - {"self"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise CheckpointError(
            f"unknown overrides {unknown} for {net_class.__name__} "
            f"(allowed: flavor, {', '.join(sorted(allowed))})"
        )
    config.update(overrides)
    return config


def _translate(
    state: Mapping[str, torch.Tensor],
    pairs: ModuleMap,
    net_class: type[GanNet],
    config: dict[str, Any],
    source: str,
) -> dict[str, torch.Tensor]:
    """Rename to our layout and check keys/shapes against the network the config describes,
    naming the *reference* keys in errors (that is what the user's file contains)."""
    official_to_ours = {official: ours for ours, official in pairs}
    ours_to_official = {ours: official for ours, official in pairs}
    converted: dict[str, torch.Tensor] = {}
    unexpected = []
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if module in official_to_ours:
            converted[f"{official_to_ours[module]}.{param}"] = value
        else:
            unexpected.append(key)
    with torch.device("meta"):  # shapes only: no memory, no init cost
        expected = net_class(**config).state_dict()
    for key in expected:
        # BatchNorm files written before PyTorch 0.4 have no num_batches_tracked (only used
        # with momentum=None); PyTorch itself fills in 0 when loading them.
        stats_key = key.replace("num_batches_tracked", "running_mean")
        if key.endswith(".num_batches_tracked") and key not in converted and stats_key in converted:
            converted[key] = torch.zeros((), dtype=torch.long)

    def official(key: str) -> str:
        module, _, param = key.rpartition(".")
        return f"{ours_to_official.get(module, module)}.{param}"

    missing = [official(k) for k in expected if k not in converted]
    unexpected += [official(k) for k in converted if k not in expected]
    conflict = next(
        (
            f"{official(k)}: checkpoint {tuple(converted[k].shape)} vs expected {tuple(v.shape)}"
            for k, v in expected.items()
            if k in converted and converted[k].shape != v.shape
        ),
        None,
    )
    if missing or unexpected or conflict:
        parts = []
        if missing:
            parts.append("missing keys: " + ", ".join(missing[:6]) + (" ..." if len(missing) > 6 else ""))
        if unexpected:
            parts.append(
                "unexpected keys: " + ", ".join(unexpected[:6]) + (" ..." if len(unexpected) > 6 else "")
            )
        if conflict:
            parts.append(f"first shape conflict: {conflict}")
        raise CheckpointMismatchError(
            f"{source} does not fit {net_class.__name__}{config_summary(config)}: " + "; ".join(parts)
        )
    return {k: converted[k] for k in expected}


def config_summary(config: Mapping[str, Any]) -> str:
    keys = ("ngf", "n_blocks", "num_downs", "n_layers", "norm", "use_dropout", "padding_type")
    shown = ", ".join(f"{k}={config[k]!r}" for k in keys if k in config)
    return f"({shown})"


def _extra(dropped_stats: bool) -> dict[str, Any]:
    return {"official_layout": "junyanz", "dropped_instance_norm_stats": dropped_stats}


def _check_role(role: Role, net_class: type[GanNet], what: str) -> None:
    if net_class.role != role:
        raise CheckpointError(f"this file holds a {net_class.role} ({what}), not a {role}")


# -- ResnetGenerator ----------------------------------------------------------------------------
_BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.(\d+)\.weight$")


def _is_resnet_generator(obj: Any) -> bool:
    state = _plain_state_dict(obj)
    if state is None or "model.1.weight" not in state:
        return False
    stem = state["model.1.weight"]
    return stem.dim() == 4 and tuple(stem.shape[2:]) == (7, 7) and any(_BLOCK_KEY.match(k) for k in state)


def _convert_resnet(obj: Any, role: Role, overrides: dict[str, Any]) -> Converted:
    source = "junyanz/GAN Compression ResnetGenerator"
    _check_role(role, ResnetGenerator, source)
    state = _plain_state_dict(obj)
    block_convs: dict[int, list[int]] = {}
    for key in state:
        match = _BLOCK_KEY.match(key)
        if match and state[key].dim() == 4:
            block_convs.setdefault(int(match.group(1)), []).append(int(match.group(2)))
    first_block = 3 * RESNET_N_SAMPLING + 4
    n_blocks = len(block_convs)
    if sorted(block_convs) != list(range(first_block, first_block + n_blocks)):
        raise CheckpointMismatchError(
            f"{source}: residual blocks must be model.{first_block}..; found model.{sorted(block_convs)}"
        )
    conv1, conv2 = sorted(block_convs[first_block])[:2]
    zero_padding = conv1 == 0
    dropout = conv2 - conv1 == 4 + int(not zero_padding)
    pairs = resnet_module_map(n_blocks, zero_padding, dropout)
    ours = dict(pairs)
    norm_modules = [official for mine, official in pairs if ".norm" in mine]
    norm = _infer_norm(_modules(state), ours["stem.norm"], ours["stem.conv"])
    dropped = norm == "instance" and _drop_stale_instance_norm_stats(state, norm_modules)

    def width(module: str, dim: int = 0) -> int:
        return int(_weight(state, ours[module], source).shape[dim])

    ngf = width("stem.conv")
    config: dict[str, Any] = {
        "in_channels": width("stem.conv", 1),
        "out_channels": width("head.conv"),
        "ngf": ngf,
        "n_blocks": n_blocks,
        "norm": norm,
        "use_dropout": dropout,
        "padding_type": "zero" if zero_padding else "reflect",
    }
    down = [width("stem.conv")] + [width(f"down.{i}.conv") for i in range(RESNET_N_SAMPLING)]
    blocks = [width(f"blocks.{b}.conv1") for b in range(n_blocks)]
    up = [width(f"up.{i}.conv", 1) for i in range(RESNET_N_SAMPLING)]
    if down != [ngf * 2**i for i in range(RESNET_N_SAMPLING + 1)]:
        config["down_channels"] = down
    if blocks != [down[-1]] * n_blocks:
        config["block_channels"] = blocks
    if up != [ngf * 2**i for i in reversed(range(RESNET_N_SAMPLING))]:
        config["up_channels"] = up
    config = _apply_overrides(ResnetGenerator, config, overrides)
    converted = _translate(state, pairs, ResnetGenerator, config, source)
    return Converted("ResnetGenerator", config, converted, source, _extra(dropped))


# -- UnetGenerator ------------------------------------------------------------------------------
def _is_unet_generator(obj: Any) -> bool:
    state = _plain_state_dict(obj)
    return state is not None and "model.model.0.weight" in state and "model.model.1.model.1.weight" in state


def _unet_depth(state: Mapping[str, torch.Tensor]) -> int:
    level = 1
    while f"{_unet_level_prefix(level + 1)}.model.1.weight" in state:
        level += 1
    return level + 1


def _convert_unet(obj: Any, role: Role, overrides: dict[str, Any]) -> Converted:
    source = "junyanz UnetGenerator"
    _check_role(role, UnetGenerator, source)
    state = _plain_state_dict(obj)
    num_downs = _unet_depth(state)
    pairs = unet_module_map(num_downs)
    ours = dict(pairs)
    norm = _infer_norm(_modules(state), ours["downs.1.norm"], ours["downs.0.conv"])
    dropped = norm == "instance" and _drop_stale_instance_norm_stats(
        state, [official for mine, official in pairs if ".norm" in mine]
    )
    down = [int(_weight(state, ours[f"downs.{k}.conv"], source).shape[0]) for k in range(num_downs)]
    up = [int(_weight(state, ours[f"ups.{k}.conv"], source).shape[1]) for k in range(1, num_downs)]
    ngf = down[0]
    config: dict[str, Any] = {
        "in_channels": int(state[f"{ours['downs.0.conv']}.weight"].shape[1]),
        "out_channels": int(_weight(state, ours["ups.0.conv"], source).shape[1]),
        "num_downs": num_downs,
        "ngf": ngf,
        "norm": norm,
        # Dropout sits after the up norm of a level and has no tensors: the keys cannot tell;
        # pix2pix trains its U-Net with dropout, so that is the default (override use_dropout).
        "use_dropout": True,
    }
    if down != [ngf * min(2**k, 8) for k in range(num_downs)]:
        config["down_channels"] = down
    if up != down[:-1]:
        config["up_channels"] = up
    config = _apply_overrides(UnetGenerator, config, overrides)
    converted = _translate(state, pairs, UnetGenerator, config, source)
    return Converted("UnetGenerator", config, converted, source, _extra(dropped))


# -- NLayerDiscriminator ------------------------------------------------------------------------
_TOP_CONV = re.compile(r"^model\.(\d+)\.weight$")


def _is_patchgan(obj: Any) -> bool:
    state = _plain_state_dict(obj)
    if (
        state is None
        or "model.0.weight" not in state
        or any(".conv_block." in k or k.startswith("model.model.") for k in state)
    ):
        return False
    convs = sorted(int(m.group(1)) for k in state if (m := _TOP_CONV.match(k)) and state[k].dim() == 4)
    return (
        len(convs) >= 3
        and all(tuple(state[f"model.{i}.weight"].shape[2:]) == (4, 4) for i in convs)
        and state[f"model.{convs[-1]}.weight"].shape[0] == 1
    )


def _convert_patchgan(obj: Any, role: Role, overrides: dict[str, Any]) -> Converted:
    source = "junyanz/GAN Compression NLayerDiscriminator"
    _check_role(role, NLayerDiscriminator, source)
    state = _plain_state_dict(obj)
    convs = sorted(int(m.group(1)) for k in state if (m := _TOP_CONV.match(k)) and state[k].dim() == 4)
    n_layers = len(convs) - 2
    pairs = patchgan_module_map(n_layers)
    ours = dict(pairs)
    norm = _infer_norm(_modules(state), ours["layers.1.norm"], ours["layers.1.conv"])
    dropped = norm == "instance" and _drop_stale_instance_norm_stats(
        state, [official for mine, official in pairs if ".norm" in mine]
    )
    channels = [int(_weight(state, ours[f"layers.{i}.conv"], source).shape[0]) for i in range(n_layers + 1)]
    ndf = channels[0]
    config: dict[str, Any] = {
        "in_channels": int(state["model.0.weight"].shape[1]),
        "ndf": ndf,
        "n_layers": n_layers,
        "norm": norm,
    }
    if channels != [ndf * min(2**i, 8) for i in range(n_layers + 1)]:
        config["channels"] = channels
    config = _apply_overrides(NLayerDiscriminator, config, overrides)
    converted = _translate(state, pairs, NLayerDiscriminator, config, source)
    return Converted("NLayerDiscriminator", config, converted, source, _extra(dropped))


register_format(CheckpointFormat("pix2pix-resnet-generator", _is_resnet_generator, _convert_resnet))
register_format(CheckpointFormat("pix2pix-unet-generator", _is_unet_generator, _convert_unet))
register_format(CheckpointFormat("pix2pix-patchgan-discriminator", _is_patchgan, _convert_patchgan))
