"""FID, KID, IS (torchmetrics) and precision/recall over one feature extractor, with cached real statistics.

``GenerativeMetrics`` is deliberately a plain object, not an ``nn.Module``: assigned as an
attribute of a LightningModule it is not registered as a submodule, so Inception (~100 MB) never
lands in a Lightning checkpoint and is never touched by DDP or ``.train()``. Move it with
``.to(device)``. Under DDP each rank feeds its shard of the evaluation data; ``compute()`` first
merges every rank's statistics (FID sums added, kept features and IS logits gathered), so all
ranks report the metric of all samples — the same number as one process on the same images.

The networks are built on first use (the first ``update``, ``extract_*``, ``compute`` with
images, or access to ``extractor`` / ``pr_extractor``), not in the constructor: building
Inception or VGG-16 downloads their weights, and a config that names them must still ``profile``
and ``prune`` offline. Offline, the first use raises ``FeatureExtractorUnavailableError`` (one
line naming the file and where to put it). What the configuration alone determines (feature
sizes, cache tags, descriptions of Inception and VGG-16) is known without building, so
``needs_real_images``, ``description`` and the real-statistics cache lookup never trigger a
download. ``.to(device)`` before the build is remembered and applied when the networks appear.

How the metrics are computed (all in the extractor's feature space):

- FID: torchmetrics ``FrechetInceptionDistance`` (Heusel et al. 2017; streaming mean/covariance
  sums in float64; same as the TF FID code up to the matrix square root).
- KID: torchmetrics ``KernelInceptionDistance`` (Bińkowski et al. 2018; cubic polynomial kernel
  MMD², ``subsets`` random subsets of ``subset_size``).
- IS: torchmetrics ``InceptionScore`` (Salimans et al. 2016) on the generated images' logits.
- precision / recall: Kynkäänniemi et al. 2019, k-NN manifolds (see ``precision_recall.py``),
  in VGG-16 fc2 features as in the paper when the main extractor is Inception
  (``precision_recall_extractor="vgg16"``, a second network), otherwise in the main extractor's
  features (``"same"``; the default for the embedded net and custom modules, which work offline).

The network runs once per batch: its features and logits are handed to the torchmetrics metrics
through pass-through feature modules (torchmetrics accepts any ``nn.Module`` as ``feature``).

Real statistics are the expensive half of an evaluation that never changes. After the first
``compute()`` they are kept (``reset()`` clears only the generated side) and, when
``dataset_key`` is given, written to ``cache_dir``; a later evaluation with the same key and
extractor loads them, ``needs_real_images`` is ``False``, and real batches passed to
``update`` are skipped without running the network.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.distributed as dist
from torch import nn

from lightning_gancomp.caches import read_cache
from lightning_gancomp.metrics.extractors import (
    EXTRACTOR_ATTRIBUTES,
    LazyNetwork,
    PassThroughFeatures,
    checked_module,
    main_network,
    require_file,
)
from lightning_gancomp.metrics.features import (
    VGG16FeatureExtractor,
    images_to_uint8,
)
from lightning_gancomp.metrics.fid_stats import FidStatistics, FidStatisticsError, load_fid_statistics
from lightning_gancomp.metrics.precision_recall import (
    DCP_TRUNCATION_PSIS,
    knn_precision_recall,
    precision_recall_over_truncation,
)

MetricName = Literal["fid", "kid", "is", "precision_recall"]
_ALL_METRICS: tuple[str, ...] = ("fid", "kid", "is", "precision_recall")
REAL_STATS_FORMAT = "lightning_gancomp.real_stats"
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "lightning_gancomp", "real_stats")


def real_stats_cache_path(cache_dir: str, dataset_key: str, extractor_tag: str) -> str:
    """File holding the real statistics of ``dataset_key`` measured by the extractor ``extractor_tag``."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset_key)[-60:]
    digest = hashlib.sha1(f"{dataset_key}\0{extractor_tag}".encode()).hexdigest()[:12]
    return os.path.join(cache_dir, f"{readable}--{extractor_tag}--{digest}.pt")


def _gathered(parts: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """Every rank's list of feature batches, concatenated per rank (ranks may hold different
    counts, so the objects are gathered rather than fixed-size tensors)."""
    local = torch.cat(parts).cpu() if parts else None
    everyone: list[torch.Tensor | None] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, local)
    return [p.to(device) for p in everyone if p is not None]


