"""``gancomp prune`` as a plain function (the CLI only forwards arguments).

``prune``: teacher checkpoint (any format ``load_generator`` reads) + scorer + policy → a
student checkpoint and the plan JSON. The student generator is the teacher with its pruned
channels cut out (mapping network, noise strengths and RGB biases copied as they are), the
same class with smaller widths; the teacher's discriminator, when the file has one, travels
alongside (CAGAN/DCP initialise D from the teacher's D). The student file uses our training
checkpoint layout (``{"gancomp_nets": {"g", "g_ema", "d"}}``), so ``load_generator`` and the
compression methods' ``student=`` / ``discriminator=`` arguments read it directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from lightning_gancomp.atomic import atomic_paths, check_writable
from lightning_gancomp.checkpoints import CheckpointError, load_discriminator, load_generator
from lightning_gancomp.methods.compression import CompressionModule, check_same_architecture
from lightning_gancomp.nets.base import GanNet, count_params, net_payload
from lightning_gancomp.pruning.importance import ContentAwareScorer, Scorer
from lightning_gancomp.pruning.plan import PruningPlan, PruningPolicy, UniformPolicy, file_sha256
from lightning_gancomp.pruning.surgery import apply_plan, describe_widths, group_sizes


class PruneError(ValueError):
    """Bad ``gancomp prune`` arguments (outputs over the teacher, no teacher or output given)."""


@dataclass
class Complexity:
    params: int
    macs: int | None

    def line(self) -> str:
        macs = f"{self.macs:,}" if self.macs is not None else "n/a"
        return f"params {self.params:,}  MACs {macs}"


def measure(net: GanNet) -> Complexity:
    """Parameters and MACs (CAGAN convention for StyleGAN2, torchprofile otherwise)."""
    from lightning_gancomp.pruning.budget import default_mac_counter

    try:
        macs: int | None = default_mac_counter(net)
    except (ImportError, AttributeError, RuntimeError, TypeError, ValueError):
        macs = None  # a net the profiler cannot trace: still report parameters
    return Complexity(count_params(net), macs)


@dataclass
class PruneResult:
    student: GanNet
    plan: PruningPlan
    before: Complexity
    after: Complexity
    output: str
    plan_path: str
    discriminator: GanNet | None = None
    report: list[str] = field(default_factory=list)


def default_plan_path(output: str) -> str:
    root, _ = os.path.splitext(output)
    return f"{root}.plan.json"


def check_outputs(output: str, plan_path: str, teacher: str) -> None:
    """Refuse unusable outputs before the (slow) scoring: over the teacher, one file for both,
    a folder that cannot be created or written."""
    for flag, path in (("--output", output), ("--plan_path", plan_path)):
        if os.path.abspath(path) == os.path.abspath(teacher):
            raise PruneError(f"{flag} {path} is the teacher checkpoint: pruning over it would destroy it")
    if os.path.abspath(output) == os.path.abspath(plan_path):
        raise PruneError(f"--output and --plan_path are the same file {output}")
    check_writable(output, "--output")
    check_writable(plan_path, "--plan_path")


def write_student_and_plan(
    checkpoint: dict[str, Any], output: str, plan: PruningPlan, plan_path: str
) -> None:
    """Both files to temporaries, the student's checksum into the plan, then both moved: a kill
    leaves either both old files or both new ones (the move of the second is one rename), and a
    plan beside another student is detected by :meth:`PruningPlan.check_student`."""
    with atomic_paths(output, plan_path) as (student_tmp, plan_tmp):
        torch.save(checkpoint, student_tmp)
        plan.student = {"file": os.path.basename(output), "sha256": file_sha256(student_tmp)}
        with open(plan_tmp, "w", encoding="utf-8") as handle:
            handle.write(plan.to_json())


def _teacher_discriminator(path: str) -> GanNet | None:
    try:
        return load_discriminator(path)
    except CheckpointError:
        return None  # a generator-only file (e.g. a converted g_ema): D starts fresh in `fit`


def prune(
    teacher: str,
    output: str,
    scorer: Scorer | None = None,
    policy: PruningPolicy | None = None,
    plan_path: str | None = None,
    plan: str | None = None,
    rescale_equalized: bool = True,
    with_discriminator: bool = True,
    log: Callable[[str], None] = print,
    expected_teacher: GanNet | None = None,
) -> PruneResult:
    """Score, plan and cut a teacher; write the student checkpoint and the plan JSON.

    Args:
        teacher: teacher checkpoint (ours or an official layout).
        output: student checkpoint path (``.ckpt``/``.pt``).
        scorer: channel scorer (default: CAGAN content-aware with all-ones mask).
        policy: scores → plan (default: uniform removal ratio 0.7).
        plan_path: where to write the plan (default: ``<output stem>.plan.json``).
        plan: apply this existing plan file instead of scoring.
        rescale_equalized: function-preserving equalized-lr rescale (default) or the official
            plain slicing (see :mod:`lightning_gancomp.pruning.surgery`).
        with_discriminator: copy the teacher's discriminator into the student checkpoint.
        expected_teacher: the configured teacher architecture: a file holding another network
            (class or widths) is one line, as in ``fit``.
    """
    plan_path = plan_path or default_plan_path(output)
    check_outputs(output, plan_path, teacher)
    net = load_generator(teacher)
    if expected_teacher is not None:
        check_same_architecture(net, expected_teacher, "teacher", teacher)
    if plan is not None:
        chosen = PruningPlan.load(plan, net)
    else:
        scorer = scorer if scorer is not None else ContentAwareScorer()
        policy = policy if policy is not None else UniformPolicy(0.7)
        scores = scorer(net)
        chosen = policy(net, {k: v.cpu() for k, v in scores.items()}, scorer.describe())
    net = net.cpu()
    student = apply_plan(net, chosen, rescale_equalized=rescale_equalized).eval()
    chosen.policy.setdefault("rescale_equalized", rescale_equalized)
    discriminator = _teacher_discriminator(teacher) if with_discriminator else None

    before, after = measure(net), measure(student)
    nets = {"g": net_payload(student), "g_ema": net_payload(student)}
    if discriminator is not None:
        nets["d"] = net_payload(discriminator)
    checkpoint = {
        "gancomp_nets": nets,
        "gancomp_plan": chosen.to_dict(),
        "gancomp_teacher": os.path.abspath(teacher),
    }
    write_student_and_plan(checkpoint, output, chosen, plan_path)

    report = [
        f"teacher {type(net).__name__}: {before.line()}",
        f"student {type(student).__name__}: {after.line()}",
    ]
    if before.macs and after.macs:
        report.append(
            f"MAC reduction {before.macs / after.macs:.2f}x, params {before.params / after.params:.2f}x"
        )
    report.append(describe_widths(group_sizes(net), group_sizes(student)))
    report.append(f"wrote {output} and {plan_path}")
    for line in report:
        log(line)
    return PruneResult(student, chosen, before, after, output, plan_path, discriminator, report)


# -- CLI entry point: the configured method supplies files and the pruning recipe
def compression_method(model: Any, command: str) -> CompressionModule:
    """The configured model as a compression method, or one line saying what ``command`` needs."""
    if not isinstance(model, CompressionModule):
        raise PruneError(
            f"gancomp {command} needs a compression method (CAGAN, DCP, ...); "
            f"{type(model).__name__} trains a network from scratch"
        )
    return model


def check_student_plan(model: Any) -> None:
    """The configured ``student_path`` and the plan beside it (``<stem>.plan.json``) must come
    from one prune run (:meth:`PruningPlan.check_student`); no plan there: nothing to check."""
    student = model.source_file("student") if isinstance(model, CompressionModule) else None
    if student and os.path.isfile(student) and os.path.isfile(default_plan_path(student)):
        PruningPlan.load(default_plan_path(student), student=student)


def prune_method(
    model: Any,
    output: str | None = None,
    plan_path: str | None = None,
    teacher_path: str | None = None,
    plan: str | None = None,
    log: Callable[[str], None] = print,
) -> PruneResult:
    """``gancomp prune -c <method config>``: the method's teacher file, scorer and policy.

    ``output`` defaults to the config's ``student_path`` (so ``gancomp fit`` with the same config
    trains what was just pruned); the configured student architecture, when given, must match
    the pruned widths (else one line naming both).
    """
    method = compression_method(model, "prune")
    recipe = method.pruning_recipe()
    if recipe is None:
        raise PruneError(
            f"{type(method).__name__} prunes while it trains (no scorer/policy): run `gancomp fit`, "
            "which ends with the materialised student"
        )
    teacher_path = teacher_path or method.source_file("teacher")
    output = output or method.source_file("student")
    if teacher_path is None:
        raise PruneError(
            "gancomp prune needs a teacher checkpoint: set model.init_args.teacher_path or --teacher_path"
        )
    if output is None:
        raise PruneError("gancomp prune needs an output: set model.init_args.student_path or --output")
    result = prune(
        teacher_path,
        output,
        scorer=recipe.scorer,
        policy=recipe.policy,
        plan_path=plan_path,
        plan=plan,
        rescale_equalized=recipe.rescale_equalized,
        log=log,
        expected_teacher=method.teacher,
    )
    if "student" in method.weight_files:
        warn_if_student_differs(method.generator, result.student, output, log)
    return result


def warn_if_student_differs(
    configured: GanNet, pruned: GanNet, output: str, log: Callable[[str], None]
) -> None:
    """A configured student architecture that differs from the pruned widths cannot read them."""
    if configured.config == pruned.config:
        return
    differing = sorted(k for k in configured.config if configured.config[k] != pruned.config.get(k))
    details = ", ".join(
        f"{k} (config {configured.config[k]}, pruned {pruned.config.get(k)})" for k in differing
    )
    log(
        f"warning: the configured student differs from the pruned one in {details}; "
        f"update model.init_args.student before `gancomp fit` reads {output}"
    )
