"""The one interface every data source implements, and the errors it may raise.

Frames crossing this boundary have one layout:
- market bars: DatetimeIndex named ``Date`` (tz-naive, midnight), columns ``MARKET_COLUMNS``
  as float64 (``Volume`` too: some vendors send fractional or missing volume);
- macro series: DatetimeIndex named ``date``, one float64 column named the series id and,
  from sources with vintages (FRED's real-time periods), a ``realtime_start`` column
  (datetime64): the day that value was first published. The value is then the first
  release, not today's revision, so features can use each value as it was known then.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

import numpy as np
import pandas as pd

MARKET_COLUMNS: tuple[str, ...] = ("Open", "High", "Low", "Close", "Adj Close", "Volume")
MARKET_INDEX = "Date"
MACRO_INDEX = "date"
REALTIME_START = "realtime_start"


class SourceError(RuntimeError):
    """A fetch failed; the message names the source, the symbol and the reason."""


class TransientSourceError(SourceError):
    """Worth retrying with back-off: timeouts, HTTP 5xx, connection resets, empty replies."""


class PermanentSourceError(SourceError):
    """Not worth retrying: unknown ticker or series, bad API key, malformed payload."""


OFFLINE_HINT = "offline? use --source csv --mirror DIR (a folder of market/ and fred/ CSVs)"


class SourceUnreachableError(TransientSourceError):
    """The vendor's host cannot be reached at all (DNS failure, connection refused).

    Transient by nature, but retrying within seconds rarely helps: ``call_with_retry`` gives up
    at once so an offline run fails fast; the message names ``--mirror`` (``OFFLINE_HINT``).
    """


class MarketSource(Protocol):
    """Daily OHLCV bars for tickers (``VIX`` means the CBOE index ``^VIX``)."""

    name: str

    def fetch_bars(self, ticker: str, start: date | None, end: date | None) -> pd.DataFrame:
        """Bars with start <= Date <= end (None: unbounded), in the layout above."""
        ...


class MacroSource(Protocol):
    """Macro-economic series by id (FRED ids such as ``DGS10``)."""

    name: str

    def fetch_series(self, series_id: str, start: date | None, end: date | None) -> pd.DataFrame:
        """Observations with start <= date <= end, in the layout above.

        Dates without an observation (FRED's ``.``) are left out, never returned as NaN.
        """
        ...


def filter_dates(frame: pd.DataFrame, start: date | None, end: date | None) -> pd.DataFrame:
    """Rows with start <= index <= end (None: unbounded)."""
    mask = pd.Series(True, index=frame.index)
    if start is not None:
        mask &= frame.index >= pd.Timestamp(start)
    if end is not None:
        mask &= frame.index <= pd.Timestamp(end)
    return frame.loc[mask.to_numpy()]


def first_releases(
    dates: pd.DatetimeIndex, released: pd.DatetimeIndex, values: np.ndarray, series_id: str
) -> pd.DataFrame:
    """Every vintage (observation date, release date, value) reduced to each observation's
    first published value and its release date, in the macro layout with ``realtime_start``.

    A vintage without a value (FRED's ``.``) is no publication: the first real value counts.
    """
    frame = pd.DataFrame({MACRO_INDEX: dates.normalize(), REALTIME_START: released.normalize(),
                          series_id: np.asarray(values, dtype=np.float64)})
    frame = frame.dropna(subset=[series_id]).sort_values([MACRO_INDEX, REALTIME_START],
                                                        kind="stable")
    first = frame.drop_duplicates(subset=MACRO_INDEX, keep="first").set_index(MACRO_INDEX)
    return first[[series_id, REALTIME_START]]
