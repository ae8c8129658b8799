"""Incremental refresh of raw market bars and FRED series into the manifest.

One series at a time: fetch from ``overlap_days`` stored rows before the last stored date,
compare that overlap with what is stored, and

- if the overlap disagrees (e.g. Adj Close restated after a dividend), re-fetch the full
  history and store it (``restated``);
- if nothing is new, write nothing at all (``unchanged``);
- else append the new rows (``new_rows``).

Every fetch goes through ``call_with_retry`` (transient faults retried with jittered
back-off). A source that can fingerprint its content cheaply (the csv mirror) lets an
unchanged series skip the fetch entirely. The merged frame is validated before it is
saved; files are content-addressed and written atomically, then registered, so a failure
(bad data, permanent source error, crash) leaves the previous version byte-identical.
``TransientSourceError`` propagates from the single-series functions so an orchestrator
can retry; ``refresh_universe`` records it as a failure and carries on with the others.

Every check, unchanged and failed ones included, is appended to the refresh log
(``finscale.data.refresh_log``) so ``data status`` shows when each series was last checked.
Restatements older than the overlap window are not seen by an incremental refresh: only a
``full`` refresh re-reads the whole history.

A source whose history now ends before the stored one (it withdrew its newest rows, e.g. an
observation wrongly dated in the future) is refused by an incremental refresh, never silently
shortened; a ``full`` refresh, asked for by a person, stores the shorter history and reports it
as ``restated``. Rows dated after today are refused by validation (``future_dates``); "today"
comes from a ``clock`` argument (tests pass a fixed one).

Which series are refreshed, and their manifest names, live in ``finscale.data.universe``
(re-exported here); a name that fails ``SYMBOL_PATTERN`` is refused before anything is logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from finscale.config import config_hash
from finscale.data.config import DataConfig, check_symbol
from finscale.data.refresh_log import RefreshLog
from finscale.data.retry import call_with_retry
from finscale.data.sources.base import (
    MARKET_COLUMNS,
    MacroSource,
    MarketSource,
    PermanentSourceError,
    SourceUnreachableError,
    TransientSourceError,
)
from finscale.data.sources.fred import FredSource
from finscale.data.universe import (
    FRED_PREFIX,
    MARKET_PREFIX,
    fred_artifact_name,
    market_artifact_name,
    resolve_universe,
)
from finscale.data.validation import (
    Clock,
    DataValidationError,
    ensure_valid_macro,
    ensure_valid_market,
    utc_now,
)
from finscale.io.atomic import ChecksumMismatchError, md5_file
from finscale.manifest.artifacts import load_frame, save_frame
from finscale.manifest.store import ArtifactRecord, Manifest
from finscale.workspace import Workspace

__all__ = [
    "FRED_KIND", "FRED_PREFIX", "MARKET_KIND", "MARKET_PREFIX", "RefreshStatus",
    "RefreshSummary", "failure_summary", "fred_artifact_name", "full_refresh_hint",
    "market_artifact_name", "refresh_macro", "refresh_market", "refresh_universe",
    "resolve_universe",
]

log = logging.getLogger(__name__)

MARKET_KIND = "raw_market"
FRED_KIND = "raw_fred"
MARKET_SUBDIR = "market"
FRED_SUBDIR = "fred"
RESTATEMENT_RTOL = 1e-9
FINGERPRINT_META_KEY = "source_fingerprint"


@runtime_checkable
class FingerprintedMarketSource(Protocol):
    """Optional capability: a cheap content fingerprint of a ticker's data at the source."""

    def bars_fingerprint(self, ticker: str) -> str | None: ...


@runtime_checkable
class FingerprintedMacroSource(Protocol):
    """Optional capability: a cheap content fingerprint of a series' data at the source."""

    def series_fingerprint(self, series_id: str) -> str | None: ...


class RefreshStatus(StrEnum):
    """What a refresh did to one series."""

    NEW_ROWS = "new_rows"
    UNCHANGED = "unchanged"
    RESTATED = "restated"
    FAILED = "failed"


