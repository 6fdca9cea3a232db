"""From a comparison config to arms: budgets resolved on the teacher, one run directory and one
complete ``gancomp`` config per (budget, method, seed).

Each arm's config is the method's own config (its files and overrides, parsed by the same
LightningCLI parser ``gancomp fit`` uses, ``--print_config``) with what the comparison fixes
written in: the teacher file, the student file ``gancomp prune`` writes, the budget's pruning
ratio, the seed, the shared data / trainer settings / evaluation metrics, and paths inside the
arm's run directory. The result is saved as ``<run>/config.yaml``, so every step of the arm is a
plain command a user can rerun: ``gancomp prune|fit|test|export -c <run>/config.yaml``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from lightning_gancomp.compare.spec import Budget, CompareConfigError, CompareSpec, Convention, MethodSpec
from lightning_gancomp.nets.base import GanNet

GAN_CHECKPOINT = "lightning_gancomp.callbacks.GanCheckpoint"
UNIFORM_POLICY = "lightning_gancomp.pruning.plan.UniformPolicy"


@dataclass(frozen=True)
class ResolvedBudget:
    """A budget in MACs of its convention, and the uniform removal ratio that meets it."""

    budget: Budget
    target_macs: int
    teacher_macs: int
    ratio: float


@dataclass(frozen=True)
class Arm:
    """One training run of the comparison: a method at a budget with a seed."""

    budget: str
    method: str
    seed: int
    run_dir: str
    pruned_path: str | None

    @property
    def name(self) -> str:
        return f"{self.budget}/{self.method}/seed{self.seed}"

    @property
    def config_path(self) -> str:
        return os.path.join(self.run_dir, "config.yaml")


# -- budgets -------------------------------------------------------------------------------------
def mac_counter(convention: Convention) -> Callable[[GanNet], int]:
    """MACs of one generator forward (batch 1) in the named convention (``metrics.complexity``)."""
    from lightning_gancomp.metrics import complexity

    if convention == "cagan":
        return lambda net: int(complexity.cagan_stylegan2_macs(net))

    def torchprofile(net: GanNet) -> int:
        return int(complexity.torchprofile_macs(net, *complexity.example_inputs_for(net, batch_size=1)))

    return torchprofile


def resolve_budget(teacher: GanNet, budget: Budget) -> ResolvedBudget:
    """Target MACs and the smallest uniform ratio meeting them (the MAC-budget policy's search,
    ``pruning.budget.ratio_for_budget``, in the budget's convention)."""
    from lightning_gancomp.pruning.budget import macs_at_ratio, ratio_for_budget
    from lightning_gancomp.pruning.plan import PlanError

    count = mac_counter(budget.convention)
    try:
        teacher_macs = count(teacher)
    except TypeError as exc:
        raise CompareConfigError(f"budget {budget.name}: convention {budget.convention}: {exc}") from exc
    if budget.kind == "removal_ratio":
        return ResolvedBudget(budget, macs_at_ratio(teacher, budget.value, count), teacher_macs, budget.value)
    target = int(budget.value if budget.kind == "macs" else teacher_macs * budget.value)
    try:
        ratio = ratio_for_budget(teacher, target, count)
    except PlanError as exc:
        raise CompareConfigError(f"budget {budget.name}: {exc}") from exc
    return ResolvedBudget(budget, target, teacher_macs, ratio)


def teacher_file(spec: CompareSpec) -> str:
    """The teacher's file on disk (a ``builtin:`` name resolved to the shipped file)."""
    from lightning_gancomp.pretrained import BuiltinTeacherError, resolve_checkpoint_path

    try:
        return resolve_checkpoint_path(spec.teacher.path)
    except BuiltinTeacherError as exc:
        raise CompareConfigError(f"{spec.source}: teacher.path: {exc}") from None


def load_teacher(spec: CompareSpec) -> GanNet:
    """The teacher generator: its file, or (no file yet, e.g. a written-not-run paper config) the
    configured architecture, which is all budgets need."""
    from lightning_gancomp.checkpoints import load_generator

    if os.path.isfile(teacher_file(spec)):
        return load_generator(spec.teacher.path)
    if spec.teacher.architecture is not None:
        return instantiate(spec.teacher.architecture)
    raise CompareConfigError(
        f"{spec.source}: teacher.path: {spec.teacher.path} does not exist "
        "(give teacher.train_config to train it, or teacher.architecture for a dry run)"
    )


def instantiate(config: Mapping[str, Any]) -> Any:
    """Build a ``{class_path, init_args}`` mapping with jsonargparse (as the CLI would)."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--net", type=GanNet)
    return parser.instantiate_classes(parser.parse_object({"net": dict(config)})).net


# -- arms ----------------------------------------------------------------------------------------
def method_dir(spec: CompareSpec, budget: str, method: str) -> str:
    return os.path.join(spec.output_dir, budget, method)


def arms_of(spec: CompareSpec) -> list[Arm]:
    """Every arm, budget-major then method then seed (the order they run in)."""
    arms = []
    for budget in spec.budgets:
        for method in spec.methods:
            base = method_dir(spec, budget.name, method.name)
            pruned = os.path.join(base, "pruned.ckpt") if method.prune else None
            for seed in spec.seeds:
                arms.append(Arm(budget.name, method.name, seed, os.path.join(base, f"seed{seed}"), pruned))
    return arms


def teacher_arm(spec: CompareSpec) -> Arm:
    """The teacher's row: evaluated with the same protocol (no training)."""
    return Arm("teacher", "teacher", spec.seeds[0], os.path.join(spec.output_dir, "teacher"), None)


# -- configs -------------------------------------------------------------------------------------
def printed_config(configs: Sequence[str], overrides: Sequence[str], where: str) -> dict[str, Any]:
    """The complete ``gancomp fit`` config of ``configs`` + ``overrides`` (the CLI's own parse)."""
    from lightning_gancomp.cli import ConfigError, one_line, run_cli

    for path in configs:
        if not os.path.isfile(path):
            raise CompareConfigError(f"{where}: config {path} does not exist")
    args = ["fit", *[a for path in configs for a in ("-c", path)], *overrides, "--print_config"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), own_argv():
            run_cli(args, parser_kwargs={"exit_on_error": False})
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise CompareConfigError(f"{where}: the method config does not parse") from exc
    except ConfigError as exc:
        raise CompareConfigError(f"{where}: {one_line(str(exc))}") from exc
    config = yaml.safe_load(out.getvalue())
    for key in ("ckpt_path", "weights_only"):  # fit/test-only keys: the arm's file serves every step
        config.pop(key, None)
    return config


@contextlib.contextmanager
def own_argv() -> Iterator[None]:
    """``sys.argv`` without the ``compare`` arguments while a nested ``gancomp`` command runs
    (LightningCLI warns when both ``args`` and ``sys.argv`` carry arguments)."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _checkpoint_callbacks(trainer: dict[str, Any], run_dir: str, every: int) -> None:
    callbacks = trainer.get("callbacks") or []
    settings = {
        "dirpath": os.path.join(run_dir, "checkpoints"),
        "every_n_batches": every,
        "save_last": True,
        "enable_version_counter": False,
    }
    found = False
    for callback in callbacks:
        if isinstance(callback, dict) and callback.get("class_path", "").endswith("GanCheckpoint"):
            callback.setdefault("init_args", {}).update(settings)
            found = True
    if not found:
        callbacks.append({"class_path": GAN_CHECKPOINT, "init_args": settings})
    trainer["callbacks"] = callbacks


def arm_trainer(config: dict[str, Any], spec: CompareSpec, run_dir: str) -> None:
    trainer = config.setdefault("trainer", {})
    trainer["enable_progress_bar"] = False
    deep_merge(trainer, spec.trainer)
    trainer["default_root_dir"] = run_dir
    trainer["logger"] = {
        "class_path": "pytorch_lightning.loggers.CSVLogger",
        "init_args": {"save_dir": run_dir, "name": "logs", "version": "fit"},
    }
    if spec.protocol.test_batches is not None:
        trainer["limit_test_batches"] = spec.protocol.test_batches
    _checkpoint_callbacks(trainer, run_dir, spec.checkpoint_every)


def arm_model(model: dict[str, Any], spec: CompareSpec, arm: Arm, ratio: float | None) -> None:
    """Teacher, discriminator, student file, pruning ratio and metrics of one arm."""
    args = model.setdefault("init_args", {})
    if "teacher_path" in args:  # teacher-free methods (CoroNet) take none
        args["teacher"] = copy.deepcopy(spec.teacher.architecture)
        args["teacher_path"] = spec.teacher.path
    if args.get("discriminator_path"):  # the method starts from the teacher's D: the compared one
        args["discriminator_path"] = spec.teacher.discriminator_path or spec.teacher.path
    if arm.pruned_path is not None:
        args["student"] = None
        args["student_path"] = arm.pruned_path
        args["policy"] = {"class_path": UNIFORM_POLICY, "init_args": {"ratio": ratio}}
    if spec.protocol.metrics is not None:
        args["metrics"] = copy.deepcopy(spec.protocol.metrics)


def compose_arm(spec: CompareSpec, method: MethodSpec, arm: Arm, ratio: float | None) -> dict[str, Any]:
    """The complete config of one arm (see the module docstring)."""
    where = f"{spec.source}: methods.{method.name}"
    config = printed_config(method.configs, method.overrides, where)
    if "model" not in config or "trainer" not in config:
        raise CompareConfigError(f"{where}: {method.configs} give no model/trainer")
    config["seed_everything"] = arm.seed
    arm_trainer(config, spec, arm.run_dir)
    arm_model(config["model"], spec, arm, ratio)
    if spec.data is not None:
        config["data"] = copy.deepcopy(spec.data)
    return config


def compose_teacher(spec: CompareSpec, method: MethodSpec) -> dict[str, Any]:
    """The teacher row's config: the first method's, with the teacher file as its "student"."""
    arm = teacher_arm(spec)
    config = compose_arm(spec, method, arm, None)
    args = config["model"]["init_args"]
    args.update(student=None, student_path=spec.teacher.path, student_init="pruned_teacher", policy=None)
    return config


def dump(config: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=False)


def config_hash(text: str) -> str:
    """Hash of a config's content (key order and YAML layout do not count)."""
    canonical = json.dumps(yaml.safe_load(text), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
