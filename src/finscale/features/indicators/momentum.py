"""Momentum oscillators: bounded by construction, so free of the price level."""

from __future__ import annotations

import numpy as np
import talib

from finscale.features.inputs import (
    FeatureInputs,
    lag_diff,
    rolling_mean,
    safe_div,
    weekly_to_daily,
)


def rsi(x: FeatureInputs, window: int) -> np.ndarray:
    """Wilder RSI of Close (0..100)."""
    return talib.RSI(x.close, timeperiod=window)


def rsi_weekly(x: FeatureInputs, window: int) -> np.ndarray:
    """RSI of W-FRI closes; visible from the first bar after the week closed.

    On weekly bars each row is a completed week already: the plain RSI, no extra delay."""
    if x.is_weekly:
        return rsi(x, window)
    weekly, position = x.weekly()
    values = talib.RSI(weekly["Close"].to_numpy(np.float64), timeperiod=window)
    return weekly_to_daily(values, position)


def stochrsi_k(x: FeatureInputs, window: int, fastk: int, fastd: int) -> np.ndarray:
    """TA-Lib STOCHRSI fast %K (0..100)."""
    k, _ = talib.STOCHRSI(x.close, timeperiod=window, fastk_period=fastk, fastd_period=fastd)
    return k


def stochrsi_k_weekly(x: FeatureInputs, window: int, fastk: int, fastd: int) -> np.ndarray:
    """STOCHRSI %K of W-FRI closes; visible from the first bar after the week closed.

    On weekly bars each row is a completed week already: the plain %K, no extra delay."""
    if x.is_weekly:
        return stochrsi_k(x, window, fastk, fastd)
    weekly, position = x.weekly()
    k, _ = talib.STOCHRSI(
        weekly["Close"].to_numpy(np.float64), timeperiod=window, fastk_period=fastk,
        fastd_period=fastd,
    )
    return weekly_to_daily(k, position)


def stoch_k(x: FeatureInputs, window: int, smooth: int) -> np.ndarray:
    """Slow stochastic %K (0..100)."""
    k, _ = talib.STOCH(x.high, x.low, x.close, fastk_period=window, slowk_period=smooth,
                       slowd_period=smooth)
    return k


def stoch_d(x: FeatureInputs, window: int, smooth: int) -> np.ndarray:
    """Slow stochastic %D (0..100)."""
    _, d = talib.STOCH(x.high, x.low, x.close, fastk_period=window, slowk_period=smooth,
                       slowd_period=smooth)
    return d


def cci(x: FeatureInputs, window: int) -> np.ndarray:
    """Commodity channel index: deviation in units of mean absolute deviation."""
    return talib.CCI(x.high, x.low, x.close, timeperiod=window)


def mfi(x: FeatureInputs, window: int) -> np.ndarray:
    """Money flow index (0..100)."""
    return talib.MFI(x.high, x.low, x.close, x.volume, timeperiod=window)


def williams_r(x: FeatureInputs, window: int) -> np.ndarray:
    """Williams %R (-100..0)."""
    return talib.WILLR(x.high, x.low, x.close, timeperiod=window)


def demarker(x: FeatureInputs, window: int) -> np.ndarray:
    """DeMarker: mean up-extension of highs over mean up+down extensions (0..1)."""
    up = np.maximum(lag_diff(x.high, 1), 0.0)
    down = np.maximum(-lag_diff(x.low, 1), 0.0)
    mean_up, mean_down = rolling_mean(up, window), rolling_mean(down, window)
    return safe_div(mean_up, mean_up + mean_down)


def aroon_oscillator(x: FeatureInputs, window: int) -> np.ndarray:
    """Aroon up minus Aroon down (-100..100)."""
    return talib.AROONOSC(x.high, x.low, timeperiod=window)


def aroon_up(x: FeatureInputs, window: int) -> np.ndarray:
    """Aroon up: recency of the window's highest high (0..100)."""
    _, up = talib.AROON(x.high, x.low, timeperiod=window)
    return up


def aroon_down(x: FeatureInputs, window: int) -> np.ndarray:
    """Aroon down: recency of the window's lowest low (0..100)."""
    down, _ = talib.AROON(x.high, x.low, timeperiod=window)
    return down


def cmo(x: FeatureInputs, window: int) -> np.ndarray:
    """Chande momentum oscillator (-100..100)."""
    return talib.CMO(x.close, timeperiod=window)


def ultimate_oscillator(x: FeatureInputs, short: int, mid: int, long: int) -> np.ndarray:
    """Ultimate oscillator (0..100)."""
    return talib.ULTOSC(x.high, x.low, x.close, timeperiod1=short, timeperiod2=mid,
                        timeperiod3=long)


def trix(x: FeatureInputs, window: int) -> np.ndarray:
    """TRIX: one-bar percent change of a triple EMA (a rate, not a price)."""
    return talib.TRIX(x.close, timeperiod=window)


def ppo(x: FeatureInputs, fast: int, slow: int) -> np.ndarray:
    """Percentage price oscillator: (EMA fast - EMA slow) / EMA slow in percent."""
    return talib.PPO(x.close, fastperiod=fast, slowperiod=slow, matype=1)
