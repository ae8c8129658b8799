"""The VIX tier: 8 features of the CBOE VIX itself, aligned onto a target's trading days.

Computed on the VIX's own daily series (so its windows count VIX days), then joined onto a
target's days with a lag of ``features.vix_lag_sessions`` VIX sessions: the VIX closes at
16:15 New York time, a quarter hour after SPY, so with the default lag 1 a target day takes
the latest VIX value dated strictly before it (knowable at its 16:00 close); lag 0 takes the
value of the same date. Declarations live in ``configs/features/vix.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from finscale.features.config import DEFAULT_VIX_LAG_SESSIONS
from finscale.features.declarations import FeatureTier, load_declarations
from finscale.features.inputs import (
    FeatureInputs,
    lag_diff,
    rolling_mean,
    rolling_zscore,
)
from finscale.features.paths import DEFAULT_TIERS_DIR, resolve_tiers_dir

VIX_TIER = "vix"


def vix_close(x: FeatureInputs) -> np.ndarray:
    """VIX close, in index points."""
    return x.close.copy()


def vix_sma(x: FeatureInputs, window: int) -> np.ndarray:
    """Simple moving average of the VIX close."""
    return rolling_mean(x.close, window)


def vix_percentile(x: FeatureInputs, window: int) -> np.ndarray:
    """Share of the window's closes at or below today's (0..1)."""
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        windows = sliding_window_view(x.close, window)
        out[window - 1:] = (windows <= windows[:, -1:]).mean(axis=1)
    return out


def vix_zscore(x: FeatureInputs, window: int) -> np.ndarray:
    """Rolling z-score of the VIX close."""
    return rolling_zscore(x.close, window)


def vix_regime(x: FeatureInputs, low: float, high: float) -> np.ndarray:
    """0 below ``low`` (calm), 1 between, 2 at or above ``high`` (stress)."""
    return (x.close >= low).astype(np.float64) + (x.close >= high).astype(np.float64)


def vix_change(x: FeatureInputs, window: int) -> np.ndarray:
    """VIX[t] - VIX[t - window], in points."""
    return lag_diff(x.close, window)


VIX_FAMILIES: Mapping[str, object] = MappingProxyType({
    "vix_close": vix_close,
    "vix_sma": vix_sma,
    "vix_percentile": vix_percentile,
    "vix_zscore": vix_zscore,
    "vix_regime": vix_regime,
    "vix_change": vix_change,
})


def load_vix_tier(tiers_dir: Path | str = DEFAULT_TIERS_DIR) -> FeatureTier:
    """Read and validate ``vix.yaml``."""
    path = resolve_tiers_dir(tiers_dir) / f"{VIX_TIER}.yaml"
    name, declarations, lookback = load_declarations(path, VIX_FAMILIES)  # type: ignore[arg-type]
    return FeatureTier(name=name, declarations=declarations, max_lookback=lookback)


def _vix_inputs(vix: pd.DataFrame) -> FeatureInputs:
    if "Close" not in vix.columns:
        raise ValueError("VIX bars: missing column 'Close'")
    closes = vix["Close"].astype(np.float64).dropna()
    if not closes.index.is_monotonic_increasing or not closes.index.is_unique:
        raise ValueError("VIX bars: dates must be increasing and unique")
    if (closes <= 0).any():
        raise ValueError(f"VIX bars: {int((closes <= 0).sum())} non-positive closes")
    values = closes.to_numpy()
    return FeatureInputs(pd.DatetimeIndex(closes.index), values, values, values, values,
                         np.zeros(len(values)))


def vix_positions(
    dates: pd.DatetimeIndex, index: pd.DatetimeIndex, lag_sessions: int
) -> np.ndarray:
    """For each day of ``index``, the row of ``dates`` (VIX days) it may use, -1 for none.

    Lag 0: the latest row dated at or before the day. Lag k >= 1: the latest row that has
    k - 1 further VIX rows before the day, i.e. ``(rows dated before the day) - k``; lag 1 is
    the latest row dated strictly before the day. Counting VIX rows (not target rows) keeps
    the lag a session lag on weekly bars too.
    """
    stamps, days = dates.to_numpy(), index.to_numpy()
    if lag_sessions == 0:
        return np.searchsorted(stamps, days, "right") - 1
    return np.searchsorted(stamps, days, "left") - lag_sessions


def align_lagged(
    values: pd.DataFrame, index: pd.DatetimeIndex, lag_sessions: int
) -> pd.DataFrame:
    """Rows of ``values`` (indexed by VIX day) carried onto ``index`` ``lag_sessions`` late."""
    if lag_sessions < 0:
        raise ValueError(f"vix_lag_sessions must be >= 0, got {lag_sessions}")
    position = vix_positions(pd.DatetimeIndex(values.index), index, lag_sessions)
    data = values.to_numpy(np.float64)
    out = np.full((len(index), values.shape[1]), np.nan)
    seen = position >= 0
    out[seen] = data[position[seen]]
    return pd.DataFrame(out, index=index, columns=values.columns)


def compute_vix_features(
    vix: pd.DataFrame, index: pd.DatetimeIndex, *, tier: FeatureTier | None = None,
    lag_sessions: int = DEFAULT_VIX_LAG_SESSIONS,
) -> pd.DataFrame:
    """The VIX tier on the VIX's own days, joined onto ``index`` ``lag_sessions`` VIX
    sessions late (float64, NaN warm-up); ``vix`` must be daily bars."""
    tier = tier or load_vix_tier()
    inputs = _vix_inputs(vix)
    columns = {
        d.name: VIX_FAMILIES[d.family](inputs, **d.params)  # type: ignore[operator]
        for d in tier.declarations
    }
    own = pd.DataFrame(columns, index=inputs.index)
    return align_lagged(own, pd.DatetimeIndex(index), lag_sessions)
