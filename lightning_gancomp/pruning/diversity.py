"""DCP diversity-aware channel scores (Chung et al., CVPR 2024; official jiwoogit/DCP-GAN).

Recipe (official ``Util/diversity_aware_pruning.py`` ``Get_Diversity_Pruning_Score``): PCA of
10,000 mapped latents w (all components, unit norm, sorted by variance); per batch of B latents
draw N = 10 component indices with probability ∝ explained variance; for each direction d,
``loss_d = Σ|G(w + α d) − G(w)|`` (α = 5); per-direction gradient magnitudes ``g_dc`` as in CAGAN
(mean |∂loss_d/∂W| of the weights that read channel c); ``S^σ_c = Σ_batches Σ_d (g_dc − mean_d
g_dc)²`` (the official code uses only this) or ``S^μ_c = Σ_batches mean_d g_dc``.

Gradient path (``gradient_path``) — where the gradient of ``loss_d`` flows:

* ``"released"`` — what the released StyleGAN2 code computes: gradients flow through *both*
  G(w) and G(w + αd) (its ``generator.requires_grad = False`` sets a plain Python attribute
  and stops nothing), every forward draws its own noise maps (``randomize_noise=True``), and
  G(w) is recomputed for every direction. Paper configs use this, so scores (and the pruned
  students) are comparable with the published ones.
* ``"intended"`` — the authors' ``stylegan3`` branch (``pruning_util/diversity_aware_pruning.py``):
  G(w + αd) is computed with gradients off (``requires_grad_(False)``), the gradient flows through
  G(w) only. Noise is shared between the passes by default (StyleGAN3 has none to differ).
* ``"through_moved"`` — this library's earlier default: the gradient flows through G(w + αd),
  G(w) is a constant computed once per batch, noise shared. The cheapest of the three.

``independent_noise`` overrides the path's noise choice (None = the path's own).

Truncation ψ < 1 (official ``truncation_trick``): both latents are truncated towards the mean w,
``c + ψ(w − c)`` and ``c + ψ(w + αd − c)``, so the step taken is ψ·α.

Random draws, in this order per batch, from one ``torch.Generator`` (so the batched and the
per-direction implementations see the same numbers): z [B] (and labels), the sample's noise maps,
the N direction indices, then per direction the noise maps of G(w) and of G(w + αd) when noise is
independent. ``latents_path`` (official ``--noise_path``) replaces each batch's z by rows of a
saved tensor; z is still drawn and discarded, as in the official code.

Batching: for StyleGAN2 generators the N directions run as one forward and one backward. Each
scored weight ``[1, out, in, k, k]`` is replaced by N copies ``[N, out, in, k, k]`` (consecutive
samples of one direction use copy n, see ``ModulatedConv2d.forward``), so the gradient of
Σ_d loss_d with respect to copy n is exactly ∂loss_n/∂W. Other nets vmap ``torch.func.grad`` over
the directions. ``per_direction_loop=True`` is the official per-direction loop (reference for
``benchmarks/bench_dcp_scoring.py`` and the tests). Both do the same arithmetic; batching removes
per-call overhead, which pays on accelerators and for small nets, not for compute-bound CPU
convolutions — so the default (``None``) loops on CPU and batches elsewhere.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lightning_gancomp.nets.base import GanNet
from lightning_gancomp.nets.stylegan_layers import ModulatedConv2d
from lightning_gancomp.pruning.plan import Scores
from lightning_gancomp.pruning.scoring import (
    GeneratorAdapter,
    _GradientScorer,
    _group_grad_scores,
    _progress,
    batch_sizes,
)

GradientPath = Literal["released", "intended", "through_moved"]
Params = dict[str, nn.Parameter]
GRADIENT_PATHS: tuple[str, ...] = ("released", "intended", "through_moved")


@dataclass
class LatentDirections:
    """PCA of mapped latents: unit components sorted by variance, explained-variance ratios."""

    components: torch.Tensor  # [K, D], rows unit-norm
    variance_ratio: torch.Tensor  # [K], sums to 1
    mean: torch.Tensor  # [D]

    def draw(self, n: int, gen: torch.Generator) -> torch.Tensor:
        """``n`` component indices ∝ explained variance, with replacement (np.random.choice)."""
        return torch.multinomial(self.variance_ratio.double().cpu(), n, replacement=True, generator=gen)


def latent_directions(
    adapter: GeneratorAdapter, n_samples: int, gen: torch.Generator, device: torch.device, chunk: int = 1000
) -> LatentDirections:
    """PCA of ``n_samples`` latents (official: 10,000 w, all 512 components)."""
    latents = []
    remaining = n_samples
    while remaining > 0:
        size = min(chunk, remaining)
        latents.append(adapter.latent(adapter.sample_latents(size, gen, device)).detach().double().cpu())
        remaining -= size
    data = torch.cat(latents)
    mean = data.mean(0)
    _, singular, vh = torch.linalg.svd(data - mean, full_matrices=False)
    variance = singular**2
    ratio = variance / variance.sum()
    components = vh / vh.norm(dim=1, keepdim=True)
    return LatentDirections(components.float(), ratio, mean.float())


@dataclass
class DirectionBatch:
    """One batch's inputs: truncated latents, the per-direction steps, the noise of each pass."""

    sample: dict[str, Any]
    w: torch.Tensor  # [B, D], truncated
    steps: torch.Tensor  # [N, D] = ψ·α·d
    base_noise: list[torch.Tensor] | None  # per layer [N, B, ...] (noise of G(w)); None: no noise
    moved_noise: list[torch.Tensor] | None  # per layer [N, B, ...] (noise of G(w + αd))
    shared_noise: bool

    @property
    def n(self) -> int:
        return self.steps.shape[0]


