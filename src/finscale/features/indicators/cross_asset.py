"""Cross-asset VIX features for a target's bars: VIX level and VIX against realised vol.

The VIX close is aligned onto the target's index beforehand (last value at or before each
bar), so these read only VIX values known at the bar's close.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from finscale.features.indicators.volatility import close_to_close
from finscale.features.inputs import (
    FeatureInputs,
    lag_diff,
    rolling,
    rolling_zscore,
    safe_div,
)

PERCENT = 100.0


def _vix(x: FeatureInputs) -> np.ndarray:
    if x.vix is None:
        raise ValueError("cross-asset VIX features need the VIX bars: pass vix=...")
    return x.vix


def _realised_vol_points(x: FeatureInputs, window: int) -> np.ndarray:
    """Realised vol annualised with the bars' own frequency (252 daily, 52 weekly)."""
    return close_to_close(x, window) * np.sqrt(x.bars_per_year) * PERCENT


def vix_level(x: FeatureInputs) -> np.ndarray:
    """VIX close in index points (already a percentage volatility)."""
    return _vix(x).copy()


def vix_minus_realised(x: FeatureInputs, window: int) -> np.ndarray:
    """VIX minus the target's annualised realised volatility, in vol points."""
    return _vix(x) - _realised_vol_points(x, window)


def vix_realised_ratio(x: FeatureInputs, window: int) -> np.ndarray:
    """VIX / the target's annualised realised volatility."""
    return safe_div(_vix(x), _realised_vol_points(x, window))


def vix_log_change(x: FeatureInputs, window: int) -> np.ndarray:
    """log(VIX[t] / VIX[t - window])."""
    return lag_diff(np.log(_vix(x)), window)


def vix_zscore(x: FeatureInputs, window: int) -> np.ndarray:
    """Rolling z-score of the VIX level."""
    return rolling_zscore(_vix(x), window)


def vix_return_correlation(x: FeatureInputs, window: int) -> np.ndarray:
    """Rolling correlation of the target's returns with VIX log changes."""
    vix_changes = pd.Series(lag_diff(np.log(_vix(x)), 1))
    return rolling(x.log_returns(), window).corr(vix_changes).to_numpy()
