"""Load a tier and compute it on a frame of bars: the feature engine's entry points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from finscale.config.errors import ConfigError
from finscale.data.sources.base import MARKET_COLUMNS
from finscale.features.config import DEFAULT_VIX_LAG_SESSIONS
from finscale.features.declarations import FeatureDeclaration, FeatureTier, load_declarations
from finscale.features.inputs import DAILY, FeatureInputs
from finscale.features.macro import MACRO_TIER, compute_macro_features, load_macro_tier
from finscale.features.paths import resolve_tiers_dir
from finscale.features.registry import CROSS_ASSET_FAMILIES, FAMILIES, compute_one
from finscale.features.vix import VIX_TIER, align_lagged, compute_vix_features, load_vix_tier

__all__ = [
    "FeatureDeclaration",
    "FeatureTier",
    "align_vix_close",
    "compute_macro_features",
    "compute_tier",
    "compute_vix_features",
    "describe_tier",
    "load_macro_tier",
    "load_tier",
    "load_vix_tier",
    "needs_vix",
]

TIER_SUFFIX = ".yaml"
VIX_INPUT = "VIX"
PRICE_COLUMNS: tuple[str, ...] = ("Open", "High", "Low", "Close")


def load_tier(name: str, tiers_dir: Path | str) -> FeatureTier:
    """Read ``<tiers_dir>/<name>.yaml`` (with its ``extends`` chain) and validate it.

    ``vix`` and ``macro`` have their own loaders (``load_vix_tier``, ``load_macro_tier``)."""
    folder = resolve_tiers_dir(tiers_dir)
    path = folder / f"{name}{TIER_SUFFIX}"
    if name in (VIX_TIER, MACRO_TIER):
        raise ConfigError(str(path), "tier",
                          f"{name!r} is not a per-ticker tier: its features join each dataset "
                          f"(dataset include flags); see `finscale features list --tier {name}`")
    if not path.is_file():
        shared = (VIX_TIER, MACRO_TIER)
        known = sorted((p.stem for p in folder.glob(f"*{TIER_SUFFIX}") if p.stem not in shared),
                       key=lambda tier: (len(tier), tier))
        raise ConfigError(str(path), "tier",
                          f"tier {name!r} not found; tiers in {folder}: {', '.join(known)}")
    tier_name, declarations, lookback = load_declarations(path, FAMILIES)
    for declaration in declarations:
        if declaration.family in CROSS_ASSET_FAMILIES and VIX_INPUT not in declaration.inputs:
            raise ConfigError(str(path), f"features.{declaration.name}.inputs",
                              f"family {declaration.family} reads the VIX: list {VIX_INPUT}")
    return FeatureTier(name=tier_name, declarations=declarations, max_lookback=lookback)


def describe_tier(tier: FeatureTier) -> list[dict[str, str]]:
    """One row per feature (name, family, params, description) for ``features list``."""
    return [
        {
            "name": d.name,
            "family": d.family,
            "params": ", ".join(f"{k}={v}" for k, v in d.params.items()),
            "description": d.description,
        }
        for d in tier.declarations
    ]


def needs_vix(tier: FeatureTier) -> bool:
    """Whether any declaration reads the VIX (the caller must pass ``vix=``)."""
    return any(d.family in CROSS_ASSET_FAMILIES or VIX_INPUT in d.inputs for d in tier.declarations)


def _check_bars(bars: pd.DataFrame, what: str) -> None:
    missing = [c for c in MARKET_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"{what}: missing columns {missing}")
    if not isinstance(bars.index, pd.DatetimeIndex):
        raise ValueError(f"{what}: index must be a DatetimeIndex, got {type(bars.index).__name__}")
    if not bars.index.is_monotonic_increasing or not bars.index.is_unique:
        raise ValueError(f"{what}: dates must be increasing and unique")
    prices = bars.loc[:, list(PRICE_COLUMNS)].to_numpy(np.float64)
    bad = ~(np.isfinite(prices) & (prices > 0)).all(axis=1)
    if bad.any():
        first = bars.index[np.flatnonzero(bad)[:3]].strftime("%Y-%m-%d").tolist()
        raise ValueError(f"{what}: {int(bad.sum())} rows with missing or non-positive prices, "
                         f"first {first}")


def align_vix_close(
    vix: pd.DataFrame, index: pd.DatetimeIndex, lag_sessions: int = DEFAULT_VIX_LAG_SESSIONS
) -> np.ndarray:
    """VIX close joined onto ``index`` ``lag_sessions`` VIX sessions late (lag 0: the close
    at or before each date; lag 1: the latest close dated strictly before it)."""
    closes = vix[["Close"]].dropna()
    return align_lagged(closes, pd.DatetimeIndex(index), lag_sessions)["Close"].to_numpy()


def compute_declarations(
    declarations: tuple[FeatureDeclaration, ...], inputs: FeatureInputs
) -> pd.DataFrame:
    """Compute declarations on prepared inputs; columns in declaration order."""
    columns = {d.name: compute_one(inputs, d.family, d.params) for d in declarations}
    frame = pd.DataFrame(columns, index=inputs.index)
    return frame.replace([np.inf, -np.inf], np.nan)


def compute_tier(
    tier: FeatureTier, bars: pd.DataFrame, *, vix: pd.DataFrame | None = None,
    timescale: str = DAILY, vix_lag_sessions: int = DEFAULT_VIX_LAG_SESSIONS,
) -> pd.DataFrame:
    """All features of ``tier`` on ``bars`` (raw market layout) at ``timescale``.

    ``timescale`` must say what the bars are: on ``weekly`` bars the weekly families are
    the plain indicator (each row is a completed week), annualisation uses 52 bars/year
    and the weekday calendar field becomes the week of the month.

    Returns float64 columns in declaration order on the bars' index, NaN during warm-up
    (at most ``tier.max_lookback`` rows on gap-free data). Cross-asset declarations need
    ``vix`` (the VIX's daily bars at any timescale), joined onto the bars' dates
    ``vix_lag_sessions`` VIX sessions late (``features.vix_lag_sessions``).
    """
    _check_bars(bars, f"bars for tier {tier.name}")
    vix_close = None
    if needs_vix(tier):
        if vix is None:
            names = [d.name for d in tier.declarations if d.family in CROSS_ASSET_FAMILIES]
            raise ValueError(f"tier {tier.name}: features {names[:5]}... need vix=<VIX bars>")
        vix_close = align_vix_close(vix, pd.DatetimeIndex(bars.index), vix_lag_sessions)
    inputs = FeatureInputs.from_bars(bars, vix_close, timescale)
    return compute_declarations(tier.declarations, inputs)
