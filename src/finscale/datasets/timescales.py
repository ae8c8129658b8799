"""Timescales: daily bars as stored, or weekly bars aggregated W-FRI.

A weekly bar is indexed by the last trading day of its week (not the Friday label), so a
holiday Friday moves the bar to Thursday and no bar is ever dated on a closed day. A final
week whose data stops before the exchange's last session of that week is dropped: it is not
a bar yet, and a label computed from it would not cover a full future window.
"""

from __future__ import annotations

import pandas as pd

from finscale.data.validation import exchange_sessions

WEEK_RULE = "W-FRI"
WEEK_CALENDAR = "XNYS"  # the universe trades on the NYSE session calendar
AGGREGATION = {
    "Open": "first",
    "High": "max",
    "Low": "min",
    "Close": "last",
    "Adj Close": "last",
    "Volume": "sum",
}


def to_weekly(bars: pd.DataFrame, calendar: str = WEEK_CALENDAR) -> pd.DataFrame:
    """OHLCV aggregated per completed W-FRI week, indexed by each week's last trading day."""
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
    if not _last_week_complete(week[-1], bars.index[-1], calendar):
        weekly = weekly.iloc[:-1]
    return weekly[list(rules)]


def _last_week_complete(period: pd.Period, last_date: pd.Timestamp, calendar: str) -> bool:
    """Whether the data reaches the exchange's last scheduled session of ``period``."""
    sessions = exchange_sessions(calendar, period.start_time, period.end_time)
    return sessions.empty or last_date >= sessions[-1]


def resample_bars(bars: pd.DataFrame, timescale: str) -> pd.DataFrame:
    """Bars at ``timescale`` ('daily' returns the input unchanged)."""
    if timescale == "daily":
        return bars
    if timescale == "weekly":
        return to_weekly(bars)
    raise ValueError(f"unknown timescale '{timescale}' (expected daily or weekly)")
