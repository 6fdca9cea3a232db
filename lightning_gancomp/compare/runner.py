"""Running one arm: prune → fit → test → export → measure, each step the ``gancomp`` command a user
would type (run in-process through ``cli.run_cli``), each step's result a file in the arm's run
directory, so a killed comparison resumes where it stopped.

Files of an arm (``<output_dir>/<budget>/<method>/seed<k>/``):

- ``config.yaml`` — the arm's complete config (every step reads it);
- ``../pruned.ckpt`` (+ ``.plan.json``) — ``gancomp prune``'s student, shared by the seeds;
- ``checkpoints/last.ckpt`` — ``gancomp fit``'s resumable checkpoint (a killed fit resumes here);
- ``fit_attempts.jsonl`` / ``fit.done`` — fit sessions (training time) and fit completion;
- ``logs/fit/metrics.csv`` / ``logs/test/metrics.csv`` — Lightning's CSV logs (curves, test metrics);
- ``student.pt`` — ``gancomp export``'s plain generator, which is measured;
- ``metrics.json`` — everything the report shows for this arm, then ``DONE`` (the completion
  marker, holding the config's hash). The report reads only ``metrics.json`` and the CSV logs.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lightning_gancomp.atomic import atomic_write_json, atomic_write_text
from lightning_gancomp.compare.compose import Arm, ResolvedBudget, config_hash, own_argv
from lightning_gancomp.compare.spec import CompareSpec

Log = Callable[[str], None]


class ArmError(RuntimeError):
    """A step of an arm failed on bad input (one line naming the arm and the step)."""


class BudgetError(ValueError):
    """An arm's student misses the budget by more than the tolerance (one line naming the arm)."""


class StaleArmError(ValueError):
    """An arm directory holds results of a different config (one line naming the arm)."""


@dataclass(frozen=True)
class Step:
    name: str
    args: list[str]

    @property
    def command(self) -> str:
        return "gancomp " + " ".join(shlex.quote(a) for a in self.args)


def run_step(step: Step, arm: str, log: Log) -> None:
    """Run one ``gancomp`` command in this process; bad input becomes an :class:`ArmError`."""
    from lightning_gancomp.cli import error_message, find_user_error, one_line, run_cli

    log(f"[{arm}] {step.command}")
    try:
        with own_argv():
            run_cli(step.args, parser_kwargs={"exit_on_error": False})
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise ArmError(f"arm {arm} ({step.name}): exited with status {exc.code}") from exc
    except Exception as exc:  # noqa: BLE001 - only bad-input errors become one line
        culprit = find_user_error(exc)
        if culprit is None:
            raise
        raise ArmError(f"arm {arm} ({step.name}): {one_line(error_message(culprit))}") from exc


# -- files of an arm -------------------------------------------------------------------------------
def read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def arm_finished(arm: Arm, text: str) -> bool:
    """True when the arm completed with this config; a finished or started arm with another
    config is a :class:`StaleArmError` (its checkpoints cannot be resumed under a new config)."""
    done = os.path.join(arm.run_dir, "DONE")
    metrics = os.path.join(arm.run_dir, "metrics.json")
    if os.path.isfile(done) and os.path.isfile(metrics):
        if read_json(done).get("config_hash") != config_hash(text):
            raise StaleArmError(
                f"arm {arm.name} finished with another config ({arm.config_path} differs): "
                f"delete {arm.run_dir} to rerun it"
            )
        return True
    if os.path.isfile(arm.config_path) and _has_progress(arm):
        with open(arm.config_path, encoding="utf-8") as handle:
            if config_hash(handle.read()) != config_hash(text):
                raise StaleArmError(
                    f"arm {arm.name} was started with another config ({arm.config_path} differs): "
                    f"delete {arm.run_dir} to restart it"
                )
    return False


def _has_progress(arm: Arm) -> bool:
    return os.path.isdir(os.path.join(arm.run_dir, "checkpoints")) or os.path.isfile(
        os.path.join(arm.run_dir, "fit.done")
    )


def write_config(arm: Arm, text: str) -> None:
    if not os.path.isfile(arm.config_path) or open(arm.config_path, encoding="utf-8").read() != text:
        atomic_write_text(text, arm.config_path)


def last_checkpoint(arm: Arm) -> str | None:
    path = os.path.join(arm.run_dir, "checkpoints", "last.ckpt")
    return path if os.path.isfile(path) else None


# -- steps -----------------------------------------------------------------------------------------
def prune_step(arm: Arm) -> Step:
    """``gancomp prune`` of the arm's config, the student derived from the teacher and the
    budget's ratio (the config's student file is the output)."""
    assert arm.pruned_path is not None
    plan = os.path.splitext(arm.pruned_path)[0] + ".plan.json"
    args = ["prune", "-c", arm.config_path, "--model.init_args.student_path=null"]
    return Step("prune", [*args, f"--output={arm.pruned_path}", f"--plan_path={plan}"])


def fit_step(arm: Arm) -> Step:
    resume = last_checkpoint(arm)
    return Step("fit", ["fit", "-c", arm.config_path, *([f"--ckpt_path={resume}"] if resume else [])])


def test_step(arm: Arm, checkpoint: str | None) -> Step:
    args = ["test", "-c", arm.config_path, "--trainer.logger.init_args.version=test"]
    return Step("test", [*args, *([f"--ckpt_path={checkpoint}"] if checkpoint else [])])


def export_step(arm: Arm, checkpoint: str) -> Step:
    output = os.path.join(arm.run_dir, "student.pt")
    return Step(
        "export", ["export", "-c", arm.config_path, f"--checkpoint={checkpoint}", f"--output={output}"]
    )


