"""The report's figures (matplotlib, Agg backend, PNG): primary metric vs MACs and vs CPU latency,
training curves of every arm (from its ``logs/fit/metrics.csv``), and the shared-z sample grid
of each budget (teacher first, then every method's first seed)."""

from __future__ import annotations

import csv
import os
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from lightning_gancomp.atomic import atomic_path  # noqa: E402
from lightning_gancomp.compare.results import BudgetTable, value_of  # noqa: E402

#: curves drawn when an arm logged them (first the evaluation metric, then the losses)
CURVE_KEYS = ("val/fid", "train/g/total", "train/d/adv")


def _save(figure: Any, path: str) -> str:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def metric_vs(
    tables: list[BudgetTable], teacher: dict[str, Any] | None, x_key: str, y_key: str, x_label: str, path: str
) -> str | None:
    """Mean (± std error bar over seeds) of ``y_key`` against the mean of ``x_key`` per method."""
    figure, axes = plt.subplots(figsize=(6, 4))
    drawn = False
    for table in tables:
        for row in table.rows:
            x, y = row.summaries.get(x_key), row.summaries.get(y_key)
            if x is None or y is None:
                continue
            axes.errorbar(x.mean, y.mean, yerr=y.std, fmt="o", capsize=3, label=f"{row.label} ({table.name})")
            drawn = True
    if teacher is not None and value_of(teacher, x_key) is not None and value_of(teacher, y_key) is not None:
        axes.plot(value_of(teacher, x_key), value_of(teacher, y_key), "k*", markersize=12, label="teacher")
    if not drawn:
        plt.close(figure)
        return None
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_key.split(".")[-1].upper())
    means = [row.summaries[y_key].mean for t in tables for row in t.rows if y_key in row.summaries]
    if min(means) > 0 and max(means) / min(means) > 20:  # orders of magnitude apart: keep close ones legible
        axes.set_yscale("log")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    return _save(figure, path)


def read_curves(run_dir: str) -> dict[str, list[tuple[float, float]]]:
    """``{key: [(step, value)]}`` of an arm's fit log; a resumed session's repeated steps keep the
    last value logged."""
    path = os.path.join(run_dir, "logs", "fit", "metrics.csv")
    curves: dict[str, dict[float, float]] = {}
    if not os.path.isfile(path):
        return {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            step = row.get("step")
            for key in CURVE_KEYS:
                if step not in (None, "") and row.get(key) not in (None, ""):
                    curves.setdefault(key, {})[float(step)] = float(row[key])
    return {k: sorted(v.items()) for k, v in curves.items()}


def training_curves(table: BudgetTable, run_dirs: dict[tuple[str, int], str], path: str) -> str | None:
    """One panel per logged key, one line per (method, seed)."""
    curves = {arm: read_curves(d) for arm, d in run_dirs.items()}
    keys = [k for k in CURVE_KEYS if any(k in c for c in curves.values())]
    if not keys:
        return None
    figure, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
    labels = {row.method: row.label for row in table.rows}
    for panel, key in zip(axes[0], keys):
        for (method, seed), arm_curves in sorted(curves.items()):
            if key in arm_curves:
                steps, values = zip(*arm_curves[key])
                panel.plot(steps, values, label=f"{labels.get(method, method)} s{seed}", linewidth=1)
        panel.set_title(key)
        panel.set_xlabel("step")
        panel.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.suptitle(f"training curves, budget {table.name}")
    return _save(figure, path)


def sample_grid(rows: list[tuple[str, str]], path: str) -> str | None:
    """Stack each row's saved samples (``samples_shared.pt``: [N, 3, H, W] in [-1, 1]), labelled."""
    loaded = [(label, torch.load(p, weights_only=True)) for label, p in rows if os.path.isfile(p)]
    if not loaded:
        return None
    count = loaded[0][1].shape[0]
    figure, axes = plt.subplots(
        len(loaded), 1, figsize=(1.1 * count + 1.5, 1.2 * len(loaded) + 0.3), squeeze=False
    )
    for axis, (label, images) in zip(axes[:, 0], loaded):
        strip = torch.cat(list((images.float().clamp(-1, 1) + 1) / 2), dim=2)  # [3, H, N·W]
        axis.imshow(strip.permute(1, 2, 0).numpy(), interpolation="nearest")
        axis.set_xticks([])
        axis.set_yticks([])
        axis.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    return _save(figure, path)