def synthesize(
    adapter: GeneratorAdapter,
    latent: torch.Tensor,
    sample: dict[str, Any],
    noise: list[torch.Tensor] | None,
    params: dict[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Images ``[M, 3, H, W]`` from latents ``[M, D]``; ``noise`` per layer ``[M, ...]``, labels
    repeated to M; ``params`` replaces some parameters (``torch.func.functional_call``)."""
    if adapter.stylegan_like:
        args, kwargs = (latent,), {"input_is_latent": True, "noise": noise, "randomize_noise": False}
    elif "label" in sample:
        label = sample["label"]
        args, kwargs = (latent, label.repeat(latent.shape[0] // label.shape[0])), {}
    else:
        args, kwargs = (latent,), {}
    if params is None:
        return adapter.net(*args, **kwargs)
    return torch.func.functional_call(adapter.net, params, args, kwargs, strict=False)


def _flat(noise: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
    # [N, B, ...] per layer → [N·B, ...] (direction-major)
    return None if noise is None else [x.reshape(-1, *x.shape[2:]) for x in noise]


def _take(noise: list[torch.Tensor] | None, index: int | slice) -> list[torch.Tensor] | None:
    return None if noise is None else [x[index] for x in noise]


def load_latents(path: str, n_samples: int, z_dim: int) -> torch.Tensor:
    """A saved ``[≥ n_samples, z_dim]`` tensor of z (official ``--noise_path``), read with
    ``weights_only=True``; one-line error naming the file when it does not fit."""
    from lightning_gancomp.checkpoints import CheckpointError

    if not os.path.isfile(path):
        raise FileNotFoundError(f"latents_path {path}: no such file")
    try:
        z = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors have many types
        raise CheckpointError(f"latents_path {path}: cannot read a tensor ({type(exc).__name__})") from exc
    if not isinstance(z, torch.Tensor) or z.dim() != 2 or z.shape[0] < n_samples or z.shape[1] != z_dim:
        shape = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
        raise CheckpointError(
            f"latents_path {path}: expected a [>= {n_samples}, {z_dim}] tensor, got {shape}"
        )
    return z.float()


class DiversityAwareScorer(_GradientScorer):
    """DCP diversity-aware scores (see the module docstring for the recipe and gradient paths).

    Args:
        n_samples: latents scored (official default 5000; README: >1000 is enough).
        batch_size: latents per batch (official 5); directions are drawn per batch.
        n_directions: N principal directions per batch (10).
        alpha: offset strength α (5).
        n_pca_samples: latents for the PCA (10,000).
        statistic: ``"sigma"`` (S^σ, spread over directions; official and default) or ``"mu"``.
        truncation: ψ, both latents truncated around the PCA mean (official default 1.0).
        gradient_path: ``"released"`` (official released code; paper configs), ``"intended"``
            (authors' stylegan3 branch) or ``"through_moved"`` (gradient through G(w + αd) only).
        independent_noise: G(w) and G(w + αd) draw their own noise maps; None = the path's
            choice (independent for ``released``, shared otherwise).
        latents_path: file of z rows used instead of random z (official ``--noise_path``).
        per_direction_loop: the official loop, one backward per direction; None = the loop on
            CPU (measured faster there at real widths: the convolutions are compute-bound and
            batching adds no throughput) and the batched directions on accelerators.
        direction_chunk: directions per batched backward (memory knob; ``None`` = all N).
    """

    def __init__(
        self,
        n_samples: int = 5000,
        batch_size: int = 5,
        n_directions: int = 10,
        alpha: float = 5.0,
        n_pca_samples: int = 10000,
        statistic: Literal["sigma", "mu"] = "sigma",
        truncation: float = 1.0,
        gradient_path: GradientPath = "released",
        independent_noise: bool | None = None,
        latents_path: str | None = None,
        per_direction_loop: bool | None = None,
        direction_chunk: int | None = None,
        device: str | None = None,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        super().__init__(device, seed, progress)
        if statistic not in ("sigma", "mu"):
            raise ValueError(f"statistic must be 'sigma' or 'mu', got {statistic!r}")
        if gradient_path not in GRADIENT_PATHS:
            raise ValueError(f"gradient_path must be one of {list(GRADIENT_PATHS)}, got {gradient_path!r}")
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.n_directions = n_directions
        self.alpha = alpha
        self.n_pca_samples = n_pca_samples
        self.statistic = statistic
        self.truncation = truncation
        self.gradient_path = gradient_path
        self.independent_noise = independent_noise
        self.latents_path = latents_path
        self.per_direction_loop = per_direction_loop
        self.direction_chunk = direction_chunk

    @property
    def noise_is_independent(self) -> bool:
        if self.independent_noise is not None:
            return self.independent_noise
        return self.gradient_path == "released"

    # -- one batch ----------------------------------------------------------------------------
    def draw_batch(
        self,
        adapter: GeneratorAdapter,
        sample: dict[str, Any],
        pca: LatentDirections,
        gen: torch.Generator,
    ) -> DirectionBatch:
        """Directions and noise of one batch, drawn in the documented order."""
        device = sample["z"].device
        components, mean = pca.components.to(device), pca.mean.to(device)
        steps = self.truncation * self.alpha * components[pca.draw(self.n_directions, gen)]
        w = adapter.latent(sample)
        if self.truncation != 1.0:
            w = mean + self.truncation * (w - mean)
        n, b = self.n_directions, w.shape[0]
        if "noise" not in sample:
            return DirectionBatch(sample, w, steps, None, None, True)
        if not self.noise_is_independent:
            shared = [x.unsqueeze(0).expand(n, *x.shape) for x in sample["noise"]]
            return DirectionBatch(sample, w, steps, shared, shared, True)
        per_direction = [
            (adapter.noise_like(b, gen, device), adapter.noise_like(b, gen, device)) for _ in range(n)
        ]
        base = [torch.stack([d[0][i] for d in per_direction]) for i in range(len(sample["noise"]))]
        moved = [torch.stack([d[1][i] for d in per_direction]) for i in range(len(sample["noise"]))]
        return DirectionBatch(sample, w, steps, base, moved, False)

    def direction_gradients(
        self, adapter: GeneratorAdapter, batch: DirectionBatch, keys: list[str]
    ) -> dict[str, torch.Tensor]:
        """Per-direction gradients ``{key: [N, *shape]}`` of the scored weights for one batch."""
        params = dict(adapter.net.named_parameters())
        loop = self.per_direction_loop
        if loop is None:
            loop = batch.w.device.type == "cpu"
        if loop:
            per_dir = [self._loop_direction(adapter, batch, i, params, keys) for i in range(batch.n)]
            return {k: torch.stack([g[k] for g in per_dir]) for k in keys}
        chunk = self.direction_chunk or batch.n
        slices = [slice(i, min(i + chunk, batch.n)) for i in range(0, batch.n, chunk)]
        if _stackable(adapter, keys):
            parts = [self._stacked(adapter, batch, s, params, keys) for s in slices]
        else:
            try:
                parts = [self._vmapped(adapter, batch, s, params, keys) for s in slices]
            except RuntimeError as exc:
                if "vmap" not in str(exc):
                    raise
                # a net with in-place ops cannot be vmapped: same scores, one backward per direction
                warnings.warn(
                    f"{type(adapter.net).__name__} cannot be vmapped ({str(exc).splitlines()[0][:120]}); "
                    "DCP scoring falls back to the per-direction loop",
                    stacklevel=2,
                )
                self.per_direction_loop = True
                return self.direction_gradients(adapter, batch, keys)
        return {k: torch.cat([p[k] for p in parts]) for k in keys}

    def _loop_direction(
        self, adapter: GeneratorAdapter, batch: DirectionBatch, i: int, params: Params, keys: list[str]
    ) -> dict[str, torch.Tensor]:
        # The official loop body: G(w), then G(w + αd), one backward.
        with torch.set_grad_enabled(self.gradient_path != "through_moved"):
            base = synthesize(adapter, batch.w, batch.sample, _take(batch.base_noise, i))
        with torch.set_grad_enabled(self.gradient_path != "intended"):
            moved = synthesize(adapter, batch.w + batch.steps[i], batch.sample, _take(batch.moved_noise, i))
        loss = (moved - base).abs().sum()
        return dict(zip(keys, torch.autograd.grad(loss, [params[k] for k in keys])))

    def _stacked(
        self, adapter: GeneratorAdapter, batch: DirectionBatch, part: slice, params: Params, keys: list[str]
    ) -> dict[str, torch.Tensor]:
        """All directions of ``part`` in one forward/backward, one weight copy per direction."""
        steps = batch.steps[part]
        n, b = steps.shape[0], batch.w.shape[0]
        copies = {
            k: params[k].detach().repeat(n, *([1] * (params[k].dim() - 1))).requires_grad_() for k in keys
        }
        base_latent = batch.w.repeat(n, 1)
        moved_latent = (batch.w.unsqueeze(0) + steps.unsqueeze(1)).reshape(n * b, -1)
        base_noise, moved_noise = _take(batch.base_noise, part), _take(batch.moved_noise, part)
        if self.gradient_path == "released":
            # direction-major groups of 2B samples: [G(w) batch, G(w + αd) batch] per direction
            latent = torch.stack([base_latent.view(n, b, -1), moved_latent.view(n, b, -1)], 1).flatten(0, 2)
            noise = None
            if base_noise is not None:
                noise = [torch.stack([x, y], 1).flatten(0, 2) for x, y in zip(base_noise, moved_noise)]
            img = synthesize(adapter, latent, batch.sample, noise, copies).reshape(n, 2, b, -1)
            loss = (img[:, 1] - img[:, 0]).abs().sum()
        elif self.gradient_path == "intended":
            with torch.no_grad():
                moved = synthesize(adapter, moved_latent, batch.sample, _flat(moved_noise))
            base = synthesize(adapter, base_latent, batch.sample, _flat(base_noise), copies)
            loss = (moved - base).abs().sum()
        else:
            with torch.no_grad():
                if batch.shared_noise:  # one G(w) serves every direction
                    base = synthesize(adapter, batch.w, batch.sample, _take(base_noise, 0)).repeat(n, 1, 1, 1)
                else:
                    base = synthesize(adapter, base_latent, batch.sample, _flat(base_noise))
            moved = synthesize(adapter, moved_latent, batch.sample, _flat(moved_noise), copies)
            loss = (moved - base).abs().sum()
        grads = torch.autograd.grad(loss, [copies[k] for k in keys])
        return {k: g.unsqueeze(1) for k, g in zip(keys, grads)}  # [n, 1, out, in, k, k]

    def _vmapped(
        self, adapter: GeneratorAdapter, batch: DirectionBatch, part: slice, params: Params, keys: list[str]
    ) -> dict[str, torch.Tensor]:
        """``torch.func.vmap`` of ``grad`` over the directions (nets without stackable weights)."""
        scored = {k: params[k].detach() for k in keys}
        path = self.gradient_path

        def loss(sp, step, base_noise, moved_noise):
            base = synthesize(adapter, batch.w, batch.sample, base_noise, sp)
            moved = synthesize(adapter, batch.w + step, batch.sample, moved_noise, sp)
            base = base.detach() if path == "through_moved" else base
            moved = moved.detach() if path == "intended" else moved
            return (moved - base).abs().sum()

        noise_dim = None if batch.base_noise is None else 0
        grads = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, noise_dim, noise_dim))(
            scored, batch.steps[part], _take(batch.base_noise, part), _take(batch.moved_noise, part)
        )
        return {k: grads[k] for k in keys}

    # -- the whole run ------------------------------------------------------------------------
    def _batches(self, adapter: GeneratorAdapter, gen: torch.Generator, device: torch.device):
        sizes = batch_sizes(self.n_samples, self.batch_size)
        fixed = None
        if self.latents_path is not None:
            fixed = load_latents(self.latents_path, self.n_samples, adapter.net.z_dim).to(device)
        start = 0
        for sample in adapter.input_batches(sizes, gen, device):
            b = sample["z"].shape[0]
            if fixed is not None:  # z drawn above and discarded, as the official code does
                sample = {**sample, "z": fixed[start : start + b]}
            start += b
            yield sample

    def __call__(self, net: GanNet) -> Scores:
        net, groups, scored_groups, keys, device = self._prepare(net)
        adapter = GeneratorAdapter(net)
        gen = torch.Generator().manual_seed(self.seed)
        pca = latent_directions(adapter, self.n_pca_samples, gen, device)
        total = {g.name: torch.zeros(g.size, dtype=torch.float64) for g in groups}
        n_batches = len(batch_sizes(self.n_samples, self.batch_size))
        for sample in _progress(
            self._batches(adapter, gen, device), n_batches, "diversity-aware scoring", self.progress
        ):
            batch = self.draw_batch(adapter, sample, pca, gen)
            grads = self.direction_gradients(adapter, batch, keys)
            for name, g in _group_grad_scores(grads, scored_groups, leading=1).items():
                g = g.double().cpu()  # [N, C]
                if self.statistic == "sigma":
                    total[name] += ((g - g.mean(0, keepdim=True)) ** 2).sum(0)
                else:
                    total[name] += g.mean(0)
        return total

    def describe(self) -> dict[str, Any]:
        return {
            "name": "diversity_aware",
            "statistic": self.statistic,
            "n_samples": self.n_samples,
            "batch_size": self.batch_size,
            "n_directions": self.n_directions,
            "alpha": self.alpha,
            "n_pca_samples": self.n_pca_samples,
            "truncation": self.truncation,
            "gradient_path": self.gradient_path,
            "independent_noise": self.noise_is_independent,
            "latents_path": self.latents_path,
            "seed": self.seed,
        }


def _copies(weight: Tensor, n: int) -> Tensor:
    """``n`` leaf copies ``[n, *shape[1:]]`` of a ``[1, ...]`` weight (one per direction)."""
    return weight.detach().repeat(n, *([1] * (weight.dim() - 1))).requires_grad_()


def _stackable(adapter: GeneratorAdapter, keys: list[str]) -> bool:
    """Every scored tensor is the weight of a ``ModulatedConv2d`` (which takes one weight per
    direction); other nets use vmap."""
    if not adapter.stylegan_like:
        return False
    for key in keys:
        owner, _, leaf = key.rpartition(".")
        module = adapter.net.get_submodule(owner)
        if leaf != "weight" or not isinstance(module, ModulatedConv2d) or module.weight.shape[0] != 1:
            return False
    return True
