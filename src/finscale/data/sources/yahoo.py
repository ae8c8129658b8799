"""The ``yahoo`` source: daily bars through yfinance, normalised to the market layout.

yfinance quirks handled here (measured, see STACK-NOTES):
- ``yf.download`` never raises: failures come back as an empty frame plus a log record, so an
  empty frame is a failure (Transient), never "no new rows"; the log records captured during
  the call decide whether it was the network (Transient / unreachable) or Yahoo saying the
  symbol does not exist (Permanent).
- It ignores its own timeout when the network hangs: every call runs in its own child process
  (``finscale.data.isolated_call``), killed after ``timeout_s``. A thread could not be killed,
  and its abandoned call kept yfinance's process-wide session and locks busy, so one hung
  ticker failed the next ones; a child shares nothing with the next call.
- 1.x returns MultiIndex columns (Price, Ticker) and a tz-aware or tz-naive index.
- It keeps a timezone/cookie cache in the user's home: redirected into ``cache_dir``.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from finscale.data.isolated_call import call_in_subprocess
from finscale.data.sources.base import (
    MARKET_COLUMNS,
    MARKET_INDEX,
    OFFLINE_HINT,
    PermanentSourceError,
    SourceUnreachableError,
    TransientSourceError,
    filter_dates,
)

# Our ticker -> Yahoo's symbol, where they differ (indices carry a caret at Yahoo).
YAHOO_SYMBOLS: dict[str, str] = {"VIX": "^VIX"}

YFINANCE_LOGGER = "yfinance"
# Substrings of yfinance's error records, lower-cased, that identify the cause of an empty frame.
UNREACHABLE_MARKERS = (
    "failed to resolve", "nameresolutionerror", "name or service not known",
    "could not resolve host", "temporary failure in name resolution", "connection refused",
    "nodename nor servname",
)
NETWORK_MARKERS = (
    "connectionerror", "timeout", "timed out", "max retries exceeded", "connection aborted",
    "connection reset", "remotedisconnected", "sslerror", "proxyerror", "rate limit",
    "too many requests", "yahoo! finance is currently down",
)
UNKNOWN_SYMBOL_MARKERS = ("not found", "no data found", "delisted", "404")
# Imported by the child before its clock starts: only the download is timed.
CHILD_PRELOAD = ("yfinance", "pandas")


def yahoo_symbol(ticker: str) -> str:
    """Yahoo's symbol for one of our tickers (``VIX`` -> ``^VIX``)."""
    return YAHOO_SYMBOLS.get(ticker, ticker)


class _RecordCollector(logging.Handler):
    """Keeps the messages yfinance logs during one call."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _collect_yfinance_records() -> Iterator[_RecordCollector]:
    """Capture yfinance's log records (and keep them off stderr) for the duration."""
    logger = logging.getLogger(YFINANCE_LOGGER)
    collector = _RecordCollector()
    previous_propagate = logger.propagate
    logger.addHandler(collector)
    logger.propagate = False
    try:
        yield collector
    finally:
        logger.removeHandler(collector)
        logger.propagate = previous_propagate


def classify_empty_reply(ticker: str, symbol: str, messages: list[str]) -> TransientSourceError | \
        PermanentSourceError:
    """The error for an empty download, from what yfinance logged about ``symbol``."""
    relevant = [m for m in messages if symbol.upper() in m.upper()] or messages
    text = " | ".join(relevant)
    lowered = text.lower()
    detail = text or "no error reported"
    where = f"yahoo: {ticker} ({symbol})"
    if any(marker in lowered for marker in UNREACHABLE_MARKERS):
        return SourceUnreachableError(f"{where}: Yahoo unreachable: {detail}; {OFFLINE_HINT}")
    if any(marker in lowered for marker in NETWORK_MARKERS):
        return TransientSourceError(f"{where}: network failure: {detail}; {OFFLINE_HINT}")
    if any(marker in lowered for marker in UNKNOWN_SYMBOL_MARKERS):
        return PermanentSourceError(f"{where}: unknown or delisted symbol: {detail}")
    return TransientSourceError(
        f"{where}: empty reply from Yahoo (treated as a failure, not as no new rows): {detail}; "
        f"{OFFLINE_HINT}"
    )


