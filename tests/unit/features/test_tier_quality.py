"""After the declared warm-up every column of every tier is finite and varies (real SPY)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finscale.features.engine import compute_tier, load_tier

TIERS = ("a20", "a50", "a100", "a200", "a250", "a500")


@pytest.fixture(scope="module")
def a500(spy_bars: pd.DataFrame, vix_bars: pd.DataFrame, tiers_dir: Path) -> pd.DataFrame:
    return compute_tier(load_tier("a500", tiers_dir), spy_bars, vix=vix_bars)


@pytest.mark.parametrize("name", TIERS)
def test_no_nan_constant_or_infinite_column_after_warmup(
    a500: pd.DataFrame, tiers_dir: Path, name: str
) -> None:
    tier = load_tier(name, tiers_dir)
    table = a500.loc[:, list(tier.names)].iloc[tier.max_lookback:]
    values = table.to_numpy()
    assert np.isfinite(values).all(), table.columns[~np.isfinite(values).all(axis=0)].tolist()
    constant = table.columns[table.nunique() <= 1].tolist()
    assert not constant
    assert (table.dtypes == np.float64).all()


def test_warmup_is_tight(a500: pd.DataFrame, tiers_dir: Path) -> None:
    """max_lookback is an honest bound: some column still needs most of it."""
    tier = load_tier("a500", tiers_dir)
    first_valid = a500.notna().to_numpy().argmax(axis=0)
    assert first_valid.max() <= tier.max_lookback
    assert first_valid.max() >= tier.max_lookback - 10
