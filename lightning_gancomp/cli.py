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
from typing import Any, Literal, NoReturn

import pytorch_lightning as pl
from pytorch_lightning.callbacks import BasePredictionWriter
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.utilities.exceptions import MisconfigurationException, SIGTERMException
from pytorch_lightning.utilities.model_helpers import is_overridden

from lightning_gancomp.callbacks.checkpoint import AtomicCheckpointIO
from lightning_gancomp.callbacks.guard import (
    NonFiniteCheckpointError,
    RunDirectoryLockedError,
    RunGuard,
    RunInterrupted,
)
from lightning_gancomp.callbacks.predictions import ImageWriter
from lightning_gancomp.callbacks.resume import ConfiguredOptimizerSettings
from lightning_gancomp.checkpoints import CheckpointError

#: Custom subcommands: method name on GancompTrainer → arguments the CLI fills in itself.
EXTRA_SUBCOMMANDS: dict[str, set[str]] = {
    "profile": {"model", "datamodule"},
    "prune": {"model", "datamodule"},
    "export": {"model", "datamodule"},
}


def weights_only_default(weights_only: bool | None) -> bool:
    """``--weights_only`` unset means True: a checkpoint never runs pickled code unless the user
    opts out explicitly (``--weights_only=false``) for a file they trust. Lightning's own default
    for ``http(s)://`` paths is ``weights_only=False``."""
    return True if weights_only is None else weights_only


def network_file_as_student(model: Any, ckpt_path: str | None) -> str | None:
    """``ckpt_path`` unless it is a file of networks rather than a training checkpoint (``gancomp
    prune`` output, an exported generator): then a compression method takes its generator as the
    student and None is returned; any other model gets one line saying what to pass."""
    from lightning_gancomp.methods.compression import CompressionModule

    if not ckpt_path or "://" in str(ckpt_path) or not os.path.isfile(ckpt_path):
        return ckpt_path
    payload = AtomicCheckpointIO().load_checkpoint(ckpt_path, weights_only=True)
    if not isinstance(payload, dict) or "state_dict" in payload:
        return ckpt_path
    if isinstance(model, CompressionModule):
        model.load_student_file(ckpt_path)
        sys.stderr.write(
            f"gancomp: note: {ckpt_path} is not a training checkpoint; its generator is tested\n"
        )
        return None
    raise CheckpointError(
        f"--ckpt_path {ckpt_path}: holds networks, not a training checkpoint; pass a Lightning "
        "checkpoint (<run>/checkpoints/last.ckpt), or use a compression config with "
        f"model.init_args.student_path={ckpt_path}"
    )


