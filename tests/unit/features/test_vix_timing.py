"""The VIX joins the market calendar ``features.vix_lag_sessions`` VIX sessions late.

The VIX closes at 16:15 New York time, SPY at 16:00: with the default lag 1 a feature at
day t reads only VIX closes dated before t. Covered: the VIX tier, the cross-asset (xvix_*)
features of the a-tiers, and the caches (feature table and dataset hashes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from finscale.datasets.build import dataset_config_hash
from finscale.datasets.prepare import prepare_table
from finscale.features.build import (
    FeatureBuildResult,
    build_feature_table,
    feature_config_hash,
)
from finscale.features.config import FeaturesConfig
from finscale.features.engine import align_vix_close, compute_tier, load_tier
from finscale.features.registry import CROSS_ASSET_FAMILIES
from finscale.features.vix import compute_vix_features, load_vix_tier
from finscale.manifest.artifacts import load_frame
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace
from tests.support.datasets import base_config
from tests.support.raw_workspace import fill_raw_workspace

from .conftest import TIERS_DIR

# a calm mid-week day, the Thursday before Good Friday, the 2020 VIX peak
PERTURBED_DAYS = ("2007-06-13", "2023-04-06", "2020-03-16")


def vix_frame(closes: list[float], days: pd.DatetimeIndex) -> pd.DataFrame:
    """VIX bars as stored (OHLC all equal to the close, zero volume)."""
    close = np.asarray(closes, dtype=np.float64)
    return pd.DataFrame({"Open": close, "High": close, "Low": close, "Close": close,
                         "Adj Close": close, "Volume": np.zeros(len(close))}, index=days)


def vix_reading_tier(name: str) -> object:
    """Tier ``name`` restricted to its declarations that read the VIX."""
    tier = load_tier(name, TIERS_DIR)
    kept = tuple(d for d in tier.declarations if d.family in CROSS_ASSET_FAMILIES)
    return tier.model_copy(update={"declarations": kept})


def test_default_lag_is_one_session() -> None:
    assert FeaturesConfig().vix_lag_sessions == 1
    assert base_config().features.vix_lag_sessions == 1


def test_lags_by_hand_on_a_small_frame() -> None:
    days = pd.bdate_range("2024-03-04", periods=6)  # Mon 4 .. Mon 11 March
    vix = vix_frame([20.0, 21.0, 23.0, 22.0, 25.0, 24.0], days)
    np.testing.assert_array_equal(align_vix_close(vix, days, 0), [20, 21, 23, 22, 25, 24])
    np.testing.assert_array_equal(align_vix_close(vix, days, 1), [np.nan, 20, 21, 23, 22, 25])
    np.testing.assert_array_equal(align_vix_close(vix, days, 2),
                                  [np.nan, np.nan, 20, 21, 23, 22])
    tier = load_vix_tier(TIERS_DIR)
    lagged = compute_vix_features(vix, days, tier=tier, lag_sessions=1)
    np.testing.assert_array_equal(lagged["vix_close"], [np.nan, 20, 21, 23, 22, 25])
    np.testing.assert_array_equal(lagged["vix_chg_1"], [np.nan, np.nan, 1, 2, -1, 3])


def test_lag_one_reads_the_latest_close_strictly_before_the_day() -> None:
    """A target day the VIX lacks (Thursday 7 March here) still gets the last close before
    it, and the day after that gets the same: nothing dated on or after the day itself."""
    days = pd.bdate_range("2024-03-04", periods=6)
    vix = vix_frame([20.0, 21.0, 23.0, 25.0, 24.0], days.delete(3))
    np.testing.assert_array_equal(align_vix_close(vix, days, 1), [np.nan, 20, 21, 23, 23, 25])
    np.testing.assert_array_equal(align_vix_close(vix, days, 0), [20, 21, 23, 23, 25, 24])


def test_negative_lag_is_refused() -> None:
    days = pd.bdate_range("2024-03-04", periods=3)
    with pytest.raises(ValueError, match="vix_lag_sessions must be >= 0"):
        align_vix_close(vix_frame([20.0, 21.0, 22.0], days), days, -1)
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        FeaturesConfig(vix_lag_sessions=-1)


def test_vix_tier_at_lag_one_is_lag_zero_one_session_earlier(
    vix_bars: pd.DataFrame, spy_bars: pd.DataFrame
) -> None:
    """On the real SPY calendar (the VIX trades on every SPY day; its history starts
    earlier, so SPY's first day is left out of the comparison)."""
    lag0 = compute_vix_features(vix_bars, spy_bars.index, lag_sessions=0)
    lag1 = compute_vix_features(vix_bars, spy_bars.index, lag_sessions=1)
    pd.testing.assert_frame_equal(lag1.iloc[1:], lag0.shift(1).iloc[1:])
    day = pd.Timestamp("2020-03-17")  # the day after the closing peak of 82.69
    assert lag1.loc[day, "vix_close"] == vix_bars.loc["2020-03-16", "Close"] == 82.690002


@pytest.fixture(scope="module")
def perturbed(vix_bars: pd.DataFrame, spy_bars: pd.DataFrame) -> list[tuple[
        pd.Timestamp, dict[int, pd.DataFrame], dict[int, pd.DataFrame]]]:
    """Per day t: every VIX-reading feature (VIX tier + a500 xvix_*) at lags 0 and 1, from
    the real VIX and from a VIX whose row at t alone is 30% higher."""
    a500_vix = vix_reading_tier("a500")
    vix_tier = load_vix_tier(TIERS_DIR)

    def features(vix: pd.DataFrame, lag: int) -> pd.DataFrame:
        return pd.concat([
            compute_tier(a500_vix, spy_bars, vix=vix, vix_lag_sessions=lag),  # type: ignore[arg-type]
            compute_vix_features(vix, spy_bars.index, tier=vix_tier, lag_sessions=lag),
        ], axis=1)

    out = []
    for text in PERTURBED_DAYS:
        day = pd.Timestamp(text)
        changed = vix_bars.copy()
        changed.loc[day, ["Open", "High", "Low", "Close", "Adj Close"]] *= 1.3
        out.append((day, {lag: features(vix_bars, lag) for lag in (0, 1)},
                    {lag: features(changed, lag) for lag in (0, 1)}))
    return out


def test_perturbing_the_vix_on_day_t_changes_no_feature_at_t_with_lag_one(
    perturbed: list,
) -> None:
    for day, original, changed in perturbed:
        pd.testing.assert_frame_equal(changed[1].loc[:day], original[1].loc[:day])
        after = spy_next_day(original[1].index, day)
        moved = (changed[1].loc[after] != original[1].loc[after]).mean()
        assert moved > 0.8, f"only {moved:.0%} of VIX features see the change at {after.date()}"


def test_with_lag_zero_the_same_perturbation_leaks_into_day_t(perturbed: list) -> None:
    """The leak the lag removes: at lag 0 nearly every VIX feature at t moves with VIX(t)."""
    for day, original, changed in perturbed:
        moved = (changed[0].loc[day] != original[0].loc[day]).mean()
        assert moved > 0.8, f"lag 0: only {moved:.0%} of VIX features moved at {day.date()}"


def spy_next_day(index: pd.DatetimeIndex, day: pd.Timestamp) -> pd.Timestamp:
    return index[index > day][0]


def test_lag_is_in_the_feature_and_dataset_hashes() -> None:
    tier = load_tier("a50", TIERS_DIR)
    hashes = {feature_config_hash(tier, FeaturesConfig(vix_lag_sessions=lag), "daily")
              for lag in (0, 1, 2)}
    assert len(hashes) == 3
    datasets = {dataset_config_hash(base_config(f"features.vix_lag_sessions={lag}"))
                for lag in (0, 1)}
    assert len(datasets) == 2


@pytest.fixture()
def spy_vix(workspace: Workspace, shared_data_dir: Path) -> Iterator[Manifest]:
    """A manifest holding the raw SPY and VIX bars."""
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"], fred_series=[])
    manifest = Manifest(workspace.manifest_url, workspace.home)
    yield manifest
    manifest.close()


def test_dataset_tables_read_the_lag_from_the_features_config(
    spy_vix: Manifest, workspace: Workspace
) -> None:
    """The dataset's VIX block and the a50 table's xvix_level both follow the setting."""
    tables = {}
    for lag in (0, 1):
        config = base_config("dataset.include_macro=false", "dataset.tier=a50",
                             f"features.vix_lag_sessions={lag}")
        tables[lag] = prepare_table(spy_vix, workspace, config).table
    for column in ("vix_close", "xvix_level"):
        both = pd.concat({lag: tables[lag][column] for lag in (0, 1)}, axis=1).dropna()
        previous = both[0].shift(1)
        assert len(both) > 5000
        pd.testing.assert_series_equal(both[1].iloc[1:], previous.iloc[1:], check_names=False)


def test_tables_with_different_lags_never_share_a_cache_entry(
    spy_vix: Manifest, workspace: Workspace
) -> None:
    def build(lag: int) -> FeatureBuildResult:
        return build_feature_table(spy_vix, workspace, FeaturesConfig(vix_lag_sessions=lag),
                                   tier_name="a50", ticker="SPY")

    built = {lag: build(lag) for lag in (1, 0)}
    assert all(result.created for result in built.values())
    assert built[0].record.config_hash != built[1].record.config_hash
    tables = {lag: load_frame(spy_vix, result.record) for lag, result in built.items()}
    pd.testing.assert_series_equal(tables[1]["xvix_level"].iloc[1:],
                                   tables[0]["xvix_level"].shift(1).iloc[1:])
    again = build(0)
    assert not again.created and again.record.id == built[0].record.id
