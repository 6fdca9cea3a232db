"""Small pretrained teachers shipped inside the package, for the embedded (CPU) runs.

A compression method needs a trained teacher; a newcomer should not have to train one before the
first ``prune -> fit -> test``. Each shipped file was trained by the repository's own teacher
config on the embedded data (the command, length and final metrics are in
``assets/teachers/manifest.json``) and holds our network payloads (``gancomp_nets``: the EMA
generator where the recipe has one, the discriminator and, for CycleGAN, the second pair), so it
loads wherever a checkpoint path is accepted. Configs name one as ``builtin:<name>``::

    teacher_path: builtin:stylegan2_embedded
    discriminator_path: builtin:stylegan2_embedded

``tools/ship_teacher.py`` turns a finished teacher run into such a file and its manifest entry.
"""

from __future__ import annotations

import json
import os
from functools import cache
from typing import Any

BUILTIN_PREFIX = "builtin:"
TEACHER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "teachers")
MANIFEST = os.path.join(TEACHER_DIR, "manifest.json")


class BuiltinTeacherError(ValueError):
    """An unknown ``builtin:`` name (the message lists the shipped ones)."""


@cache
def shipped_teachers() -> dict[str, dict[str, Any]]:
    """name -> manifest entry (file, config, command, training length, metrics) of each teacher."""
    if not os.path.isfile(MANIFEST):
        return {}
    with open(MANIFEST, encoding="utf-8") as handle:
        return json.load(handle)


def is_builtin(path: str | os.PathLike | None) -> bool:
    return isinstance(path, str) and path.startswith(BUILTIN_PREFIX)


def resolve_checkpoint_path(path: str | os.PathLike) -> str:
    """The file behind ``builtin:<name>``; any other path is returned unchanged."""
    path = os.fspath(path)
    if not is_builtin(path):
        return path
    name = path[len(BUILTIN_PREFIX) :]
    entry = shipped_teachers().get(name)
    if entry is None:
        known = ", ".join(BUILTIN_PREFIX + n for n in sorted(shipped_teachers())) or "none"
        raise BuiltinTeacherError(f"{path}: no such shipped teacher (shipped: {known})")
    return os.path.join(TEACHER_DIR, entry["file"])
