"""Volatility estimators on log prices (per bar, not annualised) and band widths.

All are ratios of prices or log-price differences, so none scales with the price level.
"""

from __future__ import annotations

import numpy as np
import talib

from finscale.features.inputs import (
    FeatureInputs,
    lag,
    rolling_mean,
    rolling_std,
    safe_div,
)

LN2 = float(np.log(2.0))


def close_to_close(x: FeatureInputs, window: int) -> np.ndarray:
    """Sample std of one-bar log returns."""
    return x.cached(f"cc_vol_{window}", lambda: rolling_std(x.log_returns(), window))


def parkinson(x: FeatureInputs, window: int) -> np.ndarray:
    """Parkinson high-low estimator."""
    hl = np.log(x.high / x.low) ** 2
    return np.sqrt(rolling_mean(hl, window) / (4.0 * LN2))


def garman_klass(x: FeatureInputs, window: int) -> np.ndarray:
    """Garman-Klass OHLC estimator."""
    hl = np.log(x.high / x.low) ** 2
    co = np.log(x.close / x.open) ** 2
    return np.sqrt(np.maximum(rolling_mean(0.5 * hl - (2.0 * LN2 - 1.0) * co, window), 0.0))


def _rogers_satchell_terms(x: FeatureInputs) -> np.ndarray:
    return (np.log(x.high / x.close) * np.log(x.high / x.open)
            + np.log(x.low / x.close) * np.log(x.low / x.open))


def rogers_satchell(x: FeatureInputs, window: int) -> np.ndarray:
    """Rogers-Satchell drift-independent estimator."""
    return np.sqrt(np.maximum(rolling_mean(_rogers_satchell_terms(x), window), 0.0))


def yang_zhang(x: FeatureInputs, window: int) -> np.ndarray:
    """Yang-Zhang: overnight + k * open-to-close + (1 - k) * Rogers-Satchell variances."""
    overnight = np.log(x.open / lag(x.close, 1))
    open_close = np.log(x.close / x.open)
    k = 0.34 / (1.34 + (window + 1) / (window - 1))
    variance = (rolling_std(overnight, window) ** 2 + k * rolling_std(open_close, window) ** 2
                + (1.0 - k) * rolling_mean(_rogers_satchell_terms(x), window))
    return np.sqrt(np.maximum(variance, 0.0))


def atr_fraction(x: FeatureInputs, window: int) -> np.ndarray:
    """ATR / Close."""
    return safe_div(talib.ATR(x.high, x.low, x.close, timeperiod=window), x.close)


def _bands(x: FeatureInputs, window: int, deviations: float) -> tuple[np.ndarray, ...]:
    return talib.BBANDS(x.close, timeperiod=window, nbdevup=deviations, nbdevdn=deviations,
                        matype=0)


def bollinger_percent_b(x: FeatureInputs, window: int, deviations: float) -> np.ndarray:
    """(Close - lower band) / (upper - lower)."""
    upper, _, lower = _bands(x, window, deviations)
    return safe_div(x.close - lower, upper - lower)


def bollinger_width(x: FeatureInputs, window: int, deviations: float) -> np.ndarray:
    """(upper - lower) / middle band."""
    upper, middle, lower = _bands(x, window, deviations)
    return safe_div(upper - lower, middle)


def _keltner_width(x: FeatureInputs, window: int, multiplier: float) -> np.ndarray:
    atr = talib.ATR(x.high, x.low, x.close, timeperiod=window)
    return safe_div(2.0 * multiplier * atr, talib.EMA(x.close, timeperiod=window))


def keltner_width(x: FeatureInputs, window: int, multiplier: float) -> np.ndarray:
    """Keltner channel width (2 * mult * ATR) / EMA."""
    return _keltner_width(x, window, multiplier)


def squeeze_ratio(
    x: FeatureInputs, window: int, deviations: float, multiplier: float
) -> np.ndarray:
    """Bollinger width / Keltner width; below 1 is a 'squeeze'."""
    return safe_div(bollinger_width(x, window, deviations),
                    _keltner_width(x, window, multiplier))


def volatility_ratio(x: FeatureInputs, short: int, long: int) -> np.ndarray:
    """Short-window over long-window close-to-close volatility."""
    return safe_div(close_to_close(x, short), close_to_close(x, long))
