"""Truncate-and-recompute, feature by feature: values at t and before never see rows after t.

Each tier is computed once on the full SPY/VIX/FRED history and once per cut on a copy
where the rows after the cut are multiplied by random noise and most of them dropped.
Every feature of a500 (which nests a20..a200), the VIX tier and the macro tier is then
compared up to the cut, exactly (NaN equal to NaN).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest

from finscale.features.config import FeaturesConfig
from finscale.features.engine import compute_tier, load_tier
from finscale.features.macro import compute_macro_features, load_macro_tier
from finscale.features.vix import compute_vix_features, load_vix_tier

from .conftest import TIERS_DIR

# mid-week in a calm year; the Thursday before Good Friday (a holiday Friday); a month end
CUTS = (pd.Timestamp("2007-06-13"), pd.Timestamp("2023-04-06"), pd.Timestamp("2015-09-30"))
ALTERED_ROWS = 40
SEED = 20230406

A500_NAMES = load_tier("a500", TIERS_DIR).names
VIX_NAMES = load_vix_tier(TIERS_DIR).names
MACRO_NAMES = load_macro_tier(TIERS_DIR).names
CONFIG = FeaturesConfig()


def _perturb_after(
    frame: pd.DataFrame, cut: pd.Timestamp, rng: np.random.Generator
) -> pd.DataFrame:
    """Rows after ``cut``: the first ALTERED_ROWS multiplied by noise, the rest dropped."""
    before = frame.loc[:cut]
    after = frame.loc[frame.index > cut].iloc[:ALTERED_ROWS].copy()
    noise = rng.uniform(0.8, 1.25, size=after.shape)
    after.loc[:, :] = after.to_numpy() * noise
    return pd.concat([before, after])


def _perturb_macro(
    series: Mapping[str, pd.DataFrame], cut: pd.Timestamp, rng: np.random.Generator
) -> dict[str, pd.DataFrame]:
    """Observations that became available after ``cut`` (by the config's lags) altered."""
    out = {}
    for series_id, frame in series.items():
        if series_id in CONFIG.monthly_release_lag_days:
            available = frame.index + pd.Timedelta(days=CONFIG.monthly_release_lag_days[series_id])
        else:
            available = frame.index + pd.offsets.BDay(CONFIG.daily_macro_lag_days)
        changed = frame.copy()
        late = np.asarray(available > cut)
        changed.loc[late, series_id] = changed.loc[late, series_id] * rng.uniform(
            0.5, 2.0, size=int(late.sum())) + 0.3
        out[series_id] = changed
    return out


@pytest.fixture(scope="module")
def pairs(
    spy_bars: pd.DataFrame, vix_bars: pd.DataFrame, fred_series: dict[str, pd.DataFrame]
) -> list[tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]]:
    """(cut, full features, features from perturbed inputs) per cut, all three tiers joined."""
    a500 = load_tier("a500", TIERS_DIR)
    rng = np.random.default_rng(SEED)

    def everything(bars: pd.DataFrame, vix: pd.DataFrame, macro: Mapping[str, pd.DataFrame]):
        return pd.concat([
            compute_tier(a500, bars, vix=vix),
            compute_vix_features(vix, bars.index),
            compute_macro_features(macro, bars.index, CONFIG),
        ], axis=1)

    full = everything(spy_bars, vix_bars, fred_series)
    out = []
    for cut in CUTS:
        altered = everything(_perturb_after(spy_bars, cut, rng), _perturb_after(vix_bars, cut, rng),
                             _perturb_macro(fred_series, cut, rng))
        out.append((cut, full, altered))
    return out


def _assert_causal(pairs: list, name: str) -> None:
    for cut, full, altered in pairs:
        assert len(altered.loc[altered.index > cut]) == ALTERED_ROWS, "perturbation not applied"
        expected = full.loc[:cut, name].to_numpy()
        actual = altered.loc[:cut, name].to_numpy()
        assert np.isfinite(expected).any(), f"{name}: no values before {cut.date()}"
        message = f"{name} changed at <= {cut.date()}"
        np.testing.assert_array_equal(actual, expected, err_msg=message)


@pytest.mark.parametrize("name", A500_NAMES)
def test_a_tier_feature_is_causal(pairs: list, name: str) -> None:
    _assert_causal(pairs, name)


@pytest.mark.parametrize("name", VIX_NAMES)
def test_vix_feature_is_causal(pairs: list, name: str) -> None:
    _assert_causal(pairs, name)


@pytest.mark.parametrize("name", MACRO_NAMES)
def test_macro_feature_is_causal(pairs: list, name: str) -> None:
    _assert_causal(pairs, name)


def test_perturbation_reaches_the_features(pairs: list) -> None:
    """Guard against a vacuous test: most features do change right after the cut."""
    for cut, full, altered in pairs:
        after = altered.index[altered.index > cut]
        changed = (full.loc[after].to_numpy() != altered.loc[after].to_numpy()).any(axis=0)
        assert changed.mean() > 0.8, f"only {changed.mean():.0%} of features changed after {cut}"
