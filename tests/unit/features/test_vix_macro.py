"""VIX tier values and alignment; macro values enter only on their availability date."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finscale.features.config import FeaturesConfig
from finscale.features.macro import compute_macro_features
from finscale.features.vix import compute_vix_features

CONFIG = FeaturesConfig()


def test_vix_tier_values(vix_bars: pd.DataFrame, spy_bars: pd.DataFrame) -> None:
    """Values at lag 0 (the VIX's own close on the same date); lags: test_vix_timing."""
    table = compute_vix_features(vix_bars, spy_bars.index, lag_sessions=0)
    assert table.shape[1] == 8
    close = vix_bars["Close"].reindex(spy_bars.index)
    day = pd.Timestamp("2020-03-16")
    assert table.loc[day, "vix_close"] == close.loc[day]
    window = vix_bars["Close"].loc[:day].iloc[-60:]
    assert table.loc[day, "vix_pctile_60"] == pytest.approx((window <= window.iloc[-1]).mean())
    assert table.loc[day, "vix_regime_15_25"] == 2.0
    assert table.loc["2017-06-01", "vix_regime_15_25"] == 0.0
    assert table.loc[day, "vix_chg_5"] == pytest.approx(
        vix_bars["Close"].loc[day] - vix_bars["Close"].loc[:day].iloc[-6])
    after = table.iloc[60:]
    assert np.isfinite(after.to_numpy()).all() and (after.nunique() > 1).all()


def test_vix_missing_day_carries_the_previous_value(vix_bars: pd.DataFrame) -> None:
    gap = pd.Timestamp("2021-06-09")
    table = compute_vix_features(vix_bars.drop(index=gap), pd.DatetimeIndex([gap]))
    assert table.loc[gap, "vix_close"] == vix_bars["Close"].loc[:gap].iloc[-2]


@pytest.fixture(scope="module")
def macro(fred_series: dict[str, pd.DataFrame], spy_bars: pd.DataFrame) -> pd.DataFrame:
    return compute_macro_features(fred_series, spy_bars.index, CONFIG)


@pytest.mark.parametrize("series_id", ["UNRATE", "FEDFUNDS"])
def test_monthly_value_never_before_its_release(
    macro: pd.DataFrame, fred_series: dict[str, pd.DataFrame], series_id: str
) -> None:
    column = f"{series_id.lower()}_level"
    lag = pd.Timedelta(days=CONFIG.monthly_release_lag_days[series_id])
    observations = fred_series[series_id][series_id].dropna()
    released = pd.Series(observations.to_numpy(), index=observations.index + lag)
    expected = released.reindex(released.index.union(macro.index)).ffill().reindex(macro.index)
    np.testing.assert_array_equal(macro[column].to_numpy(), expected.to_numpy())
    # a concrete month: April 2020 (dated 2020-04-01) is not visible before 04-01 + lag
    april = observations.loc["2020-04-01"]
    release = pd.Timestamp("2020-04-01") + lag
    assert (macro.loc[: release - pd.Timedelta(days=1), column] != april).loc["2020-04":].all()
    assert macro.loc[release:, column].iloc[0] == april


def test_cpi_yoy_enters_after_release(macro: pd.DataFrame, fred_series: dict) -> None:
    cpi = fred_series["CPIAUCSL"]["CPIAUCSL"]
    yoy = cpi.loc["2022-06-01"] / cpi.loc["2021-06-01"] * 100 - 100
    release = pd.Timestamp("2022-06-01") + pd.Timedelta(days=45)
    assert macro.loc[release:, "cpi_yoy"].iloc[0] == pytest.approx(yoy)
    assert macro.loc[: release - pd.Timedelta(days=1), "cpi_yoy"].iloc[-1] != pytest.approx(yoy)


def test_daily_value_enters_the_next_business_day(
    macro: pd.DataFrame, fred_series: dict[str, pd.DataFrame]
) -> None:
    dgs10 = fred_series["DGS10"]["DGS10"].dropna()
    day, next_day = pd.Timestamp("2022-06-13"), pd.Timestamp("2022-06-14")
    assert macro.loc[next_day, "dgs10_level"] == dgs10.loc[day]
    assert macro.loc[day, "dgs10_level"] == dgs10.loc[:day].iloc[-2]


def test_missing_series_is_named(spy_bars: pd.DataFrame, fred_series: dict) -> None:
    partial = {k: v for k, v in fred_series.items() if k != "UNRATE"}
    with pytest.raises(KeyError, match="UNRATE"):
        compute_macro_features(partial, spy_bars.index, CONFIG)
