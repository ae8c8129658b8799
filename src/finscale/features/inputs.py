"""The arrays every indicator family reads, plus shared vectorised helpers.

Families receive one ``FeatureInputs`` (float64 numpy arrays over the bars' index) and
return one float64 array of the same length, NaN during warm-up. Intermediate results
used by several features (log returns, weekly bars) are memoised in ``cache``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

WEEKLY_RULE = "W-FRI"
DAILY = "daily"
WEEKLY = "weekly"
BARS_PER_YEAR: dict[str, int] = {DAILY: 252, WEEKLY: 52}
WEEKLY_AGG: dict[str, str] = {
    "Open": "first", "High": "max", "Low": "min", "Close": "last", "Volume": "sum",
}


@dataclass
class FeatureInputs:
    """OHLCV (and optionally the VIX close aligned to the same index) as float64 arrays."""

    index: pd.DatetimeIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    vix: np.ndarray | None = None
    timescale: str = DAILY
    cache: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.timescale not in BARS_PER_YEAR:
            raise ValueError(f"unknown timescale '{self.timescale}'; known {sorted(BARS_PER_YEAR)}")

    @classmethod
    def from_bars(
        cls, bars: pd.DataFrame, vix: np.ndarray | None = None, timescale: str = DAILY
    ) -> FeatureInputs:
        """Take the raw market layout (``Open High Low Close Adj Close Volume``) of bars at
        ``timescale`` (``daily`` or ``weekly``: it sets annualisation and weekly families)."""
        return cls(
            index=pd.DatetimeIndex(bars.index),
            open=bars["Open"].to_numpy(np.float64),
            high=bars["High"].to_numpy(np.float64),
            low=bars["Low"].to_numpy(np.float64),
            close=bars["Close"].to_numpy(np.float64),
            volume=bars["Volume"].to_numpy(np.float64),
            vix=vix,
            timescale=timescale,
        )

    def __len__(self) -> int:
        return len(self.close)

    @property
    def is_weekly(self) -> bool:
        """Whether each row is already a (completed) week."""
        return self.timescale == WEEKLY

    @property
    def bars_per_year(self) -> int:
        """Bars per year for annualising: 252 trading days or 52 weeks."""
        return BARS_PER_YEAR[self.timescale]

    def cached(self, key: str, compute: Callable[[], Any]) -> Any:
        """Compute once per frame, reuse for every feature that needs it."""
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def log_close(self) -> np.ndarray:
        return self.cached("log_close", lambda: np.log(self.close))

    def log_returns(self) -> np.ndarray:
        """One-bar log returns of Close; NaN in the first row."""
        return self.cached("log_returns", lambda: lag_diff(self.log_close(), 1))

    def weekly(self) -> tuple[pd.DataFrame, np.ndarray]:
        """W-FRI bars of complete and partial weeks, and for each row of ``index`` the
        position of the latest week whose label (Friday) lies strictly before that day,
        i.e. a week that had closed; -1 where none has."""
        return self.cached("weekly", self._weekly)

    def _weekly(self) -> tuple[pd.DataFrame, np.ndarray]:
        frame = pd.DataFrame(
            {"Open": self.open, "High": self.high, "Low": self.low, "Close": self.close,
             "Volume": self.volume},
            index=self.index,
        )
        weekly = frame.resample(WEEKLY_RULE).agg(WEEKLY_AGG).dropna(subset=["Close"])
        position = np.searchsorted(weekly.index.to_numpy(), self.index.to_numpy(), "left") - 1
        return weekly, position


def weekly_to_daily(values: np.ndarray, position: np.ndarray) -> np.ndarray:
    """Map per-week values onto daily rows via ``FeatureInputs.weekly`` positions."""
    out = np.full(len(position), np.nan)
    seen = position >= 0
    out[seen] = values[position[seen]]
    return out


def lag(x: np.ndarray, periods: int) -> np.ndarray:
    """x shifted ``periods`` rows later (NaN-filled at the start)."""
    out = np.full_like(x, np.nan, dtype=np.float64)
    if periods < len(x):
        out[periods:] = x[: len(x) - periods]
    return out


def lag_diff(x: np.ndarray, periods: int) -> np.ndarray:
    """x[t] - x[t - periods]."""
    return x - lag(x, periods)


def safe_div(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator; 0 where the denominator is exactly 0, NaN stays NaN."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    out[np.isnan(den) | np.isnan(num)] = np.nan
    return out


def rolling(x: np.ndarray, window: int) -> Any:
    """A pandas rolling view (Cython kernels, causal, full window required)."""
    return pd.Series(x).rolling(window, min_periods=window)


def rolling_mean(x: np.ndarray, window: int) -> np.ndarray:
    return rolling(x, window).mean().to_numpy()


def rolling_std(x: np.ndarray, window: int) -> np.ndarray:
    """Sample standard deviation over the window."""
    return rolling(x, window).std().to_numpy()


def rolling_zscore(x: np.ndarray, window: int) -> np.ndarray:
    """(x - rolling mean) / rolling std: removes the level and scale of ``x``."""
    roll = rolling(x, window)
    return safe_div(x - roll.mean().to_numpy(), roll.std().to_numpy())


def ratio_minus_one(x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """x / reference - 1: a price-level distance with no price units."""
    return safe_div(x, reference) - 1.0
