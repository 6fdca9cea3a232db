"""Atomic file writes: write a temporary file beside the target, then ``os.replace`` it.

A reader (or a resumed run) never sees a half-written file: the target is either the old file
or the complete new one. The temporary keeps the target's extension (``x.tmp-<pid>.png``) so
writers that pick a format from the name (``torchvision.utils.save_image``) still work; a
failed write removes its temporary.
"""

from __future__ import annotations

import contextlib
import errno
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


class OutputError(ValueError):
    """An output file cannot be written (folder not creatable, read-only filesystem, disk full)."""


#: errno values that mean "this output location is unusable", not a bug.
_OUTPUT_ERRNOS = {
    errno.ENOSPC,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EDQUOT,
    errno.ENOTDIR,
    errno.EEXIST,
}


def check_writable(path: str | os.PathLike, what: str = "output") -> None:
    """Create ``path``'s folder and write/remove an empty temporary there, before any slow work;
    :class:`OutputError` naming ``path`` when that fails."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise OutputError(f"{what} {path}: is a directory, give a file name")
    existing = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise OutputError(f"{what} {path}: {existing} is a file, not a folder")
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        probe = temporary_path(path)
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as err:
        raise OutputError(f"{what} {path}: cannot write there ({err.strerror or err})") from err


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[list[str]]:
    """Temporaries for several outputs that belong together (a student and its plan, a generator
    and its TorchScript): all are moved into place only when the block succeeded, else all are
    removed and every target keeps its old content. An OSError of a full disk / read-only
    filesystem while writing becomes one :class:`OutputError` line."""
    targets = [os.fspath(path) for path in paths]
    temporaries = [temporary_path(path) for path in targets]
    try:
        try:
            yield temporaries
        except OSError as err:
            if err.errno not in _OUTPUT_ERRNOS:
                raise
            named = dict(zip(temporaries, targets, strict=True)).get(os.fspath(err.filename or ""))
            name = named or err.filename or ", ".join(targets)
            raise OutputError(f"cannot write {name} ({err.strerror}); no output was changed") from err
        for tmp, target in zip(temporaries, targets, strict=True):
            os.replace(tmp, target)
    finally:
        for tmp in temporaries:
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
