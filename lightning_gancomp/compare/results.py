"""The comparison's numbers, read from the arms' own files (``metrics.json`` of every finished arm)
and summarised per (budget, method) over seeds: mean ± std, every seed's value, the best method
per metric, and which differences are within the seed noise.

Noise rule: method A is *within noise* of the best method B on a metric when
``|mean_A − mean_B| ≤ 2·sqrt(s_A²/n_A + s_B²/n_B)`` (twice the standard error of the difference of
the means, s = sample std over seeds) — about a 95 % interval for normal seed noise. With one seed
there is no noise estimate and nothing is marked.
"""

from __future__ import annotations

import json
import math
import os
import statistics
from dataclasses import dataclass, field
from typing import Any, Literal

from lightning_gancomp.compare.compose import arms_of, teacher_arm
from lightning_gancomp.compare.spec import CompareSpec

Direction = Literal["lower", "higher"]


@dataclass(frozen=True)
class Column:
    key: str  # "test.fid" reads result["test"]["fid"]; "params" reads result["params"]
    title: str
    direction: Direction | None = None
    kind: Literal["metric", "int", "ms", "seconds", "percent"] = "metric"


#: report columns, in order; quality metrics appear when at least one arm has them
SIZE_COLUMNS = (
    Column("params", "params", kind="int"),
    Column("macs_cagan", "MACs (CAGAN)", kind="int"),
    Column("macs_torchprofile", "MACs (torchprofile)", kind="int"),
    Column("budget_deviation", "vs budget", kind="percent"),
    Column("latency_cpu_ms", "CPU ms/batch", kind="ms"),
    Column("latency_gpu_ms", "GPU ms/batch", kind="ms"),
)
QUALITY_COLUMNS = (
    Column("test.fid", "FID", "lower"),
    Column("test.kid", "KID", "lower"),
    Column("test.is", "IS", "higher"),
    Column("test.precision", "precision", "higher"),
    Column("test.recall", "recall", "higher"),
    Column("lpips_diversity", "LPIPS diversity", "higher"),
    Column("l1_teacher_student", "L1 teacher–student", "lower"),
)
TIME_COLUMN = Column("train_time_s", "train time", kind="seconds")


@dataclass
class Summary:
    values: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    def standard_error(self) -> float:
        return self.std / math.sqrt(len(self.values))


@dataclass
class MethodRow:
    """One method at one budget over its finished seeds."""

    method: str
    label: str
    results: list[dict[str, Any]]
    summaries: dict[str, Summary] = field(default_factory=dict)
    best: set[str] = field(default_factory=set)  # columns where this method has the best mean
    within_noise: set[str] = field(default_factory=set)  # columns within noise of the best

    @property
    def seeds(self) -> list[int]:
        return [int(r["seed"]) for r in self.results]


@dataclass
class BudgetTable:
    name: str
    target_macs: int | None
    convention: str
    rows: list[MethodRow]
    pending: list[str]
    columns: list[Column]


def value_of(result: dict[str, Any], key: str) -> float | None:
    node: Any = result
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def load_result(run_dir: str) -> dict[str, Any] | None:
    """An arm's metrics.json when the arm finished (its DONE marker exists), else None."""
    if not os.path.isfile(os.path.join(run_dir, "DONE")):
        return None
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as handle:
        return json.load(handle)


def summarise(row: MethodRow, columns: list[Column]) -> None:
    for column in columns:
        values = [v for v in (value_of(r, column.key) for r in row.results) if v is not None]
        if values:
            row.summaries[column.key] = Summary(values)


def mark_best(rows: list[MethodRow], columns: list[Column]) -> None:
    """Best mean per directed column, and the methods within noise of it (module docstring)."""
    for column in columns:
        if column.direction is None:
            continue
        scored = [r for r in rows if column.key in r.summaries]
        if len(scored) < 2:
            continue
        sign = 1.0 if column.direction == "lower" else -1.0
        best = min(scored, key=lambda r: sign * r.summaries[column.key].mean)
        best.best.add(column.key)
        for row in scored:
            if row is not best and within_noise(row.summaries[column.key], best.summaries[column.key]):
                row.within_noise.add(column.key)


