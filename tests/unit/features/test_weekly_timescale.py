"""Features on weekly bars: weekly families add no extra delay, annualisation uses 52
bars/year, no column is constant or all-NaN after warm-up, and everything stays causal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from finscale.datasets.timescales import to_weekly
from finscale.features.engine import compute_tier, load_tier
from finscale.features.inputs import WEEKLY

CUT_FRACTION = 0.6


@pytest.fixture(scope="module")
def weekly_spy(spy_bars: pd.DataFrame) -> pd.DataFrame:
    return to_weekly(spy_bars)


@pytest.fixture(scope="module")
def weekly_a500(
    weekly_spy: pd.DataFrame, vix_bars: pd.DataFrame, tiers_dir: Path
) -> pd.DataFrame:
    """As the feature build computes it: the VIX joins from its daily bars (default lag)."""
    return compute_tier(load_tier("a500", tiers_dir), weekly_spy, vix=vix_bars,
                        timescale=WEEKLY)


def test_weekly_indicators_on_weekly_bars_are_the_plain_indicator(
    weekly_a500: pd.DataFrame, weekly_spy: pd.DataFrame
) -> None:
    close = weekly_spy["Close"].to_numpy(np.float64)
    rsi = talib.RSI(close, timeperiod=14)
    k, _ = talib.STOCHRSI(close, timeperiod=14, fastk_period=5, fastd_period=3)
    np.testing.assert_array_equal(weekly_a500["rsi_14_weekly"].to_numpy(), rsi)
    np.testing.assert_array_equal(weekly_a500["stochrsi_k_14_5_3_weekly"].to_numpy(), k)


def test_weekly_realised_vol_is_annualised_with_52_bars(
    weekly_a500: pd.DataFrame, weekly_spy: pd.DataFrame, vix_bars: pd.DataFrame
) -> None:
    returns = np.log(weekly_spy["Close"]).diff()
    realised = returns.rolling(20).std() * np.sqrt(52) * 100.0
    # lag 1 VIX session: the close of the VIX day before each week's last trading day
    vix = vix_bars["Close"].shift(1).reindex(weekly_spy.index)
    expected = (vix - realised).to_numpy()
    np.testing.assert_allclose(weekly_a500["xvix_minus_rv_20"].to_numpy(), expected,
                               rtol=1e-9, equal_nan=True)


def test_weekly_weekday_feature_is_the_week_of_month(weekly_a500: pd.DataFrame) -> None:
    week_of_month = (weekly_a500.index.day.to_numpy() - 1) // 7
    angle = 2.0 * np.pi * week_of_month / 5.0
    np.testing.assert_allclose(weekly_a500["cal_day_of_week_sin"].to_numpy(), np.sin(angle))


def test_no_constant_or_nan_column_after_warmup_on_weekly_spy(
    weekly_a500: pd.DataFrame, tiers_dir: Path
) -> None:
    tier = load_tier("a500", tiers_dir)
    table = weekly_a500.iloc[tier.max_lookback:]
    finite = np.isfinite(table.to_numpy()).all(axis=0)
    assert finite.all(), table.columns[~finite].tolist()
    constant = table.columns[table.nunique() <= 1].tolist()
    assert not constant


def test_weekly_features_are_causal(
    weekly_a500: pd.DataFrame, weekly_spy: pd.DataFrame, vix_bars: pd.DataFrame,
    tiers_dir: Path,
) -> None:
    """Drop every weekly bar (and VIX day) after t: every a500 value at t and before is
    unchanged."""
    cut = int(len(weekly_spy) * CUT_FRACTION)
    end = weekly_spy.index[cut]
    truncated = compute_tier(load_tier("a500", tiers_dir), weekly_spy.loc[:end],
                             vix=vix_bars.loc[:end], timescale=WEEKLY)
    pd.testing.assert_frame_equal(truncated, weekly_a500.loc[:end])


def test_unknown_timescale_is_refused(weekly_spy: pd.DataFrame, tiers_dir: Path) -> None:
    with pytest.raises(ValueError, match="unknown timescale 'monthly'"):
        compute_tier(load_tier("a20", tiers_dir), weekly_spy, timescale="monthly")
