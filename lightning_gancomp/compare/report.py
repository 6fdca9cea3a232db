"""``report.md`` and a self-contained ``report.html`` (every image embedded as base64 PNG) in the
comparison directory, plus the figures as files under ``figures/``; with ``wandb`` in the
comparison config the same tables go to W&B as ``wandb.Table`` and the figures as images.

Every number comes from the arms' files (``compare.results``): rebuilding the report after
changing an arm's ``metrics.json`` changes the report.
"""

from __future__ import annotations

import base64
import html
import os
from typing import Any

from lightning_gancomp.atomic import atomic_write_text
from lightning_gancomp.compare import plots
from lightning_gancomp.compare.compose import arms_of, teacher_arm
from lightning_gancomp.compare.results import (
    BudgetTable,
    Column,
    MethodRow,
    Summary,
    budget_tables,
    format_cell,
    value_of,
    verdict,
)
from lightning_gancomp.compare.spec import CompareSpec

NOISE_NOTE = (
    "**bold** = best mean; ≈ = within the seed noise of the best (|Δmean| ≤ 2·SE of the difference); "
    "cells: mean ± std over seeds (every seed's value)."
)


def table_rows(table: BudgetTable, teacher: dict[str, Any] | None) -> list[list[str]]:
    """Plain-text cells (header first): teacher row, then every method."""
    rows = [["method", "seeds", *[c.title + _arrow(c) for c in table.columns]]]
    if teacher is not None:
        rows.append(["teacher", "–", *[_teacher_cell(c, teacher) for c in table.columns]])
    for row in table.rows:
        rows.append([row.label, str(len(row.results)), *[_cell(c, row) for c in table.columns]])
    return rows


def _arrow(column: Column) -> str:
    return {"lower": " ↓", "higher": " ↑", None: ""}[column.direction]


def _teacher_cell(column: Column, teacher: dict[str, Any]) -> str:
    value = value_of(teacher, column.key)
    if column.key in ("budget_deviation", "train_time_s"):
        return "–"
    return format_cell(column, Summary([value]) if value is not None else None)


def _cell(column: Column, row: MethodRow) -> str:
    text = format_cell(column, row.summaries.get(column.key))
    if column.key in row.best:
        return f"**{text}**"
    if column.key in row.within_noise:
        return f"≈ {text}"
    return text


def figures(spec: CompareSpec, teacher: dict[str, Any] | None, tables: list[BudgetTable]) -> dict[str, str]:
    """Draw every figure; returns ``{title: path}`` of those that have data."""
    folder = os.path.join(spec.output_dir, "figures")
    primary = f"test.{spec.protocol.primary}"
    conventions = sorted({t.convention for t in tables})
    made: dict[str, str | None] = {}
    for convention in conventions:
        chosen = [t for t in tables if t.convention == convention]
        made[f"{spec.protocol.primary.upper()} vs MACs ({convention})"] = plots.metric_vs(
            chosen, teacher, f"macs_{convention}", primary, f"MACs ({convention})",
            os.path.join(folder, f"{spec.protocol.primary}_vs_macs_{convention}.png"),
        )  # fmt: skip
    made[f"{spec.protocol.primary.upper()} vs CPU latency"] = plots.metric_vs(
        tables, teacher, "latency_cpu_ms", primary, "CPU latency (ms/batch)",
        os.path.join(folder, f"{spec.protocol.primary}_vs_latency.png"),
    )  # fmt: skip
    for table in tables:
        run_dirs = {
            (a.method, a.seed): a.run_dir
            for a in arms_of(spec)
            if a.budget == table.name and _done(a.run_dir)
        }
        made[f"training curves ({table.name})"] = plots.training_curves(
            table, run_dirs, os.path.join(folder, f"curves_{table.name}.png")
        )
        made[f"samples on shared z ({table.name})"] = plots.sample_grid(
            sample_rows(spec, table), os.path.join(folder, f"samples_{table.name}.png")
        )
    return {title: path for title, path in made.items() if path is not None}


def _done(run_dir: str) -> bool:
    return os.path.isfile(os.path.join(run_dir, "DONE"))


