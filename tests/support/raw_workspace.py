"""Fill a workspace's manifest with raw artifacts read from the shared CSV mirror.

Uses the storage layout of the data refresh: ``raw/market/<TICKER>`` (kind ``raw_market``,
DatetimeIndex ``Date``, float64 OHLCV) and ``raw/fred/<SERIES>`` (kind ``raw_fred``,
DatetimeIndex ``date``, one float64 column named the series id).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from finscale.data.refresh import FRED_KIND, MARKET_KIND, fred_artifact_name, market_artifact_name
from finscale.data.sources.base import MACRO_INDEX, MARKET_COLUMNS, MARKET_INDEX
from finscale.manifest.artifacts import save_frame
from finscale.manifest.store import ArtifactRecord, Manifest
from finscale.workspace import Workspace

RAW_SOURCE = "csv-mirror"
RAW_CONFIG_HASH = "raw"


def read_market_csv(path: Path) -> pd.DataFrame:
    """A market CSV in the stored layout."""
    frame = pd.read_csv(path, parse_dates=[MARKET_INDEX], index_col=MARKET_INDEX)
    return frame[list(MARKET_COLUMNS)].astype("float64")


def read_fred_csv(path: Path) -> pd.DataFrame:
    """A FRED CSV in the stored layout."""
    frame = pd.read_csv(path, parse_dates=[MACRO_INDEX], index_col=MACRO_INDEX)
    return frame.astype("float64")


def _store(
    manifest: Manifest, workspace: Workspace, name: str, kind: str, frame: pd.DataFrame
) -> ArtifactRecord:
    return save_frame(manifest, frame, name=name, kind=kind, directory=workspace.raw_dir,
                      source=RAW_SOURCE, config_hash=RAW_CONFIG_HASH).record


def store_raw_market(
    manifest: Manifest, workspace: Workspace, ticker: str, frame: pd.DataFrame
) -> ArtifactRecord:
    """Store bars as the data refresh would name them."""
    return _store(manifest, workspace, market_artifact_name(ticker), MARKET_KIND, frame)


def store_raw_fred(
    manifest: Manifest, workspace: Workspace, series: str, frame: pd.DataFrame
) -> ArtifactRecord:
    """Store a FRED series as the data refresh would name it."""
    return _store(manifest, workspace, fred_artifact_name(series), FRED_KIND, frame)


def fill_raw_workspace(
    workspace: Workspace,
    data_dir: Path,
    tickers: Iterable[str] | None = None,
    fred_series: Iterable[str] | None = None,
) -> dict[str, ArtifactRecord]:
    """Store the mirror's market and FRED files (all, or the named ones); records by name."""
    manifest = Manifest(workspace.manifest_url, workspace.home)
    records: dict[str, ArtifactRecord] = {}
    try:
        market = sorted((data_dir / "market").glob("*.csv"))
        for path in market:
            if tickers is None or path.stem in set(tickers):
                rec = store_raw_market(manifest, workspace, path.stem, read_market_csv(path))
                records[rec.name] = rec
        for path in sorted((data_dir / "fred").glob("*.csv")):
            if fred_series is None or path.stem in set(fred_series):
                rec = store_raw_fred(manifest, workspace, path.stem, read_fred_csv(path))
                records[rec.name] = rec
    finally:
        manifest.close()
    return records
