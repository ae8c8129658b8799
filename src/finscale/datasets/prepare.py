"""Gather one dataset's inputs through the manifest and assemble its (un-normalised) table.

Single ticker: the target's tier features, VIX features, macro features and the tier
features of ``cross_assets`` (prefixed ``<TICKER>__``), all aligned on the target's bars.
Pooled: the same per ticker of ``pooled_tickers``, stacked with a ticker id.
"""

from __future__ import annotations

import pandas as pd

from finscale.config.schema import AppConfig
from finscale.data.refresh import fred_artifact_name
from finscale.datasets.assemble import PreparedTable, assemble_table
from finscale.features.build import (
    VIX_TICKER,
    build_feature_table,
    load_bars,
    require_raw,
)
from finscale.features.declarations import FeatureTier
from finscale.features.macro import compute_macro_features, load_macro_tier
from finscale.features.vix import compute_vix_features, load_vix_tier
from finscale.manifest.artifacts import load_frame
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace

CROSS_ASSET_SEPARATOR = "__"


def _tier_block(
    manifest: Manifest, workspace: Workspace, config: AppConfig, ticker: str, parents: set[int]
) -> pd.DataFrame:
    dcfg = config.dataset
    result = build_feature_table(manifest, workspace, config.features, tier_name=dcfg.tier,
                                 ticker=ticker, timescale=dcfg.timescale)
    parents.add(result.record.id)
    return load_frame(manifest, result.record)


def macro_tier_for(config: AppConfig) -> FeatureTier:
    """The macro tier restricted to the series ``dataset.macro_series`` allows."""
    tier = load_macro_tier(config.features.tiers_dir)
    allowed = set(config.dataset.macro_series)
    kept = tuple(d for d in tier.declarations if d.params.get("series") in allowed)
    return tier.model_copy(update={"declarations": kept})


def _macro_block(
    manifest: Manifest, config: AppConfig, index: pd.DatetimeIndex, parents: set[int]
) -> pd.DataFrame:
    tier = macro_tier_for(config)
    series = {}
    for series_id in sorted({str(d.params["series"]) for d in tier.declarations}):
        record = require_raw(manifest, fred_artifact_name(series_id))
        parents.add(record.id)
        series[series_id] = load_frame(manifest, record)
    return compute_macro_features(series, index, config.features, tier=tier)


def input_blocks(
    manifest: Manifest, workspace: Workspace, config: AppConfig, ticker: str,
    bars: pd.DataFrame, parents: set[int],
) -> dict[str, pd.DataFrame]:
    """Named input blocks of one target ticker, in blame order for the drop report."""
    dcfg = config.dataset
    index = pd.DatetimeIndex(bars.index)
    blocks = {f"features {dcfg.tier} {ticker}": _tier_block(manifest, workspace, config, ticker,
                                                             parents)}
    if dcfg.include_vix:
        vix_record, vix_bars = load_bars(manifest, VIX_TICKER)  # daily VIX, as of each bar
        parents.add(vix_record.id)
        blocks["vix"] = compute_vix_features(vix_bars, index,
                                             tier=load_vix_tier(config.features.tiers_dir),
                                             lag_sessions=config.features.vix_lag_sessions)
    if dcfg.include_macro and dcfg.macro_series:
        blocks["macro"] = _macro_block(manifest, config, index, parents)
    for other in dcfg.cross_assets:
        if other == ticker:
            continue
        frame = _tier_block(manifest, workspace, config, other, parents)
        blocks[f"cross-asset {other}"] = frame.add_prefix(f"{other}{CROSS_ASSET_SEPARATOR}")
    return blocks


def prepare_table(manifest: Manifest, workspace: Workspace, config: AppConfig) -> PreparedTable:
    """Assemble the dataset table described by ``config.dataset`` (single or pooled)."""
    dcfg = config.dataset
    tickers = dcfg.pooled_tickers or (dcfg.ticker,)
    parents: set[int] = set()
    tables, drops = [], []
    features: list[str] = []
    tasks: list[str] = []
    for ticker_id, ticker in enumerate(tickers):
        raw_record, bars = load_bars(manifest, ticker, dcfg.timescale)
        parents.add(raw_record.id)
        blocks = input_blocks(manifest, workspace, config, ticker, bars, parents)
        table, feats, task_cols, report = assemble_table(
            bars, blocks, ticker=ticker, ticker_id=ticker_id, horizon=dcfg.horizon,
            thresholds=dcfg.thresholds, timescale=dcfg.timescale,
        )
        if features and feats != features:
            raise ValueError(f"pooled ticker {ticker} has different feature columns than "
                             f"{tickers[0]}; pooled datasets need one column set")
        features, tasks = feats, task_cols
        tables.append(table)
        drops.append(report)
    return PreparedTable(table=pd.concat(tables, axis=0), features=tuple(features),
                         tasks=tuple(tasks), tickers=tuple(tickers), drops=tuple(drops),
                         parents=tuple(sorted(parents)))
