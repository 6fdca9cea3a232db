"""What every compression method shares: a frozen teacher, the student's construction, the
discriminator's source, the pruning recipe, and teacher outputs in the loss context.

:class:`CompressionModule` is the engine (:class:`~lightning_gancomp.methods.engine.
AdversarialModule`) with the student as ``generator``. A method (CAGAN, DCP, PPCD, CoroNet)
adds its loss terms, defaults and, where needed, the engine's hooks; it does not subclass
another method.

Networks: each of teacher / student / discriminator is given as an architecture (``class_path``
+ widths), a file (any format ``checkpoints.load_generator`` / ``load_discriminator`` reads), or
both. Both = the architecture is built now, so ``gancomp profile`` needs no file, and the file's
weights are loaded when a Trainer stage starts (``setup``); a file whose widths differ from the
architecture is a one-line error. A file alone is loaded at construction.

Student construction (``student_init``):

- ``"pruned_teacher"`` (default): the student's weights are those of its file (``gancomp prune``
  output); without a student file or architecture, a copy of the teacher at the widths the
  pruning policy implies (uniform / per-group ratios: ``PruningPolicy.widths``), so a config
  never repeats the widths next to ``ratio: 0.7``; with a student file and no student
  architecture, the architecture is derived the same way and the file's weights are loaded at
  ``setup`` (so ``gancomp profile`` / ``prune`` need no pruned file yet);
- ``"random"``: a fresh initialisation at the student's widths (seeded by ``init_seed``);
- ``"random_synthesis"``: fresh synthesis layers, the teacher's mapping network
  (StyleKD/DCP ``distributed_train.py --load 0 --load_style 1``).

The pruning recipe (``scorer``, ``policy``, ``rescale_equalized``) is what ``gancomp prune``
applies to the teacher; methods that prune while training (PPCD, CoroNet) have none.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lightning_gancomp.losses import FeatureDistillation, LossContext
from lightning_gancomp.methods.engine import AdversarialModule, freeze
from lightning_gancomp.methods.evaluation import NetName
from lightning_gancomp.methods.teacher_eval import (
    TeacherEvaluation,
    comparison_lines,
    evaluation_set,
    metrics_settings,
)
from lightning_gancomp.nets.base import CheckpointMismatchError, GanNet, load_state_dict_strict
from lightning_gancomp.nets.contract import (
    GeneratorInputs,
    capture_outputs,
    generator_task,
    is_style_based,
    run_generator,
)
from lightning_gancomp.pruning.importance import ChannelScorer
from lightning_gancomp.pruning.plan import PruningPolicy

StudentInit = Literal["pruned_teacher", "random", "random_synthesis"]
NetRole = Literal["teacher", "student", "discriminator"]


@dataclass(frozen=True)
class PruningRecipe:
    """How ``gancomp prune`` turns the teacher into the student: scores → plan → surgery."""

    scorer: ChannelScorer
    policy: PruningPolicy
    rescale_equalized: bool


def reinitialise_synthesis(
    student: GanNet, teacher: GanNet | None, mapping_prefixes: Sequence[str] = ("style.",), seed: int = 0
) -> GanNet:
    """A freshly initialised copy of ``student``; with a teacher, every tensor whose key starts with
    one of ``mapping_prefixes`` (StyleGAN2: ``style.``) and ``latent_avg`` come from the teacher.

    StyleKD/DCP ``distributed_train.py`` with ``--load 0 --load_style 1`` (prefixes given), or
    a plain random student (``teacher=None`` / no prefixes).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = type(student)(**student.config)
    if teacher is not None and mapping_prefixes:
        _copy_mapping(fresh, teacher, mapping_prefixes)
    return fresh.to(next(student.parameters()).device).train(student.training)


