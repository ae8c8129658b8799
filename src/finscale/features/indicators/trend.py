"""Trend: moving-average distances and slopes, MACD, ADX/DI, Ichimoku, Donchian.

Every price-valued line is turned into a ratio to the close (close / line - 1) or a
relative slope, so no output carries the price level.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import talib

from finscale.features.inputs import (
    FeatureInputs,
    lag,
    ratio_minus_one,
    safe_div,
)

MOVING_AVERAGES: dict[str, Callable[..., np.ndarray]] = {
    "sma": talib.SMA,
    "ema": talib.EMA,
    "dema": talib.DEMA,
    "tema": talib.TEMA,
    "wma": talib.WMA,
    "trima": talib.TRIMA,
    "kama": talib.KAMA,
}


def moving_average(x: FeatureInputs, kind: str, window: int) -> np.ndarray:
    """A TA-Lib moving average of Close, memoised per (kind, window)."""
    if kind not in MOVING_AVERAGES:
        raise ValueError(f"unknown moving average '{kind}'; known: {sorted(MOVING_AVERAGES)}")
    function = MOVING_AVERAGES[kind]
    return x.cached(f"ma_{kind}_{window}", lambda: function(x.close, timeperiod=window))


def ma_distance(x: FeatureInputs, kind: str, window: int) -> np.ndarray:
    """close / MA - 1."""
    return ratio_minus_one(x.close, moving_average(x, kind, window))


def ma_slope(x: FeatureInputs, kind: str, window: int, lag_bars: int) -> np.ndarray:
    """MA[t] / MA[t - lag] - 1: relative slope of the average."""
    average = moving_average(x, kind, window)
    return ratio_minus_one(average, lag(average, lag_bars))


def ma_spread(x: FeatureInputs, fast: int, slow: int) -> np.ndarray:
    """SMA fast / SMA slow - 1."""
    return ratio_minus_one(moving_average(x, "sma", fast), moving_average(x, "sma", slow))


def ma_cross_age(x: FeatureInputs, fast: int, slow: int, cap: int) -> np.ndarray:
    """Signed bars since SMA fast last crossed SMA slow (+ above, - below), capped."""
    spread = moving_average(x, "sma", fast) - moving_average(x, "sma", slow)
    valid = ~np.isnan(spread)
    sign = np.where(spread >= 0, 1.0, -1.0)
    rows = np.arange(len(spread))
    changed = np.zeros(len(spread), dtype=bool)
    changed[1:] = sign[1:] != sign[:-1]
    changed |= valid & ~np.concatenate(([False], valid[:-1]))
    last_change = np.maximum.accumulate(np.where(changed, rows, -1))
    age = np.minimum(rows - last_change, cap).astype(np.float64)
    return np.where(valid, sign * age, np.nan)


def macd_line(x: FeatureInputs, fast: int, slow: int, signal: int) -> np.ndarray:
    """MACD line divided by Close."""
    line, _, _ = talib.MACD(x.close, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    return safe_div(line, x.close)


def macd_signal(x: FeatureInputs, fast: int, slow: int, signal: int) -> np.ndarray:
    """MACD signal line divided by Close."""
    _, sig, _ = talib.MACD(x.close, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    return safe_div(sig, x.close)


def macd_histogram(x: FeatureInputs, fast: int, slow: int, signal: int) -> np.ndarray:
    """MACD histogram divided by Close."""
    _, _, hist = talib.MACD(x.close, fastperiod=fast, slowperiod=slow, signalperiod=signal)
    return safe_div(hist, x.close)


def adx(x: FeatureInputs, window: int) -> np.ndarray:
    """Average directional index (0..100)."""
    return talib.ADX(x.high, x.low, x.close, timeperiod=window)


def adxr(x: FeatureInputs, window: int) -> np.ndarray:
    """ADX rating: mean of ADX now and ``window`` bars ago (0..100)."""
    return talib.ADXR(x.high, x.low, x.close, timeperiod=window)


def plus_di(x: FeatureInputs, window: int) -> np.ndarray:
    """+DI (0..100)."""
    return talib.PLUS_DI(x.high, x.low, x.close, timeperiod=window)


def minus_di(x: FeatureInputs, window: int) -> np.ndarray:
    """-DI (0..100)."""
    return talib.MINUS_DI(x.high, x.low, x.close, timeperiod=window)


def di_spread(x: FeatureInputs, window: int) -> np.ndarray:
    """+DI minus -DI."""
    return plus_di(x, window) - minus_di(x, window)


def _midline(x: FeatureInputs, window: int) -> np.ndarray:
    return (talib.MAX(x.high, timeperiod=window) + talib.MIN(x.low, timeperiod=window)) / 2.0


def ichimoku(x: FeatureInputs, line: str, tenkan: int, kijun: int, senkou: int) -> np.ndarray:
    """Close / Ichimoku line - 1; spans are shifted forward ``kijun`` bars (so at t they use
    data up to t - kijun), ``cloud`` is (span A - span B) / Close."""
    tenkan_line, kijun_line = _midline(x, tenkan), _midline(x, kijun)
    span_a = lag((tenkan_line + kijun_line) / 2.0, kijun)
    span_b = lag(_midline(x, senkou), kijun)
    lines = {"tenkan": tenkan_line, "kijun": kijun_line, "span_a": span_a, "span_b": span_b}
    if line == "cloud":
        return safe_div(span_a - span_b, x.close)
    if line not in lines:
        raise ValueError(f"unknown Ichimoku line '{line}'")
    return ratio_minus_one(x.close, lines[line])


def donchian_position(x: FeatureInputs, window: int) -> np.ndarray:
    """Where Close sits in the window's high-low channel (0..1)."""
    upper, lower = talib.MAX(x.high, timeperiod=window), talib.MIN(x.low, timeperiod=window)
    return safe_div(x.close - lower, upper - lower)


def donchian_width(x: FeatureInputs, window: int) -> np.ndarray:
    """(highest high - lowest low) / Close."""
    upper, lower = talib.MAX(x.high, timeperiod=window), talib.MIN(x.low, timeperiod=window)
    return safe_div(upper - lower, x.close)


def log_trend_slope(x: FeatureInputs, window: int) -> np.ndarray:
    """Least-squares slope of log Close per bar over the window."""
    return talib.LINEARREG_SLOPE(x.log_close(), timeperiod=window)


def log_trend_r2(x: FeatureInputs, window: int) -> np.ndarray:
    """R² of log Close against time over the window (trend cleanliness, 0..1)."""
    time = np.arange(len(x), dtype=np.float64)
    return talib.CORREL(time, x.log_close(), timeperiod=window) ** 2


def sar_distance(x: FeatureInputs, acceleration: float, maximum: float) -> np.ndarray:
    """Close / parabolic SAR - 1."""
    return ratio_minus_one(x.close, talib.SAR(x.high, x.low, acceleration=acceleration,
                                              maximum=maximum))
