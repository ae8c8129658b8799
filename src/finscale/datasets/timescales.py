"""Timescales: daily bars as stored, or weekly bars aggregated W-FRI.

A weekly bar is indexed by the last trading day of its week (not the Friday label), so a
holiday Friday moves the bar to Thursday and no bar is ever dated on a closed day.
"""

from __future__ import annotations

import pandas as pd

WEEK_RULE = "W-FRI"
AGGREGATION = {
    "Open": "first",
    "High": "max",
    "Low": "min",
    "Close": "last",
    "Adj Close": "last",
    "Volume": "sum",
}


def to_weekly(bars: pd.DataFrame) -> pd.DataFrame:
    """OHLCV aggregated per W-FRI week, indexed by each week's last trading day."""
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise ValueError("weekly aggregation needs a DatetimeIndex")
    if bars.empty:
        return bars.copy()
    rules = {col: how for col, how in AGGREGATION.items() if col in bars.columns}
    week = bars.index.to_period(WEEK_RULE)
    grouped = bars.groupby(week, sort=True)
    weekly = grouped.agg(rules)
    last_day = pd.Series(bars.index, index=bars.index).groupby(week, sort=True).max()
    weekly.index = pd.DatetimeIndex(last_day.to_numpy(), name=bars.index.name)
    return weekly[list(rules)]


def resample_bars(bars: pd.DataFrame, timescale: str) -> pd.DataFrame:
    """Bars at ``timescale`` ('daily' returns the input unchanged)."""
    if timescale == "daily":
        return bars
    if timescale == "weekly":
        return to_weekly(bars)
    raise ValueError(f"unknown timescale '{timescale}' (expected daily or weekly)")