def sample_rows(spec: CompareSpec, table: BudgetTable) -> list[tuple[str, str]]:
    """(label, samples file): the teacher, then each method's first finished seed."""
    rows = [("teacher", os.path.join(teacher_arm(spec).run_dir, "samples_shared.pt"))]
    for row in table.rows:
        arm = next(a for a in arms_of(spec) if a.budget == table.name and a.method == row.method)
        first = next(
            (
                a
                for a in arms_of(spec)
                if a.budget == arm.budget and a.method == arm.method and _done(a.run_dir)
            ),
            arm,
        )
        rows.append((f"{row.label} (seed {first.seed})", os.path.join(first.run_dir, "samples_shared.pt")))
    return rows


# -- markdown ----------------------------------------------------------------------------------------
def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(lines)


def evaluated_images(spec: CompareSpec) -> str:
    """How many test images every arm is evaluated on (``protocol.test_batches`` or the data's test split)."""
    if spec.protocol.test_batches is not None:
        return f"{spec.protocol.test_batches} batches"
    size = ((spec.data or {}).get("init_args") or {}).get("test_size")
    return "the whole test split" + (f" ({size} images)" if size else "")


def header_lines(spec: CompareSpec) -> list[str]:
    protocol = spec.protocol
    metrics = (protocol.metrics or {}).get("init_args", {})
    return [
        f"# Comparison `{spec.name}`",
        "",
        f"- config: `{spec.source}`; teacher: `{spec.teacher.path}`",
        f"- seeds: {list(spec.seeds)}; budget tolerance ±{spec.tolerance:.0%} "
        "(MACs in the budget's convention)",
        f"- metrics: {metrics.get('metrics', 'method default')} with the "
        f"`{metrics.get('feature_extractor', 'default')}` feature extractor; test: {evaluated_images(spec)}; "
        f"L1 teacher–student over {protocol.l1_samples} samples; LPIPS diversity "
        f"over {protocol.lpips_pairs} pairs ({protocol.lpips_net}, "
        f"{'pretrained' if protocol.lpips_pretrained else 'random'} backbone)",
        f"- latency: median of {protocol.latency_repeats} forwards at batch {protocol.latency_batch_size}"
        + ("" if protocol.measure_latency else " (off)"),
        "",
    ]


def markdown(spec: CompareSpec, teacher: dict[str, Any] | None, tables: list[BudgetTable], figs: dict) -> str:
    lines = header_lines(spec)
    for table in tables:
        target = f"{table.target_macs:,} MACs ({table.convention})" if table.target_macs else table.convention
        lines += [f"## Budget `{table.name}`: {target}", "", markdown_table(table_rows(table, teacher)), ""]
        lines += [NOISE_NOTE, "", f"**Result:** {verdict(table, spec.protocol.primary)}.", ""]
        if table.pending:
            lines += [f"Not finished yet: {', '.join(table.pending)}.", ""]
    lines += ["## Figures", ""]
    for title, path in figs.items():
        lines += [f"### {title}", "", f"![{title}]({os.path.relpath(path, spec.output_dir)})", ""]
    lines += ["## Reproduce", ""]
    for arm, result in finished_results(spec):
        lines += [f"### {arm}", "", f"config: `{result['config']}`", "", "```"]
        lines += [*result.get("commands", []), "```", ""]
    return "\n".join(lines)


def finished_results(spec: CompareSpec) -> list[tuple[str, dict[str, Any]]]:
    from lightning_gancomp.compare.results import load_result

    found = []
    for arm in [teacher_arm(spec), *arms_of(spec)]:
        result = load_result(arm.run_dir)
        if result is not None:
            found.append((arm.name if arm.method != "teacher" else "teacher", result))
    return found


# -- html --------------------------------------------------------------------------------------------
STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:13px}"
    "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}"
    "th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}pre{background:#f7f7f7;padding:8px;"
    "overflow-x:auto;font-size:12px}.best{font-weight:bold;background:#e8f5e9}.noise{background:#fff8e1}"
)


