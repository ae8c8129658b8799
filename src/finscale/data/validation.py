"""Validation of fetched frames before they may replace a stored version.

Every rule yields a ``RuleViolation`` naming the rule and the offending dates (the first
few plus a count), so a rejected refresh says exactly what is wrong and where. Market
frames are checked for layout, dtypes, ordering, NaNs, positive prices, OHLC consistency
and sessions against the exchange calendar (VIX's all-zero volume is valid); macro series
for ordering and finite values, and, when stored with vintages, for release days
(``realtime_start``) that exist and fall between the observation's date and today.

Both refuse rows from the future (``future_dates``): a bar dated after the exchange's
current session (the last session on or before today, New York time) or an observation
dated after today in New York. Such a row, once stored, would make every later refresh look
like shrinking history. "Now" comes from a ``Clock`` argument so tests can set it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import pandas as pd

from finscale.data.config import ValidationConfig
from finscale.data.sources.base import MACRO_INDEX, MARKET_COLUMNS, MARKET_INDEX, REALTIME_START

SHOWN_DATES = 5
PRICE_COLUMNS: tuple[str, ...] = ("Open", "High", "Low", "Close", "Adj Close")
CALENDAR_START = "1980-01-01"
# FRED dates its observations in US Eastern time, like the exchange.
MACRO_TIMEZONE = ZoneInfo("America/New_York")

Clock = Callable[[], datetime]

RULE_COLUMNS = "required_columns"
RULE_DTYPES = "dtypes"
RULE_SORTED = "sorted_dates"
RULE_UNIQUE = "unique_dates"
RULE_NAN = "nan_values"
RULE_POSITIVE = "positive_prices"
RULE_HIGH = "high_ge_open_close"
RULE_LOW = "low_le_open_close"
RULE_VOLUME = "volume_non_negative"
RULE_SESSION_GAPS = "session_gaps"
RULE_NON_SESSIONS = "non_session_dates"
RULE_FINITE = "finite_values"
RULE_EMPTY = "not_empty"
RULE_FUTURE = "future_dates"
RULE_RELEASE = "release_dates"


def utc_now() -> datetime:
    """The default clock: the current time, timezone-aware."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class RuleViolation:
    """One broken rule: its name, the first offending dates, their count, and a detail."""

    rule: str
    dates: tuple[date, ...]
    count: int
    detail: str = ""

    def describe(self) -> str:
        shown = ", ".join(d.isoformat() for d in self.dates)
        more = f" (+{self.count - len(self.dates)} more)" if self.count > len(self.dates) else ""
        rows = f"{self.count} row(s): {shown}{more}" if self.dates else f"{self.count} row(s)"
        detail = f"; {self.detail}" if self.detail else ""
        return f"rule {self.rule}: {rows}{detail}"


@dataclass(frozen=True)
class ValidationReport:
    """All violations found in one frame of one symbol."""

    symbol: str
    rows: int
    violations: tuple[RuleViolation, ...] = ()
    dropped_nan_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(v.rule for v in self.violations)

    def describe(self) -> str:
        if self.ok:
            return f"{self.symbol}: {self.rows} rows valid"
        return f"{self.symbol}: " + "; ".join(v.describe() for v in self.violations)

    def raise_if_failed(self) -> None:
        if not self.ok:
            raise DataValidationError(self)


class DataValidationError(ValueError):
    """A frame broke at least one rule; the message names symbol, rule(s) and rows."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(f"validation failed for {report.describe()}")
        self.report = report


def _violation(rule: str, index: pd.Index, mask: np.ndarray, detail: str = "") -> RuleViolation:
    hits = index[mask]
    return RuleViolation(
        rule=rule,
        dates=tuple(pd.Timestamp(d).date() for d in hits[:SHOWN_DATES]),
        count=int(mask.sum()),
        detail=detail,
    )


@functools.lru_cache(maxsize=4)
def _calendar(name: str) -> xcals.ExchangeCalendar:
    """Built once per process (about half a second each)."""
    return xcals.get_calendar(name, start=CALENDAR_START)


def exchange_sessions(name: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    """The exchange's scheduled sessions in [start, end] (tz-naive dates)."""
    return _calendar(name).sessions_in_range(start.normalize(), end.normalize())


def current_session(name: str, now: datetime) -> pd.Timestamp:
    """The exchange's last session on or before today in its own time zone (tz-naive)."""
    calendar = _calendar(name)
    today = pd.Timestamp(now.astimezone(ZoneInfo(str(calendar.tz))).date())
    today = min(max(today, calendar.first_session), calendar.last_session)
    return calendar.date_to_session(today, direction="previous").tz_localize(None)


def macro_today(now: datetime) -> pd.Timestamp:
    """Today's date in New York (tz-naive): the newest date a macro observation may carry."""
    return pd.Timestamp(now.astimezone(MACRO_TIMEZONE).date())