@dataclass(frozen=True)
class RefreshSummary:
    """The outcome for one series (small and picklable: safe to pass between tasks)."""

    name: str
    symbol: str
    status: RefreshStatus
    rows_added: int = 0
    rows: int = 0
    version: int | None = None
    md5: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class _SeriesPlan:
    """Everything the generic refresh needs to know about one series."""

    name: str
    kind: str
    symbol: str
    directory: Path
    source_name: str
    fetch: Callable[[date | None], pd.DataFrame]
    clean: Callable[[pd.DataFrame], pd.DataFrame]
    config_hash: str
    fingerprint: Callable[[], str | None] = lambda: None
    meta: dict[str, Any] = field(default_factory=dict)


def full_refresh_hint(name: str | None = None) -> str:
    """The command that re-fetches ``name`` (a raw artifact) in full, or every series."""
    if name is not None and name.startswith(MARKET_PREFIX):
        return f"`finscale data refresh --full --tickers {name.removeprefix(MARKET_PREFIX)} " \
               f"--series`"
    if name is not None and name.startswith(FRED_PREFIX):
        return f"`finscale data refresh --full --tickers --series {name.removeprefix(FRED_PREFIX)}`"
    return "`finscale data refresh --full`"


def data_config_hash(config: DataConfig) -> str:
    """Hash of the settings that shape stored raw data (not timeouts, retries or mirror)."""
    return config_hash({"start": config.start.isoformat(),
                        "validation": config.validation.model_dump(mode="json")})


def _iso(value: pd.Timestamp | date | None) -> str | None:
    return None if value is None else pd.Timestamp(value).date().isoformat()


def _first_disagreement(stored: pd.DataFrame, fetched: pd.DataFrame) -> str | None:
    """None when the two overlap frames agree; else a short description of the first difference."""
    if not stored.index.equals(fetched.index):
        only_stored = stored.index.difference(fetched.index)
        only_fetched = fetched.index.difference(stored.index)
        return (f"overlap dates differ (only stored: {[_iso(d) for d in only_stored[:3]]}, "
                f"only fetched: {[_iso(d) for d in only_fetched[:3]]})")
    if list(stored.columns) != list(fetched.columns):  # e.g. a source that now has vintages
        return f"columns differ (stored {list(stored.columns)}, fetched {list(fetched.columns)})"
    for column in stored.columns:
        left, right = stored[column].to_numpy(), fetched[column].to_numpy()
        if left.dtype.kind == "M":  # release days (vintages): exact
            same = (left == right) | (np.isnat(left) & np.isnat(right))
        else:
            same = np.isclose(left, right, rtol=RESTATEMENT_RTOL, atol=0.0, equal_nan=True)
        if not same.all():
            at = stored.index[~same][0]
            return f"{column} restated at {_iso(at)} ({left[~same][0]!r} -> {right[~same][0]!r})"
    return None


def _failed(plan: _SeriesPlan, reason: str, latest: ArtifactRecord | None) -> RefreshSummary:
    log.warning("%s: failed, previous version kept: %s", plan.name, reason)
    return RefreshSummary(
        plan.name, plan.symbol, RefreshStatus.FAILED,
        rows=latest.rows if latest else 0,
        version=latest.version if latest else None,
        md5=latest.md5 if latest else None, reason=reason,
    )


def _unchanged(plan: _SeriesPlan, latest: ArtifactRecord, reason: str) -> RefreshSummary:
    return RefreshSummary(plan.name, plan.symbol, RefreshStatus.UNCHANGED, 0, latest.rows,
                          latest.version, latest.md5, reason)


def _save(
    manifest: Manifest, plan: _SeriesPlan, frame: pd.DataFrame, meta: dict[str, Any]
) -> ArtifactRecord:
    stored = save_frame(
        manifest, frame, name=plan.name, kind=plan.kind, directory=plan.directory,
        source=plan.source_name, config_hash=plan.config_hash, meta={**plan.meta, **meta},
    )
    return stored.record


def _withdrawn_rows(stored: pd.DataFrame | None, fetched: pd.DataFrame) -> str | None:
    """None unless the source's history ends before the stored one; else what it withdrew."""
    if stored is None or stored.empty or fetched.empty or fetched.index[-1] >= stored.index[-1]:
        return None
    gone = stored.index[stored.index > fetched.index[-1]]
    shown = ", ".join(str(_iso(d)) for d in gone[:3]) + (" ..." if len(gone) > 3 else "")
    return (f"source withdrew the {len(gone)} newest stored row(s) ({shown}); its history "
            f"ends {_iso(fetched.index[-1])}")