def html_cell(text: str, tag: str = "td") -> str:
    css = ""
    if text.startswith("**") and text.endswith("**"):
        text, css = text[2:-2], ' class="best"'
    elif text.startswith("≈ "):
        css = ' class="noise"'
    return f"<{tag}{css}>{html.escape(text)}</{tag}>"


def embedded_image(path: str, title: str) -> str:
    with open(path, "rb") as handle:
        data = base64.b64encode(handle.read()).decode("ascii")
    return f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'


def render_html(
    spec: CompareSpec, teacher: dict[str, Any] | None, tables: list[BudgetTable], figs: dict
) -> str:
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(spec.name)}</title>"]
    parts.append(f"<style>{STYLE}</style></head><body>")
    for line in header_lines(spec):
        if line.startswith("# "):
            parts.append(f"<h1>{html.escape(line[2:])}</h1><ul>")
        elif line.startswith("- "):
            parts.append(f"<li>{html.escape(line[2:])}</li>")
    parts.append("</ul>")
    for table in tables:
        target = f"{table.target_macs:,} MACs ({table.convention})" if table.target_macs else table.convention
        rows = table_rows(table, teacher)
        parts.append(f"<h2>Budget {html.escape(table.name)}: {html.escape(target)}</h2><table>")
        parts.append("<tr>" + "".join(html_cell(c, "th") for c in rows[0]) + "</tr>")
        parts += ["<tr>" + "".join(html_cell(c) for c in row) + "</tr>" for row in rows[1:]]
        parts.append(f"</table><p>{html.escape(NOISE_NOTE.replace('**', ''))}</p>")
        parts.append(f"<p><b>Result:</b> {html.escape(verdict(table, spec.protocol.primary))}.</p>")
    parts.append("<h2>Figures</h2>")
    for title, path in figs.items():
        parts.append(f"<h3>{html.escape(title)}</h3>{embedded_image(path, title)}")
    parts.append("<h2>Reproduce</h2>")
    for arm, result in finished_results(spec):
        commands = html.escape("\n".join(result.get("commands", [])))
        parts.append(
            f"<h3>{html.escape(arm)}</h3><p>config: <code>{html.escape(result['config'])}</code></p>"
        )
        parts.append(f"<pre>{commands}</pre>{config_details(result['config'])}")
    parts.append("</body></html>")
    return "\n".join(parts)


def config_details(path: str) -> str:
    """The arm's complete config, folded (the report stays readable without its run folder)."""
    if not os.path.isfile(path):
        return ""
    with open(path, encoding="utf-8") as handle:
        text = html.escape(handle.read())
    return f"<details><summary>{html.escape(os.path.basename(path))}</summary><pre>{text}</pre></details>"


def write_report(spec: CompareSpec) -> dict[str, str]:
    """Write report.md, report.html and figures/; log to W&B when configured."""
    teacher, tables = budget_tables(spec)
    figs = figures(spec, teacher, tables)
    paths = {
        "md": os.path.join(spec.output_dir, "report.md"),
        "html": os.path.join(spec.output_dir, "report.html"),
    }
    atomic_write_text(markdown(spec, teacher, tables, figs), paths["md"])
    atomic_write_text(render_html(spec, teacher, tables, figs), paths["html"])
    if spec.wandb:
        log_to_wandb(spec, teacher, tables, figs)
    return paths


def log_to_wandb(
    spec: CompareSpec, teacher: dict[str, Any] | None, tables: list[BudgetTable], figs: dict
) -> None:
    """The tables as ``wandb.Table`` (one per budget) and every figure as an image."""
    import wandb

    settings = {"project": "gancomp-compare", "name": spec.name, "dir": spec.output_dir, **spec.wandb}
    run = wandb.init(**settings, reinit="finish_previous")
    try:
        for table in tables:
            rows = table_rows(table, teacher)
            run.log({f"compare/{table.name}": wandb.Table(columns=rows[0], data=rows[1:])})
        run.log({f"compare/{title}": wandb.Image(path) for title, path in figs.items()})
    finally:
        run.finish()
