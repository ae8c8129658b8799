"""Flow ``build_features``: feature tables for a tier and tickers, optionally the dataset.

Orchestration only: one cached task per (tier, ticker); unchanged raw data and config
turn every task into a cache hit. Before each build an uncached check verifies the stored
table (MD5); when it is missing or altered the build's cache is refreshed, so a cache hit
never hands out a deleted or changed artifact. The flow returns small typed summaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from prefect import flow
from pydantic import Field

from tasks.features import (
    DatasetRef,
    FeatureTableRef,
    build_dataset_task,
    build_feature_table_task,
    feature_table_is_current_task,
)

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
    tickers: Annotated[list[str], Field(min_length=1)] = DEFAULT_TICKERS,
    timescale: Literal["daily", "weekly"] = "daily",
    build_dataset: bool = False,
    include_vix: bool = True,
    include_macro: bool = True,
    home: str | None = None,
    config_path: str | None = None,
) -> BuildFeaturesResult:
    """Build ``features/<tier>/<ticker>`` for each ticker; with ``build_dataset`` also the
    dataset of ``tickers[0]`` (others as cross-asset inputs, VIX/macro as chosen).

    Args:
        tier: feature tier, one of a20, a50, a100, a200, a250, a500 (configs/features).
        tickers: tickers to build feature tables for; with build_dataset the first is the
            target and the others are its cross-asset inputs.
        timescale: bars the features and labels are computed on (weekly = W-FRI bars).
        build_dataset: also build the dataset of tickers[0] (labels, splits, normalisation).
        include_vix: dataset step only: add the 8 VIX features (tables are unaffected).
        include_macro: dataset step only: add the FRED macro features (tables unaffected).
        home: workspace folder (FINSCALE_HOME); empty means the config's.
        config_path: config YAML; empty means configs/base.yaml.
    """
    if not tickers:
        raise ValueError("build_features: tickers is empty")
    outcomes = []
    for ticker in tickers:
        current = feature_table_is_current_task(home, config_path, tier, ticker, timescale)
        build = build_feature_table_task.with_options(refresh_cache=not current)
        state = build(home, config_path, tier, ticker, timescale, return_state=True)
        outcomes.append(FeatureTableOutcome(table=state.result(), state=state.name))
    dataset = None
    if build_dataset:
        overrides = dataset_overrides(tier, tickers, timescale, include_vix, include_macro)
        dataset = build_dataset_task(home, config_path, overrides)
    return BuildFeaturesResult(tables=outcomes, dataset=dataset)
