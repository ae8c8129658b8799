"""Flow ``data_refresh``: refresh every ticker and FRED series, one task each, in parallel.

Orchestration only: plan the universe (which checks the FRED key once), submit one task per
series, gather the summaries. A task that still fails after its retries becomes a ``failed``
summary, so one bad series never hides the others' results; once every series was attempted
and the good ones stored, any failure fails the run (``RefreshFailedError``, naming each
failed series) so a nightly refresh with an invalid or missing series never ends green.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture

from finscale.data.config import SourceName, Symbol
from finscale.data.refresh import (
    RefreshStatus,
    RefreshSummary,
    failure_summary,
    fred_artifact_name,
    market_artifact_name,
)
from tasks.data import plan_universe, refresh_fred_series, refresh_market_ticker


class RefreshFailedError(RuntimeError):
    """Some series failed (the others were refreshed); ``summaries`` holds every outcome."""

    def __init__(self, summaries: list[RefreshSummary]) -> None:
        failed = [s for s in summaries if s.status is RefreshStatus.FAILED]
        details = "; ".join(f"{s.name}: {s.reason}" for s in failed)
        super().__init__(
            f"{len(failed)} of {len(summaries)} series failed "
            f"({', '.join(s.name for s in failed)}); previous versions kept: {details}"
        )
        self.summaries = summaries

    def __reduce__(self) -> tuple[Any, ...]:
        # Prefect pickles the exception as the run's result: rebuild it from the summaries
        return (type(self), (self.summaries,))


def _gather(name: str, future: PrefectFuture[RefreshSummary]) -> RefreshSummary:
    outcome = future.result(raise_on_failure=False)
    return outcome if isinstance(outcome, RefreshSummary) else failure_summary(name, outcome)


@flow(name="data_refresh", log_prints=True)
def data_refresh(
    tickers: list[Symbol] | None = None,
    fred_series: list[Symbol] | None = None,
    source: SourceName = "csv",
    mirror: str | None = None,
    full: bool = False,
) -> list[RefreshSummary]:
    """Incremental, validated refresh; returns one summary per ticker and series.

    Fails (after every series was attempted and the good ones stored) when any series
    failed, naming each; fails before any series when the FRED key is missing.

    Args:
        tickers: Market tickers to refresh; empty (null) = data.tickers of the config,
            [] = none. Each must match data.config.SYMBOL_PATTERN (e.g. SPY, BRK-B); a
            bad one fails the run before it starts.
        fred_series: FRED series to refresh; empty (null) = data.fred_series of the config,
            [] = none. Same pattern as tickers (e.g. DGS10).
        source: Where data comes from: online = Yahoo bars + FRED series (needs FRED_API_KEY
            on the worker), yahoo = Yahoo bars only, fred = FRED series only, csv = both from
            the mirror folder (offline).
        mirror: Mirror folder (market/, fred/) for source csv; empty = data.mirror, else
            $FINSCALE_DATA_MIRROR on the worker.
        full: Re-fetch complete histories. An incremental refresh re-reads only the last
            data.overlap_days rows, so a restatement older than that is caught only by a
            full refresh.
    """
    chosen_tickers, chosen_series = plan_universe(tickers, fred_series, source, mirror)
    submitted = [
        (market_artifact_name(t), refresh_market_ticker.submit(t, source, mirror, full))
        for t in chosen_tickers
    ] + [
        (fred_artifact_name(s), refresh_fred_series.submit(s, source, mirror, full))
        for s in chosen_series
    ]
    summaries = [_gather(name, future) for name, future in submitted]
    for summary in summaries:
        print(f"{summary.name}: {summary.status.value} +{summary.rows_added} {summary.reason}")
    if any(s.status is RefreshStatus.FAILED for s in summaries):
        raise RefreshFailedError(summaries)
    return summaries
