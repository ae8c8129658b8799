"""Flow ``data_refresh``: refresh every ticker and FRED series, one task each, in parallel.

Orchestration only: plan the universe, submit one task per series, gather the summaries.
A task that still fails after its retries becomes a ``failed`` summary, so one bad series
never hides the others' results.
"""

from __future__ import annotations

from prefect import flow
from prefect.futures import PrefectFuture

from finscale.data.config import SourceName
from finscale.data.refresh import (
    RefreshSummary,
    failure_summary,
    fred_artifact_name,
    market_artifact_name,
)
from tasks.data import plan_universe, refresh_fred_series, refresh_market_ticker


def _gather(name: str, future: PrefectFuture[RefreshSummary]) -> RefreshSummary:
    outcome = future.result(raise_on_failure=False)
    return outcome if isinstance(outcome, RefreshSummary) else failure_summary(name, outcome)


@flow(name="data_refresh", log_prints=True)
def data_refresh(
    tickers: list[str] | None = None,
    fred_series: list[str] | None = None,
    source: SourceName = "csv",
    mirror: str | None = None,
    full: bool = False,
) -> list[RefreshSummary]:
    """Incremental, validated refresh; returns one summary per ticker and series.

    Args:
        tickers: Market tickers to refresh; empty (null) = data.tickers of the config,
            [] = none.
        fred_series: FRED series to refresh; empty (null) = data.fred_series of the config,
            [] = none.
        source: Where data comes from: online = Yahoo bars + FRED series (needs FRED_API_KEY
            on the worker), yahoo = Yahoo bars only, fred = FRED series only, csv = both from
            the mirror folder (offline).
        mirror: Mirror folder (market/, fred/) for source csv; empty = data.mirror, else
            $FINSCALE_DATA_MIRROR on the worker.
        full: Re-fetch complete histories. An incremental refresh re-reads only the last
            data.overlap_days rows, so a restatement older than that is caught only by a
            full refresh.
    """
    chosen_tickers, chosen_series = plan_universe(tickers, fred_series, source)
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
    return summaries
