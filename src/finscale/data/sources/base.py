"""The one interface every data source implements, and the errors it may raise.

Frames crossing this boundary have one layout:
- market bars: DatetimeIndex named ``Date`` (tz-naive, midnight), columns ``MARKET_COLUMNS``
  as float64 (``Volume`` too: some vendors send fractional or missing volume);
- macro series: DatetimeIndex named ``date``, one float64 column named the series id.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

import pandas as pd

MARKET_COLUMNS: tuple[str, ...] = ("Open", "High", "Low", "Close", "Adj Close", "Volume")
MARKET_INDEX = "Date"
MACRO_INDEX = "date"


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
