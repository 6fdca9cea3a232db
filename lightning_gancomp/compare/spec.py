"""The comparison config (``configs/compare/*.yaml``): one teacher, one dataset, budgets, methods,
seeds and the evaluation protocol — read, checked and given defaults here.

A comparison config is not a LightningModule config: it *names* method configs (each a normal
``gancomp fit`` config, or a list of composable pieces) and says what every arm shares. Every bad
key or value is a :class:`CompareConfigError` whose one-line message names the file and the key.

Layout (every key but ``teacher.path``, ``budgets`` and ``methods`` has a default)::

    name: stylegan2_embedded
    output_dir: runs/compare/stylegan2_embedded
    teacher: {path: builtin:stylegan2_embedded | runs/.../last.ckpt, train_config: configs/teacher/...}
    data: {class_path: ..., init_args: {...}}          # replaces every arm's data
    budgets: [{name: r0.7, removal_ratio: 0.7, convention: cagan}]
    tolerance: 0.05                                    # |student MACs / budget - 1| allowed
    seeds: [0, 1, 2]
    trainer: {max_epochs: 2, limit_train_batches: 50}  # merged into every arm's trainer
    checkpoint_every: 25                               # batches between resumable checkpoints
    protocol: {metrics: {...} or ../metrics/<piece>.yaml, test_batches: 8, l1_samples: 256, ...}
    methods: {cagan: {config: configs/cagan/ffhq256_embedded.yaml, overrides: [...]}}
    wandb: {project: gancomp-compare}                 # optional: report table + plots to W&B
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

Convention = Literal["cagan", "torchprofile"]
BudgetKind = Literal["removal_ratio", "mac_fraction", "macs"]
BUDGET_KINDS: tuple[BudgetKind, ...] = ("removal_ratio", "mac_fraction", "macs")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class CompareConfigError(ValueError):
    """The comparison config is invalid (one line naming the file and key)."""


@dataclass(frozen=True)
class Budget:
    """One compression target: a removal ratio, a fraction of the teacher's MACs, or absolute MACs,
    counted in ``convention`` (``metrics.complexity``: CAGAN's analytic count or torchprofile)."""

    name: str
    kind: BudgetKind
    value: float
    convention: Convention


@dataclass(frozen=True)
class MethodSpec:
    """One method of the comparison: its config file(s), CLI overrides, and how it meets a budget.

    ``prune: true`` — prune-then-train: ``gancomp prune`` with the budget's uniform ratio makes the
    student; ``false`` — the method reaches its own target while training (PPCD, CoroNet: give
    the target in ``overrides``); its final student is checked against the budget all the same.
    """

    name: str
    configs: tuple[str, ...]
    overrides: tuple[str, ...] = ()
    prune: bool = True
    label: str = ""


@dataclass(frozen=True)
class Protocol:
    """How every arm is evaluated (same for all): the metrics object and sample counts.

    ``metrics`` replaces every arm's ``model.init_args.metrics`` (None: each arm keeps its own);
    ``test_batches`` becomes every arm's ``trainer.limit_test_batches`` (None: the whole test split
    of the data, whose size the comparison's ``data`` section states).
    """

    metrics: dict[str, Any] | None = None
    test_batches: int | None = None
    l1_samples: int = 0
    lpips_pairs: int = 0
    lpips_net: Literal["vgg", "alex"] = "vgg"
    lpips_pretrained: bool = True
    latency_batch_size: int = 1
    latency_repeats: int = 10
    latency_warmup: int = 3
    measure_latency: bool = True
    grid_samples: int = 8
    primary: str = "fid"


@dataclass(frozen=True)
class TeacherSpec:
    path: str
    discriminator_path: str | None = None
    architecture: dict[str, Any] | None = None
    train_config: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompareSpec:
    source: str
    name: str
    output_dir: str
    teacher: TeacherSpec
    budgets: tuple[Budget, ...]
    methods: tuple[MethodSpec, ...]
    seeds: tuple[int, ...] = (0,)
    tolerance: float = 0.05
    data: dict[str, Any] | None = None
    trainer: dict[str, Any] = field(default_factory=dict)
    checkpoint_every: int = 50
    protocol: Protocol = field(default_factory=Protocol)
    wandb: dict[str, Any] | None = None


# -- reading ------------------------------------------------------------------------------------
class _Reader:
    """Typed access to a YAML mapping; every error names the file and the dotted key."""

    def __init__(self, source: str, mapping: Any, prefix: str = "") -> None:
        self.source, self.prefix = source, prefix
        if not isinstance(mapping, dict):
            self.fail("", f"must be a mapping, got {type(mapping).__name__}")
        self.mapping: dict[str, Any] = mapping

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}" if name else self.prefix.rstrip(".")

    def fail(self, name: str, message: str) -> None:
        where = self.key(name) or "top level"
        raise CompareConfigError(f"{self.source}: {where}: {message}")

    def unknown(self, allowed: set[str]) -> None:
        extra = sorted(set(self.mapping) - allowed)
        if extra:
            self.fail(extra[0], f"unknown key (expected one of {', '.join(sorted(allowed))})")

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = ..., none_ok: bool = False) -> Any:
        if name not in self.mapping:
            if default is ...:
                self.fail(name, "is required")
            return default
        value = self.mapping[name]
        if value is None and none_ok:
            return None
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            self.fail(name, f"must be {_kind_name(kind)}, got {value!r}")
        if not isinstance(value, kind):
            self.fail(name, f"must be {_kind_name(kind)}, got {value!r}")
        return value

    def child(self, name: str, default: Any = ...) -> _Reader:
        return _Reader(self.source, self.get(name, dict, default), f"{self.key(name)}.")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {"str": "a string", "int": "an integer", "float": "a number", "dict": "a mapping"}
    names.update({"list": "a list", "bool": "true/false"})
    return " or ".join(names.get(k.__name__, k.__name__) for k in kinds)


