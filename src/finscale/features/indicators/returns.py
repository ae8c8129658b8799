"""Multi-horizon log returns, their accelerations and return z-scores (unitless)."""

from __future__ import annotations

import numpy as np

from finscale.features.inputs import FeatureInputs, lag, lag_diff, rolling_std, safe_div


def log_return(x: FeatureInputs, window: int) -> np.ndarray:
    """log(Close[t] / Close[t - window])."""
    return x.cached(f"log_return_{window}", lambda: lag_diff(x.log_close(), window))


def return_acceleration(x: FeatureInputs, window: int) -> np.ndarray:
    """Return over the last ``window`` bars minus the return over the ``window`` before."""
    current = log_return(x, window)
    return current - lag(current, window)


def return_zscore(x: FeatureInputs, window: int) -> np.ndarray:
    """Last one-bar return in units of the window's return std."""
    returns = x.log_returns()
    return safe_div(returns, rolling_std(returns, window))
