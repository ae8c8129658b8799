"""The ``csv`` source: a directory of files in the Yahoo-classic and FRED layouts.

Layout of the mirror directory::

    <mirror>/market/<TICKER>.csv   Date,Open,High,Low,Close,Adj Close,Volume
    <mirror>/fred/<SERIES>.csv     date,<SERIES>   (FRED writes "." or "" for missing)
                                   or date,realtime_start,<SERIES>: vintages, one row per
                                   (observation, release); the first release is served

It serves offline runs, tests and CI (``../shared/data`` is such a mirror). A file that
resolves outside the mirror (a symlink, a ``..`` in a name) or is larger than
``data.mirror_max_file_mb`` is refused before it is read.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from finscale.data.config import DEFAULT_MIRROR_MAX_FILE_MB
from finscale.data.sources.base import (
    MACRO_INDEX,
    MARKET_COLUMNS,
    MARKET_INDEX,
    REALTIME_START,
    PermanentSourceError,
    filter_dates,
    first_releases,
)
from finscale.io.atomic import md5_file

MARKET_SUBDIR = "market"
FRED_SUBDIR = "fred"
FRED_MISSING_MARKERS = (".", "")
DATE_FORMAT = "%Y-%m-%d"
BYTES_PER_MB = 1024 * 1024


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        raise PermanentSourceError(f"csv mirror: no file for {what}: {path} does not exist")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise PermanentSourceError(f"csv mirror: {path}: unreadable CSV: {exc}") from exc


def _parse_dates(raw: pd.Series, path: Path, column: str) -> pd.DatetimeIndex:
    parsed = pd.to_datetime(raw, format=DATE_FORMAT, errors="coerce")
    bad = raw[parsed.isna()]
    if not bad.empty:
        rows = ", ".join(f"row {i + 2}: {v!r}" for i, v in bad.head(5).items())
        raise PermanentSourceError(
            f"csv mirror: {path}: column {column!r}: not a YYYY-MM-DD date ({rows})"
        )
    return pd.DatetimeIndex(parsed)


def _parse_numbers(raw: pd.Series, path: Path, column: str, missing: tuple[str, ...]) -> pd.Series:
    """float64 values; strings in ``missing`` become NaN, anything else unparsable is an error."""
    stripped = raw.str.strip()
    is_missing = stripped.isin(missing)
    parsed = pd.to_numeric(stripped.where(~is_missing), errors="coerce").astype("float64")
    bad = raw[parsed.isna() & ~is_missing]
    if not bad.empty:
        rows = ", ".join(f"row {i + 2}: {v!r}" for i, v in bad.head(5).items())
        raise PermanentSourceError(f"csv mirror: {path}: column {column!r}: not a number ({rows})")
    return parsed


def read_market_csv(path: Path) -> pd.DataFrame:
    """A Yahoo-classic CSV as a market frame (layout in ``sources.base``)."""
    raw = _read_csv(path, f"ticker {path.stem}")
    expected = [MARKET_INDEX, *MARKET_COLUMNS]
    missing_cols = [c for c in expected if c not in raw.columns]
    if missing_cols:
        raise PermanentSourceError(
            f"csv mirror: {path}: missing column(s) {missing_cols}; expected {expected}"
        )
    index = _parse_dates(raw[MARKET_INDEX], path, MARKET_INDEX)
    # Yahoo writes "null" on holiday rows; keep them as NaN so validation applies its NaN policy.
    columns = {
        col: _parse_numbers(raw[col], path, col, ("null", "")).to_numpy() for col in MARKET_COLUMNS
    }
    frame = pd.DataFrame(columns, index=index)
    frame.index.name = MARKET_INDEX
    return frame


def read_fred_csv(path: Path, series_id: str) -> pd.DataFrame:
    """A ``date,<SERIES_ID>`` CSV as a macro frame, or a ``date,realtime_start,<SERIES_ID>``
    CSV of vintages as each observation's first release with its release day (the fred
    source's layout); FRED's "." and "" (no observation) dropped."""
    raw = _read_csv(path, f"series {series_id}")
    layouts = ([MACRO_INDEX, series_id], [MACRO_INDEX, REALTIME_START, series_id])
    if list(raw.columns) not in layouts:
        raise PermanentSourceError(
            f"csv mirror: {path}: columns {list(raw.columns)}; expected {layouts[0]} or "
            f"{layouts[1]} (vintages)"
        )
    index = _parse_dates(raw[MACRO_INDEX], path, MACRO_INDEX)
    values = _parse_numbers(raw[series_id], path, series_id, FRED_MISSING_MARKERS)
    if REALTIME_START in raw.columns:
        released = _parse_dates(raw[REALTIME_START], path, REALTIME_START)
        return first_releases(index, released, values.to_numpy(), series_id)
    frame = pd.DataFrame({series_id: values.to_numpy()}, index=index)
    frame.index.name = MACRO_INDEX
    return frame.dropna()


class CsvMirrorSource:
    """Market bars and macro series read from a mirror directory (both protocols)."""

    name = "csv"

    def __init__(self, mirror: Path, max_file_mb: float = DEFAULT_MIRROR_MAX_FILE_MB) -> None:
        self.mirror = Path(mirror)
        self.max_file_mb = max_file_mb

    def _checked(self, path: Path) -> Path:
        """The file to read for ``path``: resolved, inside the mirror, within the size limit.

        A missing file passes unchanged (the reader names it).
        """
        if not path.is_file():
            return path
        resolved, root = path.resolve(), self.mirror.resolve()
        if not resolved.is_relative_to(root):
            raise PermanentSourceError(
                f"csv mirror: {path} resolves to {resolved}, outside the mirror {root}; "
                f"refusing to read it")
        size = resolved.stat().st_size
        if size > self.max_file_mb * BYTES_PER_MB:
            raise PermanentSourceError(
                f"csv mirror: {path}: {size} bytes ({size / BYTES_PER_MB:.1f} MB) exceeds "
                f"data.mirror_max_file_mb={self.max_file_mb:g}; refusing to parse it")
        return resolved  # read what was checked, not the link (which could change)

    def market_path(self, ticker: str) -> Path:
        return self.mirror / MARKET_SUBDIR / f"{ticker}.csv"

    def series_path(self, series_id: str) -> Path:
        return self.mirror / FRED_SUBDIR / f"{series_id}.csv"

    def fetch_bars(self, ticker: str, start: date | None, end: date | None) -> pd.DataFrame:
        """Bars of ``ticker`` from ``<mirror>/market/<ticker>.csv``, filtered to [start, end]."""
        frame = read_market_csv(self._checked(self.market_path(ticker)))
        return filter_dates(frame, start, end)

    def fetch_series(self, series_id: str, start: date | None, end: date | None) -> pd.DataFrame:
        """Observations from ``<mirror>/fred/<series_id>.csv``, filtered to [start, end]."""
        frame = read_fred_csv(self._checked(self.series_path(series_id)), series_id)
        return filter_dates(frame, start, end)

    def bars_fingerprint(self, ticker: str) -> str | None:
        """MD5 of the ticker's file (None if absent): lets a refresh skip an unchanged file."""
        path = self._checked(self.market_path(ticker))
        return md5_file(path) if path.is_file() else None

    def series_fingerprint(self, series_id: str) -> str | None:
        """MD5 of the series' file (None if absent): lets a refresh skip an unchanged file."""
        path = self._checked(self.series_path(series_id))
        return md5_file(path) if path.is_file() else None