def _copy_mapping(fresh: GanNet, teacher: GanNet, mapping_prefixes: Sequence[str]) -> None:
    state, teacher_state = fresh.state_dict(), teacher.state_dict()
    copied = []
    for key in state:
        if key.startswith(tuple(mapping_prefixes)) or key == "latent_avg":
            if key not in teacher_state or teacher_state[key].shape != state[key].shape:
                raise ValueError(
                    f"student_init=random_synthesis: teacher has no tensor {key} "
                    f"of shape {tuple(state[key].shape)}"
                )
            state[key] = teacher_state[key].detach().clone()
            if key != "latent_avg":
                copied.append(key)
    if is_style_based(fresh) and not copied:
        raise ValueError(
            f"student_init=random_synthesis: no mapping tensors match prefixes {list(mapping_prefixes)}"
        )
    load_state_dict_strict(fresh, state, "random-synthesis student")


def _has_widths(policy: PruningPolicy | None, teacher: GanNet) -> bool:
    """Whether the student's widths follow from the policy alone (uniform / per-group ratios)."""
    return policy is not None and policy.widths(teacher) is not None


def _loaders() -> dict[NetRole, Callable[[str], GanNet]]:
    from lightning_gancomp.checkpoints import load_discriminator, load_generator

    return {"teacher": load_generator, "student": load_generator, "discriminator": load_discriminator}


def check_same_architecture(loaded: GanNet, target: GanNet, role: str, path: str) -> None:
    """One line when a file's network differs from the configured one (arguments left at None in
    the config, e.g. default widths, are not compared: the strict load still checks shapes)."""
    ignored = set(type(target).initialisation_arguments)
    differing = sorted(
        k
        for k, v in target.config.items()
        if v is not None and k not in ignored and loaded.config.get(k, v) != v
    )
    if type(loaded) is not type(target) or differing:
        detail = "; ".join(
            f"{k}: file {loaded.config.get(k)} vs config {target.config[k]}" for k in differing[:2]
        )
        raise CheckpointMismatchError(
            f"{path}: holds a {type(loaded).__name__} that differs from the configured {role} "
            f"({type(target).__name__}){': ' + detail if detail else ''}"
        )


