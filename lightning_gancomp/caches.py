"""Reading cache files that the framework can recompute (real statistics, the embedded face-mask
network): a corrupt or foreign cache is a warning and a recomputation, never a crash
(``EOFError`` of a truncated file, ``UnpicklingError`` of a non-tensor file, a state dict of
another shape)."""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch
from torch import nn

from lightning_gancomp.checkpoints import load_error_reason
from lightning_gancomp.nets.base import CheckpointMismatchError, load_state_dict_strict


def read_cache(path: str, what: str) -> Any | None:
    """The content of cache file ``path`` (weights-only), or None when it is absent or unreadable
    (then with a warning naming it): the caller recomputes and overwrites it."""
    if not os.path.isfile(path):
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable cache is recomputed
        warnings.warn(
            f"{path}: unreadable {what} cache ({load_error_reason(err)}); recomputing it", stacklevel=2
        )
        return None


def load_cached_weights(network: nn.Module, path: str, what: str) -> bool:
    """Load a cached state dict into ``network``; False (with a warning) when the cache is absent,
    unreadable or of another shape, so the caller trains/recomputes and saves it again."""
    state = read_cache(path, what)
    if state is None:
        return False
    try:
        load_state_dict_strict(network, state, path)
    except (CheckpointMismatchError, TypeError, AttributeError) as err:
        warnings.warn(f"{path}: {what} cache does not fit ({err}); recomputing it", stacklevel=2)
        return False
    return True
