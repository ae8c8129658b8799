"""Macro series stored with vintages enter features on their real release day.

Hand-made CPI first releases around the 2013 shutdown: September 2013 CPI was published on
30 October, two weeks after the fixed 45-day lag (16 October) assumes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from finscale.data.sources.base import MACRO_INDEX, REALTIME_START
from finscale.features.config import FeaturesConfig
from finscale.features.macro import compute_macro_features, load_macro_tier

from .conftest import TIERS_DIR

CPI = "CPIAUCSL"
MONTHS = pd.date_range("2012-01-01", "2013-12-01", freq="MS")
FIRST_VINTAGE = "2013-08-15"  # back-fills 2012-01..2013-07; July's own release day
RELEASES = {"2013-08-01": "2013-09-17", "2013-09-01": "2013-10-30",
            "2013-10-01": "2013-11-20", "2013-11-01": "2013-12-17", "2013-12-01": "2014-01-16"}
CONFIG = FeaturesConfig(monthly_release_lag_days={CPI: 40})
DAYS = pd.bdate_range("2012-01-02", "2014-03-31")


def cpi_values() -> np.ndarray:
    return 230.0 + 0.25 * np.arange(len(MONTHS)) + 0.1 * np.sin(np.arange(len(MONTHS)))


def cpi_frame(releases: dict[str, str] = RELEASES) -> pd.DataFrame:
    """First releases in the stored layout, with their release days."""
    released = [pd.Timestamp(releases.get(m.strftime("%Y-%m-%d"), FIRST_VINTAGE))
                for m in MONTHS]
    frame = pd.DataFrame({CPI: cpi_values(), REALTIME_START: released},
                         index=pd.DatetimeIndex(MONTHS, name=MACRO_INDEX))
    return frame


def cpi_features(frame: pd.DataFrame, config: FeaturesConfig = CONFIG) -> pd.DataFrame:
    tier = load_macro_tier(TIERS_DIR)
    kept = tuple(d for d in tier.declarations if d.params.get("series") == CPI)
    return compute_macro_features({CPI: frame}, DAYS, config,
                                  tier=tier.model_copy(update={"declarations": kept}))


def mom(month: str) -> float:
    values = pd.Series(cpi_values(), index=MONTHS)
    position = values.index.get_loc(pd.Timestamp(month))
    return float(values.iloc[position] / values.iloc[position - 1] * 100 - 100)


def test_a_delayed_release_is_not_seen_before_its_publication() -> None:
    table = cpi_features(cpi_frame())["cpi_mom"]
    assert table.loc["2013-10-29"] == pytest.approx(mom("2013-08-01"))
    assert table.loc["2013-10-30"] == pytest.approx(mom("2013-09-01"))
    first_day = table.index[table.round(12) == round(mom("2013-09-01"), 12)][0]
    assert first_day == pd.Timestamp("2013-10-30")


def test_the_fixed_lag_would_have_used_it_two_weeks_early() -> None:
    """The same numbers without release days: the lag path (45 days) shows September from
    16 October: what vintages fix."""
    plain = cpi_frame().drop(columns=[REALTIME_START])
    table = cpi_features(plain, FeaturesConfig())["cpi_mom"]
    assert table.loc["2013-10-16"] == pytest.approx(mom("2013-09-01"))


def test_history_backfilled_by_the_first_vintage_uses_the_fixed_lag() -> None:
    """ALFRED's first vintage holds older months too: they enter by the fixed lag (here 40
    days), its newest month (July) on the vintage's own day."""
    table = cpi_features(cpi_frame())["cpi_mom"]
    assert table.loc["2013-02-11"] == pytest.approx(mom("2013-01-01"))  # 1 Jan + 40 days
    assert table.loc["2013-08-12"] == pytest.approx(mom("2013-06-01"))  # July's lag day passed
    assert table.loc["2013-08-15"] == pytest.approx(mom("2013-07-01"))  # ... but not released
    assert np.isfinite(table.loc["2012-03-12":"2013-08-01"]).all()  # Feb 2012 + 40 days on


def test_a_change_waits_for_every_observation_it_reads() -> None:
    """October published after November (a late first value): November's change needs
    October, so it appears only when both are out; nothing November-based before."""
    late = {**RELEASES, "2013-10-01": "2013-12-20"}
    table = cpi_features(cpi_frame(late))["cpi_mom"]
    assert table.loc["2013-12-18"] == pytest.approx(mom("2013-09-01"))
    assert table.loc["2013-12-19"] == pytest.approx(mom("2013-09-01"))
    assert table.loc["2013-12-20"] == pytest.approx(mom("2013-11-01"))


def test_a_value_never_enters_on_its_own_date() -> None:
    """A daily vintage dated its own day still waits the daily lag (one business day)."""
    days = pd.bdate_range("2024-01-02", periods=30)
    values = np.linspace(4.0, 4.3, len(days))
    frame = pd.DataFrame({"DGS10": values, REALTIME_START: days},
                         index=pd.DatetimeIndex(days, name=MACRO_INDEX))
    tier = load_macro_tier(TIERS_DIR)
    kept = tuple(d for d in tier.declarations if d.name == "dgs10_level")
    table = compute_macro_features({"DGS10": frame}, days, FeaturesConfig(),
                                   tier=tier.model_copy(update={"declarations": kept}))
    np.testing.assert_array_equal(table["dgs10_level"].to_numpy()[1:], values[:-1])


def test_missing_release_day_is_refused() -> None:
    frame = cpi_frame()
    frame.loc[frame.index[-1], REALTIME_START] = pd.NaT
    with pytest.raises(ValueError, match=r"CPIAUCSL.*realtime_start has missing days"):
        cpi_features(frame)
