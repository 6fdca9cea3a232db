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
* :class:`DiversityAwareScorer` — DCP (Chung et al., CVPR 2024), in
  :mod:`lightning_gancomp.pruning.diversity` (gradient paths ``released`` / ``intended`` /
  ``through_moved``, batching over directions); re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import torch
from torch import nn

from lightning_gancomp.nets.base import GanNet
from lightning_gancomp.nets.contract import is_style_based
from lightning_gancomp.pruning.diversity import DiversityAwareScorer, LatentDirections, latent_directions
from lightning_gancomp.pruning.plan import Scores
from lightning_gancomp.pruning.scoring import (
    ChannelScorer,
    GeneratorAdapter,
    Scorer,
    _GradientScorer,
    _group_grad_scores,
    _progress,
    _reduce_to_channels,
    batch_sizes,
    pick_device,
)

# Names defined elsewhere and re-exported (configs and callers import them from here).
__reexported__ = (
    ChannelScorer,
    DiversityAwareScorer,
    GeneratorAdapter,
    LatentDirections,
    latent_directions,
    pick_device,
)

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


# -- scorers ------------------------------------------------------------------------------------


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


class EffectiveL1Scorer(ChannelScorer):
    """CAGAN's ``l1-out`` / ``l1-in`` baselines on *effective* weights (official
    ``Util/pruning_util.py`` ``Get_Weight_Based_Score`` with ``Get_Generator_Effective_Weights``).

    For ``n_samples`` random z, every modulated conv's per-sample weight after modulation and
    demodulation (``ModulatedConv2d.modulated_weight(w)``, ``w`` = mapped z) is averaged over the
    samples; a channel's score is the L1 norm of that average over the weights that read it
    (``"outgoing"``: the next conv, the last ToRGB for the last map) or write it (``"incoming"``;
    a map no modulated conv writes — the constant input — gets random scores from ``seed``, as
    the official code). Needs a style-based generator built from ``ModulatedConv2d``.
    """

    def __init__(
        self,
        direction: Literal["outgoing", "incoming"] = "outgoing",
        n_samples: int = 400,
        seed: int = 0,
        device: str | None = None,
    ) -> None:
        if direction not in ("outgoing", "incoming"):
            raise ValueError(
                f"EffectiveL1Scorer direction must be 'outgoing' or 'incoming', got {direction!r}"
            )
        self.direction, self.n_samples, self.seed, self.device = direction, n_samples, seed, device

    @torch.no_grad()
    def __call__(self, net: GanNet) -> Scores:
        from lightning_gancomp.nets.stylegan_layers import ModulatedConv2d

        if not is_style_based(net):
            raise ValueError(f"EffectiveL1Scorer needs a style-based generator, got {type(net).__name__}")
        device = pick_device(self.device)
        net = net.to(device).eval()
        gen = torch.Generator().manual_seed(self.seed)
        w = net.mapping(torch.randn(self.n_samples, net.z_dim, generator=gen).to(device))
        effective: dict[str, torch.Tensor] = {}
        for name, module in net.named_modules():
            if isinstance(module, ModulatedConv2d):  # mean over z of the per-sample weights, in chunks
                total = sum(module.modulated_weight(chunk).sum(0, keepdim=True) for chunk in w.split(50))
                effective[f"{name}.weight"] = total / w.shape[0]
        scores = {}
        for group in net.channel_groups():
            members = (
                group.scored_members() if self.direction == "outgoing" else group.members_with_role("out")
            )
            weights = [m for m in members if m.key in effective]
            if not weights:
                scores[group.name] = torch.rand(group.size, generator=gen, dtype=torch.float64)
                continue
            parts = [
                _reduce_to_channels(effective[m.key].abs().double(), m, group.size, "sum") for m in weights
            ]
            scores[group.name] = torch.stack(parts).sum(0).cpu()
        return scores

    def describe(self) -> dict[str, Any]:
        return {
            "name": "l1_effective",
            "direction": self.direction,
            "n_samples": self.n_samples,
            "seed": self.seed,
        }


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


ScorerName = Literal["random", "l1", "l1_effective", "content_aware", "diversity_aware"]

SCORERS: dict[str, Callable[..., Scorer]] = {
    "random": RandomScorer,
    "l1": L1Scorer,
    "l1_effective": EffectiveL1Scorer,
    "content_aware": ContentAwareScorer,
    "diversity_aware": DiversityAwareScorer,
}


def make_scorer(name: ScorerName, **kwargs: Any) -> Scorer:
    if name not in SCORERS:
        raise ValueError(f"unknown scorer {name!r}; choose from {sorted(SCORERS)}")
    return SCORERS[name](**kwargs)
