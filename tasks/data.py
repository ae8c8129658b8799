"""Prefect tasks of the data refresh: one library call each, plus retries and cache policy.

Cache policy: NONE, deliberately. A refresh exists to look at the source *now*; a cache
key such as (source, symbol, date) would turn a second run on the same day (after a vendor
published late, restated history, or after the workspace was rebuilt) into a stale hit that
skips the fetch and the manifest write. The library already makes the repeat cheap and
idempotent: an unchanged series writes nothing and registers no new version.

Retries: ONE layer for source faults, the library's (``data.retry``: transient faults retried
with jittered back-off, permanent ones and an unreachable host not at all). A Prefect retry
around it would multiply the fetches (3 task retries x 4 library attempts = 16 per series)
and the hang time. So Prefect retries only what the library did not classify
(``retry_unclassified_only``: a database or file-system error, say), once; never a
``SourceError``, whose retries are spent, and never a task timeout, which is only a backstop
above the library's own bound. Tasks take and return names, paths and small dataclasses,
never frames (and never a secret: results may be persisted).

The FRED key: ``$FRED_API_KEY`` on the worker, else the Prefect Secret block
``FRED_SECRET_BLOCK``, read once by ``plan_universe`` before any series is submitted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from prefect import task
from prefect.blocks.system import Secret
from prefect.cache_policies import NO_CACHE

from finscale.config import AppConfig
from finscale.data.refresh import (
    RefreshSummary,
    refresh_macro,
    refresh_market,
    resolve_universe,
)
from finscale.data.sources import make_macro_source, make_market_source
from finscale.data.sources.base import PermanentSourceError, SourceError
from finscale.data.sources.fred import FRED_API_KEY_ENV, FredSource
from finscale.manifest.store import Manifest
from finscale.runtime import load_runtime
from finscale.workspace import Workspace

SeriesKind = Literal["market", "fred"]
# Prefect retries errors the library could not classify, once (see the module docstring).
REFRESH_RETRIES = 1
REFRESH_RETRY_DELAYS_S = [10]
RETRY_JITTER_FACTOR = 0.5
# A backstop only: the library bounds each fetch (attempts x data.timeout_s + back-off).
REFRESH_TIMEOUT_S = 600
# The Prefect Secret block holding the FRED API key, used when $FRED_API_KEY is unset.
FRED_SECRET_BLOCK = "fred-api-key"


def retry_unclassified_only(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry condition: only errors outside the library's taxonomy, never a source error.

    A ``SourceError`` was either retried by the library already (transient) or is not worth
    retrying (permanent, unreachable); a ``TimeoutError`` is the task's backstop timeout.
    """
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        try:
            error = state.result(raise_on_failure=False)
        except Exception:  # an unreadable result is no reason to retry
            return False
    if not isinstance(error, Exception):
        return False
    return not isinstance(error, SourceError | TimeoutError)


def load_source_runtime(source: str) -> tuple[AppConfig, Workspace]:
    """The runtime config (see ``finscale.runtime``) with ``data.source`` set; the workspace."""
    return load_runtime(overrides=[f"data.source={source}"])


def fred_key_from_secret_block() -> str | None:
    """The key saved in the Secret block ``FRED_SECRET_BLOCK``, or None when there is none."""
    try:
        block = Secret.load(FRED_SECRET_BLOCK)
    except ValueError:  # Prefect's "Unable to find block document named ..."
        return None
    # the raw string: Secret.get() would JSON-decode a key that happens to be all digits
    value = block.value.get_secret_value()
    return str(value).strip() or None


def require_fred_key(source: FredSource) -> None:
    """Fail once, before any series, unless a FRED key is in the environment or the block.

    A key found only in the Secret block is put into this flow run's environment, where
    ``FredSource`` reads it; it is never passed as a parameter or returned as a result.
    """
    if not os.environ.get(FRED_API_KEY_ENV, "").strip():
        key = fred_key_from_secret_block()
        if key is not None:
            os.environ[FRED_API_KEY_ENV] = key
    try:
        source.require_key()
    except PermanentSourceError as exc:
        raise PermanentSourceError(
            f"{exc}; on a worker, set it in the worker's environment or save it in the "
            f"Prefect Secret block {FRED_SECRET_BLOCK!r}"
        ) from None


@task(cache_policy=NO_CACHE)
def plan_universe(
    tickers: list[str] | None, fred_series: list[str] | None, source: str,
    mirror: str | None = None,
) -> tuple[list[str], list[str]]:
    """The tickers and series to refresh (the config's universe where None).

    Checks what every series would otherwise find out on its own, once: the FRED key.
    """
    config, _ = load_source_runtime(source)
    chosen_tickers, chosen_series = resolve_universe(config.data, tickers, fred_series)
    if chosen_series:
        macro = make_macro_source(config.data, Path(mirror) if mirror else None)
        if isinstance(macro, FredSource):
            require_fred_key(macro)
    return list(chosen_tickers), list(chosen_series)


REFRESH_TASK_OPTIONS: dict[str, Any] = {
    "retries": REFRESH_RETRIES,
    "retry_delay_seconds": REFRESH_RETRY_DELAYS_S,
    "retry_jitter_factor": RETRY_JITTER_FACTOR,
    "retry_condition_fn": retry_unclassified_only,
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
