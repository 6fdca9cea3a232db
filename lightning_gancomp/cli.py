"""The ``gancomp`` command: LightningCLI with a Trainer subclass that adds custom subcommands.

``gancomp fit|validate|test|predict -c configs/...yaml`` are Lightning's; ``gancomp profile``
reports parameters, MACs in both conventions (torchprofile, and CAGAN's StyleGAN2 count) and
latency, for the teacher and the student when the model has both.

Custom subcommands are the documented LightningCLI mechanism: a method on the Trainer subclass
(``GancompTrainer``) plus an entry in ``GancompCLI.subcommands()`` naming the arguments the CLI
fills itself (``model``, ``datamodule``); every other parameter of the method becomes a
command-line option. **To add a command** (``prune``, ``export``): write the method on
:class:`GancompTrainer` and add its name to :data:`EXTRA_SUBCOMMANDS`.

Why these settings (REFERENCE §3): ``auto_configure_optimizers=False`` because methods take their
optimizers as ``OptimizerCallable`` constructor arguments (one per network);
``save_config_kwargs={"overwrite": True}`` so a second run (or a second W&B sweep trial) in the
same directory does not abort on the existing ``config.yaml``; checkpoints are written atomically.

Bad input ends with one line on stderr, ``gancomp: error: ...``, naming the key, file or value,
and exit status 2 (parse errors) or 1 (runtime errors); ``GANCOMP_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any, NoReturn

import pytorch_lightning as pl
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities.model_helpers import is_overridden

from lightning_gancomp.callbacks.checkpoint import AtomicCheckpointIO

#: Custom subcommands: method name on GancompTrainer → arguments the CLI fills in itself.
EXTRA_SUBCOMMANDS: dict[str, set[str]] = {
    "profile": {"model", "datamodule"},
    "prune": {"model", "datamodule"},
    "export": {"model", "datamodule"},
}


class GancompTrainer(pl.Trainer):
    """``pl.Trainer`` plus the ``gancomp`` commands that are not training loops."""

    def predict(
        self,
        model: pl.LightningModule | None = None,
        dataloaders: Any = None,
        datamodule: pl.LightningDataModule | None = None,
        return_predictions: bool | None = None,
        ckpt_path: str | None = None,
        weights_only: bool | None = None,
    ) -> Any:
        """Generate images: one per item of the datamodule's test split (its labels / input images
        for conditional and image-to-image models); add ``callbacks.ImageWriter`` to save them.

        The data modules define no predict split, so their test loader is used instead.
        """
        if (
            dataloaders is None
            and datamodule is not None
            and not is_overridden("predict_dataloader", datamodule)
        ):
            datamodule.setup("test")
            dataloaders, datamodule = datamodule.test_dataloader(), None
        return super().predict(model, dataloaders, datamodule, return_predictions, ckpt_path, weights_only)

    def prune(
        self,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule | None = None,
        output: str | None = None,
        plan_path: str | None = None,
        teacher_path: str | None = None,
        plan: str | None = None,
    ) -> None:
        """Score the teacher's channels, choose the kept ones, cut them out (pruning package).

        Uses the method's pruning recipe (``model.init_args.scorer`` / ``policy``) and its
        ``teacher_path``; writes the student checkpoint (default: the config's ``student_path``)
        and the plan JSON (default: ``<output stem>.plan.json``), and prints params/MACs.

        Args:
            model: a compression method with a pruning recipe (CAGAN, DCP).
            datamodule: unused; accepted because the CLI always passes it.
            output: student checkpoint path (overrides the config's ``student_path``).
            plan_path: where to write the plan JSON.
            teacher_path: teacher checkpoint (overrides the config's ``teacher_path``).
            plan: apply an existing plan JSON instead of scoring.
        """
        from lightning_gancomp.commands.prune import prune_method

        prune_method(model, output=output, plan_path=plan_path, teacher_path=teacher_path, plan=plan)

    def export(
        self,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule | None = None,
        checkpoint: str | None = None,
        output: str = "generator.pt",
        key: str | None = None,
        torchscript: str | None = None,
        torchscript_batch_size: int = 1,
    ) -> None:
        """Write a plain generator file (weights + widths) and optionally TorchScript.

        Args:
            model: the configured method (its ``student_path`` is the default checkpoint).
            datamodule: unused; accepted because the CLI always passes it.
            checkpoint: training or pruned checkpoint (G-EMA unless ``key`` names another net).
            output: plain generator file, loadable with ``load_generator`` alone.
            key: network in the checkpoint (``g_ema`` default, ``g``, ``teacher``).
            torchscript: also write a traced TorchScript module here.
            torchscript_batch_size: the batch size the trace is recorded (and runs) at.
        """
        from lightning_gancomp.commands.export import export_method

        export_method(
            model,
            checkpoint=checkpoint,
            output=output,
            key=key,
            torchscript=torchscript,
            torchscript_batch_size=torchscript_batch_size,
        )

    def profile(
        self,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule | None = None,
        batch_size: int = 1,
        device: str = "cpu",
        warmup: int = 3,
        repeats: int = 10,
        resolution: int | None = None,
        output: str | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Parameters, MACs (torchprofile and CAGAN conventions) and latency of the generators.

        Args:
            model: the configured method (its ``profile_networks()``: teacher and student, or
                the generator).
            datamodule: unused; accepted because the CLI always passes it.
            batch_size: latency batch size.
            device: where latency is measured (``cpu``, ``cuda``, ``cuda:1`` …).
            warmup: untimed warm-up forwards.
            repeats: timed forwards (median reported).
            resolution: input size of image-to-image generators (default 256).
            output: also write the report as JSON to this path.
        """
        from lightning_gancomp.commands.profile import profile_method

        return profile_method(model, batch_size, device, warmup, repeats, resolution, output)


# -- parser: one clear line on bad input ----------------------------------------------------------
class ConfigError(ValueError):
    """The command line or a config file is invalid (raised instead of exiting when asked)."""


def one_line(message: str) -> str:
    """One line from jsonargparse's multi-line validation messages.

    For a class-typed key ("Does not validate against any of the Union subtypes ...") keep the
    key and the reasons (``- Option 'foo' is not accepted``), dropping the ``NoneType``
    alternative and the echo of the given value.
    """
    text = str(message).strip()
    if "Union subtypes" in text:
        head = text.splitlines()[0].split(": Does not validate")[0].rstrip(":")
        reasons = [
            line.strip()[2:]
            for line in text.splitlines()
            if line.strip().startswith("- ") and "NoneType" not in line
        ]
        if reasons:
            text = f"{head}: " + "; ".join(dict.fromkeys(reasons))
    text = re.sub(r"\s*\n\s*", " ", text)
    return re.sub(r"\s{2,}", " ", text)


class GancompArgumentParser(LightningArgumentParser):
    """Prints ``gancomp: error: <one line>`` and exits 2 on invalid arguments/configs."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:
            raise ConfigError(one_line(message)) from ex
        sys.stderr.write(f"gancomp: error: {one_line(message)}\n")
        sys.exit(2)


class GancompCLI(LightningCLI):
    """LightningCLI for lightning_gancomp (see the module docstring for the choices)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("trainer_class", GancompTrainer)
        kwargs.setdefault("parser_class", GancompArgumentParser)
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        super().__init__(*args, **kwargs)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLI.subcommands(), **EXTRA_SUBCOMMANDS}

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        # Atomic checkpoint files unless the config chose its own plugins.
        trainer_config = self._get(self.config_init, "trainer", default={})
        if not trainer_config.get("plugins"):
            kwargs.setdefault("plugins", [AtomicCheckpointIO()])
        return super().instantiate_trainer(**kwargs)


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input (reported as one line), not a bug (traceback)."""
    from lightning_gancomp.checkpoints import CheckpointError
    from lightning_gancomp.data import DatasetError
    from lightning_gancomp.losses import MissingLossInputError
    from lightning_gancomp.methods import NonFiniteLossError
    from lightning_gancomp.metrics import FeatureExtractorUnavailableError
    from lightning_gancomp.nets.base import ChannelGroupError, CheckpointMismatchError
    from lightning_gancomp.pruning.hyper import HyperNetworkError
    from lightning_gancomp.pruning.mac_model import MacModelError

    return (
        ConfigError,
        CheckpointError,
        CheckpointMismatchError,
        ChannelGroupError,
        DatasetError,
        MissingLossInputError,
        NonFiniteLossError,
        FeatureExtractorUnavailableError,
        FileNotFoundError,
        HyperNetworkError,
        MacModelError,
    )


def run_cli(args: list[str] | None = None, **kwargs: Any) -> GancompCLI:
    """Build and run the CLI (tests call this with ``args``)."""
    return GancompCLI(args=args, **kwargs)


def find_user_error(exc: BaseException) -> BaseException | None:
    """The bad-input error behind ``exc``: jsonargparse wraps exceptions raised while building
    the model/data (e.g. a teacher file of the wrong kind) in its own validation errors."""
    errors = user_errors()
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, errors):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def main(args: list[str] | None = None) -> None:
    """Console entry point ``gancomp``."""
    try:
        run_cli(args)
    except Exception as exc:  # noqa: BLE001 - only bad-input errors are turned into one line
        culprit = find_user_error(exc)
        if culprit is None or os.environ.get("GANCOMP_DEBUG"):
            raise
        sys.stderr.write(f"gancomp: error: {one_line(str(culprit))}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
