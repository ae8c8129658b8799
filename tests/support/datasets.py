"""Small dataset-test helpers: the repository's base config, synthetic OHLCV bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from finscale.config import AppConfig, load_config

REPO = Path(__file__).resolve().parents[2]


def base_config(*overrides: str) -> AppConfig:
    """configs/base.yaml with overrides."""
    return load_config(REPO / "configs" / "base.yaml", overrides=list(overrides))


def random_walk_bars(rows: int, seed: int) -> pd.DataFrame:
    """Business-day OHLCV of a log-normal random walk (High above Close, Low below)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    index = pd.bdate_range("2001-01-01", periods=rows, name="Date")
    high = close * (1 + rng.uniform(0, 0.02, rows))
    return pd.DataFrame({"Open": close, "High": high, "Low": close * 0.99, "Close": close,
                         "Adj Close": close, "Volume": np.full(rows, 1e6)}, index=index)
