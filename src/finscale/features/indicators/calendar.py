"""Calendar position of each bar: cyclic encodings and known-in-advance distances.

Only the bar's own date and the previous bar's date are read, never later rows. On weekly
bars the ``day_of_week`` field is the bar's week within its month (a weekday is constant).
"""

from __future__ import annotations

import numpy as np

from finscale.features.inputs import FeatureInputs

DAYS_PER_WEEK = 7.0
MONTHS_PER_YEAR = 12.0
DAYS_PER_YEAR = 365.25
WEEKS_PER_MONTH_CYCLE = 5.0


def _field(x: FeatureInputs, field: str) -> np.ndarray:
    index = x.index
    if field == "day_of_week" and x.is_weekly:
        # a weekly bar always closes at the end of its week, so its weekday says nothing;
        # its week within the month does (e.g. the third-Friday options expiry week)
        week_of_month = (index.day.to_numpy(np.float64) - 1.0) // DAYS_PER_WEEK
        return week_of_month / WEEKS_PER_MONTH_CYCLE
    if field == "day_of_week":
        return index.day_of_week.to_numpy(np.float64) / DAYS_PER_WEEK
    if field == "month":
        return (index.month.to_numpy(np.float64) - 1.0) / MONTHS_PER_YEAR
    if field == "day_of_year":
        return (index.day_of_year.to_numpy(np.float64) - 1.0) / DAYS_PER_YEAR
    if field == "day_of_month":
        return (index.day.to_numpy(np.float64) - 1.0) / index.days_in_month.to_numpy(np.float64)
    raise ValueError(f"unknown calendar field '{field}'")


def calendar_cycle(x: FeatureInputs, field: str, wave: str) -> np.ndarray:
    """sin or cos of the bar's position in its week, month or year."""
    angle = 2.0 * np.pi * _field(x, field)
    if wave not in ("sin", "cos"):
        raise ValueError(f"wave must be 'sin' or 'cos', got '{wave}'")
    return np.sin(angle) if wave == "sin" else np.cos(angle)


def days_to_month_end(x: FeatureInputs) -> np.ndarray:
    """Calendar days left in the month (known in advance, no trading calendar needed)."""
    index = x.index
    return (index.days_in_month - index.day).to_numpy(np.float64)


def quarter_end_month(x: FeatureInputs) -> np.ndarray:
    """1 in March, June, September, December (window dressing, rebalancing), else 0."""
    return (x.index.month.to_numpy() % 3 == 0).astype(np.float64)


def days_since_previous_bar(x: FeatureInputs) -> np.ndarray:
    """Calendar days since the previous bar (weekends, holidays); NaN on the first row."""
    days = x.index.to_numpy().astype("datetime64[D]").astype(np.float64)
    out = np.full(len(days), np.nan)
    out[1:] = np.diff(days)
    return out
