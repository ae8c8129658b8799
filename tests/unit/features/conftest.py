"""Real SPY, VIX and FRED frames from the shared data mirror, in the source layouts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from finscale.data.sources.base import MACRO_INDEX, MARKET_COLUMNS, MARKET_INDEX
from finscale.features.paths import REPO_ROOT

TIERS_DIR = REPO_ROOT / "configs" / "features"
MACRO_SERIES = ("DGS10", "DGS2", "T10Y2Y", "FEDFUNDS", "UNRATE", "CPIAUCSL", "BAMLH0A0HYM2")


def read_bars(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, index_col=MARKET_INDEX, parse_dates=True)
    return frame.loc[:, list(MARKET_COLUMNS)].astype("float64")


@pytest.fixture(scope="session")
def tiers_dir() -> Path:
    return TIERS_DIR


@pytest.fixture(scope="session")
def spy_bars(shared_data_dir: Path) -> pd.DataFrame:
    return read_bars(shared_data_dir / "market" / "SPY.csv")


@pytest.fixture(scope="session")
def vix_bars(shared_data_dir: Path) -> pd.DataFrame:
    return read_bars(shared_data_dir / "market" / "VIX.csv")


@pytest.fixture(scope="session")
def fred_series(shared_data_dir: Path) -> dict[str, pd.DataFrame]:
    series = {}
    for series_id in MACRO_SERIES:
        frame = pd.read_csv(shared_data_dir / "fred" / f"{series_id}.csv", index_col=MACRO_INDEX,
                            parse_dates=True)
        series[series_id] = frame.astype("float64")
    return series
