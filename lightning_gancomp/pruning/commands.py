"""``gancomp prune`` and ``gancomp export`` as plain functions (the CLI only forwards arguments).

``prune``: teacher checkpoint (any format ``load_generator`` reads) + scorer + policy → a
student checkpoint and the plan JSON. The student generator is the teacher with its pruned
channels cut out (mapping network, noise strengths and RGB biases copied as they are), the
same class with smaller widths; the teacher's discriminator, when the file has one, travels
alongside (CAGAN/DCP initialise D from the teacher's D). The student file uses our training
checkpoint layout (``{"gancomp_nets": {"g", "g_ema", "d"}}``), so ``load_generator`` and the
compression methods' ``student=`` / ``discriminator=`` arguments read it directly.

``export``: a distilled or pruned student (any checkpoint ``load_generator`` reads; G-EMA by
default) → a plain generator file (weights + constructor config, loadable by
``load_generator`` without any training class) and optionally TorchScript. Both are checked
to reproduce the checkpoint's generator on fixed inputs.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from lightning_gancomp.checkpoints import CheckpointError, load_discriminator, load_generator, save_generator
from lightning_gancomp.nets.base import GanNet, count_params, net_payload
from lightning_gancomp.pruning.importance import ContentAwareScorer, Scorer
from lightning_gancomp.pruning.plan import PruningPlan, PruningPolicy, UniformPolicy
from lightning_gancomp.pruning.surgery import apply_plan, describe_widths, group_sizes


@dataclass
class Complexity:
    params: int
    macs: int | None

    def line(self) -> str:
        macs = f"{self.macs:,}" if self.macs is not None else "n/a"
        return f"params {self.params:,}  MACs {macs}"


def measure(net: GanNet) -> Complexity:
    """Parameters and MACs (CAGAN convention for StyleGAN2, torchprofile otherwise)."""
    from lightning_gancomp.pruning.budget import default_mac_counter

    try:
        macs: int | None = default_mac_counter(net)
    except (ImportError, AttributeError, RuntimeError, TypeError, ValueError):
        macs = None  # a net the profiler cannot trace: still report parameters
    return Complexity(count_params(net), macs)


@dataclass
class PruneResult:
    student: GanNet
    plan: PruningPlan
    before: Complexity
    after: Complexity
    output: str
    plan_path: str
    discriminator: GanNet | None = None
    report: list[str] = field(default_factory=list)


def default_plan_path(output: str) -> str:
    root, _ = os.path.splitext(output)
    return f"{root}.plan.json"


def _atomic_save(obj: Any, path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _teacher_discriminator(path: str) -> GanNet | None:
    try:
        return load_discriminator(path)
    except CheckpointError:
        return None  # a generator-only file (e.g. a converted g_ema): D starts fresh in `fit`


def prune(
    teacher: str,
    output: str,
    scorer: Scorer | None = None,
    policy: PruningPolicy | None = None,
    plan_path: str | None = None,
    plan: str | None = None,
    rescale_equalized: bool = True,
    with_discriminator: bool = True,
    log: Callable[[str], None] = print,
) -> PruneResult:
    """Score, plan and cut a teacher; write the student checkpoint and the plan JSON.

    Args:
        teacher: teacher checkpoint (ours or an official layout).
        output: student checkpoint path (``.ckpt``/``.pt``).
        scorer: channel scorer (default: CAGAN content-aware with all-ones mask).
        policy: scores → plan (default: uniform removal ratio 0.7).
        plan_path: where to write the plan (default: ``<output stem>.plan.json``).
        plan: apply this existing plan file instead of scoring.
        rescale_equalized: function-preserving equalized-lr rescale (default) or the official
            plain slicing (see :mod:`lightning_gancomp.pruning.surgery`).
        with_discriminator: copy the teacher's discriminator into the student checkpoint.
    """
    net = load_generator(teacher)
    if plan is not None:
        chosen = PruningPlan.load(plan, net)
    else:
        scorer = scorer if scorer is not None else ContentAwareScorer()
        policy = policy if policy is not None else UniformPolicy(0.7)
        scores = scorer(net)
        chosen = policy(net, {k: v.cpu() for k, v in scores.items()}, scorer.describe())
    net = net.cpu()
    student = apply_plan(net, chosen, rescale_equalized=rescale_equalized).eval()
    chosen.policy.setdefault("rescale_equalized", rescale_equalized)
    discriminator = _teacher_discriminator(teacher) if with_discriminator else None

    before, after = measure(net), measure(student)
    plan_path = plan_path or default_plan_path(output)
    nets = {"g": net_payload(student), "g_ema": net_payload(student)}
    if discriminator is not None:
        nets["d"] = net_payload(discriminator)
    checkpoint = {
        "gancomp_nets": nets,
        "gancomp_plan": chosen.to_dict(),
        "gancomp_teacher": os.path.abspath(teacher),
    }
    _atomic_save(checkpoint, output)
    chosen.save(plan_path)

    report = [
        f"teacher {type(net).__name__}: {before.line()}",
        f"student {type(student).__name__}: {after.line()}",
    ]
    if before.macs and after.macs:
        report.append(
            f"MAC reduction {before.macs / after.macs:.2f}x, params {before.params / after.params:.2f}x"
        )
    report.append(describe_widths(group_sizes(net), group_sizes(student)))
    report.append(f"wrote {output} and {plan_path}")
    for line in report:
        log(line)
    return PruneResult(student, chosen, before, after, output, plan_path, discriminator, report)


# -- export -------------------------------------------------------------------------------------
class DeterministicGenerator(nn.Module):
    """Fixed-input wrapper for tracing: StyleGAN-like nets use their stored noise buffers."""

    def __init__(self, net: GanNet) -> None:
        super().__init__()
        self.net = net
        self.stylegan_like = hasattr(net, "mapping") and hasattr(net, "n_latent")

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.stylegan_like:
            return self.net(inputs[0], randomize_noise=False)
        out = self.net(*inputs)
        return out[0] if isinstance(out, (tuple, list)) else out


def example_inputs(net: GanNet, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    task = getattr(net, "task", "unconditional")
    if task == "image2image":
        return (torch.rand(batch, net.in_channels, 64, 64, generator=gen) * 2 - 1,)
    z = torch.randn(batch, net.z_dim, generator=gen)
    if task == "conditional":
        return (z, torch.randint(net.num_classes, (batch,), generator=gen))
    return (z,)


@dataclass
class ExportResult:
    generator: GanNet
    output: str
    torchscript: str | None
    max_diff_plain: float
    max_diff_torchscript: float | None


def export(
    checkpoint: str,
    output: str,
    key: str | None = None,
    torchscript: str | None = None,
    torchscript_batch_size: int = 1,
    check_tolerance: float = 1e-5,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """Write the checkpoint's generator (G-EMA unless ``key`` says otherwise) as a plain file.

    ``torchscript``: also write a traced module (inputs: z, or z and labels, or an image; the
    StyleGAN2 trace uses the stored noise buffers). A trace records shapes: StyleGAN2's
    modulated convs fold the batch into conv groups, so the module runs at
    ``torchscript_batch_size`` only. Both files are reloaded and compared with the checkpoint's
    generator; a difference above ``check_tolerance`` is an error.
    """
    net = (load_generator(checkpoint, key=key) if key else load_generator(checkpoint)).cpu().eval()
    save_generator(net, output)
    inputs = example_inputs(net)
    reference = DeterministicGenerator(net)
    with torch.no_grad():
        expected = reference(*inputs)
        plain = DeterministicGenerator(load_generator(output).eval())(*inputs)
    max_plain = (plain - expected).abs().max().item()
    if max_plain > check_tolerance:
        raise RuntimeError(f"{output}: reloaded generator differs from {checkpoint} by {max_plain:.3g}")
    max_script = None
    if torchscript is not None:
        inputs = example_inputs(net, batch=torchscript_batch_size)
        with torch.no_grad():
            expected = reference(*inputs)
        with torch.no_grad(), warnings.catch_warnings():
            # TorchScript is what users asked for; torch marks jit as deprecated in favour of export
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(reference, inputs, check_trace=False)
        tmp = f"{torchscript}.tmp-{os.getpid()}"
        try:
            traced.save(tmp)
            os.replace(tmp, torchscript)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            scripted = torch.jit.load(torchscript)(*inputs)
        max_script = (scripted - expected).abs().max().item()
        if max_script > check_tolerance:
            raise RuntimeError(f"{torchscript}: TorchScript output differs by {max_script:.3g}")
    log(f"exported {type(net).__name__} ({count_params(net):,} params) to {output}")
    if torchscript is not None:
        log(f"TorchScript {torchscript} traced for batch size {torchscript_batch_size}")
    log(f"reload check: max |diff| {max_plain:.3g}")
    if torchscript is not None:
        log(f"TorchScript {torchscript}: max |diff| {max_script:.3g}")
    return ExportResult(net, output, torchscript, max_plain, max_script)


# -- CLI entry points: the configured method supplies files and the pruning recipe --------------
def _method_file(model: Any, name: str) -> str | None:
    return getattr(model, "source_files", {}).get(name)


def prune_method(
    model: Any,
    output: str | None = None,
    plan_path: str | None = None,
    teacher_path: str | None = None,
    plan: str | None = None,
    log: Callable[[str], None] = print,
) -> PruneResult:
    """``gancomp prune -c <method config>``: the method's teacher file, scorer and policy.

    ``output`` defaults to the config's ``student_path`` (so ``gancomp fit`` with the same config
    trains what was just pruned); the configured student architecture, when given, must match
    the pruned widths (else one line naming both).
    """
    teacher_path = teacher_path or _method_file(model, "teacher")
    output = output or _method_file(model, "student")
    if teacher_path is None:
        raise ValueError(
            "gancomp prune needs a teacher checkpoint: set model.init_args.teacher_path or --teacher_path"
        )
    if output is None:
        raise ValueError("gancomp prune needs an output: set model.init_args.student_path or --output")
    result = prune(
        teacher_path,
        output,
        scorer=getattr(model, "scorer", None),
        policy=getattr(model, "policy", None),
        plan_path=plan_path,
        plan=plan,
        rescale_equalized=getattr(model, "rescale_equalized", True),
        log=log,
    )
    configured = getattr(model, "generator", None)
    if isinstance(configured, GanNet) and "student" in getattr(model, "weight_files", {}):
        if configured.config != result.student.config:
            differing = sorted(
                k for k in configured.config if configured.config[k] != result.student.config.get(k)
            )
            log(
                "warning: the configured student differs from the pruned one in "
                + ", ".join(
                    f"{k} (config {configured.config[k]}, pruned {result.student.config.get(k)})"
                    for k in differing
                )
                + f"; update model.init_args.student before `gancomp fit` reads {output}"
            )
    return result


def export_method(
    model: Any,
    checkpoint: str | None = None,
    output: str = "generator.pt",
    key: str | None = None,
    torchscript: str | None = None,
    torchscript_batch_size: int = 1,
    log: Callable[[str], None] = print,
) -> ExportResult:
    """``gancomp export -c <config> --checkpoint <ckpt>``: defaults to the config's student file."""
    checkpoint = checkpoint or _method_file(model, "student")
    if checkpoint is None:
        raise ValueError("gancomp export needs --checkpoint (a training or pruned checkpoint)")
    return export(
        checkpoint,
        output,
        key=key,
        torchscript=torchscript,
        torchscript_batch_size=torchscript_batch_size,
        log=log,
    )
