"""RunGuard: what keeps a run's directory trustworthy (issue 8).

``GancompTrainer`` adds one :class:`RunGuard` to every trainer it builds. It

- refuses to write a checkpoint whose weights or optimizer state are not finite (so a finite
  ``last.ckpt`` is never replaced by a NaN one, and "the last good checkpoint" named by an error
  really is finite);
- takes a lock on the run's directories for ``fit`` (a second run in the same directory is refused
  with one line naming the holder's pid; a lock left by a killed run is taken over) and removes
  ``*.tmp-<pid>*`` files that killed writes left behind;
- checks the data's resolution is the networks' (one line naming both numbers);
- turns SIGTERM and the first Ctrl+C into a stop at the next batch boundary, writes a final
  checkpoint (atomically, through the trainer's checkpoint IO) and makes the run exit non-zero.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_info, rank_zero_only

from lightning_gancomp.data.errors import DatasetError

#: Name of the lock file a ``fit`` holds in each of its run directories.
LOCK_FILE = ".gancomp.lock"
#: ``<stem>.tmp-<pid><ext>`` written by :func:`lightning_gancomp.atomic.temporary_path`.
TEMPORARY_NAME = re.compile(r"\.tmp-(\d+)(\.[^.]*)?$")
#: Lock files this process holds now (another trainer in this process is a live holder too).
_HELD_HERE: set[str] = set()


class NonFiniteCheckpointError(RuntimeError):
    """A checkpoint was about to be written with NaN/Inf weights or optimizer state."""


class RunDirectoryLockedError(RuntimeError):
    """Another live run holds the lock of a directory this run would write to."""


class RunInterrupted(Exception):
    """SIGTERM/SIGINT stopped ``fit`` after a final checkpoint; ``exit_code`` is 128 + signal."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- run-directory lock -----------------------------------------------------------------------------
def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_holder(lock: str) -> dict[str, Any]:
    try:
        with open(lock, encoding="utf-8") as handle:
            return dict(json.load(handle))
    except (OSError, ValueError, TypeError):
        return {}  # unreadable: a write killed half-way, treated as stale


def _is_stale(lock: str, holder: dict[str, Any]) -> bool:
    pid = holder.get("pid")
    if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
        return not isinstance(pid, int)  # another host's lock cannot be checked: respected
    if pid == os.getpid():
        return lock not in _HELD_HERE  # left by an earlier run of this process that crashed
    return not pid_alive(pid)


def acquire_lock(directory: str) -> str:
    """Create ``<directory>/.gancomp.lock`` holding this pid; take over a stale one; raise
    :class:`RunDirectoryLockedError` naming the holder when it is alive."""
    os.makedirs(directory, exist_ok=True)
    lock = os.path.join(directory, LOCK_FILE)
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_holder(lock)
            if not _is_stale(lock, holder):
                raise RunDirectoryLockedError(
                    f"{directory} is in use by another gancomp run (pid {holder.get('pid')} on "
                    f"{holder.get('host')}, started {holder.get('started')}); wait for it to end or "
                    f"choose another trainer.default_root_dir / checkpoint dirpath"
                ) from None
            rank_zero_info(f"gancomp: taking over the stale lock {lock} (pid {holder.get('pid')} is gone)")
            os.remove(lock)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
        _HELD_HERE.add(lock)
        return lock
    raise RunDirectoryLockedError(f"{directory}: another run took the lock at the same moment")


def release_lock(lock: str) -> None:
    if lock in _HELD_HERE and _read_holder(lock).get("pid") == os.getpid():
        os.remove(lock)
    _HELD_HERE.discard(lock)


def remove_stale_temporaries(directory: str) -> list[str]:
    """Delete ``*.tmp-<pid>*`` files under ``directory`` whose writer process is gone."""
    removed = []
    for root, _, files in os.walk(directory):
        for name in files:
            match = TEMPORARY_NAME.search(name)
            if match and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
                os.remove(os.path.join(root, name))
                removed.append(os.path.join(root, name))
    return removed


def run_directories(trainer: pl.Trainer) -> list[str]:
    """``default_root_dir`` and every explicit checkpoint ``dirpath``, without nested duplicates."""
    candidates = {os.path.abspath(trainer.default_root_dir)}
    candidates |= {
        os.path.abspath(cb.dirpath) for cb in trainer.checkpoint_callbacks if getattr(cb, "dirpath", None)
    }
    ordered = sorted(candidates)
    return [d for d in ordered if not any(d != o and d.startswith(o + os.sep) for o in ordered)]


def network_resolution(net: Any) -> int | None:
    """The image size a network produces/reads, when it has a fixed one (None: fully convolutional)."""
    value = getattr(net, "resolution", None)
    if value is None:
        value = (getattr(net, "config", None) or {}).get("resolution")
    return int(value) if isinstance(value, int) else None


def check_resolution(pl_module: pl.LightningModule, datamodule: Any) -> None:
    """One line naming both sizes when the data's resolution is not the networks' (the discriminator
    would otherwise fail deep inside a forward on mismatched shapes)."""
    data = getattr(datamodule, "resolution", None)
    if not isinstance(data, int):
        return
    for role in ("generator", "discriminator"):
        size = network_resolution(getattr(pl_module, role, None))
        if size is not None and size != data:
            raise DatasetError(
                f"data resolution {data} (data.init_args.resolution) differs from the {role}'s {size} "
                f"(model.init_args.{role}.init_args.resolution)"
            )


