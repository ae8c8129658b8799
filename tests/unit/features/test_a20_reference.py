"""a20 equals direct TA-Lib calls on the same inputs; weekly values only after the week."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import talib

from finscale.features.engine import compute_tier, load_tier


@pytest.fixture(scope="module")
def a20(spy_bars: pd.DataFrame, tiers_dir: Path) -> pd.DataFrame:
    return compute_tier(load_tier("a20", tiers_dir), spy_bars)


def _zscore(values: np.ndarray, window: int) -> np.ndarray:
    roll = pd.Series(values).rolling(window)
    return ((pd.Series(values) - roll.mean()) / roll.std()).to_numpy()


def _expected(bars: pd.DataFrame) -> dict[str, np.ndarray]:
    o, h, low, c, v = (bars[k].to_numpy() for k in ("Open", "High", "Low", "Close", "Volume"))
    upper, _, lower = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    typical = (h + low + c) / 3.0
    vwap = talib.SUM(typical * v, 20) / talib.SUM(v, 20)
    out = {f"dema_{n}_dist": c / talib.DEMA(c, n) - 1 for n in (9, 10, 20, 25, 90)}
    out |= {f"sma_{n}_dist": c / talib.SMA(c, n) - 1 for n in (12, 50, 100, 200)}
    out |= {
        "rsi_14": talib.RSI(c, 14),
        "stochrsi_k_14_5_3": talib.STOCHRSI(c, 14, 5, 3)[0],
        "macd_12_26_9": talib.MACD(c, 12, 26, 9)[0] / c,
        "obv_z_20": _zscore(talib.OBV(c, v), 20),
        "adosc_3_10": talib.ADOSC(h, low, c, v, 3, 10) / talib.SMA(v, 10),
        "atr_14_frac": talib.ATR(h, low, c, 14) / c,
        "adx_14": talib.ADX(h, low, c, 14),
        "bb_pct_b_20_2": (c - lower) / (upper - lower),
        "vwap_20_dist": c / vwap - 1,
    }
    del o
    return out


def test_a20_matches_direct_talib(spy_bars: pd.DataFrame, a20: pd.DataFrame) -> None:
    for name, expected in _expected(spy_bars).items():
        actual = a20[name].to_numpy()
        np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-12, equal_nan=True,
                                   err_msg=name)
        assert np.isfinite(actual[-100:]).all(), name


def _weekly_expected(bars: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    weekly_close = bars["Close"].resample("W-FRI").last().dropna()
    rsi = pd.Series(talib.RSI(weekly_close.to_numpy(), 14), index=weekly_close.index)
    k = pd.Series(talib.STOCHRSI(weekly_close.to_numpy(), 14, 5, 3)[0], index=weekly_close.index)
    return rsi, k


def test_weekly_values_are_those_of_the_last_closed_week(
    spy_bars: pd.DataFrame, a20: pd.DataFrame
) -> None:
    rsi, k = _weekly_expected(spy_bars)
    days = a20.index
    # the week visible on day d is the last W-FRI label strictly before d
    labels = rsi.index[np.searchsorted(rsi.index, days, "left") - 1]
    visible = days > rsi.index[0]
    np.testing.assert_allclose(a20["rsi_14_weekly"].to_numpy()[visible],
                               rsi.loc[labels[visible]].to_numpy(), equal_nan=True)
    np.testing.assert_allclose(a20["stochrsi_k_14_5_3_weekly"].to_numpy()[visible],
                               k.loc[labels[visible]].to_numpy(), equal_nan=True)


def test_weekly_value_changes_only_on_first_day_after_the_week(
    spy_bars: pd.DataFrame, a20: pd.DataFrame
) -> None:
    rsi, _ = _weekly_expected(spy_bars)
    weekly = a20["rsi_14_weekly"]
    # Good Friday 2023-04-07 closed: the week's last bar is Thursday 2023-04-06
    assert weekly.loc["2023-04-06"] == rsi.loc["2023-03-31"]
    assert weekly.loc["2023-04-10"] == rsi.loc["2023-04-07"]
    # Presidents' Day Monday 2023-02-20 closed: week ending 02-17 shows on Tuesday 02-21
    assert weekly.loc["2023-02-17"] == rsi.loc["2023-02-10"]
    assert weekly.loc["2023-02-21"] == rsi.loc["2023-02-17"]
    # within a week the value never moves
    week_of = weekly.index.to_period("W-FRI")
    moves = weekly.diff().ne(0) & weekly.notna() & weekly.shift().notna()
    first_days = ~pd.Series(week_of).duplicated().to_numpy()
    assert not (moves.to_numpy() & ~first_days).any()


def test_weekly_bars_work_for_non_weekly_features(spy_bars: pd.DataFrame, tiers_dir: Path) -> None:
    weekly = spy_bars.resample("W-FRI").agg({"Open": "first", "High": "max", "Low": "min",
                                             "Close": "last", "Adj Close": "last",
                                             "Volume": "sum"}).dropna()
    table = compute_tier(load_tier("a20", tiers_dir), weekly, timescale="weekly")
    assert list(table.index) == list(weekly.index)
    np.testing.assert_allclose(table["rsi_14"], talib.RSI(weekly["Close"].to_numpy(), 14),
                               equal_nan=True)


def test_bad_bars_are_rejected_with_the_rows(spy_bars: pd.DataFrame, tiers_dir: Path) -> None:
    tier = load_tier("a20", tiers_dir)
    broken = spy_bars.copy()
    broken.iloc[5, broken.columns.get_loc("Low")] = 0.0
    with pytest.raises(ValueError, match="1993-02-05"):
        compute_tier(tier, broken)
    with pytest.raises(ValueError, match="missing columns"):
        compute_tier(tier, spy_bars.drop(columns=["Volume"]))
    with pytest.raises(ValueError, match="need vix"):
        compute_tier(load_tier("a50", tiers_dir), spy_bars)
