"""Robust per-feature z-scores fitted on train rows only, clipped to +-clip.

The statistics (median, IQR) come from the train split's rows alone and are applied to
validation and test unchanged, so no scale information flows back from the future.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_SCALE = 1e-12


@dataclass(frozen=True)
class RobustStats:
    """Per-feature centre (median) and scale (IQR; 1 where the IQR is ~0)."""

    names: tuple[str, ...]
    median: np.ndarray
    scale: np.ndarray
    clip: float

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "median": self.median.tolist(),
                "scale": self.scale.tolist(), "clip": self.clip}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobustStats:
        return cls(names=tuple(data["names"]), median=np.asarray(data["median"], np.float64),
                   scale=np.asarray(data["scale"], np.float64), clip=float(data["clip"]))


def fit_robust(
    values: np.ndarray, train_rows: np.ndarray, names: tuple[str, ...], clip: float
) -> RobustStats:
    """Median and IQR of each column over ``train_rows`` only."""
    if train_rows.size == 0:
        raise ValueError("cannot fit normalisation: the train split has no rows")
    train = values[train_rows].astype(np.float64)
    q25, median, q75 = np.nanpercentile(train, [25, 50, 75], axis=0)
    scale = q75 - q25
    scale = np.where(np.isfinite(scale) & (scale > MIN_SCALE), scale, 1.0)
    median = np.where(np.isfinite(median), median, 0.0)
    return RobustStats(names=names, median=median, scale=scale, clip=clip)


def apply_robust(values: np.ndarray, stats: RobustStats) -> np.ndarray:
    """(values - median) / IQR, clipped to +-clip, as float32."""
    if values.shape[1] != len(stats.names):
        raise ValueError(f"normalisation has {len(stats.names)} features, data {values.shape[1]}")
    scaled = (values.astype(np.float64) - stats.median) / stats.scale
    return np.clip(scaled, -stats.clip, stats.clip).astype(np.float32)


def train_rows_for(positions: np.ndarray, context: int) -> np.ndarray:
    """Every row that appears in some train sample's context (the rows stats may see)."""
    if positions.size == 0:
        return positions
    mask = np.zeros(int(positions.max()) + 1, dtype=bool)
    offsets = np.arange(-(context - 1), 1)
    mask[(positions[:, None] + offsets).reshape(-1)] = True
    return np.flatnonzero(mask)