class GenerativeMetrics:
    """FID / KID / IS / precision-recall of generated vs real images in [-1, 1].

    Args:
        metrics: which metrics ``compute`` returns. Keys: ``fid``; ``kid``, ``kid_std``; ``is``,
            ``is_std``; ``precision``, ``recall``.
        feature_extractor: ``"inception"`` (torch-fidelity Inception-v3, the papers' network),
            ``"embedded"`` (small net trained on the embedded synthetic data — works offline, NOT
            Inception: numbers are not comparable to papers), or a module following the
            protocol of ``features.py``.
        feature_extractor_weights_path: local weights file for ``"inception"`` / ``"embedded"``.
        precision_recall_extractor: feature space of precision/recall: ``"vgg16"`` (paper),
            ``"same"`` (the main extractor) or a module; ``None`` → ``"vgg16"`` with Inception,
            ``"same"`` otherwise.
        vgg16_weights_path: local torchvision ``vgg16-397923af.pth`` for ``"vgg16"``.
        antialias: Inception resize; ``False`` (default) reproduces TF FID as used by the papers,
            ``True`` is torchmetrics' default antialiased resize.
        real_statistics_path: precomputed FID real statistics (``.npz`` mu/sigma of NVlabs TF-FID /
            clean-fid, ``.pkl`` mean/cov of rosinality / CAGAN; ``fid_stats.py``): FID compares
            against them instead of the real images (other metrics still need real images).
        dataset_key: identifies the real image set (e.g. ``"ffhq256-lmdb-50k"``); enables the
            on-disk real-statistics cache. ``None`` → real statistics are kept only in memory.
        cache_dir: where real statistics are cached (default ``~/.cache/lightning_gancomp/real_stats``).
        kid_subsets, kid_subset_size: KID subsets (subset size is capped by the sample counts).
        is_splits: IS splits.
        pr_neighbourhood: k of the k-NN manifolds (3 in Kynkäänniemi et al.).
        seed: seeds the random subsets of KID / IS splits so ``compute`` is reproducible.
        device: where the network and states live.
    """

    def __init__(
        self,
        metrics: Sequence[MetricName] = ("fid", "kid", "is"),
        feature_extractor: Literal["inception", "embedded"] | nn.Module = "inception",
        feature_extractor_weights_path: str | None = None,
        precision_recall_extractor: Literal["vgg16", "same"] | nn.Module | None = None,
        vgg16_weights_path: str | None = None,
        antialias: bool = False,
        real_statistics_path: str | None = None,
        dataset_key: str | None = None,
        cache_dir: str | None = None,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        is_splits: int = 10,
        pr_neighbourhood: int = 3,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        unknown = [m for m in metrics if m not in _ALL_METRICS]
        if unknown or not metrics:
            raise ValueError(f"metrics={list(metrics)!r}: choose from {list(_ALL_METRICS)}")
        self.metrics = tuple(dict.fromkeys(metrics))
        # Networks and the torchmetrics states sized by them are built on first use (module docstring).
        self._main = main_network(feature_extractor, feature_extractor_weights_path, antialias)
        self._pr = self._pr_network(feature_extractor, precision_recall_extractor, vgg16_weights_path)
        self.fid_statistics: FidStatistics | None = (
            load_fid_statistics(real_statistics_path) if real_statistics_path is not None else None
        )
        self._fid: nn.Module | None = None
        self._kid: nn.Module | None = None
        self._inception_score: nn.Module | None = None
        self.dataset_key = dataset_key
        self.cache_dir = cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        self.is_splits, self.pr_neighbourhood, self.seed = is_splits, pr_neighbourhood, seed
        self.device = torch.device(device)

        # Features kept for KID and precision/recall (FID streams sums and needs none); P&R in a
        # separate network's space keeps its own lists. IS needs generated images only.
        pr_in_main_space = "precision_recall" in self.metrics and self._pr is None
        self._keep_features = "kid" in self.metrics or pr_in_main_space
        fid_from_images = "fid" in self.metrics and self.fid_statistics is None
        self._uses_real = self._keep_features or self._pr is not None or fid_from_images
        self._real_features: list[torch.Tensor] = []
        self._fake_features: list[torch.Tensor] = []
        self._real_pr_features: list[torch.Tensor] = []
        self._fake_pr_features: list[torch.Tensor] = []
        self._frozen_fid_real: dict[str, torch.Tensor] | None = (
            self.fid_statistics.torchmetrics_state() if self.fid_statistics is not None else None
        )
        self.last_protocol: dict[str, str | int | None] = {}
        self.num_real_images = 0
        self.num_fake_images = 0
        self.extractor_calls = 0  # network forwards so far (shows that cached real images are skipped)
        self._real_frozen = False  # real statistics complete (computed once, or loaded from cache)
        self._real_from_cache = False
        self._cache_looked_up = False  # the cache is read on the first question about real statistics
        self.to(self.device)  # a user module exists already: move it now, as before

    def _pr_network(
        self,
        feature_extractor: str | nn.Module,
        choice: Literal["vgg16", "same"] | nn.Module | None,
        vgg16_weights_path: str | None,
    ) -> LazyNetwork | None:
        """Second network for precision/recall, or None when P&R uses the main extractor."""
        if "precision_recall" not in self.metrics:
            return None
        if choice is None:
            choice = (
                "vgg16" if isinstance(feature_extractor, str) and feature_extractor == "inception" else "same"
            )
        if isinstance(choice, nn.Module):
            return LazyNetwork.ready(checked_module(choice))
        if choice == "same":
            return None
        if choice == "vgg16":
            require_file(vgg16_weights_path, "vgg16_weights_path")
            known = {name: getattr(VGG16FeatureExtractor, name) for name in EXTRACTOR_ATTRIBUTES}
            return LazyNetwork(lambda: VGG16FeatureExtractor(vgg16_weights_path), known)
        raise ValueError(
            f"precision_recall_extractor={choice!r}: expected 'vgg16', 'same', None or an nn.Module"
        )

    # ------------------------------------------------------------------ networks (built on first use)
    @property
    def extractor(self) -> nn.Module:
        """The main feature network (built, i.e. downloaded, on first access)."""
        return self._main.get(self.device)

    @property
    def pr_extractor(self) -> nn.Module | None:
        """The precision/recall network, or None when P&R uses the main one (built on first access)."""
        return self._pr.get(self.device) if self._pr is not None else None

    @property
    def fid(self) -> nn.Module:
        self._build()
        assert self._fid is not None
        return self._fid

    @property
    def kid(self) -> nn.Module:
        self._build()
        assert self._kid is not None
        return self._kid

    @property
    def inception_score(self) -> nn.Module:
        self._build()
        assert self._inception_score is not None
        return self._inception_score

    @property
    def built(self) -> bool:
        """Whether the networks exist yet (False until the first use)."""
        return self._fid is not None

    def _build(self) -> None:
        """Build the networks and the torchmetrics metrics whose state sizes follow from them."""
        if self._fid is not None:
            return
        from torchmetrics.image.fid import FrechetInceptionDistance
        from torchmetrics.image.inception import InceptionScore
        from torchmetrics.image.kid import KernelInceptionDistance

        extractor = self.extractor
        if self._pr is not None:
            self._pr.get(self.device)
        num_features = int(extractor.num_features)
        if self.fid_statistics is not None and self.fid_statistics.num_features != num_features:
            raise FidStatisticsError(
                f"real statistics {self.fid_statistics.path}: {self.fid_statistics.num_features} features, "
                f"but the feature extractor gives {num_features}"
            )
        with warnings.catch_warnings():  # KID/IS warn that they keep features in memory; we know
            warnings.simplefilter("ignore", UserWarning)
            # sync_on_compute=False: ranks are merged once, by `_merge_ranks` (a frozen or cached real
            # state must not be summed again at every compute).
            fid = FrechetInceptionDistance(feature=PassThroughFeatures(num_features), sync_on_compute=False)
            kid = KernelInceptionDistance(
                feature=PassThroughFeatures(num_features),
                subsets=self.kid_subsets,
                subset_size=self.kid_subset_size,
                sync_on_compute=False,
            )
            inception_score = InceptionScore(
                feature=PassThroughFeatures(int(extractor.num_logits)),
                splits=self.is_splits,
                sync_on_compute=False,
            )
        self._kid = kid.to(self.device)
        self._inception_score = inception_score.to(self.device)
        self._fid = fid.to(self.device)
        if self._frozen_fid_real is not None:  # real statistics known before the build (cache)
            self._restore_fid_real(self._frozen_fid_real)

    # ------------------------------------------------------------------ state
    @property
    def description(self) -> str:
        """What network the numbers come from (log it next to them)."""
        main = str(self._main.attribute("description", self.device))
        if self._pr is None:
            return main
        return f"{main}; precision/recall: {self._pr.attribute('description', self.device)}"

    @property
    def real_frozen(self) -> bool:
        """Real statistics complete (computed once, or loaded from the cache)."""
        self._look_up_real_cache()
        return self._real_frozen

    @property
    def real_from_cache(self) -> bool:
        """Real statistics were loaded from the on-disk cache."""
        self._look_up_real_cache()
        return self._real_from_cache

    @property
    def needs_real_images(self) -> bool:
        """False when real statistics are already known: skip the real dataloader.

        Answered without building Inception/VGG-16 (their cache tags follow from the config).
        """
        return self._uses_real and not self.real_frozen

    def to(self, device: str | torch.device) -> GenerativeMetrics:
        """Move everything to ``device``; networks not built yet are built there."""
        self.device = torch.device(device)
        for network in (self._main, self._pr):
            if network is not None:
                network.to(self.device)
        for module in (self._fid, self._kid, self._inception_score):
            if module is not None:
                module.to(self.device)
        for name in ("_real_features", "_fake_features", "_real_pr_features", "_fake_pr_features"):
            setattr(self, name, [f.to(self.device) for f in getattr(self, name)])
        return self

    def reset(self, real: bool = False) -> None:
        """Forget generated images; with ``real=True`` also the real statistics (in memory only)."""
        if self._fid is not None:  # torchmetrics resets real and fake sums alike; restore the real ones
            self._fid.reset()
        if self._inception_score is not None:
            self._inception_score.reset()
        self._fake_features = []
        self._fake_pr_features = []
        self.num_fake_images = 0
        if real:
            self._cache_looked_up = True  # forgetting the real statistics also means not reloading them
            self._real_features = []
            self._real_pr_features = []
            self._frozen_fid_real = None
            self.num_real_images = 0
            self._real_frozen = False
            self._real_from_cache = False
        elif self._frozen_fid_real is not None and self._fid is not None:
            self._restore_fid_real(self._frozen_fid_real)

    @torch.no_grad()
    def extract_features(self, imgs: torch.Tensor) -> torch.Tensor:
        """Features [B, D] of images in [-1, 1] (e.g. for ``precision_recall_over_truncation``)."""
        return self.extractor(images_to_uint8(imgs.to(self.device)))[0].float()

    @torch.no_grad()
    def extract_precision_recall_features(self, imgs: torch.Tensor) -> torch.Tensor:
        """Features [B, D] of images in [-1, 1] in the precision/recall space."""
        network = self.pr_extractor if self._pr is not None else self.extractor
        return network(images_to_uint8(imgs.to(self.device)))[0].float()

    @property
    def real_features(self) -> torch.Tensor:
        """Real features [N, D] of the precision/recall space (the main space when P&R is off)."""
        self._look_up_real_cache()
        kept = self._real_pr_features if self._pr is not None else self._real_features
        if not kept:
            raise RuntimeError(
                "no real features kept: enable 'kid' or 'precision_recall' and add real images"
            )
        return torch.cat(kept)

    def precision_recall_curve(
        self,
        generate: Callable[[float, int], torch.Tensor],
        num_samples: int,
        batch_size: int = 50,
        psis: Sequence[float] = DCP_TRUNCATION_PSIS,
    ) -> list[dict[str, float]]:
        """DCP's P&R curve over truncation ψ against the real features kept here (precision_recall.py).

        ψ = 1 (no truncation) reuses this evaluation's own generated samples when it has them, so
        ``precision_psi1.0`` is ``precision`` by construction rather than a second, differently
        noisy estimate on other latents."""
        kept = self._fake_pr_features if self._pr is not None else self._fake_features
        return precision_recall_over_truncation(
            generate,
            self.extract_precision_recall_features,
            self.real_features,
            num_samples,
            batch_size,
            psis,
            k=self.pr_neighbourhood,
            given={1.0: torch.cat(kept)} if kept else None,
        )

    # ------------------------------------------------------------------ update / compute
    @torch.no_grad()
    def update(self, imgs: torch.Tensor, real: bool) -> None:
        """Add a batch of images in [-1, 1] ([B, 3, H, W], float)."""
        if imgs.ndim != 4 or imgs.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W] in [-1, 1], got shape {tuple(imgs.shape)}")
        if real and (self.real_frozen or not self._uses_real):
            return  # statistics already known (cache or earlier compute): no network call
        self._build()
        img_uint8 = images_to_uint8(imgs.to(self.device))
        features, logits = self.extractor(img_uint8)
        features = features.float()
        self.extractor_calls += 1
        if self._pr is not None:
            pr_features = self._pr.get(self.device)(img_uint8)[0].float()
            (self._real_pr_features if real else self._fake_pr_features).append(pr_features)
        if "fid" in self.metrics and not (real and self.fid_statistics is not None):
            self.fid.update(features, real=real)
        if real:
            self.num_real_images += imgs.shape[0]
            if self._keep_features:
                self._real_features.append(features)
            return
        self.num_fake_images += imgs.shape[0]
        if self._keep_features:
            self._fake_features.append(features)
        if "is" in self.metrics:
            self.inception_score.update(logits.float())

    @torch.no_grad()
    def compute(self) -> dict[str, float]:
        """Every requested metric as a float; freezes (and caches) the real statistics."""
        if self.num_fake_images < 2 or (
            self._uses_real and not self.real_frozen and self.num_real_images < 2
        ):
            raise RuntimeError(
                f"need at least 2 real and 2 generated images, got {self.num_real_images} real "
                f"and {self.num_fake_images} generated"
            )
        self._build()  # already built by the updates; here for a cache-only real side
        self._merge_ranks()
        if self._uses_real and not self.real_frozen:
            self._freeze_real()
        results: dict[str, float] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            if "fid" in self.metrics:
                results["fid"] = float(self.fid.compute())
            if "kid" in self.metrics:
                results.update(self._compute_kid())
            if "is" in self.metrics:
                with warnings.catch_warnings():  # std over a single split is NaN by definition
                    warnings.filterwarnings("ignore", message="std\\(\\): degrees of freedom")
                    is_mean, is_std = self.inception_score.compute()
                results["is"], results["is_std"] = float(is_mean), float(is_std)
        if "precision_recall" in self.metrics:
            real_kept, fake_kept = (
                (self._real_pr_features, self._fake_pr_features)
                if self._pr is not None
                else (self._real_features, self._fake_features)
            )
            precision, recall = knn_precision_recall(
                torch.cat(real_kept), torch.cat(fake_kept), k=self.pr_neighbourhood
            )
            results["precision"], results["recall"] = precision, recall
        self.last_protocol = self.protocol()
        return results

    def _merge_ranks(self) -> None:
        """Under ``torch.distributed``, replace this rank's statistics by all ranks' (generated
        side always, real side until it is frozen); a no-op in a single process."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return
        sides = ["fake"] + (["real"] if self._uses_real and not self.real_frozen else [])
        for side in sides:
            if "fid" in self.metrics and not (side == "real" and self.fid_statistics is not None):
                # precomputed real statistics are the same on every rank: never summed
                for name in ("features_sum", "features_cov_sum", "features_num_samples"):
                    dist.all_reduce(getattr(self.fid, f"{side}_{name}"))
            for name in (f"_{side}_features", f"_{side}_pr_features"):
                setattr(self, name, _gathered(getattr(self, name), self.device))
            count = torch.tensor(getattr(self, f"num_{side}_images"), device=self.device)
            dist.all_reduce(count)
            setattr(self, f"num_{side}_images", int(count))
        if "is" in self.metrics:
            self.inception_score.features = _gathered(self.inception_score.features, self.device)

    def protocol(self) -> dict[str, str | int | None]:
        """What the numbers were measured against (log it with them): the real statistics' source,
        image counts, and the feature networks with their resize."""
        if self.fid_statistics is not None:
            source = self.fid_statistics.describe()
        elif self._real_from_cache:
            source = f"cached {self._cache_path()}"
        else:
            source = f"computed from {self.num_real_images} real images"
        return {
            "real_statistics": source,
            "num_real_images": self.num_real_images if self._uses_real else None,
            "num_generated_images": self.num_fake_images,
            "features": self.description,
        }

    def _compute_kid(self) -> dict[str, float]:
        real = torch.cat(self._real_features)
        fake = torch.cat(self._fake_features)
        self.kid.reset()
        self.kid.subset_size = min(self.kid_subset_size, real.shape[0], fake.shape[0])
        self.kid.update(real, real=True)
        self.kid.update(fake, real=False)
        kid_mean, kid_std = self.kid.compute()
        return {"kid": float(kid_mean), "kid_std": float(kid_std)}

    # ------------------------------------------------------------------ real statistics cache
    def _fid_real_state(self) -> dict[str, torch.Tensor]:
        return {
            "sum": self.fid.real_features_sum.detach().clone(),
            "cov_sum": self.fid.real_features_cov_sum.detach().clone(),
            "num_samples": self.fid.real_features_num_samples.detach().clone(),
        }

    def _restore_fid_real(self, state: dict[str, torch.Tensor]) -> None:
        self.fid.real_features_sum = state["sum"].to(self.device, torch.float64).clone()
        self.fid.real_features_cov_sum = state["cov_sum"].to(self.device, torch.float64).clone()
        self.fid.real_features_num_samples = state["num_samples"].to(self.device).clone()

    def _freeze_real(self) -> None:
        if self._keep_features:
            self._real_features = [torch.cat(self._real_features)]
        if self._pr is not None:
            self._real_pr_features = [torch.cat(self._real_pr_features)]
        self._frozen_fid_real = self._fid_real_state() if "fid" in self.metrics else None
        self._real_frozen = True
        self._cache_looked_up = True
        if self.dataset_key is not None:
            self._save_real_cache()

    def _cache_tag(self) -> str:
        """Every network whose features the cache holds (Inception/VGG-16: without building them)."""
        tag = str(self._main.attribute("tag", self.device))
        if self.fid_statistics is not None:  # FID's real side came from a file, not from the images
            tag += "+fidfile-" + re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(self.fid_statistics.path))
        if self._pr is None:
            return tag
        return f"{tag}+pr-{self._pr.attribute('tag', self.device)}"

    def _cache_path(self) -> str:
        return real_stats_cache_path(self.cache_dir, str(self.dataset_key), self._cache_tag())

    def _save_real_cache(self) -> None:
        payload = {
            "format": REAL_STATS_FORMAT,
            "dataset_key": self.dataset_key,
            "extractor_tag": self._cache_tag(),
            "num_images": self.num_real_images,
            "fid": (
                {k: v.cpu() for k, v in self._frozen_fid_real.items()}
                if self._frozen_fid_real is not None
                else None
            ),
            "features": self._real_features[0].cpu() if self._keep_features else None,
            "pr_features": self._real_pr_features[0].cpu() if self._pr is not None else None,
        }
        os.makedirs(self.cache_dir, exist_ok=True)
        path = self._cache_path()
        fd, tmp_path = tempfile.mkstemp(dir=self.cache_dir, suffix=".tmp")
        os.close(fd)
        try:
            torch.save(payload, tmp_path)
            os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; the file is meant to be shared/shipped
            os.replace(tmp_path, path)  # never leave a half-written cache file
        finally:
            if os.path.exists(tmp_path):
                os.remove(tmp_path)

    def _look_up_real_cache(self) -> None:
        """Load cached real statistics, once, if a matching complete file exists (else compute them).

        Done at the first question about real statistics rather than in the constructor, because
        the file name needs the network's tag: known from the config for Inception/VGG-16, but the
        embedded net's tag is a hash of its weights, so that one is loaded here (it is offline).
        """
        if self._cache_looked_up:
            return
        self._cache_looked_up = True
        if self.dataset_key is None or not self._uses_real:
            return
        path = self._cache_path()
        payload = read_cache(path, "real-statistics")
        if payload is None:
            return
        if not isinstance(payload, dict) or payload.get("format") != REAL_STATS_FORMAT:
            warnings.warn(f"{path}: not a real-statistics cache; recomputing", stacklevel=2)
            return
        if (
            payload.get("extractor_tag") != self._cache_tag()
            or payload.get("dataset_key") != self.dataset_key
        ):
            return
        has_fid = payload.get("fid") is not None
        has_features = payload.get("features") is not None
        has_pr_features = payload.get("pr_features") is not None
        fid_from_cache = "fid" in self.metrics and self.fid_statistics is None
        if (
            (fid_from_cache and not has_fid)
            or (self._keep_features and not has_features)
            or (self._pr is not None and not has_pr_features)
        ):
            return  # cache made for fewer metrics: measure real images again (and overwrite it)
        if fid_from_cache:
            self._frozen_fid_real = payload["fid"]
            if self._fid is not None:  # else restored when the metrics are built
                self._restore_fid_real(self._frozen_fid_real)
        if self._keep_features:
            self._real_features = [payload["features"].to(self.device)]
        if self._pr is not None:
            self._real_pr_features = [payload["pr_features"].to(self.device)]
        self.num_real_images = int(payload["num_images"])
        self._real_frozen = True
        self._real_from_cache = True
