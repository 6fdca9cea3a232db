"""Precomputed real statistics for FID: the Inception mean and covariance the papers evaluated against.

Formats read:

- ``.npz`` with ``mu`` and ``sigma`` (TTUR / NVlabs TF-FID statistics files, clean-fid's
  ``*.npz``), or with ``mean`` and ``cov``; read with ``allow_pickle=False``.
- ``.pkl`` / ``.pickle`` holding a dict with ``mean`` and ``cov`` numpy arrays (rosinality
  ``calc_inception.py``, CAGAN's ``Evaluation/inception_ffhq_embed/*.pkl``; their extra keys
  ``size`` = image resolution and ``path`` = dataset path are kept as information). Read with a
  restricted unpickler that can only rebuild numpy arrays and dtypes and plain Python containers:
  any other global in the file (code, objects) is refused, so a statistics file cannot execute
  anything.

The statistics must come from the same feature network (2048-d Inception pool3) and resize as
the generated side: CAGAN/rosinality files were computed with pytorch-fid's Inception port
resized with ``align_corners=True`` bilinear, NVlabs/clean-fid with their own resizes, so
numbers agree with the papers' up to that difference (which the metrics log records).
"""

from __future__ import annotations

import io
import os
import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

#: (module, name) pairs a statistics pickle may reference: numpy array/dtype reconstruction.
_ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # protocol-2 pickles store array bytes as latin-1 text
    }
)


class FidStatisticsError(ValueError):
    """A real-statistics file cannot be read or does not hold a mean and covariance."""


class _ArraysOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only numpy arrays are allowed)")
        return super().find_class(module, name)


def load_arrays_pickle(path: str) -> Any:
    """Unpickle ``path`` allowing only numpy arrays, dtypes and plain containers."""
    with open(path, "rb") as handle:
        return _ArraysOnlyUnpickler(io.BytesIO(handle.read()), encoding="latin1").load()


@dataclass
class FidStatistics:
    """Mean [D] and covariance [D, D] (float64) of real features, and where they came from."""

    mean: torch.Tensor
    cov: torch.Tensor
    path: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_features(self) -> int:
        return int(self.mean.shape[0])

    def torchmetrics_state(self, num_samples: int = 50000) -> dict[str, torch.Tensor]:
        """Sums that make torchmetrics' FID return exactly this mean and covariance.

        torchmetrics keeps Σx, Σxxᵀ and n and computes ``mean = Σx / n`` and
        ``cov = (Σxxᵀ − n·mean·meanᵀ) / (n − 1)``; any n ≥ 2 reproduces the stored pair (files
        do not say how many images they came from), 50,000 is the usual count.
        """
        n = torch.tensor(num_samples, dtype=torch.long)
        outer = torch.outer(self.mean, self.mean)
        return {
            "sum": self.mean * num_samples,
            "cov_sum": self.cov * (num_samples - 1) + outer * num_samples,
            "num_samples": n,
        }

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.info.items()))
        return f"precomputed {self.path}" + (f" ({extra})" if extra else "")


def _pair(data: dict[str, Any], path: str) -> tuple[Any, Any]:
    for mean_key, cov_key in (("mu", "sigma"), ("mean", "cov")):
        if mean_key in data and cov_key in data:
            return data[mean_key], data[cov_key]
    raise FidStatisticsError(
        f"real statistics {path}: expected keys mu/sigma or mean/cov, found {sorted(map(str, data))}"
    )


def load_fid_statistics(path: str) -> FidStatistics:
    """Read a ``.npz`` or ``.pkl`` statistics file (see the module docstring); one-line errors."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"real statistics {path}: no such file")
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as npz:
                data: Any = {k: npz[k] for k in npz.files}
        elif path.endswith((".pkl", ".pickle")):
            data = load_arrays_pickle(path)
        else:
            raise FidStatisticsError(f"real statistics {path}: expected a .npz or .pkl file")
    except (pickle.UnpicklingError, ValueError, OSError, EOFError) as err:
        if isinstance(err, FidStatisticsError):
            raise
        raise FidStatisticsError(f"real statistics {path}: cannot read ({err})") from err
    if not isinstance(data, dict):
        raise FidStatisticsError(f"real statistics {path}: expected a dict, got {type(data).__name__}")
    mean, cov = _pair(data, path)
    mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float64)).reshape(-1)
    cov_t = torch.as_tensor(np.asarray(cov, dtype=np.float64))
    d = mean_t.shape[0]
    if cov_t.shape != (d, d):
        raise FidStatisticsError(
            f"real statistics {path}: mean has {d} entries but covariance is {tuple(cov_t.shape)}"
        )
    info = {k: v for k, v in data.items() if k in ("size", "path") and isinstance(v, (int, str))}
    return FidStatistics(mean_t, cov_t, path, info)
