"""Evaluation: FID/KID/IS (torchmetrics), precision/recall, PPL, LPIPS diversity, teacher–student L1,
and model complexity (``complexity``: parameters, MACs, latency)."""

from lightning_gancomp.metrics import complexity
from lightning_gancomp.metrics.complexity import (
    cagan_stylegan2_macs,
    count_parameters,
    example_inputs_for,
    measure_latency,
    torchprofile_macs,
)
from lightning_gancomp.metrics.embedded_features import (
    EMBEDDED_DESCRIPTION,
    EmbeddedFeatureNet,
    load_embedded_feature_net,
    train_embedded_feature_net,
)
from lightning_gancomp.metrics.features import (
    FeatureExtractorUnavailableError,
    InceptionFeatureExtractor,
    TorchmetricsFeature,
    VGG16FeatureExtractor,
    images_to_uint8,
    images_to_unit_range,
)
from lightning_gancomp.metrics.image_metrics import GenerativeMetrics, real_stats_cache_path
from lightning_gancomp.metrics.perceptual import (
    class_lpips_diversity,
    lpips_diversity,
    make_lpips,
    mean_l1_distance,
    mean_lpips,
)
from lightning_gancomp.metrics.ppl import perceptual_path_length, ppl_distances, slerp
from lightning_gancomp.metrics.precision_recall import (
    DCP_TRUNCATION_PSIS,
    knn_precision_recall,
    precision_recall_over_truncation,
)

__all__ = [
    "cagan_stylegan2_macs",
    "complexity",
    "count_parameters",
    "example_inputs_for",
    "measure_latency",
    "torchprofile_macs",
    "DCP_TRUNCATION_PSIS",
    "EMBEDDED_DESCRIPTION",
    "EmbeddedFeatureNet",
    "FeatureExtractorUnavailableError",
    "GenerativeMetrics",
    "InceptionFeatureExtractor",
    "TorchmetricsFeature",
    "VGG16FeatureExtractor",
    "images_to_uint8",
    "images_to_unit_range",
    "knn_precision_recall",
    "load_embedded_feature_net",
    "class_lpips_diversity",
    "lpips_diversity",
    "make_lpips",
    "mean_l1_distance",
    "mean_lpips",
    "perceptual_path_length",
    "ppl_distances",
    "precision_recall_over_truncation",
    "real_stats_cache_path",
    "slerp",
    "train_embedded_feature_net",
]