def _string_list(reader: _Reader, name: str, default: Any = ...) -> tuple[str, ...]:
    value = reader.get(name, (str, list), default)
    items = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(v, str) for v in items):
        reader.fail(name, "must be a string or a list of strings")
    return tuple(items)


def _name(reader: _Reader, key: str, value: Any) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        reader.fail(key, f"name {value!r} must be letters, digits, '_', '-', '.' (it names a directory)")
    return value


def read_budget(reader: _Reader, index: int) -> Budget:
    entry = _Reader(reader.source, reader.mapping, f"budgets[{index}].")
    kinds = [k for k in BUDGET_KINDS if k in entry.mapping]
    if len(kinds) != 1:
        entry.fail("", f"give exactly one of {', '.join(BUDGET_KINDS)}")
    kind = kinds[0]
    value = float(entry.get(kind, (int, float)))
    if kind == "removal_ratio" and not 0.0 <= value < 1.0:
        entry.fail(kind, f"must be in [0, 1), got {value}")
    if kind == "mac_fraction" and not 0.0 < value <= 1.0:
        entry.fail(kind, f"must be in (0, 1], got {value}")
    if kind == "macs" and value <= 0:
        entry.fail(kind, f"must be positive, got {value}")
    convention = entry.get("convention", str, "cagan")
    if convention not in ("cagan", "torchprofile"):
        entry.fail("convention", f"must be 'cagan' or 'torchprofile', got {convention!r}")
    default_name = f"{kind}_{value:g}"
    name = _name(entry, "name", entry.get("name", str, default_name))
    entry.unknown({"name", "convention", *BUDGET_KINDS})
    return Budget(name, kind, value, convention)


def read_method(reader: _Reader, name: str) -> MethodSpec:
    _name(reader, name, name)
    entry = reader.child(name)
    configs = _string_list(entry, "config")
    overrides = _string_list(entry, "overrides", ())
    prune = entry.get("prune", bool, True)
    label = entry.get("label", str, name)
    entry.unknown({"config", "overrides", "prune", "label"})
    return MethodSpec(name, configs, overrides, prune, label)


def read_protocol(reader: _Reader) -> Protocol:
    entry = reader.child("protocol", {})
    lpips = entry.child("lpips", {})
    latency = entry.get("latency", dict, {}, none_ok=True)
    latency_reader = _Reader(entry.source, latency or {}, f"{entry.key('latency')}.")
    protocol = Protocol(
        metrics=read_metrics(entry),
        test_batches=entry.get("test_batches", int, None, none_ok=True),
        l1_samples=entry.get("l1_samples", int, 0),
        lpips_pairs=entry.get("lpips_pairs", int, 0),
        lpips_net=lpips.get("net", str, "vgg"),
        lpips_pretrained=lpips.get("pretrained_backbone", bool, True),
        latency_batch_size=latency_reader.get("batch_size", int, 1),
        latency_repeats=latency_reader.get("repeats", int, 10),
        latency_warmup=latency_reader.get("warmup", int, 3),
        measure_latency=latency is not None,
        grid_samples=entry.get("grid_samples", int, 8),
        primary=entry.get("primary", str, "fid"),
    )
    if protocol.lpips_net not in ("vgg", "alex"):
        lpips.fail("net", f"must be 'vgg' or 'alex', got {protocol.lpips_net!r}")
    lpips.unknown({"net", "pretrained_backbone"})
    latency_reader.unknown({"batch_size", "repeats", "warmup"})
    entry.unknown(
        {
            "metrics",
            "test_batches",
            "l1_samples",
            "lpips_pairs",
            "lpips",
            "latency",
            "grid_samples",
            "primary",
        }
    )
    return protocol


