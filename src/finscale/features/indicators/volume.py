"""Volume: flows expressed as z-scores or as fractions of average volume (scale-free)."""

from __future__ import annotations

import numpy as np
import talib

from finscale.features.inputs import (
    FeatureInputs,
    lag,
    lag_diff,
    rolling_zscore,
    safe_div,
)


def _average_volume(x: FeatureInputs, window: int) -> np.ndarray:
    return x.cached(f"avg_volume_{window}", lambda: talib.SMA(x.volume, timeperiod=window))


def obv_zscore(x: FeatureInputs, window: int) -> np.ndarray:
    """Rolling z-score of on-balance volume."""
    obv = x.cached("obv", lambda: talib.OBV(x.close, x.volume))
    return rolling_zscore(obv, window)


def adosc_relative(x: FeatureInputs, fast: int, slow: int) -> np.ndarray:
    """Chaikin A/D oscillator divided by the slow-window mean volume."""
    osc = talib.ADOSC(x.high, x.low, x.close, x.volume, fastperiod=fast, slowperiod=slow)
    return safe_div(osc, _average_volume(x, slow))


def ad_zscore(x: FeatureInputs, window: int) -> np.ndarray:
    """Rolling z-score of the accumulation/distribution line."""
    ad = x.cached("ad_line", lambda: talib.AD(x.high, x.low, x.close, x.volume))
    return rolling_zscore(ad, window)


def volume_ratio(x: FeatureInputs, window: int) -> np.ndarray:
    """Volume / its rolling mean."""
    return safe_div(x.volume, _average_volume(x, window))


def volume_zscore(x: FeatureInputs, window: int) -> np.ndarray:
    """Rolling z-score of log(1 + volume)."""
    return rolling_zscore(np.log1p(x.volume), window)


def chaikin_money_flow(x: FeatureInputs, window: int) -> np.ndarray:
    """Sum of money-flow volume / sum of volume over the window (-1..1)."""
    multiplier = safe_div((x.close - x.low) - (x.high - x.close), x.high - x.low)
    flow = talib.SUM(multiplier * x.volume, timeperiod=window)
    return safe_div(flow, talib.SUM(x.volume, timeperiod=window))


def vpt_zscore(x: FeatureInputs, window: int) -> np.ndarray:
    """Rolling z-score of volume-price trend (cumulative volume x return)."""
    returns = safe_div(lag_diff(x.close, 1), lag(x.close, 1))
    flow = np.nan_to_num(returns * x.volume)
    return rolling_zscore(np.cumsum(flow), window)


def klinger(x: FeatureInputs, fast: int, slow: int) -> np.ndarray:
    """Klinger-style volume oscillator: EMA fast - EMA slow of signed volume, over mean
    volume of the slow window."""
    typical = (x.high + x.low + x.close) / 3.0
    signed = np.sign(np.nan_to_num(lag_diff(typical, 1))) * x.volume
    oscillator = talib.EMA(signed, timeperiod=fast) - talib.EMA(signed, timeperiod=slow)
    return safe_div(oscillator, _average_volume(x, slow))


def force_index(x: FeatureInputs, window: int) -> np.ndarray:
    """EMA of (log return x volume) over mean volume: force index without units."""
    flow = np.nan_to_num(x.log_returns()) * x.volume
    return safe_div(talib.EMA(flow, timeperiod=window), _average_volume(x, window))


def up_volume_share(x: FeatureInputs, window: int) -> np.ndarray:
    """Share of the window's volume traded on up bars (0..1)."""
    up = np.where(np.nan_to_num(x.log_returns()) > 0, x.volume, 0.0)
    return safe_div(talib.SUM(up, timeperiod=window), talib.SUM(x.volume, timeperiod=window))


def vwap_distance(x: FeatureInputs, window: int) -> np.ndarray:
    """Close / rolling VWAP (typical price weighted by volume) - 1."""
    typical = (x.high + x.low + x.close) / 3.0
    vwap = safe_div(talib.SUM(typical * x.volume, timeperiod=window),
                    talib.SUM(x.volume, timeperiod=window))
    vwap = np.where(vwap == 0, np.nan, vwap)
    return safe_div(x.close, vwap) - 1.0
