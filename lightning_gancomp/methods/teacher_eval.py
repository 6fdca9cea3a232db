"""The teacher beside its student: ``gancomp test`` on a compression config evaluates the teacher
with the student's protocol (same metric object configuration, same real images, same latents,
same number of samples) and prints both with the size ratio — the comparison a user wants.

The teacher's numbers are cached per (teacher weights, protocol: metric names and settings, feature
network, test images and batches, seeds) as JSON under
``~/.cache/lightning_gancomp/teacher_eval``, so testing several students of one teacher pays for
the teacher once. The teacher pass runs under a forked RNG: the student's numbers are the same
whether the teacher is evaluated, cached or off.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from torch import nn

from lightning_gancomp.atomic import atomic_write_json

#: Which direction is better for each metric (the printout says who wins).
LOWER_IS_BETTER = {"fid": True, "kid": True, "is": False, "precision": False, "recall": False}
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "lightning_gancomp", "teacher_eval")


def weights_checksum(net: nn.Module) -> str:
    """sha256 over the state dict (names, shapes, bytes): identifies a teacher file's weights."""
    digest = hashlib.sha256()
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def metrics_settings(metrics: Any) -> dict[str, Any]:
    """The settings of a ``GenerativeMetrics`` that change its numbers beyond the metric names and the
    feature network (KID subsets, IS splits, k of precision/recall, seeds, real statistics)."""
    names = ("kid_subsets", "kid_subset_size", "is_splits", "pr_neighbourhood", "seed", "dataset_key")
    settings = {name: getattr(metrics, name, None) for name in names}
    statistics = getattr(metrics, "fid_statistics", None)
    settings["real_statistics"] = statistics.describe() if statistics is not None else None
    return settings


def evaluation_set(trainer: Any) -> dict[str, Any]:
    """What a test pass runs on, for the cache key: each test loader's item count and batch size
    (the number of batches alone no longer gives the image count once evaluation batches differ
    from training's) and the datamodule's path, resolution and seed when there is one."""
    loaders = trainer.test_dataloaders
    loaders = list(loaders) if isinstance(loaders, (list, tuple)) else [loaders]
    items = [[len(loader.dataset), loader.batch_size] for loader in loaders if hasattr(loader, "dataset")]
    data = getattr(trainer, "datamodule", None)
    identity = {key: getattr(data, key, None) for key in ("path", "resolution", "seed")}
    return {"loaders": items, "data": type(data).__name__ if data is not None else None, **identity}


class TeacherEvaluation:
    """A copy of the student's metrics fed with teacher images, or cached teacher results."""

    def __init__(
        self, metrics: Any, teacher: nn.Module, protocol: Mapping[str, Any], cache_dir: str | None
    ) -> None:
        self.metrics = copy.deepcopy(metrics)
        self.metrics.reset()
        key = json.dumps({"teacher": weights_checksum(teacher), **protocol}, sort_keys=True, default=str)
        name = hashlib.sha256(key.encode()).hexdigest()[:24] + ".json"
        self.cache_path = os.path.join(cache_dir or DEFAULT_CACHE_DIR, name)
        self.cached = self._read_cache()

    def _read_cache(self) -> dict[str, float] | None:
        try:
            with open(self.cache_path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            return None  # missing or corrupt: evaluate the teacher again
        return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else None

    @property
    def needs_images(self) -> bool:
        return self.cached is None

    def results(self) -> dict[str, float]:
        if self.cached is None:
            self.cached = {k: float(v) for k, v in self.metrics.compute().items()}
            atomic_write_json(self.cached, self.cache_path)
        return self.cached


def comparison_lines(
    teacher: Mapping[str, float], student: Mapping[str, float], samples: int, sizes: Mapping[str, float]
) -> list[str]:
    """Teacher vs student table, the size ratios, and who wins each metric by how much."""
    lines = [f"{'metric':<12} {'teacher':>12} {'student':>12}   (same protocol, {samples} samples each)"]
    for name in student:
        if name in teacher:
            lines.append(f"{name:<12} {teacher[name]:>12.4g} {student[name]:>12.4g}")
    ratios = [f"{what} {sizes[f'teacher_{what}'] / sizes[f'student_{what}']:.2f}x smaller"
              for what in ("params", "macs") if sizes.get(f"student_{what}")]  # fmt: skip
    if ratios:
        lines.append("student vs teacher: " + ", ".join(ratios))
    for name, lower in LOWER_IS_BETTER.items():
        if name in teacher and name in student:
            gain = (teacher[name] - student[name]) if lower else (student[name] - teacher[name])
            if gain > 0:
                lines.append(
                    f"note: the student beats its teacher on {name} by {gain:.4g} on {samples} samples "
                    "(within noise at small sample counts; check with more samples)"
                )
    return lines
