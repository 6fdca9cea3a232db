"""StyleGAN2 checkpoint layouts: rosinality / CAGAN / DCP files and NVlabs state dicts.

Registered formats (tried in this order after our own):

``stylegan2-rosinality``
    rosinality/stylegan2-pytorch ``train.py`` saves ``{"g", "d", "g_ema", "g_optim", "d_optim",
    "args"}``; its ``convert_weight.py`` saves ``{"g_ema", "latent_avg"}``. CAGAN
    (lychenyoko/content-aware-gan-compression ``prune.py``/``train.py``) saves ``{"g", "d",
    "g_ema"}`` with *pruned* widths and no width list, so every width is read from the weight
    shapes (its ``Util/network_util.Get_Network_Shape``). A bare generator or discriminator state
    dict in that layout is accepted too, as are ``module.``-prefixed (DataParallel) keys.
``stylegan2-nvlabs``
    A state dict of NVlabs ``training/networks.py`` ``Generator`` / ``Discriminator`` (stylegan2-ada-
    pytorch, or stylegan3's ``networks_stylegan2.py``), e.g. ``G_ema.state_dict()``, or a dict
    ``{"G_ema": ..., "G": ..., "D": ...}`` of them; pruned widths (DCP-GAN's
    ``prune_diversity.py`` saves a pruned ``G.state_dict()``) are inferred the same way. NVlabs
    ``.pkl`` files embed code and cannot be read with ``weights_only=True``: export
    ``G_ema.state_dict()`` with NVlabs' own code first.

Overrides (``load_generator(path, key="g", lr_mlp=0.01, ...)``): ``key`` picks the entry of a
multi-net file (default ``g_ema``/``G_ema`` for generators, ``d``/``D`` for discriminators); any
constructor argument of the built class replaces the inferred value (``lr_mlp`` and
``stddev_group`` cannot be read from weights). A wrong override surfaces as one message naming
missing/unexpected keys and the first shape conflict.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any

import torch

from lightning_gancomp.checkpoints import CheckpointError, CheckpointFormat, Converted, Role, register_format
from lightning_gancomp.nets.stylegan2 import (
    MappingNetwork,
    StyleGAN2Discriminator,
    StyleGAN2Generator,
    generator_net_shape,
)
from lightning_gancomp.nets.stylegan_layers import make_kernel

DEFAULT_BLUR = (1, 3, 3, 1)
#: Seeded samples used to estimate the mean latent when a checkpoint stores none.
LATENT_AVG_SAMPLES = 4096

ROSINALITY_ENTRIES = ("g_ema", "g", "d")
NVLABS_ENTRIES = ("G_ema", "G", "D")


# -- layout detection --------------------------------------------------------------------------
def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _strip_module(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if state and all(isinstance(k, str) and k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def is_rosinality_generator(state: Mapping[str, Any]) -> bool:
    state = _strip_module(state)
    return "input.input" in state and "conv1.conv.weight" in state


def is_rosinality_discriminator(state: Mapping[str, Any]) -> bool:
    state = _strip_module(state)
    return "convs.0.0.weight" in state and "final_linear.0.weight" in state


def is_nvlabs_generator(state: Mapping[str, Any]) -> bool:
    keys = [k for k in state if isinstance(k, str)]
    return any(k.startswith("synthesis.") for k in keys) and any(k.startswith("mapping.") for k in keys)


def is_nvlabs_discriminator(state: Mapping[str, Any]) -> bool:
    return "b4.out.weight" in state and "b4.fc.weight" in state


def _role_of(state: Mapping[str, Any], layout: str) -> Role | None:
    if layout == "rosinality":
        if is_rosinality_generator(state):
            return "generator"
        return "discriminator" if is_rosinality_discriminator(state) else None
    if is_nvlabs_generator(state):
        return "generator"
    return "discriminator" if is_nvlabs_discriminator(state) else None


def _matches(obj: Any, layout: str, entries: tuple[str, ...]) -> bool:
    if not isinstance(obj, Mapping):
        return False
    if _is_state_dict(obj):
        return _role_of(obj, layout) is not None
    return any(isinstance(obj.get(k), Mapping) and _role_of(obj[k], layout) is not None for k in entries)


def _select_entry(
    obj: Mapping[str, Any], role: Role, overrides: dict[str, Any], layout: str, entries: tuple[str, ...]
) -> tuple[str | None, dict[str, torch.Tensor]]:
    """The state dict for ``role``: the bare dict itself, or ``obj[key]`` (default per role)."""
    key = overrides.pop("key", None)
    if _is_state_dict(obj):
        found = _role_of(obj, layout)
        if key is not None:
            raise CheckpointError(
                f"key={key!r} given, but the file is a bare {found} state dict (no entries)"
            )
        if found != role:
            raise CheckpointError(f"the file holds a bare {found} state dict, not a {role}")
        return None, _strip_module(obj)
    nets = [k for k in obj if isinstance(obj[k], Mapping) and _role_of(obj[k], layout) is not None]
    if key is None:
        defaults = entries[:2] if role == "generator" else entries[2:]
        key = next((k for k in defaults if k in nets), None)
        if key is None:
            raise CheckpointError(f"no {role} in this file (entries: {sorted(obj)})")
    if key not in obj:
        raise CheckpointError(f"no entry {key!r} in this file (entries: {sorted(obj)})")
    if key not in nets:
        raise CheckpointError(f"entry {key!r} is not a StyleGAN2 state dict (entries: {sorted(obj)})")
    found = _role_of(obj[key], layout)
    if found != role:
        raise CheckpointError(f"entry {key!r} holds a {found}, not a {role}")
    return key, _strip_module(obj[key])


# -- width inference ---------------------------------------------------------------------------
def _count_indexed(state: Mapping[str, Any], pattern: str) -> int:
    regex = re.compile(pattern)
    indices = {int(m.group(1)) for k in state if (m := regex.fullmatch(k))}
    if indices != set(range(len(indices))) and indices != set(range(1, len(indices) + 1)):
        raise CheckpointError(f"layer indices matching {pattern} are not contiguous: {sorted(indices)}")
    return len(indices)


def _blur_taps(kernel: torch.Tensor) -> tuple[float, ...] | tuple[int, ...]:
    """1-D taps of a separable 2-D FIR kernel (any gain); the default when it is [1,3,3,1]."""
    k2d = kernel.detach().double()
    k2d = k2d / k2d.sum()
    taps = k2d.sum(1)
    if not torch.allclose(torch.outer(taps, taps), k2d, atol=1e-6):
        raise CheckpointError(f"resampling filter of shape {tuple(kernel.shape)} is not separable")
    if taps.shape == (4,) and torch.allclose(taps, make_kernel(DEFAULT_BLUR).double().sum(1), atol=1e-6):
        return DEFAULT_BLUR
    return tuple(float(t) for t in taps)


def infer_generator_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Constructor arguments of the rosinality-layout generator that produced ``state``."""
    n_mapping = _count_indexed(state, r"style\.(\d+)\.weight")
    first = state["style.1.weight"]
    w_dim, z_dim = int(first.shape[0]), int(first.shape[1])
    n_convs = 1 + _count_indexed(state, r"convs\.(\d+)\.conv\.weight")
    if n_convs % 2 != 1:
        raise CheckpointError(f"expected an odd number of modulated 3x3 convs, found {n_convs}")
    resolution = 4 * 2 ** (n_convs // 2)
    conv_keys = ["conv1.conv.weight"] + [f"convs.{j}.conv.weight" for j in range(n_convs - 1)]
    channels = [int(state["input.input"].shape[1])] + [int(state[k].shape[1]) for k in conv_keys]
    config: dict[str, Any] = {
        "resolution": resolution,
        "z_dim": z_dim,
        "w_dim": w_dim,
        "n_mapping": n_mapping,
    }
    config.update(_widths_as_config(channels, resolution))
    if "convs.0.conv.blur.kernel" in state:
        config["blur_kernel"] = _blur_taps(state["convs.0.conv.blur.kernel"])
    return config


def _widths_as_config(channels: list[int], resolution: int) -> dict[str, Any]:
    # A standard config-F width list is stored as its channel multiplier (clean config); any other
    # (pruned) list as explicit ``channels``.
    for multiplier in (2, 1, 4, 8):
        if resolution < 64 and multiplier != 2:
            break
        if channels == generator_net_shape(resolution, multiplier):
            return {"channel_multiplier": multiplier, "channels": None}
    return {"channels": channels}


def infer_discriminator_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    n_blocks = _count_indexed(state, r"convs\.(\d+)\.conv2\.1\.weight")
    resolution = 4 * 2**n_blocks
    channels = [int(state["convs.0.0.weight"].shape[0])]
    channels += [int(state[f"convs.{k}.conv2.1.weight"].shape[0]) for k in range(1, n_blocks + 1)]
    config: dict[str, Any] = {"resolution": resolution, "channels": channels}
    for multiplier in (2, 1, 4, 8):
        if StyleGAN2Discriminator.default_channels(resolution, multiplier) == channels:
            config = {"resolution": resolution, "channel_multiplier": multiplier, "channels": None}
            break
    if "convs.1.conv2.0.kernel" in state:
        config["blur_kernel"] = _blur_taps(state["convs.1.conv2.0.kernel"])
    return config


def _apply_overrides(net_class: type, config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    allowed = [p for p in inspect.signature(net_class.__init__).parameters if p != "self"]
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise CheckpointError(
            f"unknown overrides {unknown} for {net_class.__name__} (allowed: key, {', '.join(allowed)})"
        )
    config = {**config, **overrides}
    # Overriding the geometry means the inferred width list no longer applies.
    if ("channel_multiplier" in overrides or "resolution" in overrides) and "channels" not in overrides:
        config["channels"] = None
    return {k: v for k, v in config.items() if not (k == "channels" and v is None)}


@torch.no_grad()
def estimate_latent_avg(
    state: Mapping[str, torch.Tensor],
    config: Mapping[str, Any],
    samples: int = LATENT_AVG_SAMPLES,
    seed: int = 0,
) -> torch.Tensor:
    """Mean w of ``samples`` seeded z through the checkpoint's mapping net (rosinality ``mean_latent``)."""
    mapping = MappingNetwork(
        config["z_dim"], config["w_dim"], config["n_mapping"], config.get("lr_mlp", 0.01)
    )
    mapping.load_state_dict({k[len("style.") :]: v for k, v in state.items() if k.startswith("style.")})
    z = torch.randn(samples, config["z_dim"], generator=torch.Generator().manual_seed(seed))
    return mapping(z.to(next(iter(state.values())).dtype)).mean(0)


# -- rosinality / CAGAN / DCP ------------------------------------------------------------------
def _convert_rosinality(obj: Any, role: Role, overrides: dict[str, Any]) -> Converted:
    key, state = _select_entry(obj, role, overrides, "rosinality", ROSINALITY_ENTRIES)
    return _build_converted(obj, key, state, role, overrides, "stylegan2-rosinality")


def _build_converted(
    obj: Mapping[str, Any],
    key: str | None,
    state: dict[str, torch.Tensor],
    role: Role,
    overrides: dict[str, Any],
    name: str,
) -> Converted:
    extra: dict[str, Any] = {"entry": key}
    if role == "discriminator":
        config = _apply_overrides(StyleGAN2Discriminator, infer_discriminator_config(state), overrides)
        return Converted("StyleGAN2Discriminator", config, state, name, extra)
    inferred = infer_generator_config(state)
    config = _apply_overrides(StyleGAN2Generator, inferred, overrides)
    if "latent_avg" not in state:
        stored = obj.get("latent_avg") if key in (None, "g_ema") else None
        if isinstance(stored, torch.Tensor):
            state["latent_avg"] = stored.reshape(-1)
            extra["latent_avg_source"] = "checkpoint"
        else:
            # Trained checkpoints (and CAGAN's) store no mean latent; truncation needs one.
            state["latent_avg"] = estimate_latent_avg(
                state, {**inferred, "lr_mlp": config.get("lr_mlp", 0.01)}
            )
            extra["latent_avg_source"] = f"estimated from {LATENT_AVG_SAMPLES} seeded samples"
    else:
        extra["latent_avg_source"] = "checkpoint"
    return Converted("StyleGAN2Generator", config, state, name, extra)


register_format(
    CheckpointFormat(
        name="stylegan2-rosinality",
        matches=lambda obj: _matches(obj, "rosinality", ROSINALITY_ENTRIES),
        convert=_convert_rosinality,
    )
)


# -- NVlabs ------------------------------------------------------------------------------------
def _nvlabs_block_resolutions(state: Mapping[str, Any], prefix: str) -> list[int]:
    regex = re.compile(re.escape(prefix) + r"b(\d+)\.")
    return sorted({int(m.group(1)) for k in state if (m := regex.match(k))})


def nvlabs_generator_to_rosinality(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """NVlabs ``Generator`` state dict (skip architecture, ``c_dim=0``) → our/rosinality keys.

    ``mapping.fc{i}`` → ``style.{i+1}``; ``mapping.w_avg`` → ``latent_avg``; ``b4.const`` →
    ``input.input``; ``b4.conv1`` → ``conv1``; ``b4.torgb`` → ``to_rgb1``; the k-th upsampling block
    ``b{res}``: ``conv0``/``conv1``/``torgb`` → ``convs.{2k}``/``convs.{2k+1}``/``to_rgbs.{k}``;
    ``affine`` → ``conv.modulation``, ``noise_strength`` → ``noise.weight``, ``bias`` →
    ``activate.bias``, ``noise_const`` → ``noises.noise_{i}``. Conv weights gain the leading
    singleton dim of rosinality's ``[1, out, in, k, k]``. Resampling-filter buffers become our
    blur buffers (normalised kernel × 4).
    """
    if any(k.startswith("mapping.embed.") for k in state):
        raise CheckpointError("conditional NVlabs generators (c_dim > 0, mapping.embed) are not supported")
    if any(k.startswith("synthesis.input.") or re.match(r"synthesis\.L\d+_", k) for k in state):
        raise CheckpointError("StyleGAN3 (alias-free) synthesis networks are not supported, only StyleGAN2")
    out: dict[str, torch.Tensor] = {}
    n_fc = _count_indexed(state, r"mapping\.fc(\d+)\.weight")
    for i in range(n_fc):
        out[f"style.{i + 1}.weight"] = state[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = state[f"mapping.fc{i}.bias"]
    if "mapping.w_avg" in state:
        out["latent_avg"] = state["mapping.w_avg"]
    resolutions = _nvlabs_block_resolutions(state, "synthesis.")
    if not resolutions or resolutions[0] != 4:
        raise CheckpointError("NVlabs generator without a synthesis.b4 block")
    filt = state.get("synthesis.b4.conv1.resample_filter")
    taps = _blur_taps(filt) if filt is not None else DEFAULT_BLUR
    up_kernel = make_kernel(taps) * 4
    out["input.input"] = state["synthesis.b4.const"].unsqueeze(0)
    _nvlabs_synthesis_layer(state, "synthesis.b4.conv1", "conv1", 0, out)
    _nvlabs_torgb(state, "synthesis.b4.torgb", "to_rgb1", out)
    for k, res in enumerate(resolutions[1:]):
        block = f"synthesis.b{res}"
        if f"{block}.skip.weight" in state or f"{block}.torgb.weight" not in state:
            raise CheckpointError(
                f"{block}: only the 'skip' synthesis architecture (StyleGAN2 config F) is supported"
            )
        _nvlabs_synthesis_layer(state, f"{block}.conv0", f"convs.{2 * k}", 2 * k + 1, out)
        _nvlabs_synthesis_layer(state, f"{block}.conv1", f"convs.{2 * k + 1}", 2 * k + 2, out)
        _nvlabs_torgb(state, f"{block}.torgb", f"to_rgbs.{k}", out)
        out[f"convs.{2 * k}.conv.blur.kernel"] = up_kernel.clone()
        out[f"to_rgbs.{k}.upsample.kernel"] = up_kernel.clone()
    return out


def _nvlabs_synthesis_layer(
    state: Mapping[str, torch.Tensor], src: str, dst: str, noise_index: int, out: dict[str, torch.Tensor]
) -> None:
    out[f"{dst}.conv.weight"] = state[f"{src}.weight"].unsqueeze(0)
    out[f"{dst}.conv.modulation.weight"] = state[f"{src}.affine.weight"]
    out[f"{dst}.conv.modulation.bias"] = state[f"{src}.affine.bias"]
    out[f"{dst}.noise.weight"] = state[f"{src}.noise_strength"].reshape(1)
    out[f"{dst}.activate.bias"] = state[f"{src}.bias"]
    if f"{src}.noise_const" in state:
        noise = state[f"{src}.noise_const"]
        out[f"noises.noise_{noise_index}"] = noise.reshape(1, 1, *noise.shape[-2:])


def _nvlabs_torgb(
    state: Mapping[str, torch.Tensor], src: str, dst: str, out: dict[str, torch.Tensor]
) -> None:
    out[f"{dst}.conv.weight"] = state[f"{src}.weight"].unsqueeze(0)
    out[f"{dst}.conv.modulation.weight"] = state[f"{src}.affine.weight"]
    out[f"{dst}.conv.modulation.bias"] = state[f"{src}.affine.bias"]
    out[f"{dst}.bias"] = state[f"{src}.bias"].reshape(1, -1, 1, 1)


def nvlabs_discriminator_to_rosinality(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """NVlabs residual ``Discriminator`` (``c_dim=0``) → our/rosinality keys.

    Top block ``fromrgb`` → ``convs.0``; the k-th block from the top: ``conv0`` → ``convs.{k+1}.conv1``,
    ``conv1`` (down) → ``convs.{k+1}.conv2``, ``skip`` → ``convs.{k+1}.skip``; ``b4.conv`` →
    ``final_conv``; ``b4.fc``/``b4.out`` → ``final_linear.0``/``.1``. NVlabs' √0.5 gains on both
    residual branches equal rosinality's division of the sum by √2.
    """
    if any(k.startswith("mapping.") for k in state):
        raise CheckpointError("conditional NVlabs discriminators (c_dim > 0) are not supported")
    resolutions = [r for r in _nvlabs_block_resolutions(state, "") if r != 4]
    if not resolutions:
        raise CheckpointError("NVlabs discriminator without blocks above 4 px")
    top = resolutions[-1]
    filt = state.get(f"b{top}.conv1.resample_filter")
    down_kernel = make_kernel(_blur_taps(filt) if filt is not None else DEFAULT_BLUR)
    out: dict[str, torch.Tensor] = {
        "convs.0.0.weight": state[f"b{top}.fromrgb.weight"],
        "convs.0.1.bias": state[f"b{top}.fromrgb.bias"],
    }
    for k, res in enumerate(sorted(resolutions, reverse=True)):
        src, dst = f"b{res}", f"convs.{k + 1}"
        if f"{src}.skip.weight" not in state or (res != top and f"{src}.fromrgb.weight" in state):
            raise CheckpointError(
                f"{src}: only the 'resnet' discriminator architecture (StyleGAN2 config F) is supported"
            )
        out[f"{dst}.conv1.0.weight"] = state[f"{src}.conv0.weight"]
        out[f"{dst}.conv1.1.bias"] = state[f"{src}.conv0.bias"]
        out[f"{dst}.conv2.0.kernel"] = down_kernel.clone()
        out[f"{dst}.conv2.1.weight"] = state[f"{src}.conv1.weight"]
        out[f"{dst}.conv2.2.bias"] = state[f"{src}.conv1.bias"]
        out[f"{dst}.skip.0.kernel"] = down_kernel.clone()
        out[f"{dst}.skip.1.weight"] = state[f"{src}.skip.weight"]
    out["final_conv.0.weight"] = state["b4.conv.weight"]
    out["final_conv.1.bias"] = state["b4.conv.bias"]
    out["final_linear.0.weight"] = state["b4.fc.weight"]
    out["final_linear.0.bias"] = state["b4.fc.bias"]
    out["final_linear.1.weight"] = state["b4.out.weight"]
    out["final_linear.1.bias"] = state["b4.out.bias"]
    return out


def generator_to_nvlabs(net: StyleGAN2Generator) -> dict[str, torch.Tensor]:
    """Our generator's weights in the NVlabs ``Generator`` state-dict layout (inverse mapping)."""
    state = net.state_dict()
    res_of_block = [2 ** (k + 3) for k in range(len(net.to_rgbs))]
    filt = make_kernel(net.config["blur_kernel"])
    out: dict[str, torch.Tensor] = {}
    for i in range(len(net.style) - 1):
        out[f"mapping.fc{i}.weight"] = state[f"style.{i + 1}.weight"]
        out[f"mapping.fc{i}.bias"] = state[f"style.{i + 1}.bias"]
    out["mapping.w_avg"] = state["latent_avg"]
    out["synthesis.b4.const"] = state["input.input"][0]
    out["synthesis.b4.resample_filter"] = filt.clone()
    layers = [("synthesis.b4.conv1", "conv1", 0)]
    rgbs = [("synthesis.b4.torgb", "to_rgb1")]
    for k, res in enumerate(res_of_block):
        layers += [
            (f"synthesis.b{res}.conv0", f"convs.{2 * k}", 2 * k + 1),
            (f"synthesis.b{res}.conv1", f"convs.{2 * k + 1}", 2 * k + 2),
        ]
        rgbs.append((f"synthesis.b{res}.torgb", f"to_rgbs.{k}"))
        out[f"synthesis.b{res}.resample_filter"] = filt.clone()
    for dst, src, noise_index in layers:
        out[f"{dst}.resample_filter"] = filt.clone()
        out[f"{dst}.noise_const"] = state[f"noises.noise_{noise_index}"][0, 0]
        out[f"{dst}.noise_strength"] = state[f"{src}.noise.weight"].reshape(())
        out[f"{dst}.weight"] = state[f"{src}.conv.weight"][0]
        out[f"{dst}.bias"] = state[f"{src}.activate.bias"]
        out[f"{dst}.affine.weight"] = state[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = state[f"{src}.conv.modulation.bias"]
    for dst, src in rgbs:
        out[f"{dst}.weight"] = state[f"{src}.conv.weight"][0]
        out[f"{dst}.bias"] = state[f"{src}.bias"].reshape(-1)
        out[f"{dst}.affine.weight"] = state[f"{src}.conv.modulation.weight"]
        out[f"{dst}.affine.bias"] = state[f"{src}.conv.modulation.bias"]
    return out


def discriminator_to_nvlabs(net: StyleGAN2Discriminator) -> dict[str, torch.Tensor]:
    """Our discriminator's weights in the NVlabs residual ``Discriminator`` layout (inverse mapping)."""
    state = net.state_dict()
    n_blocks = len(net.convs) - 1
    top = net.resolution
    filt = make_kernel(net.config["blur_kernel"])
    out: dict[str, torch.Tensor] = {
        f"b{top}.fromrgb.weight": state["convs.0.0.weight"],
        f"b{top}.fromrgb.bias": state["convs.0.1.bias"],
        f"b{top}.fromrgb.resample_filter": filt.clone(),
    }
    for k in range(n_blocks):
        dst, src = f"b{top >> k}", f"convs.{k + 1}"
        out[f"{dst}.resample_filter"] = filt.clone()
        out[f"{dst}.conv0.weight"] = state[f"{src}.conv1.0.weight"]
        out[f"{dst}.conv0.bias"] = state[f"{src}.conv1.1.bias"]
        out[f"{dst}.conv0.resample_filter"] = filt.clone()
        out[f"{dst}.conv1.weight"] = state[f"{src}.conv2.1.weight"]
        out[f"{dst}.conv1.bias"] = state[f"{src}.conv2.2.bias"]
        out[f"{dst}.conv1.resample_filter"] = filt.clone()
        out[f"{dst}.skip.weight"] = state[f"{src}.skip.1.weight"]
        out[f"{dst}.skip.resample_filter"] = filt.clone()
    out["b4.conv.weight"] = state["final_conv.0.weight"]
    out["b4.conv.bias"] = state["final_conv.1.bias"]
    out["b4.conv.resample_filter"] = filt.clone()
    out["b4.fc.weight"] = state["final_linear.0.weight"]
    out["b4.fc.bias"] = state["final_linear.0.bias"]
    out["b4.out.weight"] = state["final_linear.1.weight"]
    out["b4.out.bias"] = state["final_linear.1.bias"]
    return out


def _convert_nvlabs(obj: Any, role: Role, overrides: dict[str, Any]) -> Converted:
    key, state = _select_entry(obj, role, overrides, "nvlabs", NVLABS_ENTRIES)
    if role == "generator":
        state = nvlabs_generator_to_rosinality(state)
    else:
        state = nvlabs_discriminator_to_rosinality(state)
    return _build_converted(obj, key, state, role, overrides, "stylegan2-nvlabs")


register_format(
    CheckpointFormat(
        name="stylegan2-nvlabs",
        matches=lambda obj: _matches(obj, "nvlabs", NVLABS_ENTRIES),
        convert=_convert_nvlabs,
    )
)
