"""Shared test setup: deterministic CPU runs that do not oversubscribe the cores.

Tiny tensors gain nothing from intra-op threads, and on a loaded 2-core machine torch's thread
pool makes small convolutions orders of magnitude slower, so tests run single-threaded (set before
torch starts its pool; subprocess tests inherit the variable).
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield
