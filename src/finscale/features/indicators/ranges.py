"""Distances to rolling highs and lows and the age of those extremes (unitless)."""

from __future__ import annotations

import numpy as np
import talib

from finscale.features.inputs import FeatureInputs, ratio_minus_one


def distance_to_high(x: FeatureInputs, window: int) -> np.ndarray:
    """Close / highest High of the window - 1 (<= 0)."""
    return ratio_minus_one(x.close, talib.MAX(x.high, timeperiod=window))


def distance_to_low(x: FeatureInputs, window: int) -> np.ndarray:
    """Close / lowest Low of the window - 1 (>= 0)."""
    return ratio_minus_one(x.close, talib.MIN(x.low, timeperiod=window))


def _age(x: FeatureInputs, positions: np.ndarray, window: int) -> np.ndarray:
    rows = np.arange(len(x), dtype=np.float64)
    age = rows - positions.astype(np.float64)
    age[: window - 1] = np.nan
    return age / window


def bars_since_high(x: FeatureInputs, window: int) -> np.ndarray:
    """Bars since the window's highest High, as a fraction of the window (0..1)."""
    return _age(x, talib.MAXINDEX(x.high, timeperiod=window), window)


def bars_since_low(x: FeatureInputs, window: int) -> np.ndarray:
    """Bars since the window's lowest Low, as a fraction of the window (0..1)."""
    return _age(x, talib.MININDEX(x.low, timeperiod=window), window)


def close_drawdown(x: FeatureInputs, window: int) -> np.ndarray:
    """Close / highest Close of the window - 1 (<= 0)."""
    return ratio_minus_one(x.close, talib.MAX(x.close, timeperiod=window))