class CompressionModule(AdversarialModule):
    """Train a student generator, optionally distilled from a frozen teacher.

    Args:
        teacher / teacher_path: the teacher architecture and/or file (see the module docstring).
            Frozen (``requires_grad_(False)``, eval mode, never optimised; frozen in ``__init__``,
            before any strategy wraps the module). Optional for teacher-free methods.
        student / student_path: the student architecture and/or file; without both, derived from
            the teacher and the pruning policy.
        student_init: ``"pruned_teacher"``, ``"random"`` or ``"random_synthesis"``.
        mapping_prefixes: state-dict prefixes of the mapping network ``random_synthesis`` keeps.
        init_seed: seed of the random initialisations.
        discriminator / discriminator_path: the discriminator and/or a file (the teacher's
            training checkpoint: "initialised from the teacher's D", CAGAN/StyleKD).
        scorer / policy / rescale_equalized: the pruning recipe of ``gancomp prune`` (None for
            methods that prune while training).
        evaluate_teacher: ``gancomp test`` also evaluates the teacher on the same protocol
            (cached per teacher weights and protocol) and prints both with the size ratio.
        **kwargs: the training recipe, passed to :class:`AdversarialModule` (optimizers,
            schedules, loss terms, R1/path length, EMA, metrics...).
    """

    def __init__(
        self,
        teacher: GanNet | None = None,
        teacher_path: str | None = None,
        student: GanNet | None = None,
        student_path: str | None = None,
        student_init: StudentInit = "pruned_teacher",
        mapping_prefixes: tuple[str, ...] = ("style.",),
        init_seed: int = 0,
        discriminator: GanNet | None = None,
        discriminator_path: str | None = None,
        scorer: ChannelScorer | None = None,
        policy: PruningPolicy | None = None,
        rescale_equalized: bool = True,
        evaluate_teacher: bool = True,
        **kwargs: Any,
    ) -> None:
        if student_init not in ("pruned_teacher", "random", "random_synthesis"):
            raise ValueError(
                f"student_init must be 'pruned_teacher', 'random' or 'random_synthesis', got {student_init!r}"
            )
        paths: dict[NetRole, str | None] = {
            "teacher": teacher_path,
            "student": student_path,
            "discriminator": discriminator_path,
        }
        #: every configured file (`gancomp prune` / `export` read them through `source_file`)
        self._source_files = {k: os.path.expanduser(v) for k, v in paths.items() if v is not None}
        teacher_net = self._network_or_file(teacher, "teacher")
        if (
            student is None
            and teacher_net is not None
            and (student_path is None or _has_widths(policy, teacher_net))
        ):
            # with a student file too: the derived architecture now, the file's weights at setup
            student = self._derived_student(teacher_net, policy)
        student_net = self._network_or_file(student, "student")
        d_net = self._network_or_file(discriminator, "discriminator")
        self._check_networks(teacher_net, student_net, d_net)
        super().__init__(generator=student_net, discriminator=d_net, **kwargs)
        self.teacher = freeze(teacher_net) if teacher_net is not None else None
        #: networks configured as architecture + file: weights loaded at `setup`
        self.weight_files = {
            role: self._source_files[role]
            for role, net in (("teacher", teacher), ("student", student), ("discriminator", discriminator))
            if net is not None and role in self._source_files
        }
        self.student_init, self.mapping_prefixes, self.init_seed = (
            student_init,
            tuple(mapping_prefixes),
            init_seed,
        )
        self.scorer, self.policy, self.rescale_equalized = scorer, policy, rescale_equalized
        self.evaluate_teacher = evaluate_teacher
        self._teacher_eval: TeacherEvaluation | None = None
        self._weights_ready = False
        if not self.weight_files:
            self.prepare_student()
        self.bind_feature_terms()

    # -- construction --------------------------------------------------------------------------
    def _check_networks(self, teacher: GanNet | None, student: GanNet | None, d: GanNet | None) -> None:
        if student is None or d is None:
            missing = "student" if student is None else "discriminator"
            raise ValueError(f"{type(self).__name__} needs a {missing} (architecture or file)")
        if teacher is not None and generator_task(student) != generator_task(teacher):
            raise ValueError(
                f"student task {generator_task(student)!r} differs from teacher task "
                f"{generator_task(teacher)!r}"
            )

    def _network_or_file(self, net: GanNet | None, role: NetRole) -> GanNet | None:
        """The configured architecture (weights come at setup), else the file loaded now."""
        if net is not None or role not in self._source_files:
            return net
        return _loaders()[role](self._source_files[role])

    @staticmethod
    def _derived_student(teacher: GanNet, policy: PruningPolicy | None) -> GanNet:
        """The teacher's architecture at the widths the policy implies (or the teacher's)."""
        widths = policy.widths(teacher) if policy is not None else None
        if widths is None:
            return copy.deepcopy(teacher)
        return type(teacher)(**teacher.config_for_group_sizes(widths))

    def prepare_student(self) -> None:
        """Apply ``student_init`` once the student holds its (pruned-teacher) weights."""
        if self._weights_ready:
            return
        self._weights_ready = True
        if self.student_init != "pruned_teacher":
            prefixes = self.mapping_prefixes if self.student_init == "random_synthesis" else ()
            if self.student_init == "random_synthesis" and self.teacher is None:
                raise ValueError("student_init=random_synthesis copies the teacher's mapping: give a teacher")
            fresh = reinitialise_synthesis(self.generator, self.teacher, prefixes, self.init_seed)
            self.generator.load_state_dict(fresh.state_dict())
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(self.generator.state_dict())

    def load_weight_files(self) -> None:
        """Load the weights of networks configured as architecture + file (strict, one line)."""
        targets = {"teacher": self.teacher, "student": self.generator, "discriminator": self.discriminator}
        for role, path in self.weight_files.items():
            loaded = _loaders()[role](path)
            check_same_architecture(loaded, targets[role], role, path)
            load_state_dict_strict(targets[role], loaded.state_dict(), path)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.weight_files and not self._weights_ready:
            self.load_weight_files()
            self.prepare_student()

    def load_student_file(self, path: str) -> None:
        """Evaluate a file of networks (``gancomp prune`` output, an exported generator) as the
        student: its generator (G-EMA first) replaces the student's weights, strictly; the
        config's own student file and ``student_init`` no longer apply."""
        loaded = _loaders()["student"](path)
        check_same_architecture(loaded, self.generator, "student", path)
        load_state_dict_strict(self.generator, loaded.state_dict(), path)
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(self.generator.state_dict())
        self.weight_files.pop("student", None)
        self.student_init = "pruned_teacher"

    def source_file(self, role: NetRole) -> str | None:
        """The file configured for ``role`` (None when the config gives none)."""
        return self._source_files.get(role)

    def pruning_recipe(self) -> PruningRecipe | None:
        """The recipe ``gancomp prune`` applies (None: the method prunes while training)."""
        if self.scorer is None or self.policy is None:
            return None
        return PruningRecipe(self.scorer, self.policy, self.rescale_equalized)

    # -- networks ------------------------------------------------------------------------------
    @property
    def student(self) -> nn.Module:
        return self.generator

    def frozen_modules(self) -> list[nn.Module]:
        teacher = [self.teacher] if self.teacher is not None else []
        return [*super().frozen_modules(), *teacher]

    def network(self, net: NetName) -> nn.Module:
        if net == "teacher":
            if self.teacher is None:
                raise ValueError(f"{type(self).__name__} has no teacher")
            return self.teacher
        return super().network(net)

    def checkpoint_networks(self) -> dict[str, GanNet]:
        teacher = {"teacher": self.teacher} if self.teacher is not None else {}
        return {**super().checkpoint_networks(), **teacher}

    def profile_networks(self) -> dict[str, nn.Module]:
        student = {"student": self.materialise() or self.eval_generator()}
        return {"teacher": self.teacher, **student} if self.teacher is not None else student

    def grid_rows(self) -> list[tuple[str, Tensor]]:
        """Teacher above student on the same inputs (image-to-image: input, teacher, student)."""
        rows = super().grid_rows()
        if self.teacher is None:
            return rows
        inputs = (self._grid_inputs or self.fixed_grid_inputs()).to(self.device)
        teacher = ("teacher", self.generate(inputs, "teacher").clamp(-1, 1))
        student = ("student", rows.pop()[1])
        return [*rows, teacher, student]

    # -- feature distillation setup ----------------------------------------------------------------
    @torch.no_grad()
    def distillation_channels(self) -> tuple[list[int], list[int]]:
        """Channels of every distillation point (student, teacher), from one probe forward."""
        assert self.teacher is not None, "feature distillation needs a teacher"
        points_s = self.generator.distillation_points()
        points_t = self.teacher.distillation_points()
        if len(points_s) != len(points_t):
            raise ValueError(
                f"student has {len(points_s)} distillation points, teacher {len(points_t)}: not comparable"
            )
        probe = self._probe_inputs()
        was_training = self.generator.training
        self.generator.eval()
        try:
            with capture_outputs(self.generator, points_s) as student_features:
                self.run_student(self.generator, probe)
            with capture_outputs(self.teacher, points_t) as teacher_features:
                run_generator(self.teacher, probe)
        finally:
            self.generator.train(was_training)
        return [f.shape[1] for f in student_features], [f.shape[1] for f in teacher_features]

    def _probe_inputs(self) -> GeneratorInputs:
        if self.task == "image2image":
            channels = self.generator.in_channels
            return GeneratorInputs(batch_size=1, input_img=torch.zeros(1, channels, 64, 64))
        return self.sample_inputs(1, generator=torch.Generator().manual_seed(0))

    def bind_feature_terms(self) -> None:
        terms = [t for t in self.generator_losses if isinstance(t, FeatureDistillation)]
        if not terms:
            return
        student_channels, teacher_channels = self.distillation_channels()
        for term in terms:
            term.bind(student_channels, teacher_channels)

    # -- loss context --------------------------------------------------------------------------------
    def generator_context(
        self, ctx: LossContext, batch: Mapping[str, Tensor], inputs: GeneratorInputs, needs: set[str]
    ) -> LossContext:
        """Teacher image / features on the student's inputs, and the content mask, when a term
        needs them (teacher-free runs leave them empty: such a term then fails in one line)."""
        if self.teacher is not None and needs & {"teacher_img", "teacher_features", "teacher_rgbs", "mask"}:
            points = self.teacher.distillation_points() if "teacher_features" in needs else []
            rgb_points = self.teacher.rgb_skip_points() if "teacher_rgbs" in needs else []
            with torch.no_grad(), capture_outputs(self.teacher, points + rgb_points) as captured:
                ctx.teacher_img = run_generator(self.teacher, inputs)
            if "teacher_features" in needs:
                ctx.teacher_features = captured[: len(points)]
            if rgb_points:
                ctx.extras["teacher_rgbs"] = captured[len(points) :]
        if "mask" in needs:
            ctx.mask = self.content_mask(ctx, batch)
        return ctx

    def content_mask(self, ctx: LossContext, batch: Mapping[str, Tensor]) -> Tensor:
        """Content mask ``[B, 1, H, W]`` for masked distillation terms.

        Default: all ones (CAGAN's choice for non-face data). CAGAN's content-aware KD overrides
        this with the face-parsing mask of ``ctx.teacher_img``. A batch ``mask`` cannot be used:
        it belongs to the real images, not to the generated ones.
        """
        assert ctx.student_img is not None
        img = ctx.student_img
        return torch.ones(img.shape[0], 1, *img.shape[-2:], device=img.device, dtype=img.dtype)

    # -- the teacher beside the student at test time ---------------------------------------------
    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self._teacher_eval = None
        if self.evaluate_teacher and self.teacher is not None and self.metrics is not None:
            protocol = {
                "metrics": list(self.metrics.metrics),
                "features": self.metrics.description,
                "settings": metrics_settings(self.metrics),
                "batches": str(self.trainer.num_test_batches),
                "images": evaluation_set(self.trainer),
                "max_images": self.eval_max_images,
                "seeds": [self.step_seed, os.environ.get("PL_GLOBAL_SEED", "0")],
            }
            self._teacher_eval = TeacherEvaluation(self.metrics, self.teacher, protocol, None)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        if self.metrics is None:
            return
        if self.eval_max_images is not None and self._eval_images_seen >= self.eval_max_images:
            return
        inputs = self.evaluation_inputs(batch)
        self._eval_images_seen += self.feed_metrics(batch, inputs)
        if self._teacher_eval is not None and self._teacher_eval.needs_images:
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):  # the student's draws stay the same
                self.feed_metrics(batch, inputs, "teacher", metrics=self._teacher_eval.metrics)

    def _finish_evaluation(self, prefix: str) -> dict[str, float] | None:
        student = super()._finish_evaluation(prefix)
        if prefix != "test" or student is None or self._teacher_eval is None:
            return student
        teacher = self._teacher_eval.results()
        for name, value in teacher.items():
            self.log(f"test/teacher_{name}", value, sync_dist=False)
        if self.trainer.is_global_zero:
            sizes = self.model_complexity()
            sizes = {k.removeprefix("model/"): v for k, v in sizes.items()}
            samples = self.metrics.num_fake_images or self._eval_images_seen
            print("\n".join(comparison_lines(teacher, student, samples, sizes)))
        return student
