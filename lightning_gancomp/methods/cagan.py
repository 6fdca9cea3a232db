"""CAGAN: content-aware GAN compression (Liu et al., CVPR 2021) — the distillation stage.

Pruning (content-aware channel scores, uniform removal) happens before training, in
``gancomp prune`` (:mod:`lightning_gancomp.pruning`); this module retrains the pruned student.
Recipe (paper Sec. 3.3; lychenyoko/content-aware-gan-compression ``train.py``), every number in
the YAML configs:

* student initialised from the pruned teacher (mapping network included), D = teacher's D;
* generator loss = non-saturating GAN + 3·L1(S, T) + 3·LPIPS-VGG(S, T) on the same z (teacher
  and student draw their own noise maps, as the official code); with content-aware KD on, both
  images are multiplied by the face-parsing mask of the *teacher* image first
  (``Get_Masked_Tensor``), LPIPS on 256-px downsampled images above 256 px;
* R1 γ = 10 every 16 batches, path length 2 every 4 (batch shrink 2), style mixing 0.9, G-EMA
  decay 0.5^(32/10000), Adam lr 0.002·c, betas (0, 0.99^c), c = k/(k+1) (lazy regularisation)
  — all from the engine (:mod:`lightning_gancomp.methods.engine`).

``student_init`` (engine: :class:`~lightning_gancomp.methods.compression.CompressionModule`)
exposes the alternative the DCP/StyleKD README uses (``--load 0``): a random synthesis network
with the teacher's mapping network. The default is the pruned teacher (the premise of
pruning-then-distillation).

The SN-GAN variant (CIFAR-10) is the same module with ``adversarial: HingeLoss``, no R1/path
length/mixing, and the student's BN statistics trained as usual (configs/cagan/cifar10_sngan*).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lightning_gancomp.atomic import atomic_torch_save
from lightning_gancomp.caches import load_cached_weights
from lightning_gancomp.losses import LossContext
from lightning_gancomp.methods.compression import CompressionModule
from lightning_gancomp.nets.contract import is_style_based
from lightning_gancomp.pruning.importance import ChannelScorer, ContentAwareScorer, ContentMask
from lightning_gancomp.pruning.plan import PruningPolicy, UniformPolicy

StudentInit = Literal["pruned_teacher", "random_synthesis"]


def _parser_network(width: int = 16) -> nn.Sequential:
    # dilated convs: a 15-px receptive field at full resolution, enough to tell head from background
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=2, dilation=2),
        nn.ReLU(),
        nn.Conv2d(width, width, 3, padding=4, dilation=4),
        nn.ReLU(),
        nn.Conv2d(width, 1, 1),
    )


class EmbeddedFaceMask(ContentMask):
    """Content mask of generated *embedded* faces (the embedded analogue of the face parser).

    The embedded dataset (``data.embedded.EmbeddedImages``) ships the head mask of each real
    image; generated images have none, so a small fully-convolutional parser is trained on the
    dataset's (image, mask) pairs — deterministically (seeded), in seconds on CPU, once per
    ``(resolution, steps, seed)`` — and cached under ``cache_dir``. CAGAN's face parser plays
    exactly this role on FFHQ (mask = not background, not cloth).
    """

    def __init__(
        self,
        resolution: int = 32,
        steps: int = 300,
        batch_size: int = 32,
        seed: int = 0,
        threshold: float = 0.5,
        cache_dir: str | None = None,
    ) -> None:
        self.resolution, self.steps, self.batch_size, self.seed = resolution, steps, batch_size, seed
        self.threshold = threshold
        self.cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "lightning_gancomp")
        self._network: nn.Sequential | None = None  # trained/loaded on first use

    @property
    def network(self) -> nn.Sequential:
        if self._network is None:
            self._network = self._load_or_train().eval().requires_grad_(False)
        return self._network

    @property
    def cache_path(self) -> str:
        name = f"embedded_face_mask_r{self.resolution}_s{self.steps}_b{self.batch_size}_seed{self.seed}.pt"
        return os.path.join(self.cache_dir, name)

    def _load_or_train(self) -> nn.Sequential:
        network = _parser_network()
        if load_cached_weights(network, self.cache_path, "embedded face-mask network"):
            return network  # a missing, unreadable or wrong-shaped cache is retrained and rewritten
        self._train(network)
        atomic_torch_save(network.state_dict(), self.cache_path)
        return network

    def _train(self, network: nn.Sequential) -> None:
        from lightning_gancomp.data.embedded import EmbeddedImages

        data = EmbeddedImages(length=self.steps * self.batch_size, resolution=self.resolution, seed=self.seed)
        # enable_grad: the first call may come from inside no_grad (mask providers run there)
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(self.seed)
            for module in network:
                if isinstance(module, nn.Conv2d):
                    module.reset_parameters()
            optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
            for step in range(self.steps):
                items = [data[step * self.batch_size + i] for i in range(self.batch_size)]
                img = torch.stack([item["real_img"] for item in items])
                mask = torch.stack([item["mask"] for item in items])
                loss = nn.functional.binary_cross_entropy_with_logits(network(img), mask)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

    @torch.no_grad()
    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        network = self.network
        if next(network.parameters()).device != img.device:
            self._network = network = network.to(img.device)
        logits = network(img.detach().float().clamp(-1, 1))
        return (torch.sigmoid(logits) > self.threshold).to(img.dtype)

    def describe(self) -> dict:
        return {
            "name": "embedded_face",
            "resolution": self.resolution,
            "steps": self.steps,
            "seed": self.seed,
        }


class CAGANModule(CompressionModule):
    """CAGAN distillation (see the module docstring for the recipe and its references).

    Args (beyond :class:`~lightning_gancomp.methods.compression.CompressionModule`, whose
    teacher/student/discriminator construction and ``student_init`` it uses):
        kd_mask: content mask for content-aware KD, computed on the teacher image (e.g.
            ``FaceParserMask(mode="distillation")``); None = all ones (non-face data). Loss
            terms read it when configured with ``masked: true``.
        scorer / policy / rescale_equalized: the pruning recipe ``gancomp prune`` applies to the
            teacher (default: content-aware scores, uniform removal ratio 0.7, function-preserving
            equalized-lr rescale).
        eval_l1_samples: at ``test`` end, the mean L1 distance between teacher and student images
            on shared z over this many samples (DCP Fig. 4: 10,000); 0 = off.
        eval_l1_share_noise: teacher and student also share the noise maps; False = each draws
            its own, as the official ``get_recon.py``.
        eval_pr_samples: at ``test`` end, precision/recall of the student at every truncation ψ in
            ``eval_psis`` (DCP Fig. 3a: 0.5 … 1.0) with this many samples per ψ against the test
            set's real features (needs ``metrics`` with ``precision_recall``); 0 = off.
    """

    def __init__(
        self,
        kd_mask: ContentMask | None = None,
        scorer: ChannelScorer | None = None,
        policy: PruningPolicy | None = None,
        eval_l1_samples: int = 0,
        eval_l1_share_noise: bool = False,
        eval_pr_samples: int = 0,
        eval_psis: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        **kwargs: Any,
    ) -> None:
        # CAGAN's pruning recipe: content-aware scores, uniform removal ratio 0.7
        super().__init__(
            scorer=scorer if scorer is not None else ContentAwareScorer(),
            policy=policy if policy is not None else UniformPolicy(0.7),
            **kwargs,
        )
        if self.teacher is None:
            raise ValueError(f"{type(self).__name__} distils a teacher: give teacher or teacher_path")
        self.kd_mask = kd_mask
        self.eval_l1_samples = eval_l1_samples
        self.eval_l1_share_noise = eval_l1_share_noise
        self.eval_pr_samples = eval_pr_samples
        self.eval_psis = tuple(float(p) for p in eval_psis)

    def content_mask(self, ctx: LossContext, batch: Mapping[str, Tensor]) -> Tensor:
        """Content-aware KD mask: the parser's content region of the *teacher* image (official
        ``Batch_Img_Parsing(fake_img_teacher)``); all ones without a ``kd_mask``."""
        if self.kd_mask is None:
            return super().content_mask(ctx, batch)
        assert ctx.teacher_img is not None, "content-aware KD needs the teacher image"
        return self.kd_mask(ctx.teacher_img.detach()).to(ctx.teacher_img.dtype)

    # -- evaluation specific to CAGAN/DCP ------------------------------------------------------
    def on_test_epoch_end(self) -> None:
        if self.eval_l1_samples > 0:
            self.log("test/l1_teacher_student", self.teacher_student_l1(self.eval_l1_samples))
        if self.eval_pr_samples > 0 and self.metrics is not None and self._eval_images_seen > 0:
            for point in self.precision_recall_curve(self.eval_pr_samples):
                psi = f"{point['psi']:.1f}"
                self.log(f"test/precision_psi{psi}", point["precision"])
                self.log(f"test/recall_psi{psi}", point["recall"])
        super().on_test_epoch_end()

    @torch.no_grad()
    def teacher_student_l1(self, num_samples: int, batch_size: int = 16) -> float:
        """Mean |T(z) − S(z)| on shared z (DCP's distortion measure, ``metrics.perceptual``)."""
        from lightning_gancomp.metrics.perceptual import mean_l1_distance

        return mean_l1_distance(
            self.teacher, self.eval_generator(), num_samples, batch_size, share_noise=self.eval_l1_share_noise
        )

    @torch.no_grad()
    def precision_recall_curve(self, num_samples: int, batch_size: int = 32) -> list[dict[str, float]]:
        """Student precision/recall at each truncation ψ, truncating towards its mean latent."""
        net = self.eval_generator()
        rng = torch.Generator(device=self.device).manual_seed(0)
        centre = net.mean_latent(4096, generator=rng) if is_style_based(net) else None

        def generate(psi: float, n: int) -> Tensor:
            z = torch.randn(n, int(net.z_dim), generator=rng, device=self.device)
            if centre is None:
                return net(z).clamp(-1, 1)
            return net(z, truncation=psi, truncation_latent=centre).clamp(-1, 1)

        # real features: the test set's, kept by the metrics object during the test epoch
        return self.metrics.precision_recall_curve(generate, num_samples, batch_size, self.eval_psis)
