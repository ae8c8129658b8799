"""Threshold targets from RAW prices: did the high of the next H bars reach Close * (1 + θ)?

Labels are computed from unnormalised High and Close only (an earlier study computed them
from z-scored Close and every label became 1). Rows without a full future window get NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

LABEL_PREFIX = "y"


def task_name(horizon: int, threshold: float, timescale: str = "daily") -> str:
    """Stable column name of one task, e.g. ``y_h1_0.5pct`` or ``y_w1_2pct``."""
    unit = "w" if timescale == "weekly" else "h"
    pct = f"{threshold * 100:g}"
    return f"{LABEL_PREFIX}_{unit}{horizon}_{pct}pct"


def future_max_high(high: np.ndarray, horizon: int) -> np.ndarray:
    """max(High[t+1 .. t+H]) per row t; NaN where fewer than H future rows exist."""
    out = np.full(high.shape[0], np.nan, dtype=np.float64)
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    if high.shape[0] > horizon:
        windows = sliding_window_view(high[1:], horizon)  # window k covers rows k+1 .. k+H
        out[: windows.shape[0]] = windows.max(axis=1)
    return out


def threshold_labels(
    bars: pd.DataFrame,
    horizon: int,
    thresholds: Sequence[float],
    timescale: str = "daily",
) -> pd.DataFrame:
    """One float column per threshold: 1.0 / 0.0, NaN where the future window is incomplete.

    ``bars`` are raw OHLC bars (never normalised); uses High and Close.
    """
    missing = {"High", "Close"} - set(bars.columns)
    if missing:
        raise ValueError(f"bars lack column(s) {sorted(missing)} needed for targets")
    close = bars["Close"].to_numpy(dtype=np.float64)
    if np.any(close <= 0):
        raise ValueError("targets need positive raw Close prices (got a value <= 0)")
    future = future_max_high(bars["High"].to_numpy(dtype=np.float64), horizon)
    upside = future / close - 1.0
    known = ~np.isnan(upside)
    columns = {}
    for threshold in thresholds:
        label = np.where(known, (upside >= threshold).astype(np.float64), np.nan)
        columns[task_name(horizon, threshold, timescale)] = label
    return pd.DataFrame(columns, index=bars.index)


def label_end_dates(index: pd.DatetimeIndex, horizon: int) -> pd.Series:
    """Date of row t+H (the last bar a label looks at); NaT where it does not exist."""
    shifted = pd.Series(index, index=index).shift(-horizon)
    return shifted.rename("label_end")
