"""Risk: rolling Sharpe/Sortino, VaR/CVaR, higher moments, drawdowns (per bar, unitless)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import talib
from numpy.lib.stride_tricks import sliding_window_view

from finscale.features.inputs import (
    FeatureInputs,
    lag,
    rolling,
    rolling_mean,
    rolling_std,
    safe_div,
)


def sharpe(x: FeatureInputs, window: int) -> np.ndarray:
    """Mean / std of one-bar log returns over the window (not annualised)."""
    returns = x.log_returns()
    return safe_div(rolling_mean(returns, window), rolling_std(returns, window))


def sortino(x: FeatureInputs, window: int) -> np.ndarray:
    """Mean return / downside deviation (root mean squared negative return)."""
    returns = x.log_returns()
    downside = np.sqrt(rolling_mean(np.minimum(returns, 0.0) ** 2, window))
    return safe_div(rolling_mean(returns, window), downside)


def value_at_risk(x: FeatureInputs, window: int, quantile: float) -> np.ndarray:
    """Historical one-bar VaR: the window's ``quantile`` of log returns (negative)."""
    return rolling(x.log_returns(), window).quantile(quantile, interpolation="linear").to_numpy()


def conditional_var(x: FeatureInputs, window: int, quantile: float) -> np.ndarray:
    """Expected shortfall: mean of the window's returns at or below its VaR."""
    returns = x.log_returns()
    out = np.full(len(returns), np.nan)
    if len(returns) < window:
        return out
    windows = sliding_window_view(returns, window)
    threshold = np.quantile(windows, quantile, axis=1, keepdims=True)
    tail = windows <= threshold
    out[window - 1:] = (windows * tail).sum(axis=1) / tail.sum(axis=1)
    return out


def skewness(x: FeatureInputs, window: int) -> np.ndarray:
    """Rolling skew of log returns."""
    return rolling(x.log_returns(), window).skew().to_numpy()


def kurtosis(x: FeatureInputs, window: int) -> np.ndarray:
    """Rolling excess kurtosis of log returns."""
    return rolling(x.log_returns(), window).kurt().to_numpy()


def max_drawdown(x: FeatureInputs, window: int) -> np.ndarray:
    """Worst peak-to-trough fall of Close inside the window (<= 0)."""
    out = np.full(len(x), np.nan)
    if len(x) < window:
        return out
    windows = sliding_window_view(x.close, window)
    peaks = np.maximum.accumulate(windows, axis=1)
    out[window - 1:] = (windows / peaks - 1.0).min(axis=1)
    return out


def ulcer_index(x: FeatureInputs, window: int) -> np.ndarray:
    """Root mean squared drawdown from the rolling peak of Close."""
    drawdown = x.close / talib.MAX(x.close, timeperiod=window) - 1.0
    return np.sqrt(rolling_mean(drawdown**2, window))


def hit_rate(x: FeatureInputs, window: int) -> np.ndarray:
    """Share of up bars in the window (0..1)."""
    returns = x.log_returns()
    up = np.where(np.isnan(returns), np.nan, (returns > 0).astype(np.float64))
    return rolling_mean(up, window)


def autocorrelation(x: FeatureInputs, window: int) -> np.ndarray:
    """Correlation of one-bar returns with the previous bar's over the window."""
    returns = x.log_returns()
    return rolling(returns, window).corr(pd.Series(lag(returns, 1))).to_numpy()


def downside_share(x: FeatureInputs, window: int) -> np.ndarray:
    """Downside semi-deviation / total deviation (asymmetry of risk, 0..~1.4)."""
    returns = x.log_returns()
    downside = np.sqrt(rolling_mean(np.minimum(returns, 0.0) ** 2, window))
    total = np.sqrt(rolling_mean(returns**2, window))
    return safe_div(downside, total)