def normalise_download(raw: pd.DataFrame, symbol: str) -> pd.DataFrame:
    """yfinance's frame -> the market layout: flat float64 columns, tz-naive midnight ``Date``."""
    frame = raw
    if isinstance(frame.columns, pd.MultiIndex):
        tickers_level = [i for i, name in enumerate(frame.columns.names) if name == "Ticker"]
        level = tickers_level[0] if tickers_level else frame.columns.nlevels - 1
        if symbol in frame.columns.get_level_values(level):
            frame = frame.xs(symbol, axis=1, level=level)
        else:
            frame = frame.droplevel(level, axis=1)
    missing = [c for c in MARKET_COLUMNS if c not in frame.columns]
    if missing:
        raise PermanentSourceError(
            f"yahoo: {symbol}: reply lacks column(s) {missing}; got {list(frame.columns)}"
        )
    index = pd.DatetimeIndex(frame.index)
    if index.tz is not None:
        index = index.tz_localize(None)
    out = pd.DataFrame(
        {col: pd.to_numeric(frame[col], errors="coerce").astype("float64").to_numpy()
         for col in MARKET_COLUMNS},
        index=index.normalize(),
    )
    out.index.name = MARKET_INDEX
    out = out.dropna(how="all")
    out = out[~out.index.duplicated(keep="last")].sort_index()
    return out


@dataclass(frozen=True)
class DownloadRequest:
    """One yfinance download, as sent to the child process (so: picklable)."""

    ticker: str
    symbol: str
    start: date | None
    end: date | None
    timeout_s: float
    cache_dir: Path
    session: Any | None = None


def download_bars(request: DownloadRequest) -> pd.DataFrame:
    """Run in the child process: one ``yf.download``, classified and normalised.

    The child is fresh, so yfinance's process-wide state (config, reply cache, session and
    cookie) is this call's alone and needs no lock or restore.
    """
    import yfinance

    yfinance.set_tz_cache_location(str(request.cache_dir))
    range_args: dict[str, Any] = {
        # yfinance's end is exclusive; ours is inclusive.
        "end": None if request.end is None else (request.end + timedelta(days=1)).isoformat(),
    }
    if request.start is None:
        range_args["period"] = "max"
    else:
        range_args["start"] = request.start.isoformat()
    ticker, symbol = request.ticker, request.symbol
    with _collect_yfinance_records() as records, warnings.catch_warnings():
        # yfinance 1.7 trips pandas 3 deprecations (Pandas4Warning); not ours to fix.
        warnings.filterwarnings("ignore", module=YFINANCE_LOGGER)
        yfinance.config.debug.hide_exceptions = False  # errors reach download()'s log as reprs
        try:
            raw = yfinance.download(
                symbol, auto_adjust=False, actions=False, progress=False, threads=False,
                timeout=request.timeout_s, session=request.session, multi_level_index=True,
                **range_args,
            )
        except Exception as exc:  # yfinance raises only on bugs or bad arguments
            raise TransientSourceError(f"yahoo: {ticker} ({symbol}): {exc!r}") from exc
    if raw is None or raw.empty:
        raise classify_empty_reply(ticker, symbol, records.messages)
    frame = normalise_download(raw, symbol)
    if frame.empty:
        raise classify_empty_reply(ticker, symbol, records.messages)
    return filter_dates(frame, request.start, request.end)


class YahooSource:
    """Daily bars from Yahoo Finance via yfinance (``auto_adjust=False``: keeps Adj Close)."""

    name = "yahoo"

    def __init__(
        self,
        *,
        timeout_s: float,
        cache_dir: Path | None = None,
        session: Any | None = None,
    ) -> None:
        """``session``: a requests or curl_cffi Session yfinance should use (tests inject one).

        It is pickled into each call's child process, so it must be picklable.
        """
        self.timeout_s = timeout_s
        self.session = session
        self.cache_dir = Path(cache_dir or tempfile.mkdtemp(prefix="finscale-yfinance-"))
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def fetch_bars(self, ticker: str, start: date | None, end: date | None) -> pd.DataFrame:
        """Bars of ``ticker`` with start <= Date <= end, in a child killed after ``timeout_s``."""
        symbol = yahoo_symbol(ticker)
        request = DownloadRequest(ticker, symbol, start, end, self.timeout_s, self.cache_dir,
                                  self.session)
        return call_in_subprocess(
            download_bars, request, timeout_s=self.timeout_s,
            what=f"yahoo: {ticker} ({symbol})", hint=OFFLINE_HINT, preload=CHILD_PRELOAD,
        )
