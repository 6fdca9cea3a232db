"""kwotsin/mimicry SN-GAN checkpoints (``netG/netG_<step>_steps.pth``, ``netD/...``).

``BaseModel.save_checkpoint`` writes ``{'model_state_dict', 'optimizer_state_dict',
'global_step'}``; a bare ``model_state_dict`` is accepted too. Our
:mod:`lightning_gancomp.nets.sngan` uses mimicry's key names (``l1``, ``block2.c1``, ``b5``,
``c5``; discriminator ``block1.c1.weight_orig/weight_u/weight_v``, ``l5``), so conversion only
infers the widths from the shapes.

Defaults follow what mimicry actually ran, not the Chainer original, because those are the
weights being loaded: generators upsample bilinearly (``upsample="bilinear"``) and
discriminators feed ``relu(x)`` to the shortcut (``shortcut_input="relu"``, mimicry's in-place
ReLU). Both are overridable, as is any other constructor argument the weights cannot tell
(``downsample`` of the discriminator: the 32 px pattern ``[True, True, False, ...]`` by default).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

from lightning_gancomp.checkpoints import CheckpointError, CheckpointFormat, Converted, Role, register_format
from lightning_gancomp.nets.sngan import SNGANDiscriminator, SNGANGenerator

FORMAT_NAME = "mimicry-sngan"


def _state_of(obj: Any) -> Mapping[str, Any] | None:
    if not isinstance(obj, Mapping):
        return None
    state = obj.get("model_state_dict", obj)
    return state if isinstance(state, Mapping) else None


def _is_generator_state(state: Mapping[str, Any]) -> bool:
    return "l1.weight" in state and "block2.c1.weight" in state and "block2.b1.running_mean" in state


def _is_discriminator_state(state: Mapping[str, Any]) -> bool:
    return "block1.c1.weight_orig" in state and "block1.c_sc.weight_u" in state


def _matches(obj: Any) -> bool:
    state = _state_of(obj)
    if state is None or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return False
    return _is_generator_state(state) or _is_discriminator_state(state)


def generator_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Constructor arguments of :class:`SNGANGenerator` fitting a mimicry generator state."""
    n = 0
    while f"block{n + 2}.c1.weight" in state:
        n += 1
    first = int(state["block2.c1.weight"].shape[1])
    cells = int(state["l1.weight"].shape[0]) // first
    bottom_width = int(round(cells**0.5))
    if bottom_width**2 * first != state["l1.weight"].shape[0]:
        raise CheckpointError(f"l1.weight {tuple(state['l1.weight'].shape)} is not C x square")
    return {
        "z_dim": int(state["l1.weight"].shape[1]),
        "stream_channels": [first] + [int(state[f"block{i + 2}.c2.weight"].shape[0]) for i in range(n)],
        "hidden_channels": [int(state[f"block{i + 2}.c1.weight"].shape[0]) for i in range(n)],
        "bottom_width": bottom_width,
        "upsample": "bilinear",
    }


def discriminator_config(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Constructor arguments of :class:`SNGANDiscriminator` fitting a mimicry D state."""
    n = 0
    while f"block{n + 1}.c1.weight_orig" in state:
        n += 1
    if f"l{n + 1}.weight_orig" not in state:
        raise CheckpointError(
            f"mimicry discriminator with {n} blocks but no head l{n + 1} (only 32 px layouts)"
        )
    return {
        "stream_channels": [int(state[f"block{i + 1}.c2.weight_orig"].shape[0]) for i in range(n)],
        "hidden_channels": [int(state[f"block{i + 1}.c1.weight_orig"].shape[0]) for i in range(n)],
        "shortcut_input": "relu",
    }


def _convert(obj: Any, role: Role, overrides: dict[str, Any]) -> Converted:
    state = dict(_state_of(obj) or {})
    is_generator = _is_generator_state(state)
    if (role == "generator") != is_generator:
        held = "generator" if is_generator else "discriminator"
        raise CheckpointError(f"{FORMAT_NAME}: this file holds a {held}; use load_{held}")
    net_class: type = SNGANGenerator if is_generator else SNGANDiscriminator
    config = generator_config(state) if is_generator else discriminator_config(state)
    allowed = set(inspect.signature(net_class.__init__).parameters) - {"self"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise CheckpointError(f"{FORMAT_NAME}: unknown overrides {unknown} for {net_class.__name__}")
    extra = {"global_step": int(obj["global_step"])} if isinstance(obj.get("global_step"), int) else {}
    return Converted(
        net_class=net_class.__name__,
        config={**config, **overrides},
        state_dict=state,
        source_format=FORMAT_NAME,
        extra=extra,
    )


register_format(CheckpointFormat(name=FORMAT_NAME, matches=_matches, convert=_convert))
