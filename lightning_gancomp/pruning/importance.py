"""Channel scorers: one score per channel of every channel group a network declares.

Every scorer is a small object with typed constructor arguments (so YAML/``class_path`` can
build it), ``__call__(net) -> {group name: float tensor [C]}`` and ``describe() -> dict`` (stored
in the plan JSON). Higher score = more important = kept.

* :class:`RandomScorer` — uniform random (the CAGAN paper's random baseline).
* :class:`L1Scorer` — L1 norm of each channel's outgoing (consumer, ``"in"`` members) or
  incoming (producer, ``"out"`` members) weights (CAGAN ``Util/pruning_util.py`` ``l1-out`` /
  ``l1-in``; here on the stored weights).
* :class:`ContentAwareScorer` — CAGAN (Liu et al., CVPR 2021, Sec. 3.2; official
  ``Util/content_aware_pruning.py``): for each batch of generated images, add salt-and-pepper
  noise (p = 0.05, values ±1, one value per pixel shared by the RGB channels) only inside a
  content mask, loss = Σ|noisy − img| (the noisy image is a constant target: the official code
  overwrites pixels of a clone, so gradients reach the generator only through ``img``), and score
  each feature map by the mean |∂loss/∂W| of the weights that *read* it (the conv consuming the
  map; the last ToRGB for the last map), averaged over every other weight dimension, summed
  over batches. Default 400 samples in batches of 10.
* :class:`DiversityAwareScorer` — DCP (Chung et al., CVPR 2024; official
  jiwoogit/DCP-GAN ``Util/diversity_aware_pruning.py`` ``Get_Diversity_Pruning_Score``): PCA of
  10,000 mapped latents w; per batch draw N = 10 principal directions with probability ∝
  explained variance; for each direction d, loss_d = Σ|G(w + α d) − G(w)| (α = 5); per-direction
  gradient magnitudes g_dc as in CAGAN; S^μ_c = Σ_batches mean_d g_dc and
  S^σ_c = Σ_batches Σ_d (g_dc − mean_d g_dc)². S^σ is the default (the official code uses only
  it). The official code's quirks — gradients flow through both G(w) and G(w + αd), and the two
  images use independent noise maps — are flags, off by default.

Batching: DCP vmaps ``torch.func.grad`` of the per-direction loss over the N directions
(``torch.func.vmap`` + ``functional_call``): one batched forward and backward returns the N
per-direction weight gradients at once — no Python loop per direction.
``per_direction_loop=True`` gives the loop reference (used by ``benchmarks/bench_dcp_scoring.py``
and the tests; scores agree to float rounding).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from lightning_gancomp.nets.base import ChannelGroup, GanNet, TensorSlice
from lightning_gancomp.nets.contract import generator_task, is_style_based
from lightning_gancomp.pruning.plan import Scores

# -- content masks ------------------------------------------------------------------------------


class ContentMask:
    """Base of content-mask providers: ``mask(img [B,3,H,W] in [-1,1]) -> [B,1,H,W] in {0,1}``
    (where salt-and-pepper noise may go when scoring; what content-aware KD compares)."""

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        raise TypeError(f"{type(self).__name__} must implement __call__(img)")

    def describe(self) -> dict[str, Any]:
        return {"name": type(self).__name__}


class AllOnesMask(ContentMask):
    """Every pixel is content (CAGAN on LSUN and any non-face data)."""

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(img[:, :1])

    def describe(self) -> dict[str, Any]:
        return {"name": "all_ones"}


class FaceParserMask(ContentMask):
    """Face foreground from the BiSeNet face parser (CAGAN on FFHQ).

    Content = every class except background (0) and cloth (16), parsed at 512×512 and resized
    back (official ``Get_Content_Aware_Pruning_Score``; details and the two official variants in
    :class:`lightning_gancomp.nets.bisenet.FaceParser`). ``mode="pruning"`` is the scorer's path,
    ``"distillation"`` the content-aware KD path. ``weights_path=None`` resolves
    ``$LIGHTNING_GANCOMP_FACE_PARSER`` or the torch hub cache (one-line error when missing).
    """

    def __init__(
        self,
        weights_path: str | None = None,
        mode: Literal["pruning", "distillation"] = "pruning",
        network: nn.Module | None = None,
    ) -> None:
        self.weights_path, self.mode, self.network = weights_path, mode, network
        self._parser: nn.Module | None = None  # built on first use: configs load without the file

    @property
    def parser(self) -> nn.Module:
        if self._parser is None:
            from lightning_gancomp.nets.bisenet import FaceParser  # heavy: import on use

            self._parser = FaceParser(self.weights_path, network=self.network, mode=self.mode)
        return self._parser

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        parser = self.parser
        if parser.mean.device != img.device:
            self._parser = parser = parser.to(img.device)
        return parser.content_mask(img.detach()).to(img.dtype)

    def describe(self) -> dict[str, Any]:
        return {"name": "face_parser", "weights_path": self.weights_path, "mode": self.mode}


class ThresholdMask(ContentMask):
    """Content = pixels whose colour differs from a flat background colour by > ``tolerance``
    (max over RGB); for generators of objects on a plain background."""

    def __init__(self, background: float = -1.0, tolerance: float = 0.1) -> None:
        self.background = background
        self.tolerance = tolerance

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        diff = (img.detach() - self.background).abs().amax(dim=1, keepdim=True)
        return (diff > self.tolerance).to(img.dtype)

    def describe(self) -> dict[str, Any]:
        return {"name": "threshold", "background": self.background, "tolerance": self.tolerance}


# -- helpers ------------------------------------------------------------------------------------


def pick_device(device: str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def batch_sizes(n_samples: int, batch_size: int) -> list[int]:
    """Official batching: ``n // b`` batches, the last one also takes the remainder."""
    if n_samples < 1 or batch_size < 1:
        raise ValueError(f"n_samples and batch_size must be >= 1 (got {n_samples}, {batch_size})")
    n_batch = max(n_samples // batch_size, 1)
    if n_samples < batch_size:
        return [n_samples]
    return [batch_size] * (n_batch - 1) + [batch_size + n_samples % batch_size]


def _progress(iterable: Iterable, total: int, desc: str, enabled: bool) -> Iterator:
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm  # progress bar with ETA

    yield from tqdm(iterable, total=total, desc=desc, unit="batch", dynamic_ncols=True)


def _scored_groups(net: GanNet, groups: list[ChannelGroup]) -> dict[str, ChannelGroup]:
    """The groups by name, after checking that every scored member is a parameter (gradient
    scorers differentiate with respect to them)."""
    params = dict(net.named_parameters())
    out = {}
    for group in groups:
        missing = [m.key for m in group.scored_members() if m.key not in params]
        if missing:
            raise ValueError(f"group {group.name}: scored tensor {missing[0]} is not a parameter")
        out[group.name] = group
    return out


def _reduce_to_channels(
    tensor: torch.Tensor, member: TensorSlice, size: int, how: Literal["mean", "sum"], leading: int = 0
) -> torch.Tensor:
    """``tensor`` has ``leading`` batch dims then the member's shape; returns ``[*lead, size]``
    from the group's window only (a concatenated input also holds other groups' channels)."""
    dim = member.dim + leading
    moved = member.window(tensor, size, leading).movedim(dim, -1)  # [..., C*block]
    lead_shape = moved.shape[:leading]
    flat = moved.reshape(*lead_shape, -1, moved.shape[-1])  # [*lead, rest, C*block]
    flat = flat.reshape(*lead_shape, flat.shape[-2], -1, member.block)  # [*lead, rest, C, block]
    flat = flat.movedim(-2, leading)  # [*lead, C, rest, block]
    flat = flat.reshape(*lead_shape, flat.shape[leading], -1)
    return flat.mean(-1) if how == "mean" else flat.sum(-1)


def _group_grad_scores(
    grads: dict[str, torch.Tensor], groups: dict[str, ChannelGroup], leading: int
) -> dict[str, torch.Tensor]:
    # mean |grad| per channel; several scored members are averaged.
    out = {}
    for name, group in groups.items():
        parts = [
            _reduce_to_channels(grads[m.key].abs(), m, group.size, "mean", leading)
            for m in group.scored_members()
        ]
        out[name] = torch.stack(parts).mean(0)
    return out


# -- generator adapters -------------------------------------------------------------------------


@dataclass
class GeneratorAdapter:
    """How to sample latents and run a generator, for scoring.

    StyleGAN-like nets (``mapping`` + ``input_is_latent``) perturb and synthesise in W with fixed
    noise maps; other unconditional/conditional nets use z as the latent (DCP's PCA is then
    over z). Image-to-image generators need ``inputs`` (batches of input images).
    """

    net: GanNet
    inputs: Iterable[torch.Tensor] | None = None

    @property
    def stylegan_like(self) -> bool:
        return is_style_based(self.net)

    def sample_latents(self, batch: int, gen: torch.Generator, device: torch.device) -> dict[str, Any]:
        task = generator_task(self.net)
        if task == "image2image":
            raise ValueError(
                f"{type(self.net).__name__} is image-to-image: scoring needs input batches (inputs=...)"
            )
        z = torch.randn(batch, self.net.z_dim, generator=gen).to(device)
        sample: dict[str, Any] = {"z": z}
        if task == "conditional":
            sample["label"] = torch.randint(self.net.num_classes, (batch,), generator=gen).to(device)
        if self.stylegan_like:
            sample["noise"] = self.noise_like(batch, gen, device)
        return sample

    def noise_like(self, batch: int, gen: torch.Generator, device: torch.device) -> list[torch.Tensor]:
        """Per-sample noise maps (shapes from ``make_noise``), drawn from ``gen`` for reproducibility."""
        return [torch.randn((batch, *n.shape[1:]), generator=gen).to(device) for n in self.net.make_noise(1)]

    def latent(self, sample: dict[str, Any]) -> torch.Tensor:
        if self.stylegan_like:
            with torch.no_grad():
                return self.net.mapping(sample["z"])
        return sample["z"]

    def synthesize(
        self,
        latent: torch.Tensor,
        sample: dict[str, Any],
        repeat: int = 1,
        params: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Images from latents ``[repeat·B, D]`` (direction-major), the sample's noise/labels
        repeated; ``params`` replaces some parameters (``torch.func.functional_call``)."""
        if self.stylegan_like:
            noise = [n.repeat(repeat, *([1] * (n.dim() - 1))) for n in sample["noise"]]
            args, kwargs = (latent,), {"input_is_latent": True, "noise": noise, "randomize_noise": False}
        elif "label" in sample:
            args, kwargs = (latent, sample["label"].repeat(repeat)), {}
        else:
            args, kwargs = (latent,), {}
        if params is None:
            return self.net(*args, **kwargs)
        return torch.func.functional_call(self.net, params, args, kwargs, strict=False)

    def generate(self, sample: dict[str, Any]) -> torch.Tensor:
        if "input_img" in sample:
            return self.net(sample["input_img"])
        if self.stylegan_like:
            return self.net(sample["z"], noise=sample["noise"], randomize_noise=False)
        return self.synthesize(sample["z"], sample)

    def input_batches(self, sizes: list[int], gen: torch.Generator, device: torch.device) -> Iterator[dict]:
        if generator_task(self.net) != "image2image":
            for size in sizes:
                yield self.sample_latents(size, gen, device)
            return
        if self.inputs is None:
            raise ValueError(f"{type(self.net).__name__} is image-to-image: scoring needs inputs=")
        iterator = iter(self.inputs)
        for _ in sizes:
            try:
                batch = next(iterator)
            except StopIteration:
                iterator = iter(self.inputs)
                batch = next(iterator)
            if isinstance(batch, dict):
                batch = batch["input_img"]
            yield {"input_img": batch.to(device)}


# -- scorers ------------------------------------------------------------------------------------


class ChannelScorer:
    """Base of scorers: ``scorer(net) -> {group name: float tensor [C]}``, higher = keep."""

    def __call__(self, net: GanNet) -> Scores:
        raise TypeError(f"{type(self).__name__} must implement __call__(net)")

    def describe(self) -> dict[str, Any]:
        return {"name": type(self).__name__}


#: Backwards-friendly alias used in type hints.
Scorer = ChannelScorer


class RandomScorer(ChannelScorer):
    """Uniform random scores (baseline)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def __call__(self, net: GanNet) -> Scores:
        gen = torch.Generator().manual_seed(self.seed)
        return {g.name: torch.rand(g.size, generator=gen, dtype=torch.float64) for g in net.channel_groups()}

    def describe(self) -> dict[str, Any]:
        return {"name": "random", "seed": self.seed}


class L1Scorer(ChannelScorer):
    """L1 norm of each channel's weights.

    ``direction="outgoing"``: the weights that read the channel (``"in"`` members, restricted to
    the group's ``score_keys`` when declared — for StyleGAN2 the next conv / last ToRGB, as
    CAGAN's ``l1-out``); ``"incoming"``: the weights that write it (``"out"`` members). A group
    without producers (e.g. a learned constant input is declared ``aux``) gets random scores
    from ``seed``, as the official ``l1-in`` does for the first layer.
    """

    def __init__(self, direction: Literal["outgoing", "incoming"] = "outgoing", seed: int = 0) -> None:
        if direction not in ("outgoing", "incoming"):
            raise ValueError(f"L1Scorer direction must be 'outgoing' or 'incoming', got {direction!r}")
        self.direction = direction
        self.seed = seed

    @torch.no_grad()
    def __call__(self, net: GanNet) -> Scores:
        state = net.state_dict()
        gen = torch.Generator().manual_seed(self.seed)
        scores = {}
        for group in net.channel_groups():
            members = (
                group.scored_members() if self.direction == "outgoing" else group.members_with_role("out")
            )
            weights = [m for m in members if state[m.key].dim() > 1] or list(members)
            if not weights:
                scores[group.name] = torch.rand(group.size, generator=gen, dtype=torch.float64)
                continue
            parts = [_reduce_to_channels(state[m.key].abs().double(), m, group.size, "sum") for m in weights]
            scores[group.name] = torch.stack(parts).sum(0).cpu()
        return scores

    def describe(self) -> dict[str, Any]:
        return {"name": "l1", "direction": self.direction, "seed": self.seed}


class _GradientScorer(ChannelScorer):
    """Shared machinery: parameters of the scored members, autograd, device, progress."""

    def __init__(self, device: str | None, seed: int, progress: bool) -> None:
        self.device = device
        self.seed = seed
        self.progress = progress

    def _prepare(self, net: GanNet) -> tuple[GanNet, list[ChannelGroup], dict, list[str], torch.device]:
        device = pick_device(self.device)
        net = net.to(device).eval()
        groups = net.channel_groups()
        scored_groups = _scored_groups(net, groups)
        keys = sorted({m.key for group in scored_groups.values() for m in group.scored_members()})
        return net, groups, scored_groups, keys, device

    @staticmethod
    def _params(net: GanNet, keys: list[str]) -> list[nn.Parameter]:
        params = dict(net.named_parameters())
        return [params[k] for k in keys]


def salt_and_pepper(img: torch.Tensor, mask: torch.Tensor, prob: float, gen: torch.Generator) -> torch.Tensor:
    """Noisy copy of ``img`` (detached): inside ``mask``, each pixel becomes ±1 with probability
    ``prob`` (one value per pixel for all colour channels, as the official code)."""
    b, _, h, w = img.shape
    hit = (torch.rand(b, 1, h, w, generator=gen) < prob).to(img.device) & (mask > 0.5)
    sign = (torch.randint(0, 2, (b, 1, h, w), generator=gen) * 2 - 1).to(img.device, img.dtype)
    return torch.where(hit, sign.expand_as(img), img.detach())


class ContentAwareScorer(_GradientScorer):
    """CAGAN content-aware scores (see module docstring for the recipe and references).

    Args:
        n_samples: generated images used (official default 400).
        batch_size: images per backward (official 10); the score sums per-batch magnitudes.
        noise_prob: salt-and-pepper density inside the content mask (0.05).
        mask: content-mask provider (default: all ones, for non-face data).
        inputs: batches of input images for image-to-image generators.
        device: ``None`` = CUDA when available.
    """

    def __init__(
        self,
        n_samples: int = 400,
        batch_size: int = 10,
        noise_prob: float = 0.05,
        mask: ContentMask | None = None,
        inputs: Iterable[torch.Tensor] | None = None,
        device: str | None = None,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        super().__init__(device, seed, progress)
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.noise_prob = noise_prob
        self.mask = mask if mask is not None else AllOnesMask()
        self.inputs = inputs

    def __call__(self, net: GanNet) -> Scores:
        net, groups, scored_groups, keys, device = self._prepare(net)
        params = self._params(net, keys)
        adapter = GeneratorAdapter(net, self.inputs)
        gen = torch.Generator().manual_seed(self.seed)
        sizes = batch_sizes(self.n_samples, self.batch_size)
        total = {g.name: torch.zeros(g.size, dtype=torch.float64) for g in groups}
        batches = adapter.input_batches(sizes, gen, device)
        for sample in _progress(batches, len(sizes), "content-aware scoring", self.progress):
            img = adapter.generate(sample)
            noisy = salt_and_pepper(img, self.mask(img.detach()), self.noise_prob, gen)
            loss = (noisy - img).abs().sum()
            grads = dict(zip(keys, torch.autograd.grad(loss, params)))
            for name, score in _group_grad_scores(grads, scored_groups, 0).items():
                total[name] += score.double().cpu()
        return total

    def describe(self) -> dict[str, Any]:
        return {
            "name": "content_aware",
            "n_samples": self.n_samples,
            "batch_size": self.batch_size,
            "noise_prob": self.noise_prob,
            "mask": self.mask.describe(),
            "seed": self.seed,
        }


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


class DiversityAwareScorer(_GradientScorer):
    """DCP diversity-aware scores (see module docstring for the recipe and references).

    Args:
        n_samples: latents scored (official default 5000; README: >1000 is enough).
        batch_size: latents per batch (official 5); directions are drawn per batch.
        n_directions: N principal directions per batch (10).
        alpha: offset strength α (5).
        n_pca_samples: latents for the PCA (10,000).
        statistic: ``"sigma"`` (S^σ, spread over directions; official and default) or ``"mu"``.
        truncation: ψ applied in latent space around the PCA mean (official default 1.0).
        grad_through_both: official quirk — gradients also flow through G(w).
        independent_noise: official quirk — G(w) and G(w + αd) draw independent noise maps
            (and G(w) is recomputed per direction).
        per_direction_loop: reference implementation, one backward per direction.
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
        grad_through_both: bool = False,
        independent_noise: bool = False,
        per_direction_loop: bool = False,
        direction_chunk: int | None = None,
        device: str | None = None,
        seed: int = 0,
        progress: bool = True,
    ) -> None:
        super().__init__(device, seed, progress)
        if statistic not in ("sigma", "mu"):
            raise ValueError(f"statistic must be 'sigma' or 'mu', got {statistic!r}")
        self.n_samples = n_samples
        self.batch_size = batch_size
        self.n_directions = n_directions
        self.alpha = alpha
        self.n_pca_samples = n_pca_samples
        self.statistic = statistic
        self.truncation = truncation
        self.grad_through_both = grad_through_both
        self.independent_noise = independent_noise
        self.per_direction_loop = per_direction_loop
        self.direction_chunk = direction_chunk

    def direction_magnitudes(
        self,
        adapter: GeneratorAdapter,
        sample: dict[str, Any],
        directions: torch.Tensor,
        params: list[nn.Parameter],
        keys: list[str],
        scored_groups: dict[str, ChannelGroup],
        gen: torch.Generator,
        mean: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Per-direction gradient magnitudes ``{group: [N, C]}`` of one batch of latents."""
        w = adapter.latent(sample)
        if self.truncation != 1.0:
            w = mean + self.truncation * (w - mean)
        if self.per_direction_loop:
            per_dir = [self._one_direction(adapter, sample, w, d, params, keys, gen) for d in directions]
            grads = {k: torch.stack([g[k] for g in per_dir]) for k in keys}
        else:
            chunk = self.direction_chunk or directions.shape[0]
            try:
                parts = [
                    self._batched(adapter, sample, w, directions[i : i + chunk], params, keys, gen)
                    for i in range(0, directions.shape[0], chunk)
                ]
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
                return self.direction_magnitudes(
                    adapter, sample, directions, params, keys, scored_groups, gen, mean
                )
            grads = {k: torch.cat([p[k] for p in parts]) for k in keys}
        return _group_grad_scores(grads, scored_groups, leading=1)

    def _base_images(
        self, adapter: GeneratorAdapter, sample: dict[str, Any], w: torch.Tensor, n: int, gen: torch.Generator
    ) -> torch.Tensor:
        """G(w) as ``[n or 1, B, 3·H·W]``: shared by all directions unless noise is independent."""
        b = w.shape[0]
        context = torch.enable_grad() if self.grad_through_both else torch.no_grad()
        with context:
            if self.independent_noise and "noise" in sample:
                # official quirk: every G(w) call draws its own noise maps
                own = {**sample, "noise": adapter.noise_like(n * b, gen, w.device)}
                return adapter.synthesize(w.repeat(n, 1), own).reshape(n, b, -1)
            return adapter.synthesize(w, sample).reshape(1, b, -1)

    def _moved_sample(self, adapter: GeneratorAdapter, sample: dict[str, Any], n: int, gen) -> dict[str, Any]:
        if self.independent_noise and "noise" in sample:
            b = sample["z"].shape[0]
            return {**sample, "noise": adapter.noise_like(n * b, gen, sample["z"].device)}
        return sample

    def _one_direction(self, adapter, sample, w, d, params, keys, gen) -> dict[str, torch.Tensor]:
        base = self._base_images(adapter, sample, w, 1, gen)[0]
        moved_sample = self._moved_sample(adapter, sample, 1, gen)
        moved = adapter.synthesize(w + self.alpha * d.to(w), moved_sample).reshape(w.shape[0], -1)
        loss = (moved - base).abs().sum()
        return dict(zip(keys, torch.autograd.grad(loss, params)))

    def _batched(self, adapter, sample, w, directions, params, keys, gen) -> dict[str, torch.Tensor]:
        """Per-direction weight gradients ``{key: [N, *shape]}`` with ``torch.func``: one
        vmapped forward+backward over the N directions (each on the B latents of the batch).

        (A single N·B forward followed by N batched vector-Jacobian products would redo the whole
        N·B backward per direction, O(N²B); vmapping ``grad`` keeps the work at O(NB).)
        """
        n, b = directions.shape[0], w.shape[0]
        scored = {k: p.detach() for k, p in zip(keys, params)}
        independent = self.independent_noise and "noise" in sample

        def per_direction_noise() -> list[torch.Tensor] | None:
            if not independent:
                return None
            return [x.reshape(n, b, *x.shape[1:]) for x in adapter.noise_like(n * b, gen, w.device)]

        base_noise, moved_noise = per_direction_noise(), per_direction_noise()
        fixed_base = None
        if not self.grad_through_both:
            with torch.no_grad():
                if independent:
                    flat = {**sample, "noise": [x.reshape(n * b, *x.shape[2:]) for x in base_noise]}
                    fixed_base = adapter.synthesize(w.repeat(n, 1), flat).reshape(n, b, -1)
                else:
                    fixed_base = adapter.synthesize(w, sample).reshape(1, b, -1).expand(n, b, -1)

        def loss(sp, direction, base, base_noise_d, moved_noise_d):
            moved_sample = sample if moved_noise_d is None else {**sample, "noise": moved_noise_d}
            moved = adapter.synthesize(w + self.alpha * direction, moved_sample, params=sp).reshape(b, -1)
            if base is None:  # official quirk: G(w) is differentiable too
                base_sample = sample if base_noise_d is None else {**sample, "noise": base_noise_d}
                base = adapter.synthesize(w, base_sample, params=sp).reshape(b, -1)
            return (moved - base).abs().sum()

        noise_dim = 0 if independent else None
        in_dims = (None, 0, None if fixed_base is None else 0, noise_dim, noise_dim)
        grads = torch.func.vmap(torch.func.grad(loss), in_dims=in_dims)(
            scored, directions.to(w), fixed_base, base_noise, moved_noise
        )
        return {k: grads[k] for k in keys}

    def __call__(self, net: GanNet) -> Scores:
        net, groups, scored_groups, keys, device = self._prepare(net)
        params = self._params(net, keys)
        adapter = GeneratorAdapter(net)
        gen = torch.Generator().manual_seed(self.seed)
        pca = latent_directions(adapter, self.n_pca_samples, gen, device)
        components, mean = pca.components.to(device), pca.mean.to(device)
        sizes = batch_sizes(self.n_samples, self.batch_size)
        total = {g.name: torch.zeros(g.size, dtype=torch.float64) for g in groups}
        for sample in _progress(
            adapter.input_batches(sizes, gen, device), len(sizes), "diversity-aware scoring", self.progress
        ):
            directions = components[pca.draw(self.n_directions, gen)]
            per_direction = self.direction_magnitudes(
                adapter, sample, directions, params, keys, scored_groups, gen, mean
            )
            for name, g in per_direction.items():
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
            "grad_through_both": self.grad_through_both,
            "independent_noise": self.independent_noise,
            "seed": self.seed,
        }


ScorerName = Literal["random", "l1", "content_aware", "diversity_aware"]

SCORERS: dict[str, Callable[..., Scorer]] = {
    "random": RandomScorer,
    "l1": L1Scorer,
    "content_aware": ContentAwareScorer,
    "diversity_aware": DiversityAwareScorer,
}


def make_scorer(name: ScorerName, **kwargs: Any) -> Scorer:
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; choose from {sorted(SCORERS)}")
    return SCORERS[name](**kwargs)