def _full_refresh(
    manifest: Manifest, plan: _SeriesPlan, start: date, latest: ArtifactRecord | None,
    stored: pd.DataFrame | None, restated_because: str | None, *, asked_full: bool,
) -> RefreshSummary:
    """Fetch the whole history, validate, and store it unless identical to what is stored.

    A history shorter than the stored one is refused unless a full refresh was asked for.
    """
    fetched = plan.fetch(start)
    withdrawn = _withdrawn_rows(stored, fetched)
    if withdrawn is not None and not asked_full:
        return _failed(plan, f"{withdrawn}; refusing to shrink history: run "
                       f"{full_refresh_hint(plan.name)} to store the shorter history", latest)
    restated_because = withdrawn or restated_because
    frame = plan.clean(fetched)
    if latest is not None and stored is not None and frame.equals(stored):
        return _unchanged(plan, latest, "full fetch identical to stored version")
    meta = {"fetch_start": _iso(start), "fetch_last": _iso(frame.index[-1]), "full_fetch": True,
            "rows_fetched": len(fetched), "restated": restated_because}
    record = _save(manifest, plan, frame, meta)
    previous_rows = len(stored) if stored is not None else (latest.rows if latest else 0)
    status = RefreshStatus.RESTATED if restated_because else RefreshStatus.NEW_ROWS
    reason = restated_because or ("full fetch" if latest is not None else "first fetch")
    return RefreshSummary(plan.name, plan.symbol, status, max(0, len(frame) - previous_rows),
                          len(frame), record.version, record.md5, reason)


def _incremental_refresh(
    manifest: Manifest, plan: _SeriesPlan, config: DataConfig, latest: ArtifactRecord,
    stored: pd.DataFrame,
) -> RefreshSummary:
    """Fetch the overlap onwards; append, report unchanged, or fall back to a full fetch."""
    overlap_start = stored.index[max(0, len(stored) - config.overlap_days)]
    fetched = plan.fetch(overlap_start.date())
    last_stored = stored.index[-1]
    if fetched.empty:
        disagreement: str | None = f"no rows since {_iso(overlap_start)}, though stored"
    else:
        fetched = plan.clean(fetched)
        disagreement = _first_disagreement(
            stored.loc[stored.index >= overlap_start], fetched.loc[fetched.index <= last_stored]
        )
    if disagreement is not None:
        log.info("%s: %s; re-fetching full history", plan.name, disagreement)
        return _full_refresh(manifest, plan, config.start, latest, stored, disagreement,
                             asked_full=False)
    new_rows = fetched.loc[fetched.index > last_stored]
    if new_rows.empty:
        return _unchanged(plan, latest, f"no rows after {_iso(last_stored)}")
    merged = plan.clean(pd.concat([stored, new_rows]))
    meta = {"fetch_start": _iso(overlap_start), "fetch_last": _iso(merged.index[-1]),
            "full_fetch": False, "rows_fetched": len(fetched), "restated": None}
    record = _save(manifest, plan, merged, meta)
    return RefreshSummary(plan.name, plan.symbol, RefreshStatus.NEW_ROWS, len(new_rows),
                          len(merged), record.version, record.md5,
                          f"appended {_iso(new_rows.index[0])}..{_iso(new_rows.index[-1])}")


def _source_unchanged(
    manifest: Manifest, plan: _SeriesPlan, latest: ArtifactRecord | None, fingerprint: str | None
) -> bool:
    """True when the source vouches for identical content and the stored file is intact.

    The shortcut needs a source fingerprint equal to the one the latest version was built
    from, the same data config, and the stored file's MD5 still matching the manifest.
    """
    if fingerprint is None or latest is None:
        return False
    if latest.meta.get(FINGERPRINT_META_KEY) != fingerprint:
        return False
    if latest.config_hash != plan.config_hash:
        return False
    path = manifest.absolute(latest)
    return path.is_file() and md5_file(path) == latest.md5