def within_noise(a: Summary, b: Summary) -> bool:
    if len(a.values) < 2 or len(b.values) < 2:
        return False
    return abs(a.mean - b.mean) <= 2.0 * math.hypot(a.standard_error(), b.standard_error())


def budget_tables(spec: CompareSpec) -> tuple[dict[str, Any] | None, list[BudgetTable]]:
    """The teacher's result and one table per budget, from the arms' files."""
    teacher = load_result(teacher_arm(spec).run_dir)
    labels = {m.name: m.label for m in spec.methods}
    tables = []
    for budget in spec.budgets:
        rows, pending = [], []
        for method in spec.methods:
            arms = [a for a in arms_of(spec) if a.budget == budget.name and a.method == method.name]
            results = [r for r in (load_result(a.run_dir) for a in arms) if r is not None]
            pending += [a.name for a in arms if load_result(a.run_dir) is None]
            if results:
                rows.append(MethodRow(method.name, labels[method.name], results))
        all_results = [r for row in rows for r in row.results] + ([teacher] if teacher else [])
        columns = [
            c
            for c in (*SIZE_COLUMNS, *QUALITY_COLUMNS)
            if any(value_of(r, c.key) is not None for r in all_results)
        ]
        columns.append(TIME_COLUMN)
        for row in rows:
            summarise(row, columns)
        mark_best(rows, columns)
        target = next((r.get("budget_target_macs") for row in rows for r in row.results), None)
        tables.append(BudgetTable(budget.name, target, budget.convention, rows, pending, columns))
    return teacher, tables


def verdict(table: BudgetTable, primary: str) -> str:
    """Which method won on the primary metric, by how much, and whether beyond the seed noise."""
    key = f"test.{primary}" if not primary.startswith("test.") and primary not in _TOP_LEVEL else primary
    column = next((c for c in table.columns if c.key == key), None)
    scored = [r for r in table.rows if key in r.summaries]
    if column is None or column.direction is None or not scored:
        return f"no {primary} values at budget {table.name} yet"
    sign = 1.0 if column.direction == "lower" else -1.0
    ranked = sorted(scored, key=lambda r: sign * r.summaries[key].mean)
    best = ranked[0]
    text = f"{best.label} has the best {column.title} at budget {table.name}: "
    text += format_summary(best.summaries[key])
    if len(ranked) == 1:
        return text + " (the only finished method)"
    second = ranked[1]
    delta = abs(second.summaries[key].mean - best.summaries[key].mean)
    noise = 2.0 * math.hypot(best.summaries[key].standard_error(), second.summaries[key].standard_error())
    text += f", ahead of {second.label} ({format_summary(second.summaries[key])}) by {delta:.4g}"
    if len(best.summaries[key].values) < 2 or len(second.summaries[key].values) < 2:
        return text + " (one seed: no noise estimate)"
    relation = "within" if delta <= noise else "beyond"
    return text + f", {relation} the seed noise (2·SE of the difference {noise:.3g})"


_TOP_LEVEL = {"lpips_diversity", "l1_teacher_student", "params", "macs_cagan", "macs_torchprofile"}


def format_summary(summary: Summary) -> str:
    if len(summary.values) == 1:
        return f"{summary.mean:.4g}"
    return f"{summary.mean:.4g} ± {summary.std:.2g}"


def format_cell(column: Column, summary: Summary | None, with_seeds: bool = True) -> str:
    """A table cell: mean ± std (and every seed's value) in the column's unit."""
    if summary is None:
        return "–"
    if column.kind == "int":
        return f"{summary.mean:,.0f}"
    if column.kind == "percent":
        return f"{summary.mean:+.1%}"
    if column.kind in ("ms", "seconds"):
        unit = "ms" if column.kind == "ms" else "s"
        return f"{summary.mean:.3g} {unit}"
    text = format_summary(summary)
    if with_seeds and len(summary.values) > 1:
        text += " (" + ", ".join(f"{v:.4g}" for v in summary.values) + ")"
    return text
