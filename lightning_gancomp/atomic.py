"""Atomic file writes: write a temporary file beside the target, then ``os.replace`` it.

A reader (or a resumed run) never sees a half-written file: the target is either the old file
or the complete new one. The temporary keeps the target's extension (``x.tmp-<pid>.png``) so
writers that pick a format from the name (``torchvision.utils.save_image``) still work; a
failed write removes its temporary.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from typing import Any

import torch


def temporary_path(path: str | os.PathLike) -> str:
    """``<stem>.tmp-<pid><ext>`` next to ``path``."""
    root, ext = os.path.splitext(os.fspath(path))
    return f"{root}.tmp-{os.getpid()}{ext}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, make_dirs: bool = True) -> Iterator[str]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed."""
    path = os.fspath(path)
    if make_dirs:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)


def atomic_write_json(obj: Any, path: str | os.PathLike) -> None:
    atomic_write_text(json.dumps(obj, indent=2), path)