def _load_stored(
    manifest: Manifest, plan: _SeriesPlan, latest: ArtifactRecord | None, full: bool
) -> tuple[pd.DataFrame | None, str | None]:
    """The stored frame (MD5-verified) and, for a full refresh over a damaged file, why not.

    A damaged stored file fails an incremental refresh (ChecksumMismatchError, never a
    silent re-use); a full refresh needs nothing from it, so it re-fetches and repairs.
    """
    if latest is None:
        return None, None
    try:
        return load_frame(manifest, latest), None
    except ChecksumMismatchError as exc:
        if not full:
            raise ChecksumMismatchError(
                f"{exc}; run {full_refresh_hint(plan.name)} to re-fetch it", path=exc.path
            ) from exc
        return None, f"stored version {latest.version} failed its MD5 check, re-fetched: {exc}"


def _refresh_series(
    manifest: Manifest, plan: _SeriesPlan, config: DataConfig, full: bool
) -> RefreshSummary:
    """Refresh one series; permanent problems become a ``failed`` summary, transient raise."""
    latest = manifest.latest(plan.name)
    try:
        fingerprint = plan.fingerprint()
        plan = replace(plan, meta={**plan.meta, FINGERPRINT_META_KEY: fingerprint})
        if not full and _source_unchanged(manifest, plan, latest, fingerprint):
            assert latest is not None
            return _unchanged(plan, latest, f"source unchanged since version {latest.version}")
        stored, damaged = _load_stored(manifest, plan, latest, full)
        if stored is None or stored.empty or full:
            return _full_refresh(manifest, plan, config.start, latest, stored, damaged,
                                 asked_full=full)
        return _incremental_refresh(manifest, plan, config, latest, stored)
    except (PermanentSourceError, DataValidationError, ChecksumMismatchError) as exc:
        return _failed(plan, str(exc), latest)


def _refresh(
    manifest: Manifest, plan: _SeriesPlan, config: DataConfig, full: bool,
    check_log: RefreshLog | None,
) -> RefreshSummary:
    """Refresh one series and log the check (a transient error is logged, then re-raised)."""
    started = time.perf_counter()
    own_log = check_log is None
    check_log = RefreshLog(manifest.url) if check_log is None else check_log
    try:
        summary = _refresh_series(manifest, plan, config, full)
    except TransientSourceError as exc:
        check_log.record(name=plan.name, source=plan.source_name,
                         status=RefreshStatus.FAILED.value, rows_added=0, version=None,
                         reason=f"{type(exc).__name__}: {exc}")
        raise
    else:
        check_log.record(name=plan.name, source=plan.source_name, status=summary.status.value,
                         rows_added=summary.rows_added, version=summary.version,
                         reason=summary.reason)
    finally:
        if own_log:
            check_log.close()
    log.info("%s: %s, +%d rows (%d total) in %.2fs%s", plan.name, summary.status.value,
             summary.rows_added, summary.rows, time.perf_counter() - started,
             f" [{summary.reason}]" if summary.reason else "")
    return summary


def _market_plan(
    workspace: Workspace, source: MarketSource, ticker: str, config: DataConfig, clock: Clock
) -> _SeriesPlan:
    columns = list(MARKET_COLUMNS)

    def clean(frame: pd.DataFrame) -> pd.DataFrame:
        return ensure_valid_market(frame, ticker, config.validation, clock=clock)[columns]

    return _SeriesPlan(
        name=market_artifact_name(ticker), kind=MARKET_KIND, symbol=ticker,
        directory=workspace.raw_dir / MARKET_SUBDIR, source_name=source.name,
        fetch=lambda start: call_with_retry(
            lambda: source.fetch_bars(ticker, start, None), retry=config.retry,
            what=f"{source.name}: {ticker} bars from {_iso(start)}"),
        clean=clean,
        config_hash=data_config_hash(config), meta={"ticker": ticker},
        fingerprint=lambda: source.bars_fingerprint(ticker)
        if isinstance(source, FingerprintedMarketSource) else None,
    )