class GancompTrainer(pl.Trainer):
    """``pl.Trainer`` plus the ``gancomp`` commands that are not training loops.

    ``fit/validate/test/predict`` load ``ckpt_path`` weights-only unless ``weights_only=False``
    is passed (:func:`weights_only_default`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not any(isinstance(callback, RunGuard) for callback in self.callbacks):
            self.callbacks.insert(0, RunGuard())  # first: lock before any callback writes
        if not any(isinstance(callback, ConfiguredOptimizerSettings) for callback in self.callbacks):
            self.callbacks.append(ConfiguredOptimizerSettings())

    @property
    def run_guard(self) -> RunGuard:
        return next(callback for callback in self.callbacks if isinstance(callback, RunGuard))

    def fit(
        self,
        model: pl.LightningModule,
        train_dataloaders: Any = None,
        val_dataloaders: Any = None,
        datamodule: pl.LightningDataModule | None = None,
        ckpt_path: str | None = None,
        weights_only: bool | None = None,
    ) -> None:
        """Train ``model`` (Lightning's ``fit``).

        Args:
            model: the method to train.
            train_dataloaders: Lightning's argument (the CLI uses ``datamodule``).
            val_dataloaders: Lightning's argument (the CLI uses ``datamodule``).
            datamodule: the data.
            ckpt_path: checkpoint to resume from (local path or URL).
            weights_only: unset = True: ``ckpt_path`` may hold only tensors and plain data.
                ``--weights_only=false`` lets it run pickled code: only for a file you trust.
        """
        self.run_guard.lock(self)
        try:
            super().fit(
                model,
                train_dataloaders,
                val_dataloaders,
                datamodule,
                ckpt_path,
                weights_only_default(weights_only),
            )
        except SIGTERMException as stop:  # a SystemExit with status 0: a scheduler would see success
            raise self.run_guard.interrupted() from stop
        finally:
            self.run_guard.release()

    def validate(
        self,
        model: pl.LightningModule | None = None,
        dataloaders: Any = None,
        ckpt_path: str | None = None,
        verbose: bool = True,
        datamodule: pl.LightningDataModule | None = None,
        weights_only: bool | None = None,
    ) -> Any:
        """Lightning's ``validate``; ``ckpt_path`` is loaded weights-only unless ``weights_only=False``
        (a file of networks: as in :meth:`test`)."""
        ckpt_path = network_file_as_student(model, ckpt_path)
        return super().validate(
            model, dataloaders, ckpt_path, verbose, datamodule, weights_only_default(weights_only)
        )

    def test(
        self,
        model: pl.LightningModule | None = None,
        dataloaders: Any = None,
        ckpt_path: str | None = None,
        verbose: bool = True,
        datamodule: pl.LightningDataModule | None = None,
        weights_only: bool | None = None,
    ) -> Any:
        """Lightning's ``test``; ``ckpt_path`` is loaded weights-only unless ``weights_only=False``.
        A file of networks (``gancomp prune`` output, an exported generator) is evaluated as the
        student of a compression config."""
        ckpt_path = network_file_as_student(model, ckpt_path)
        return super().test(
            model, dataloaders, ckpt_path, verbose, datamodule, weights_only_default(weights_only)
        )

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

        The data modules define no predict split, so their test loader is used instead. Without an
        image-writing callback the images go to ``<log dir>/predictions`` (the command says where).
        """
        ckpt_path = network_file_as_student(model, ckpt_path)
        writer = next((c for c in self.callbacks if isinstance(c, BasePredictionWriter)), None)
        if writer is None:
            writer = ImageWriter(os.path.join(self.log_dir or self.default_root_dir, "predictions"))
            self.callbacks.append(writer)
        if (
            dataloaders is None
            and datamodule is not None
            and not is_overridden("predict_dataloader", datamodule)
        ):
            datamodule.setup("test")
            dataloaders, datamodule = datamodule.test_dataloader(), None
        predictions = super().predict(
            model, dataloaders, datamodule, return_predictions, ckpt_path, weights_only_default(weights_only)
        )
        if isinstance(writer, ImageWriter) and self.is_global_zero:
            print(f"gancomp: wrote {len(writer.written)} images to {os.path.abspath(writer.output_dir)}")
        return predictions

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
        onnx: str | None = None,
    ) -> None:
        """Write a plain generator file (weights + widths) and optionally TorchScript and ONNX.

        Args:
            model: the configured method (its ``student_path`` is the default checkpoint).
            datamodule: unused; accepted because the CLI always passes it.
            checkpoint: training or pruned checkpoint (G-EMA unless ``key`` names another net).
            output: plain generator file, loadable with ``load_generator`` alone.
            key: network in the checkpoint (``g_ema`` default, ``g``, ``teacher``).
            torchscript: also write a traced TorchScript module here.
            torchscript_batch_size: the batch size the trace is recorded (and runs) at.
            onnx: also write an ONNX file here (dynamic batch; checked in ONNX Runtime).
        """
        from lightning_gancomp.commands.export import export_method

        export_method(
            model,
            checkpoint=checkpoint,
            output=output,
            key=key,
            torchscript=torchscript,
            torchscript_batch_size=torchscript_batch_size,
            onnx=onnx,
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
        backends: list[Literal["eager", "compile", "onnxruntime"]] | None = None,
        dtypes: list[Literal["fp32", "fp16", "int8-dynamic", "int8-static"]] | None = None,
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
            backends: also time each generator on these deployment backends (PyTorch eager,
                ``torch.compile``, ONNX Runtime), teacher and student interleaved, with the
                speedup over the teacher on the same backend.
            dtypes: data types for the backend table (``fp32``; ``fp16`` where the backend
                supports it; ``int8-dynamic`` / ``int8-static`` through ONNX Runtime quantisation),
                each with its output drift from fp32.
        """
        from lightning_gancomp.commands.profile import profile_method

        return profile_method(
            model,
            batch_size,
            device,
            warmup,
            repeats,
            resolution,
            output,
            backends or (),
            dtypes or ("fp32",),
        )


def check_accelerator(accelerator: Any) -> None:
    """``trainer.accelerator`` naming hardware this machine lacks is one line naming the key
    (Lightning says only "No supported gpu backend found!")."""
    import torch

    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator}: this machine has no CUDA GPU (torch.cuda.is_available() "
            "is False); use accelerator: cpu or auto"
        )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("trainer.accelerator=mps: MPS is not available on this machine; use cpu or auto")


def config_files(args: Any) -> list[str]:
    """The existing files given to ``-c/--config`` in a command line (other forms: none)."""
    if not isinstance(args, (list, tuple)):
        return []
    files = []
    for index, arg in enumerate(args):
        arg = str(arg)
        if arg in ("-c", "--config") and index + 1 < len(args):
            files.append(str(args[index + 1]))
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
    return [path for path in files if os.path.isfile(path)]


def yaml_problem(path: str) -> str | None:
    """``<file>: malformed YAML at line L, column C: <problem>``, or None when it parses."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            yaml.safe_load(handle)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        return f"{path}: malformed YAML{where}: {problem}"
    except (OSError, UnicodeDecodeError) as err:
        return f"{path}: cannot be read as a YAML config ({err})"
    return None


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

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        # jsonargparse reports YAML syntax errors of a config file against "<unicode string>":
        # read the config files first so the message names the file and line.
        for path in config_files(sys.argv[1:] if args is None else args):
            problem = yaml_problem(path)
            if problem:
                parser.error(problem)
        super().parse_arguments(parser, args)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {**LightningCLI.subcommands(), **EXTRA_SUBCOMMANDS}

    def _prepare_subcommand_parser(
        self, klass: type, subcommand: str, **kwargs: Any
    ) -> LightningArgumentParser:
        """``prune``/``export``/``profile`` show their own options first in ``--help`` (then the
        model, data and Trainer options they also accept), with a usage line that fits a screen."""
        if subcommand not in EXTRA_SUBCOMMANDS:
            return super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        parser = self.init_parser(**kwargs)
        added = parser.add_method_arguments(klass, subcommand, skip=set(self.subcommands()[subcommand]))
        self._subcommand_method_arguments[subcommand] = added
        self._add_arguments(parser)
        own = " ".join(f"[--{name} {name.upper()}]" for name in added)
        parser.usage = f"gancomp {subcommand} -c CONFIG {own} [--model.* --data.* --trainer.* overrides]"
        return parser

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """``--model``'s help lists the methods to choose from."""
        from lightning_gancomp.methods.catalogue import method_choices

        for action in parser._actions:
            if action.dest == "model":
                action.help = f"The method: one of {method_choices()} (class_path and init_args)."

    def _parse_ckpt_path(self) -> None:
        """Replaces LightningCLI's merge of ``ckpt_path``'s ``hyper_parameters`` into the config:
        the config wins, differences are one line, network changes are refused
        (:mod:`lightning_gancomp.stored_config`). The file is read weights-only and checked (an
        empty, truncated or code-carrying file is one line naming it)."""
        from lightning_gancomp.stored_config import compare_stored_hyperparameters

        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if not ckpt_path or "://" in str(ckpt_path) or str(ckpt_path) in ("last", "best", "hpc", "registry"):
            return  # a URL is read by the Trainer (weights-only); named checkpoints are resolved there
        try:
            ckpt = AtomicCheckpointIO().load_checkpoint(ckpt_path, map_location="cpu", weights_only=True)
        except CheckpointError:
            if self.config[subcommand].get("weights_only") is False:
                return  # explicit opt-out for a trusted file: the Trainer loads it
            raise
        hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
        if hparams:
            differences = compare_stored_hyperparameters(
                ckpt_path, hparams, self.config[subcommand].get("model")
            )
            if differences:
                sys.stderr.write(
                    f"gancomp: note: {ckpt_path} stores other hyper-parameters than the config, the config "
                    f"is used: {'; '.join(differences)}\n"
                )

    def after_instantiate_classes(self) -> None:
        from lightning_gancomp.commands.prune import check_student_plan

        super().after_instantiate_classes()
        if self.subcommand not in (None, "prune"):  # prune is about to replace both files
            check_student_plan(self.model)

    def instantiate_trainer(self, **kwargs: Any) -> pl.Trainer:
        # Atomic checkpoint files unless the config chose its own plugins.
        trainer_config = self._get(self.config_init, "trainer", default={})
        check_accelerator(trainer_config.get("accelerator"))
        if not trainer_config.get("plugins"):
            kwargs.setdefault("plugins", [AtomicCheckpointIO()])
        return super().instantiate_trainer(**kwargs)


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input (reported as one line), not a bug (traceback)."""
    from lightning_gancomp.atomic import OutputError
    from lightning_gancomp.checkpoints import CheckpointError
    from lightning_gancomp.commands.export import ExportError
    from lightning_gancomp.commands.profile import ProfileError
    from lightning_gancomp.commands.prune import PruneError
    from lightning_gancomp.data import DatasetError
    from lightning_gancomp.losses import MissingLossInputError
    from lightning_gancomp.methods import NonFiniteLossError
    from lightning_gancomp.metrics import FeatureExtractorUnavailableError
    from lightning_gancomp.metrics.fid_stats import FidStatisticsError
    from lightning_gancomp.nets.base import ChannelGroupError, CheckpointMismatchError
    from lightning_gancomp.pretrained import BuiltinTeacherError
    from lightning_gancomp.pruning.hyper import HyperNetworkError
    from lightning_gancomp.pruning.mac_model import MacModelError
    from lightning_gancomp.pruning.plan import PlanError

    return (
        ConfigError,
        CheckpointError,
        BuiltinTeacherError,
        ExportError,
        OutputError,
        PruneError,
        ProfileError,
        PlanError,
        MisconfigurationException,
        CheckpointMismatchError,
        ChannelGroupError,
        DatasetError,
        MissingLossInputError,
        NonFiniteLossError,
        NonFiniteCheckpointError,
        RunDirectoryLockedError,
        FeatureExtractorUnavailableError,
        FidStatisticsError,
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


def error_message(exc: BaseException) -> str:
    """The user-facing text of ``exc``. An error raised inside a DataLoader worker comes back as
    ``Caught DatasetError in DataLoader worker process 0. Original Traceback ...``: keep only the
    original message (the traceback's last line, without its ``module.ErrorType:`` prefix)."""
    text = str(exc)
    if re.match(r"Caught \w+ in DataLoader worker process \d+", text):
        last = [line for line in text.strip().splitlines() if line.strip()][-1]
        return re.sub(r"^[\w.]+(Error|Exception): ", "", last.strip())
    return text


def main(args: list[str] | None = None) -> None:
    """Console entry point ``gancomp``.

    ``gancomp compare`` is dispatched before LightningCLI: a comparison config names several
    method configs and runs each through this same CLI (``commands.compare``), so it is not one
    LightningModule/Trainer config that LightningCLI could parse.
    """
    from lightning_gancomp.quiet import silence_known_warnings

    silence_known_warnings()
    argv = sys.argv[1:] if args is None else list(args)
    if argv[:1] == ["compare"]:
        from lightning_gancomp.commands.compare import compare_main

        return compare_main(argv[1:])
    try:
        run_cli(args)
    except RunInterrupted as stop:
        sys.stderr.write(f"gancomp: error: {stop}\n")
        sys.exit(stop.exit_code)
    except Exception as exc:  # noqa: BLE001 - only bad-input errors are turned into one line
        culprit = find_user_error(exc)
        if culprit is None or os.environ.get("GANCOMP_DEBUG"):
            raise
        sys.stderr.write(f"gancomp: error: {one_line(error_message(culprit))}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
