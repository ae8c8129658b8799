"""Prefect tasks of the data refresh: one library call each, plus retries and cache policy.

Cache policy: NONE, deliberately. A refresh exists to look at the source *now*; a cache
key such as (source, symbol, date) would turn a second run on the same day (after a vendor
published late, restated history, or after the workspace was rebuilt) into a stale hit that
skips the fetch and the manifest write. The library already makes the repeat cheap and
idempotent: an unchanged series writes nothing and registers no new version.

Retries: transient faults only (``TransientSourceError``, task timeouts), with jittered
delays. Permanent errors (unknown ticker, bad key, no mirror) may be raised by a task; they
are not retried (``retry_transient_only``) and the flow turns them into a ``failed``
summary, as the library does for invalid data. An unreachable host is not retried either
(offline runs fail fast). Tasks take and return names, paths and small dataclasses, never frames.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE

from finscale.config import AppConfig
from finscale.data.refresh import (
    RefreshSummary,
    refresh_macro,
    refresh_market,
    resolve_universe,
)
from finscale.data.sources import make_macro_source, make_market_source
from finscale.data.sources.base import (
    PermanentSourceError,
    SourceUnreachableError,
    TransientSourceError,
)
from finscale.manifest.store import Manifest
from finscale.runtime import load_runtime
from finscale.workspace import Workspace

SeriesKind = Literal["market", "fred"]
REFRESH_RETRIES = 3
REFRESH_RETRY_DELAYS_S = [2, 10, 30]
RETRY_JITTER_FACTOR = 0.5
# yfinance ignores its own timeout when the network hangs (STACK-NOTES): bound it here.
REFRESH_TIMEOUT_S = 600


def retry_transient_only(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry condition: only transient source errors and timeouts, never permanent ones."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        try:
            error = state.result(raise_on_failure=False)
        except Exception:  # an unreadable result is no reason to retry
            return False
    if isinstance(error, SourceUnreachableError):
        return False
    return isinstance(error, TransientSourceError | TimeoutError)


def load_source_runtime(source: str) -> tuple[AppConfig, Workspace]:
    """The runtime config (see ``finscale.runtime``) with ``data.source`` set; the workspace."""
    return load_runtime(overrides=[f"data.source={source}"])


@task(cache_policy=NO_CACHE)
def plan_universe(
    tickers: list[str] | None, fred_series: list[str] | None, source: str
) -> tuple[list[str], list[str]]:
    """The tickers and series to refresh (the config's universe where None)."""
    config, _ = load_source_runtime(source)
    chosen_tickers, chosen_series = resolve_universe(config.data, tickers, fred_series)
    return list(chosen_tickers), list(chosen_series)


REFRESH_TASK_OPTIONS: dict[str, Any] = {
    "retries": REFRESH_RETRIES,
    "retry_delay_seconds": REFRESH_RETRY_DELAYS_S,
    "retry_jitter_factor": RETRY_JITTER_FACTOR,
    "retry_condition_fn": retry_transient_only,
    "timeout_seconds": REFRESH_TIMEOUT_S,
    "cache_policy": NO_CACHE,
}


def _refresh_one(kind: SeriesKind, symbol: str, source: str, mirror: str | None,
                 full: bool) -> RefreshSummary:
    """The one library call behind both refresh tasks, with its manifest opened and closed."""
    config, workspace = load_source_runtime(source)
    mirror_dir = Path(mirror) if mirror else None
    manifest = Manifest.for_workspace(workspace)
    try:
        if kind == "market":
            market = make_market_source(config.data, mirror_dir, cache_dir=workspace.cache_dir)
            if market is None:
                raise PermanentSourceError(f"source {source!r} serves no market bars ({symbol})")
            return refresh_market(manifest, workspace, market, symbol, config.data, full=full)
        macro = make_macro_source(config.data, mirror_dir)
        if macro is None:
            raise PermanentSourceError(f"source {source!r} serves no FRED series ({symbol})")
        return refresh_macro(manifest, workspace, macro, symbol, config.data, full=full)
    finally:
        manifest.close()


@task(task_run_name="refresh-market-{ticker}", **REFRESH_TASK_OPTIONS)
def refresh_market_ticker(
    ticker: str, source: str, mirror: str | None, full: bool
) -> RefreshSummary:
    """Refresh ``raw/market/<ticker>`` from ``source``."""
    return _refresh_one("market", ticker, source, mirror, full)


@task(task_run_name="refresh-fred-{series_id}", **REFRESH_TASK_OPTIONS)
def refresh_fred_series(
    series_id: str, source: str, mirror: str | None, full: bool
) -> RefreshSummary:
    """Refresh ``raw/fred/<series_id>`` from ``source``."""
    return _refresh_one("fred", series_id, source, mirror, full)
