"""FRED macro features, aligned by the day each value became AVAILABLE, not its reference date.

Where a series is stored with vintages (a ``realtime_start`` column: the fred source), each
value is its first release and becomes available on its real release day; the older
history that the series' first vintage back-fills (released on unknown days) uses the
fixed lag below when that is earlier. Without vintages (the csv mirror's plain
layout) fixed lags apply: a daily series' observation for day d is known
``daily_macro_lag_days`` business days later; a monthly series' observation for month m
(dated the 1st) ``monthly_release_lag_days[series]`` calendar days after that date. Either
way a value is never available before ``daily_macro_lag_days`` business days after its own
date. Transforms (levels, changes, z-scores, year-on-year) run on the observations
themselves; a transformed value is available once every observation it reads is; then
every trading day takes the latest value already available on it. Declarations:
``macro.yaml``; every family takes the values and the ``series`` id they came from (the id
selects the input and its availability lag).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from finscale.data.sources.base import REALTIME_START
from finscale.features.config import FeaturesConfig
from finscale.features.declarations import FeatureTier, load_declarations
from finscale.features.paths import resolve_tiers_dir

MACRO_TIER = "macro"


def macro_level(values: pd.Series, series: str) -> pd.Series:
    """The observation of ``series`` itself (rates and spreads in percent are already unit-free)."""
    return values


def macro_change(values: pd.Series, series: str, periods: int) -> pd.Series:
    """Difference to the observation ``periods`` observations earlier."""
    return values.diff(periods)


def macro_pct_change(values: pd.Series, series: str, periods: int) -> pd.Series:
    """Percent change over ``periods`` observations (e.g. CPI year-on-year: 12)."""
    return values.pct_change(periods) * 100.0


def macro_zscore(values: pd.Series, series: str, window: int) -> pd.Series:
    """Z-score of the observation against its last ``window`` observations."""
    roll = values.rolling(window, min_periods=window)
    std = roll.std()
    return ((values - roll.mean()) / std.where(std != 0)).fillna(0.0).where(std.notna())


MACRO_FAMILIES: Mapping[str, object] = MappingProxyType({
    "macro_level": macro_level,
    "macro_change": macro_change,
    "macro_pct_change": macro_pct_change,
    "macro_zscore": macro_zscore,
})


def load_macro_tier(tiers_dir: Path | str) -> FeatureTier:
    """Read and validate ``macro.yaml``."""
    path = resolve_tiers_dir(tiers_dir) / f"{MACRO_TIER}.yaml"
    name, declarations, lookback = load_declarations(path, MACRO_FAMILIES)  # type: ignore[arg-type]
    for declaration in declarations:
        if not isinstance(declaration.params.get("series"), str):
            raise ValueError(f"{path}: feature {declaration.name}: params.series is required")
    return FeatureTier(name=name, declarations=declarations, max_lookback=lookback)


def availability_dates(
    dates: pd.DatetimeIndex, series_id: str, config: FeaturesConfig
) -> pd.DatetimeIndex:
    """The day each observation became known by the fixed lags: monthly lag in calendar
    days, else daily lag in business days."""
    if series_id in config.monthly_release_lag_days:
        return dates + pd.Timedelta(days=config.monthly_release_lag_days[series_id])
    return dates + pd.offsets.BDay(config.daily_macro_lag_days)


def release_availability(
    dates: pd.DatetimeIndex, released: pd.DatetimeIndex, series_id: str, config: FeaturesConfig
) -> pd.DatetimeIndex:
    """The day each first release became known: its release day, never before the daily
    lag after the observation's own date. The series' first vintage also holds the older
    history (ALFRED's snapshot when it began keeping vintages), released on unknown days:
    those observations, all but the newest of that vintage, use the fixed-lag day if
    earlier (as without vintages)."""
    first_vintage = np.asarray(released == released.min())
    backfilled = first_vintage & np.asarray(dates < dates[first_vintage].max())
    fixed = availability_dates(dates, series_id, config).to_numpy()
    known = np.where(backfilled, np.minimum(released.to_numpy(), fixed), released.to_numpy())
    floor = (dates + pd.offsets.BDay(config.daily_macro_lag_days)).to_numpy()
    return pd.DatetimeIndex(np.maximum(known, floor))


def observations(
    series: Mapping[str, pd.DataFrame], series_id: str, config: FeaturesConfig
) -> tuple[pd.Series, pd.DatetimeIndex]:
    """The non-missing observations of one series, checked, and the day each became known."""
    if series_id not in series:
        raise KeyError(f"macro series '{series_id}' not provided; got {sorted(series)}")
    frame = series[series_id]
    if series_id not in frame.columns:
        raise ValueError(f"macro series '{series_id}': missing column '{series_id}'")
    frame = frame.loc[frame[series_id].notna().to_numpy()]
    values = frame[series_id].astype(np.float64)
    if not values.index.is_monotonic_increasing or not values.index.is_unique:
        raise ValueError(f"macro series '{series_id}': dates must be increasing and unique")
    dates = pd.DatetimeIndex(values.index)
    if REALTIME_START not in frame.columns:
        return values, availability_dates(dates, series_id, config)
    released = pd.DatetimeIndex(frame[REALTIME_START])
    if released.hasnans:
        raise ValueError(f"macro series '{series_id}': {REALTIME_START} has missing days")
    return values, release_availability(dates, released, series_id, config)


def align_available(
    values: pd.Series, available: pd.DatetimeIndex, index: pd.DatetimeIndex
) -> np.ndarray:
    """For each day of ``index``, the latest value whose availability date is <= that day.

    Availability is taken as a running maximum: a transformed value reads earlier
    observations too (a change, a z-score), so it is known only once all of them are.
    """
    known = np.maximum.accumulate(available.to_numpy())
    position = np.searchsorted(known, index.to_numpy(), "right") - 1
    out = np.full(len(index), np.nan)
    seen = position >= 0
    out[seen] = values.to_numpy(np.float64)[position[seen]]
    return out


def compute_macro_features(
    series: Mapping[str, pd.DataFrame],
    index: pd.DatetimeIndex,
    config: FeaturesConfig,
    *,
    tier: FeatureTier | None = None,
) -> pd.DataFrame:
    """The macro tier on ``index`` (float64): each value from the day it was available."""
    tier = tier or load_macro_tier(config.tiers_dir)
    index = pd.DatetimeIndex(index)
    columns: dict[str, np.ndarray] = {}
    for declaration in tier.declarations:
        series_id = str(declaration.params["series"])
        values, available = observations(series, series_id, config)
        family = MACRO_FAMILIES[declaration.family]
        transformed = family(values, **declaration.params)  # type: ignore[operator]
        columns[declaration.name] = align_available(transformed, available, index)
    return pd.DataFrame(columns, index=index)