def read_metrics(entry: _Reader) -> dict[str, Any] | None:
    """``protocol.metrics``: a ``{class_path, init_args}`` mapping, or the path of a YAML file holding
    one (a protocol piece such as ``configs/metrics/embedded_unconditional.yaml``), relative to the
    comparison config as jsonargparse resolves a sub-config path relative to the file naming it."""
    value = entry.get("metrics", (dict, str), None, none_ok=True)
    if not isinstance(value, str):
        return value
    path = os.path.join(os.path.dirname(entry.source), value)
    if not os.path.isfile(path):
        entry.fail("metrics", f"{path}: no such file")
    with open(path, encoding="utf-8") as handle:
        try:
            piece = yaml.safe_load(handle)
        except yaml.YAMLError as exc:
            entry.fail("metrics", f"{path}: not valid YAML ({one_line_yaml(exc)})")
    if not isinstance(piece, dict) or "class_path" not in piece:
        entry.fail("metrics", f"{path}: must hold a mapping with class_path")
    return piece


def read_teacher(reader: _Reader) -> TeacherSpec:
    entry = reader.child("teacher")
    spec = TeacherSpec(
        path=entry.get("path", str),
        discriminator_path=entry.get("discriminator_path", str, None, none_ok=True),
        architecture=entry.get("architecture", dict, None, none_ok=True),
        train_config=_string_list(entry, "train_config", ()),
    )
    entry.unknown({"path", "discriminator_path", "architecture", "train_config"})
    return spec


def load_spec(path: str) -> CompareSpec:
    """Read and check a comparison config (one line naming file and key on any error)."""
    if not os.path.isfile(path):
        raise CompareConfigError(f"{path}: no such comparison config")
    with open(path, encoding="utf-8") as handle:
        try:
            raw = yaml.safe_load(handle)
        except yaml.YAMLError as exc:
            raise CompareConfigError(f"{path}: not valid YAML ({one_line_yaml(exc)})") from exc
    top = _Reader(path, raw)
    budgets = top.get("budgets", list)
    methods = top.child("methods")
    if not budgets or not methods.mapping:
        top.fail("budgets" if not budgets else "methods", "must not be empty")
    seeds = top.get("seeds", list, [0])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        top.fail("seeds", f"must be a non-empty list of integers, got {seeds!r}")
    name = _name(top, "name", top.get("name", str, os.path.splitext(os.path.basename(path))[0]))
    spec = CompareSpec(
        source=path,
        name=name,
        output_dir=top.get("output_dir", str, os.path.join("runs", "compare", name)),
        teacher=read_teacher(top),
        budgets=tuple(read_budget(_Reader(path, b, f"budgets[{i}]."), i) for i, b in enumerate(budgets)),
        methods=tuple(read_method(methods, m) for m in methods.mapping),
        seeds=tuple(dict.fromkeys(seeds)),
        tolerance=float(top.get("tolerance", (int, float), 0.05)),
        data=top.get("data", dict, None, none_ok=True),
        trainer=top.get("trainer", dict, {}),
        checkpoint_every=top.get("checkpoint_every", int, 50),
        protocol=read_protocol(top),
        wandb=top.get("wandb", dict, None, none_ok=True),
    )
    top.unknown(
        {"name", "output_dir", "teacher", "budgets", "methods", "seeds", "tolerance", "data", "trainer"}
        | {"checkpoint_every", "protocol", "wandb"}
    )
    _check_unique(top, "budgets", [b.name for b in spec.budgets])
    if not 0 <= spec.tolerance < 1:
        top.fail("tolerance", f"must be in [0, 1), got {spec.tolerance}")
    if spec.checkpoint_every < 1:
        top.fail("checkpoint_every", f"must be >= 1, got {spec.checkpoint_every}")
    return spec


def _check_unique(reader: _Reader, key: str, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            reader.fail(key, f"name {name!r} appears twice")
        seen.add(name)


def one_line_yaml(exc: Exception) -> str:
    return re.sub(r"\s+", " ", str(exc)).strip()