def _future_violation(
    index: pd.DatetimeIndex, limit: pd.Timestamp, what: str
) -> list[RuleViolation]:
    """Rows dated after ``limit``: data from the future is never stored."""
    future = np.asarray(index > limit)
    if not future.any():
        return []
    return [_violation(RULE_FUTURE, index, future, f"after {what} {limit.date().isoformat()}")]


def _index_violations(index: pd.Index, expected_name: str) -> list[RuleViolation]:
    """Layout of the index: datetime, sorted, unique."""
    if not isinstance(index, pd.DatetimeIndex):
        return [RuleViolation(RULE_DTYPES, (), len(index), f"index is {type(index).__name__}, "
                              f"expected a DatetimeIndex named {expected_name!r}")]
    found: list[RuleViolation] = []
    if index.tz is not None:
        found.append(RuleViolation(RULE_DTYPES, (), len(index), f"index has tz {index.tz}"))
    steps = np.diff(index.asi8)
    backwards = np.concatenate([[False], steps < 0])
    if backwards.any():
        found.append(_violation(RULE_SORTED, index, backwards, "date before its predecessor"))
    duplicated = index.duplicated(keep="first")
    if duplicated.any():
        found.append(_violation(RULE_UNIQUE, index, duplicated, "date appears more than once"))
    return found


def _layout_violations(frame: pd.DataFrame) -> list[RuleViolation]:
    missing = [c for c in MARKET_COLUMNS if c not in frame.columns]
    if missing:
        return [RuleViolation(RULE_COLUMNS, (), len(frame), f"missing column(s) {missing}")]
    wrong = {c: str(frame[c].dtype) for c in MARKET_COLUMNS if frame[c].dtype != np.float64}
    if wrong:
        return [RuleViolation(RULE_DTYPES, (), len(frame), f"expected float64, got {wrong}")]
    return []


def _value_violations(frame: pd.DataFrame) -> list[RuleViolation]:
    """NaNs, positive prices, OHLC consistency, non-negative volume (NaN cells skipped)."""
    index = frame.index
    values = {c: frame[c].to_numpy() for c in MARKET_COLUMNS}
    found: list[RuleViolation] = []
    nan_rows = np.zeros(len(frame), dtype=bool)
    for column in MARKET_COLUMNS:
        nan_rows |= np.isnan(values[column])
    if nan_rows.any():
        found.append(_violation(RULE_NAN, index, nan_rows, "NaN in a row (nan_policy=reject)"))
    with np.errstate(invalid="ignore"):
        non_positive = np.zeros(len(frame), dtype=bool)
        for column in PRICE_COLUMNS:
            non_positive |= values[column] <= 0
        if non_positive.any():
            found.append(_violation(RULE_POSITIVE, index, non_positive, "a price is <= 0"))
        high_low = values["High"] < np.maximum(values["Open"], values["Close"])
        if high_low.any():
            found.append(_violation(RULE_HIGH, index, high_low, "High < max(Open, Close)"))
        low_high = values["Low"] > np.minimum(values["Open"], values["Close"])
        if low_high.any():
            found.append(_violation(RULE_LOW, index, low_high, "Low > min(Open, Close)"))
        negative_volume = values["Volume"] < 0
        if negative_volume.any():
            found.append(_violation(RULE_VOLUME, index, negative_volume, "Volume < 0"))
    return found


def _session_violations(index: pd.DatetimeIndex, config: ValidationConfig) -> list[RuleViolation]:
    """Missing sessions (beyond the allowance) and dates the exchange was closed."""
    if index.empty:
        return []
    calendar = _calendar(config.calendar)
    first = max(index[0], calendar.first_session)
    last = min(index[-1], calendar.last_session)
    sessions = calendar.sessions_in_range(first, last).tz_localize(None)
    found: list[RuleViolation] = []
    missing = sessions.difference(index)
    if len(missing) > config.max_missing_sessions:
        found.append(RuleViolation(
            RULE_SESSION_GAPS,
            tuple(d.date() for d in missing[:SHOWN_DATES]),
            len(missing),
            f"{config.calendar} sessions missing (allowed {config.max_missing_sessions})",
        ))
    in_range = index[(index >= first) & (index <= last)]
    extra = in_range.difference(sessions)
    if len(extra):
        found.append(RuleViolation(
            RULE_NON_SESSIONS,
            tuple(d.date() for d in extra[:SHOWN_DATES]),
            len(extra),
            f"not a {config.calendar} session",
        ))
    return found