def final_checkpoint_path(trainer: pl.Trainer) -> str:
    """Where a stop by signal writes its checkpoint: ``last.ckpt`` of the first checkpoint callback
    with a directory, else ``<default_root_dir>/checkpoints/last.ckpt``."""
    for callback in trainer.checkpoint_callbacks:
        if getattr(callback, "dirpath", None):
            return os.path.join(callback.dirpath, "last.ckpt")
    return os.path.join(trainer.default_root_dir, "checkpoints", "last.ckpt")


def _tensors(obj: Any, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    """(dotted name, tensor) of every tensor inside nested dicts/lists."""
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _tensors(value, f"{prefix}.{key}")
    elif isinstance(obj, (list, tuple)):
        for index, value in enumerate(obj):
            yield from _tensors(value, f"{prefix}.{index}")


def non_finite_tensors(checkpoint: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors holding NaN/Inf in the weights and optimizer state."""
    parts = {
        "state_dict": checkpoint.get("state_dict", {}),
        "optimizer_states": checkpoint.get("optimizer_states", []),
    }
    return [
        name
        for part, obj in parts.items()
        for name, tensor in _tensors(obj, part)
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


def latest_checkpoint(trainer: pl.Trainer) -> str | None:
    """The newest checkpoint file the trainer's checkpoint callbacks wrote (None if none)."""
    paths = [
        path
        for callback in trainer.checkpoint_callbacks
        for path in (getattr(callback, "last_model_path", ""), getattr(callback, "best_model_path", ""))
        if path and os.path.isfile(path)
    ]
    return max(paths, key=os.path.getmtime) if paths else None


class RunGuard(Callback):
    """See the module docstring. Added by ``GancompTrainer`` (first in the callback list, so the
    lock is taken before any other callback writes, e.g. the CLI's ``config.yaml``)."""

    def __init__(self) -> None:
        self._locks: list[str] = []
        self._previous_sigint: Any = None
        self.stop_signal: int | None = None
        self.stopped_after: int | None = None
        self.final_checkpoint: str | None = None
        self.final_error: BaseException | None = None

    def lock(self, trainer: pl.Trainer) -> None:
        """Lock the run's directories and clear leftover temporaries; ``GancompTrainer.fit`` calls
        it before Lightning starts (the logger creates its version folder early)."""
        if rank_zero_only.rank != 0:
            return
        for directory in run_directories(trainer):
            try:
                self._locks.append(acquire_lock(directory))
            except RunDirectoryLockedError:
                self.release()
                raise
            removed = remove_stale_temporaries(directory)
            if removed:
                rank_zero_info(f"gancomp: removed {len(removed)} temporary files left by killed writes")

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        check_resolution(pl_module, trainer.datamodule)
        if stage == "fit":
            self.stop_signal = self.stopped_after = self.final_checkpoint = self.final_error = None
            self._catch_sigint(trainer)

    def _catch_sigint(self, trainer: pl.Trainer) -> None:
        """First Ctrl+C: stop at the next batch end like SIGTERM does (Lightning's flag); second:
        stop at once (KeyboardInterrupt, no final checkpoint: the batch is half done)."""
        if threading.current_thread() is not threading.main_thread():
            return

        def on_sigint(signum: int, frame: Any) -> None:
            if self.stop_signal is not None:
                raise KeyboardInterrupt
            self.stop_signal = signal.SIGINT
            trainer._signal_connector.received_sigterm = True
            sys.stderr.write("gancomp: stopping after this batch (Ctrl+C again stops at once, unsaved)\n")

        self._previous_sigint = signal.signal(signal.SIGINT, on_sigint)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        if isinstance(exception, SIGTERMException):
            # Lightning raises it at a batch boundary after SIGTERM (or our first SIGINT): the
            # state is a whole number of batches, so it resumes like any periodic checkpoint.
            self.stop_signal = self.stop_signal or signal.SIGTERM
            self.stopped_after = int(getattr(pl_module, "batches_done", trainer.global_step))
            path = final_checkpoint_path(trainer)
            try:
                trainer.save_checkpoint(path)
                self.final_checkpoint = path
            except Exception as err:  # noqa: BLE001 - reported in the run's one-line error
                self.final_error = err
        self.release()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.release()

    def release(self) -> None:
        if self._previous_sigint is not None:
            signal.signal(signal.SIGINT, self._previous_sigint)
            self._previous_sigint = None
        for lock in self._locks:
            release_lock(lock)
        self._locks = []

    def interrupted(self) -> RunInterrupted:
        """The error ``fit`` raises after a stop by signal (exit status 128 + signal number)."""
        signum = self.stop_signal or signal.SIGTERM
        name = signal.Signals(signum).name
        if self.final_checkpoint:
            saved = (
                f"final checkpoint: {self.final_checkpoint} (resume with --ckpt_path {self.final_checkpoint})"
            )
        else:
            saved = f"the final checkpoint could not be written ({self.final_error})"
        return RunInterrupted(f"stopped by {name} after batch {self.stopped_after}; {saved}", 128 + signum)

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Lightning calls this inside dump_checkpoint, before any byte is written, for every save
        # (ModelCheckpoint, GanCheckpoint, trainer.save_checkpoint), whatever the checkpoint IO.
        bad = non_finite_tensors(checkpoint)
        if not bad:
            return
        kept = latest_checkpoint(trainer)
        where = f"last finite checkpoint: {kept}" if kept else "no checkpoint was written yet"
        batch = getattr(pl_module, "batches_done", trainer.global_step)
        raise NonFiniteCheckpointError(
            f"non-finite weights or optimizer state after batch {batch} ({len(bad)} tensors, first: "
            f"{bad[0]}); checkpoint not written, training stopped; {where}"
        )