def run_fit(arm: Arm, log: Log) -> float:
    """Fit (resuming from the last checkpoint when a previous session was killed); returns the
    training time over all sessions (a killed session counts until its last checkpoint)."""
    done = os.path.join(arm.run_dir, "fit.done")
    if os.path.isfile(done):
        return float(read_json(done)["train_time_s"])
    attempts = os.path.join(arm.run_dir, "fit_attempts.jsonl")
    step = fit_step(arm)
    resume = last_checkpoint(arm)
    session = {"start": time.time(), "resumed_from_mtime": os.path.getmtime(resume) if resume else None}
    with open(attempts, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({**session, "command": step.command}) + "\n")
    run_step(step, arm.name, log)
    total = training_time(attempts, time.time())
    atomic_write_json({"train_time_s": total, "sessions": _count_lines(attempts)}, done)
    return total


def training_time(attempts: str, end: float) -> float:
    """Seconds of every fit session: the last one until ``end``; a killed one until its last
    checkpoint (the checkpoint the next session resumed from, whose time that session recorded)."""
    with open(attempts, encoding="utf-8") as handle:
        sessions = [json.loads(line) for line in handle if line.strip()]
    total = end - sessions[-1]["start"]
    for killed, resumed in zip(sessions, sessions[1:]):
        stop = resumed.get("resumed_from_mtime")
        total += max(0.0, stop - killed["start"]) if stop is not None else 0.0
    return total


def _count_lines(path: str) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def test_metrics(arm: Arm) -> dict[str, float]:
    """The last logged value of every ``test/*`` column of the arm's test metrics.csv."""
    path = os.path.join(arm.run_dir, "logs", "test", "metrics.csv")
    values: dict[str, float] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                if key and key.startswith("test/") and value not in ("", None):
                    values[key[len("test/") :]] = float(value)
    return values


# -- one arm ---------------------------------------------------------------------------------------
def check_budget(arm_name: str, macs: int | None, resolved: ResolvedBudget, tolerance: float) -> float:
    """Relative deviation of the student's MACs from the budget; beyond ``tolerance``, refused."""
    budget = resolved.budget
    if macs is None:
        raise BudgetError(f"arm {arm_name}: MACs cannot be counted in the {budget.convention} convention")
    deviation = macs / resolved.target_macs - 1.0
    if abs(deviation) > tolerance:
        side = "over" if deviation > 0 else "under"
        raise BudgetError(
            f"arm {arm_name} refused: its student has {macs:,} MACs ({budget.convention}), {side} the "
            f"budget {budget.name} of {resolved.target_macs:,} by {abs(deviation):.1%} "
            f"(tolerance {tolerance:.0%})"
        )
    return deviation


def student_macs(path: str, convention: str) -> int | None:
    from lightning_gancomp.checkpoints import load_generator
    from lightning_gancomp.compare.compose import mac_counter

    try:
        return mac_counter(convention)(load_generator(path))  # type: ignore[arg-type]
    except TypeError:
        return None


def run_arm(
    spec: CompareSpec,
    arm: Arm,
    resolved: ResolvedBudget | None,
    teacher: Any,
    steps: Sequence[Step],
    log: Log,
    train: bool = True,
) -> dict[str, Any]:
    """Fit, test, export and measure one arm (pruning ran before; ``train=False``: the teacher's
    row, tested as it is); writes metrics.json, then the DONE marker."""
    from lightning_gancomp.checkpoints import load_generator
    from lightning_gancomp.compare.measure import measure_generator

    # the command of an uninterrupted run (a resumed session adds --ckpt_path, see fit_attempts.jsonl)
    commands = [*steps, *([Step("fit", ["fit", "-c", arm.config_path])] if train else [])]
    train_time = run_fit(arm, log) if train else 0.0
    checkpoint = last_checkpoint(arm) if train else None
    shutil.rmtree(os.path.join(arm.run_dir, "logs", "test"), ignore_errors=True)
    test = test_step(arm, checkpoint)
    run_step(test, arm.name, log)
    if checkpoint is not None:
        export = export_step(arm, checkpoint)
        run_step(export, arm.name, log)
        student_file = os.path.join(arm.run_dir, "student.pt")
        commands += [test, export]
    else:
        student_file = spec.teacher.path
        commands.append(test)
    student = load_generator(student_file)
    result: dict[str, Any] = {
        "budget": arm.budget,
        "method": arm.method,
        "seed": arm.seed,
        "test": test_metrics(arm),
        "train_time_s": train_time,
        "student_file": student_file,
        "config": arm.config_path,
        "commands": [step.command for step in commands],
        **measure_generator(student, teacher, spec.protocol, is_teacher=not train),
    }
    if resolved is not None:
        macs = result[f"macs_{resolved.budget.convention}"]
        result["budget_target_macs"] = resolved.target_macs
        result["budget_deviation"] = check_budget(arm.name, macs, resolved, spec.tolerance)
    save_samples(student, teacher, spec.protocol.grid_samples, os.path.join(arm.run_dir, "samples_shared.pt"))
    atomic_write_json(result, os.path.join(arm.run_dir, "metrics.json"))
    with open(arm.config_path, encoding="utf-8") as handle:
        marker = {"config_hash": config_hash(handle.read()), "finished": time.time()}
    atomic_write_json(marker, os.path.join(arm.run_dir, "DONE"))
    return result


def save_samples(student: Any, teacher: Any, count: int, path: str) -> None:
    """The arm's row of the shared-z sample grid (a tensor file; the report draws the grid)."""
    from lightning_gancomp.atomic import atomic_torch_save
    from lightning_gancomp.compare.measure import shared_samples

    if count > 0:
        atomic_torch_save(shared_samples(student, count, reference=teacher).cpu(), path)