def _macro_plan(
    workspace: Workspace, source: MacroSource, series_id: str, config: DataConfig, clock: Clock
) -> _SeriesPlan:
    return _SeriesPlan(
        name=fred_artifact_name(series_id), kind=FRED_KIND, symbol=series_id,
        directory=workspace.raw_dir / FRED_SUBDIR, source_name=source.name,
        fetch=lambda start: call_with_retry(
            lambda: source.fetch_series(series_id, start, None), retry=config.retry,
            what=f"{source.name}: {series_id} from {_iso(start)}"),
        clean=lambda frame: ensure_valid_macro(frame, series_id, clock=clock),
        config_hash=data_config_hash(config), meta={"series_id": series_id},
        fingerprint=lambda: source.series_fingerprint(series_id)
        if isinstance(source, FingerprintedMacroSource) else None,
    )


def refresh_market(
    manifest: Manifest, workspace: Workspace, source: MarketSource, ticker: str,
    config: DataConfig, *, full: bool = False, check_log: RefreshLog | None = None,
    clock: Clock = utc_now,
) -> RefreshSummary:
    """Refresh ``raw/market/<ticker>``; raises TransientSourceError so callers may retry.

    The check goes to ``check_log`` (a log on the manifest's database when None). An invalid
    ticker raises InvalidSymbolError before anything is fetched or logged.
    """
    plan = _market_plan(workspace, source, check_symbol(ticker), config, clock)
    return _refresh(manifest, plan, config, full, check_log)


def refresh_macro(
    manifest: Manifest, workspace: Workspace, source: MacroSource, series_id: str,
    config: DataConfig, *, full: bool = False, check_log: RefreshLog | None = None,
    clock: Clock = utc_now,
) -> RefreshSummary:
    """Refresh ``raw/fred/<series_id>``; raises TransientSourceError so callers may retry.

    The check goes to ``check_log`` (a log on the manifest's database when None). An invalid
    series id raises InvalidSymbolError before anything is fetched or logged.
    """
    plan = _macro_plan(workspace, source, check_symbol(series_id), config, clock)
    return _refresh(manifest, plan, config, full, check_log)


def failure_summary(name: str, error: BaseException | str) -> RefreshSummary:
    """A ``failed`` summary for a series whose refresh raised (e.g. retries exhausted)."""
    return RefreshSummary(name, name.rsplit("/", 1)[-1], RefreshStatus.FAILED, reason=str(error))


def refresh_universe(
    manifest: Manifest, workspace: Workspace, config: DataConfig, *,
    market_source: MarketSource | None, macro_source: MacroSource | None,
    tickers: Sequence[str] | None = None, fred_series: Sequence[str] | None = None,
    full: bool = False, clock: Clock = utc_now,
) -> list[RefreshSummary]:
    """Refresh every ticker and series (config's universe when None); one failure stops none.

    A source of None skips that half of the universe. The one exception to "carry on" is
    SourceUnreachableError: the vendor's host is down for every series, so it propagates.
    """
    tickers, fred_series = resolve_universe(config, tickers, fred_series)
    if isinstance(macro_source, FredSource) and fred_series:
        macro_source.require_key()  # a missing key fails once, before any series
    check_log = RefreshLog(manifest.url)
    jobs: list[tuple[str, Callable[[], RefreshSummary]]] = []
    if market_source is not None:
        for ticker in tickers:
            jobs.append((market_artifact_name(ticker), lambda t=ticker: refresh_market(
                manifest, workspace, market_source, t, config, full=full, check_log=check_log,
                clock=clock)))
    if macro_source is not None:
        for series_id in fred_series:
            jobs.append((fred_artifact_name(series_id), lambda s=series_id: refresh_macro(
                manifest, workspace, macro_source, s, config, full=full, check_log=check_log,
                clock=clock)))
    summaries: list[RefreshSummary] = []
    try:
        for position, (name, job) in enumerate(jobs, start=1):
            log.info("[%d/%d] refreshing %s", position, len(jobs), name)
            try:
                summaries.append(job())
            except SourceUnreachableError:
                raise  # the host is down for every series: fail fast, not N slow failures
            except TransientSourceError as exc:
                summaries.append(failure_summary(name, exc))
                log.warning("%s: failed after retries, previous version kept: %s", name, exc)
    finally:
        check_log.close()
    return summaries
