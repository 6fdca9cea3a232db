"""A tiny comparison for the tests: a 32-px teacher with small widths, two prune-then-distil
methods (L1 and random channel scores on the distillation quickstart config), a few batches."""

from __future__ import annotations

import os
import sys

import yaml

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from _cli_helpers import DISTILL, write_tiny_teacher  # noqa: E402

SCORERS = {
    "l1": "lightning_gancomp.pruning.importance.L1Scorer",
    "random": "lightning_gancomp.pruning.importance.RandomScorer",
    "l1_incoming": "lightning_gancomp.pruning.importance.L1Scorer",
}


def method(scorer: str, extra: list[str] | None = None) -> dict:
    overrides = [f"--model.init_args.scorer={SCORERS[scorer]}", *(extra or [])]
    if scorer == "l1_incoming":
        overrides.append("--model.init_args.scorer.init_args.direction=incoming")
    return {"config": DISTILL, "overrides": overrides}


def tiny_compare(folder: str, methods: dict, seeds: list[int] | None = None, **extra: object) -> str:
    """Write the teacher file and the comparison config under ``folder``; returns the config path."""
    os.makedirs(folder, exist_ok=True)
    teacher = write_tiny_teacher(os.path.join(folder, "teacher.ckpt"))
    config = {
        "name": "tiny",
        "output_dir": os.path.join(folder, "out"),
        "teacher": {"path": teacher},
        "budgets": [{"name": "half", "removal_ratio": 0.5, "convention": "cagan"}],
        "seeds": seeds or [0],
        "tolerance": 0.05,
        "checkpoint_every": 2,
        "trainer": {
            "max_epochs": 1, "limit_train_batches": 4, "limit_val_batches": 0, "log_every_n_steps": 1,
            "enable_model_summary": False,
        },
        "data": {
            "class_path": "lightning_gancomp.data.UnconditionalDataModule",
            "init_args": {"path": "embedded", "resolution": 32, "batch_size": 4, "num_workers": 0,
                          "val_size": 8, "embedded_length": 32},
        },
        "protocol": {
            "metrics": {
                "class_path": "lightning_gancomp.metrics.GenerativeMetrics",
                "init_args": {"metrics": ["fid"], "feature_extractor": "embedded"},
            },
            "test_batches": 1, "l1_samples": 8, "lpips_pairs": 0, "latency": None, "grid_samples": 4,
        },
        "methods": methods,
        **extra,
    }  # fmt: skip
    path = os.path.join(folder, "compare.yaml")
    with open(path, "w") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return path
