"""``gancomp compare -c configs/compare/<name>.yaml``: every method on one teacher at one budget (or
several), N seeds each, one report.

Order of work, each step skipped when its result is already on disk (resumable, incremental):

1. the teacher: trained with ``teacher.train_config`` when its file is missing;
2. budgets resolved on the teacher (target MACs in the named convention → uniform ratio);
3. every arm's config composed and written (``compare.compose``); an arm directory holding
   results of a different config stops the run (one line: delete it to rerun);
4. ``gancomp prune`` once per (budget, method), and every pruned student checked against its
   budget **before any training**: an arm outside the tolerance is refused with one line;
5. the teacher's row (test + measurements), then every unfinished arm: fit (resumed from its
   last checkpoint after a kill) → test → export → measure → ``metrics.json`` + ``DONE``;
6. ``report.md`` / ``report.html`` / plots from the arms' own files (``compare.report``).

``--dry_run`` stops after step 3 (and prints the arms); ``--report_only`` runs step 6 alone.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from lightning_gancomp.compare.compose import (
    Arm,
    ResolvedBudget,
    arms_of,
    compose_arm,
    compose_teacher,
    dump,
    load_teacher,
    resolve_budget,
    teacher_arm,
    teacher_file,
)
from lightning_gancomp.compare.runner import (
    ArmError,
    BudgetError,
    StaleArmError,
    Step,
    arm_finished,
    check_budget,
    prune_step,
    run_arm,
    run_step,
    student_macs,
    write_config,
)
from lightning_gancomp.compare.spec import CompareConfigError, CompareSpec, load_spec

Log = Callable[[str], None]

#: errors that mean bad input or a refused arm: one line, exit status 1
COMPARE_ERRORS = (CompareConfigError, BudgetError, StaleArmError, ArmError)


def ensure_teacher(spec: CompareSpec, log: Log) -> None:
    """Train the teacher with ``teacher.train_config`` when its file does not exist yet."""
    if os.path.isfile(teacher_file(spec)) or not spec.teacher.train_config:
        return
    args = ["fit", *[a for path in spec.teacher.train_config for a in ("-c", path)]]
    run_step(Step("teacher fit", [*args, "--trainer.enable_progress_bar=false"]), "teacher", log)
    if not os.path.isfile(spec.teacher.path):
        raise CompareConfigError(
            f"{spec.source}: teacher.train_config {list(spec.teacher.train_config)} ran but wrote no "
            f"{spec.teacher.path} (teacher.path must be its checkpoint)"
        )


def plan_arms(spec: CompareSpec, resolved: dict[str, ResolvedBudget]) -> list[tuple[Arm, str]]:
    """Every arm with its composed config text (written unless the arm already finished)."""
    methods = {m.name: m for m in spec.methods}
    planned = []
    for arm in arms_of(spec):
        text = dump(compose_arm(spec, methods[arm.method], arm, resolved[arm.budget].ratio))
        planned.append((arm, text))
    return planned


def prune_and_check(spec: CompareSpec, planned: list[tuple[Arm, str]], resolved: dict, log: Log) -> dict:
    """``gancomp prune`` once per (budget, method); every student checked against its budget."""
    prune_steps: dict[str, Step] = {}
    for arm, _ in planned:
        if arm.pruned_path is None or arm.pruned_path in prune_steps:
            continue
        step = prune_step(arm)
        prune_steps[arm.pruned_path] = step
        if not os.path.isfile(arm.pruned_path):
            run_step(step, f"{arm.budget}/{arm.method}", log)
        budget = resolved[arm.budget]
        macs = student_macs(arm.pruned_path, budget.budget.convention)
        check_budget(f"{arm.budget}/{arm.method}", macs, budget, spec.tolerance)
    return prune_steps


def run_comparison(spec: CompareSpec, log: Log = print, dry_run: bool = False) -> list[Arm]:
    """Steps 1–5 of the module docstring; returns the arms that ran in this session."""
    ensure_teacher(spec, log)
    teacher = load_teacher(spec)
    resolved = {b.name: resolve_budget(teacher, b) for b in spec.budgets}
    for r in resolved.values():
        log(f"budget {r.budget.name}: {r.target_macs:,} MACs ({r.budget.convention}), ratio {r.ratio:.4f}")
    planned = plan_arms(spec, resolved)
    pending = [(arm, text) for arm, text in planned if not arm_finished(arm, text)]
    log(f"{len(planned)} arms, {len(planned) - len(pending)} finished, {len(pending)} to run")
    if dry_run:
        for arm, _ in planned:
            log(f"  {arm.name}: {arm.config_path}")
        return []
    for arm, text in pending:
        write_config(arm, text)
    prune_steps = prune_and_check(spec, planned, resolved, log)
    ran = run_teacher_row(spec, teacher, log)
    for arm, _ in pending:
        steps = [prune_steps[arm.pruned_path]] if arm.pruned_path is not None else []
        run_arm(spec, arm, resolved[arm.budget], teacher, steps, log, train=True)
        ran.append(arm)
    return ran


def run_teacher_row(spec: CompareSpec, teacher: Any, log: Log) -> list[Arm]:
    method = next((m for m in spec.methods if m.prune), spec.methods[0])
    arm = teacher_arm(spec)
    text = dump(compose_teacher(spec, method))
    if arm_finished(arm, text):
        return []
    write_config(arm, text)
    run_arm(spec, arm, None, teacher, [], log, train=False)
    return [arm]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gancomp compare",
        description="Every method on one teacher at one budget: N seeds per arm, one report.",
    )
    parser.add_argument("-c", "--config", required=True, help="comparison config (configs/compare/*.yaml)")
    parser.add_argument("--dry_run", action="store_true", help="resolve budgets and compose arms only")
    parser.add_argument("--report_only", action="store_true", help="rebuild the report from finished arms")
    return parser


def compare_main(argv: Sequence[str]) -> None:
    """``gancomp compare`` (dispatched by ``cli.main`` before LightningCLI)."""
    from lightning_gancomp.callbacks.guard import RunInterrupted
    from lightning_gancomp.compare.report import write_report

    options = build_parser().parse_args(list(argv))
    try:
        spec = load_spec(options.config)
        if not options.report_only:
            run_comparison(spec, dry_run=options.dry_run)
        if not options.dry_run:
            paths = write_report(spec)
            print(f"report: {paths['md']} and {paths['html']}")
    except RunInterrupted as stop:  # SIGTERM / Ctrl+C: the arm wrote its checkpoint, rerun resumes
        sys.stderr.write(f"gancomp: error: {stop} (rerun `gancomp compare -c {options.config}` to resume)\n")
        sys.exit(stop.exit_code)
    except COMPARE_ERRORS as exc:
        if os.environ.get("GANCOMP_DEBUG"):
            raise
        sys.stderr.write(f"gancomp: error: {exc}\n")
        sys.exit(1)
