"""Silence third-party messages that are known to be harmless here (ours stay).

Each filter names one message and why it does not apply to a ``gancomp`` run:

- Lightning's "Tip: ... litlogger" banner: an advertisement printed on every run;
- Lightning's "Found N module(s) in eval mode at the start of training": frozen teachers, the G
  EMA and metric networks are in eval mode on purpose (the engine keeps them there);
- Lightning's ``LeafSpec`` deprecation from its own pytree helper (fixed upstream, not ours);
- Lightning's "tensorboardX has been removed" notice: the configs name their loggers;
- torchvision's ``pretrained`` deprecation, raised inside lpips when it builds its backbone.
"""

from __future__ import annotations

import logging
import warnings

_WARNINGS = (
    r"Found \d+ module\(s\) in eval mode at the start of training",
    r".*isinstance\(treespec, LeafSpec\)",
    r"Starting from v1\.9\.0, `tensorboardX` has been removed",
    r"The parameter 'pretrained' is deprecated",
    r"Arguments other than a weight enum or `None` for 'weights' are deprecated",
)


class _DropMessages(logging.Filter):
    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


def silence_known_warnings() -> None:
    """Install the filters (idempotent)."""
    for pattern in _WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(("litlogger",)))
