"""Flow ``build_features``: feature tables for a tier and tickers, optionally the dataset.

Orchestration only: one cached task per (tier, ticker); unchanged raw data and config
turn every task into a cache hit. The flow returns small typed summaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from prefect import flow

from tasks.features import DatasetRef, FeatureTableRef, build_dataset_task, build_feature_table_task

DEFAULT_TICKERS = ["SPY", "DIA", "QQQ"]


@dataclass(frozen=True)
class FeatureTableOutcome:
    """One feature table and the final state name of its task ('Completed' or 'Cached')."""

    table: FeatureTableRef
    state: str


@dataclass(frozen=True)
class BuildFeaturesResult:
    """What the flow did: per-table outcomes and the dataset, if one was built."""

    tables: list[FeatureTableOutcome]
    dataset: DatasetRef | None


def dataset_overrides(
    tier: str, tickers: list[str], timescale: str, include_vix: bool, include_macro: bool
) -> list[str]:
    """Config overrides for a dataset of the first ticker with the others as cross-assets."""
    others = ",".join(tickers[1:])
    return [f"dataset.tier={tier}", f"dataset.ticker={tickers[0]}",
            f"dataset.timescale={timescale}", f"dataset.cross_assets=[{others}]",
            f"dataset.include_vix={str(include_vix).lower()}",
            f"dataset.include_macro={str(include_macro).lower()}"]


@flow(name="build-features", log_prints=True)
def build_features(
    tier: str = "a20",
    tickers: list[str] = DEFAULT_TICKERS,
    timescale: Literal["daily", "weekly"] = "daily",
    include_vix: bool = True,
    include_macro: bool = True,
    build_dataset: bool = False,
    home: str | None = None,
    config_path: str | None = None,
) -> BuildFeaturesResult:
    """Build ``features/<tier>/<ticker>`` for each ticker; with ``build_dataset`` also the
    dataset of ``tickers[0]`` (others as cross-asset inputs, VIX/macro as chosen)."""
    if not tickers:
        raise ValueError("build_features: tickers is empty")
    outcomes = []
    for ticker in tickers:
        state = build_feature_table_task(home, config_path, tier, ticker, timescale,
                                         return_state=True)
        outcomes.append(FeatureTableOutcome(table=state.result(), state=state.name))
    dataset = None
    if build_dataset:
        overrides = dataset_overrides(tier, tickers, timescale, include_vix, include_macro)
        dataset = build_dataset_task(home, config_path, overrides)
    return BuildFeaturesResult(tables=outcomes, dataset=dataset)
