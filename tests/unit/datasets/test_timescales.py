"""Weekly bars: W-FRI aggregation indexed by each week's last trading day."""

from __future__ import annotations

import numpy as np
import pandas as pd

from finscale.datasets.targets import threshold_labels
from finscale.datasets.timescales import to_weekly


def _daily() -> pd.DataFrame:
    # Mon 2024-03-25 .. Fri 2024-04-05, with Good Friday 2024-03-29 closed
    days = pd.DatetimeIndex(["2024-03-25", "2024-03-26", "2024-03-27", "2024-03-28",
                             "2024-04-01", "2024-04-02", "2024-04-03", "2024-04-04",
                             "2024-04-05"], name="Date")
    n = len(days)
    close = np.arange(1.0, n + 1.0) + 100
    return pd.DataFrame({"Open": close - 0.5, "High": close + 1, "Low": close - 1,
                         "Close": close, "Adj Close": close / 2, "Volume": np.full(n, 10.0)},
                        index=days)


def test_weekly_aggregation_rules_and_last_trading_day_index() -> None:
    weekly = to_weekly(_daily())
    assert list(weekly.index) == [pd.Timestamp("2024-03-28"), pd.Timestamp("2024-04-05")]
    first = weekly.iloc[0]
    assert first["Open"] == 100.5  # first Open of the week
    assert first["High"] == 105.0  # max High
    assert first["Low"] == 100.0  # min Low
    assert first["Close"] == 104.0 and first["Adj Close"] == 52.0  # last
    assert first["Volume"] == 40.0  # sum
    assert weekly.index.name == "Date"


def test_weekly_labels_come_from_weekly_bars() -> None:
    weekly = to_weekly(_daily())
    labels = threshold_labels(weekly, 1, (0.01,), "weekly")
    # week 1 close 104, week 2 high max = 110 -> +5.8%
    assert labels.iloc[0, 0] == 1.0 and np.isnan(labels.iloc[1, 0])


def test_incomplete_last_week_is_not_a_bar() -> None:
    # data stops on Wednesday 2024-04-03: that week is not over, so it yields no bar
    weekly = to_weekly(_daily().loc[:"2024-04-03"])
    assert list(weekly.index) == [pd.Timestamp("2024-03-28")]
    # a week closed early by a holiday (Good Friday 2024-03-29) is complete on Thursday
    holiday_week = to_weekly(_daily().loc[:"2024-03-28"])
    assert list(holiday_week.index) == [pd.Timestamp("2024-03-28")]