def apply_nan_policy(frame: pd.DataFrame, config: ValidationConfig) -> tuple[pd.DataFrame, int]:
    """Drop rows with NaN under ``drop_rows``; under ``reject`` leave them for validation."""
    if config.nan_policy != "drop_rows" or frame.empty:
        return frame, 0
    keep = frame.notna().all(axis=1)
    return frame.loc[keep.to_numpy()], int((~keep).sum())


def validate_market_frame(
    frame: pd.DataFrame, ticker: str, config: ValidationConfig, dropped_nan_rows: int = 0,
    *, clock: Clock = utc_now,
) -> ValidationReport:
    """Check every market rule on ``frame``; never raises for bad data, reports it.

    Sessions are checked only up to the current session: future rows are one violation of
    their own, not also a run of "missing sessions" up to the calendar's end.
    """
    def report(found: list[RuleViolation]) -> ValidationReport:
        return ValidationReport(ticker, len(frame), tuple(found), dropped_nan_rows)

    if frame.empty:
        return report([RuleViolation(RULE_EMPTY, (), 0, "no rows")])
    found = _index_violations(frame.index, MARKET_INDEX) + _layout_violations(frame)
    if any(v.rule in (RULE_COLUMNS, RULE_DTYPES) for v in found):
        return report(found)
    found += _value_violations(frame)
    if not any(v.rule in (RULE_SORTED, RULE_UNIQUE) for v in found):
        session = current_session(config.calendar, clock())
        found += _future_violation(frame.index, session, f"the current {config.calendar} session")
        found += _session_violations(frame.index[frame.index <= session], config)
    return report(found)


def ensure_valid_market(
    frame: pd.DataFrame, ticker: str, config: ValidationConfig, *, clock: Clock = utc_now
) -> pd.DataFrame:
    """Apply the NaN policy, validate, and return the frame to store; raises on any rule."""
    cleaned, dropped = apply_nan_policy(frame, config)
    validate_market_frame(cleaned, ticker, config, dropped, clock=clock).raise_if_failed()
    return cleaned


def validate_macro_frame(
    frame: pd.DataFrame, series_id: str, *, clock: Clock = utc_now
) -> ValidationReport:
    """A macro series: one float64 column named ``series_id``, sorted unique dates, finite,
    none dated after today (New York)."""
    def report(found: list[RuleViolation]) -> ValidationReport:
        return ValidationReport(series_id, len(frame), tuple(found))

    if frame.empty:
        return report([RuleViolation(RULE_EMPTY, (), 0, "no rows")])
    found = _index_violations(frame.index, MACRO_INDEX)
    if isinstance(frame.index, pd.DatetimeIndex) and frame.index.tz is None:
        found += _future_violation(frame.index, macro_today(clock()), "today")
    if list(frame.columns) not in ([series_id], [series_id, REALTIME_START]):
        found.append(RuleViolation(RULE_COLUMNS, (), len(frame),
                                   f"columns {list(frame.columns)}, expected [{series_id!r}] "
                                   f"or [{series_id!r}, {REALTIME_START!r}]"))
    elif frame[series_id].dtype != np.float64:
        found.append(RuleViolation(RULE_DTYPES, (), len(frame),
                                   f"expected float64, got {frame[series_id].dtype}"))
    else:
        not_finite = ~np.isfinite(frame[series_id].to_numpy())
        if not_finite.any():
            found.append(_violation(RULE_FINITE, frame.index, not_finite, "NaN or infinite"))
        if REALTIME_START in frame.columns:
            found += _release_violations(frame, macro_today(clock()))
    return report(found)


def _release_violations(frame: pd.DataFrame, today: pd.Timestamp) -> list[RuleViolation]:
    """Release days (vintages): datetime, present, not before the observation, not future."""
    released = frame[REALTIME_START]
    if not pd.api.types.is_datetime64_dtype(released.dtype):
        return [RuleViolation(RULE_DTYPES, (), len(frame),
                              f"{REALTIME_START}: expected datetime64, got {released.dtype}")]
    days = released.to_numpy()
    with np.errstate(invalid="ignore"):
        bad = np.isnat(days) | (days < frame.index.to_numpy()) | (days > today.to_datetime64())
    if not bad.any():
        return []
    return [_violation(RULE_RELEASE, frame.index, bad,
                       f"{REALTIME_START} missing, before the observation or after today")]


def ensure_valid_macro(
    frame: pd.DataFrame, series_id: str, *, clock: Clock = utc_now
) -> pd.DataFrame:
    """Drop missing observations, validate, and return the series; raises on any rule.

    FRED publishes "no value" (``.``) on holidays, so a NaN is an absent observation, not
    bad data; infinities and layout problems are still rejected.
    """
    if series_id in frame.columns and frame[series_id].dtype == np.float64:
        frame = frame.loc[frame[series_id].notna().to_numpy()]
    validate_macro_frame(frame, series_id, clock=clock).raise_if_failed()
    return frame
