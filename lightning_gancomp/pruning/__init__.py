"""Channel pruning engine (torch only): scorers → plan → surgery, all in channel groups.

``importance`` scores every channel of every group a network declares, ``plan`` turns scores
into kept indices with a policy (uniform ratio, per-group, global threshold) and stores them as
JSON, ``budget`` finds the ratio that meets a MAC budget, ``surgery`` applies a plan and returns
the same network class with smaller widths, and ``commands`` holds ``prune``/``export`` used by
the CLI.
"""

from lightning_gancomp.pruning.plan import (
    GroupPlan,
    PlanError,
    PruningPlan,
    global_plan,
    per_group_plan,
    plan_from_keep,
    uniform_plan,
)
from lightning_gancomp.pruning.surgery import (
    apply_plan,
    slice_state_dict,
    student_config,
    zero_dropped_channels,
)

__all__ = [
    "GroupPlan",
    "PlanError",
    "PruningPlan",
    "apply_plan",
    "global_plan",
    "per_group_plan",
    "plan_from_keep",
    "slice_state_dict",
    "student_config",
    "uniform_plan",
    "zero_dropped_channels",
]
