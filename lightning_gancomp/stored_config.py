"""A checkpoint's stored ``hyper_parameters`` never rewrite the configuration (issue 8, item 2).

LightningCLI merges the ``hyper_parameters`` of ``--ckpt_path`` into the parsed configuration
(``LightningCLI._parse_ckpt_path``): a data file would silently change settings the user wrote
(``grid_size`` 16 → 3). Here the configuration the user gave wins; the stored values are only
compared with it: differences are reported in one line, and refused where they change the
networks (another model class, or a network class/width), because the weights would then
belong to another architecture.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning_gancomp.checkpoints import CheckpointError

_MISSING = object()


def _plain(value: Any) -> Any:
    """jsonargparse Namespaces → dicts, tuples → lists, so stored and parsed values compare."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def builds_network(value: Any) -> bool:
    """True when ``value`` (or anything inside it) is a ``lightning_gancomp.nets`` class spec."""
    if isinstance(value, Mapping):
        if str(value.get("class_path", "")).startswith("lightning_gancomp.nets."):
            return True
        return any(builds_network(v) for v in value.values())
    if isinstance(value, list):
        return any(builds_network(v) for v in value)
    return False


def first_difference(stored: Any, configured: Any, where: str) -> str:
    """``where.sub.key checkpoint X, config Y`` at the first differing leaf."""
    if isinstance(stored, Mapping) and isinstance(configured, Mapping):
        for key in list(stored) + [k for k in configured if k not in stored]:
            a, b = stored.get(key, _MISSING), configured.get(key, _MISSING)
            if a != b:
                return first_difference(a, b, f"{where}.{key}")
    show = lambda v: "unset" if v is _MISSING else repr(v)  # noqa: E731 - local formatter
    return f"{where} checkpoint {show(stored)}, config {show(configured)}"


def compare_stored_hyperparameters(
    ckpt_path: str, hparams: Mapping[str, Any], model_config: Any
) -> list[str]:
    """Differences between a checkpoint's stored ``hyper_parameters`` and the configured model,
    one phrase each; :class:`CheckpointError` when one of them changes the networks."""
    model = _plain(model_config) or {}
    init_args = model.get("init_args") or {}
    stored = _plain(dict(hparams))
    stored.pop("_instantiator", None)
    class_path = stored.pop("_class_path", None)
    if class_path is not None and model.get("class_path") and class_path != model["class_path"]:
        raise CheckpointError(
            f"{ckpt_path}: trained with model {class_path}, the config builds {model['class_path']}; "
            "resume with the configuration it was trained with"
        )
    differences, network = [], []
    for key, value in stored.items():
        configured = init_args.get(key, _MISSING)
        if value == configured:
            continue
        phrase = first_difference(value, configured, key)
        (network if builds_network(value) or builds_network(configured) else differences).append(phrase)
    if network:
        raise CheckpointError(
            f"{ckpt_path}: its stored configuration builds other networks than the config ("
            + "; ".join(network)
            + "); resume with the configuration it was trained with"
        )
    return differences
