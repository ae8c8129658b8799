"""Manifest-level feature tables: raw bars in, ``features/<TIER>/<TICKER>`` artifacts out.

A feature table is registered with its parents (the raw artifacts it was computed from)
and a config hash (tier declarations + features config, ``vix_lag_sessions`` included, +
timescale), so tables built with different VIX lags never share a cache entry. When the latest
version already has the same parents and hash, and its file still verifies, nothing is
recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from finscale.config.loader import config_hash
from finscale.data.refresh import market_artifact_name
from finscale.datasets.timescales import resample_bars
from finscale.features.config import FeaturesConfig
from finscale.features.engine import FeatureTier, compute_tier, load_tier, needs_vix
from finscale.features.paths import resolve_tiers_dir
from finscale.manifest.artifacts import load_frame, save_frame
from finscale.manifest.store import ArtifactRecord, Manifest
from finscale.workspace import Workspace

FEATURES_KIND = "features"
FEATURES_SOURCE = "finscale.features"
VIX_TICKER = "VIX"


class MissingRawDataError(LookupError):
    """A raw artifact the build needs is not in the manifest (run a data refresh first)."""


@dataclass(frozen=True)
class FeatureBuildResult:
    """The feature artifact of one (tier, ticker, timescale) and whether it was rebuilt."""

    name: str
    record: ArtifactRecord
    created: bool


def feature_table_name(tier: str, ticker: str, timescale: str = "daily") -> str:
    """``features/<TIER>/<TICKER>`` (daily) or ``features/<TIER>/<TICKER>/weekly``."""
    base = f"features/{tier}/{ticker}"
    return base if timescale == "daily" else f"{base}/{timescale}"


def require_raw(manifest: Manifest, name: str) -> ArtifactRecord:
    """The latest raw artifact ``name``, or a clear error naming it."""
    record = manifest.latest(name)
    if record is None:
        raise MissingRawDataError(
            f"manifest has no '{name}'; run `finscale data refresh` for it first"
        )
    return record


def raw_inputs(
    manifest: Manifest, tier: FeatureTier, ticker: str
) -> tuple[ArtifactRecord, ArtifactRecord | None]:
    """The latest raw bars of ``ticker`` and, when the tier reads it, of the VIX."""
    raw_record = require_raw(manifest, market_artifact_name(ticker))
    vix_name = market_artifact_name(VIX_TICKER)
    return raw_record, (require_raw(manifest, vix_name) if needs_vix(tier) else None)


def feature_config_hash(tier: FeatureTier, features: FeaturesConfig, timescale: str) -> str:
    """Hash of what decides a feature table's content besides its raw inputs."""
    return config_hash({
        "tier": tier.model_dump(mode="json"),
        "features": features.model_dump(mode="json", exclude={"tier"}),
        "timescale": timescale,
    })


def find_reusable(
    manifest: Manifest, name: str, parents: tuple[int, ...], hash_: str
) -> ArtifactRecord | None:
    """The latest version of ``name`` if it has these parents and hash and still verifies."""
    latest = manifest.latest(name)
    if latest is None or latest.config_hash != hash_ or latest.parent_ids != parents:
        return None
    return latest if manifest.verify([latest])[0].ok else None


def load_bars(manifest: Manifest, ticker: str, timescale: str = "daily") -> tuple[
    ArtifactRecord, pd.DataFrame
]:
    """Verified raw bars of ``ticker`` at ``timescale``."""
    record = require_raw(manifest, market_artifact_name(ticker))
    return record, resample_bars(load_frame(manifest, record), timescale)


def build_feature_table(
    manifest: Manifest,
    workspace: Workspace,
    features: FeaturesConfig,
    *,
    tier_name: str,
    ticker: str,
    timescale: str = "daily",
) -> FeatureBuildResult:
    """Compute (or reuse) the tier's features for one ticker and register the table."""
    tier = load_tier(tier_name, resolve_tiers_dir(features.tiers_dir))
    raw_record, vix_record = raw_inputs(manifest, tier, ticker)
    parents = tuple(sorted({raw_record.id, *([vix_record.id] if vix_record else [])}))
    hash_ = feature_config_hash(tier, features, timescale)
    name = feature_table_name(tier_name, ticker, timescale)
    reusable = find_reusable(manifest, name, parents, hash_)
    if reusable is not None:
        return FeatureBuildResult(name, reusable, created=False)
    bars = resample_bars(load_frame(manifest, raw_record), timescale)
    # the VIX stays daily at every timescale: its session lag counts VIX days, not bars
    vix = load_frame(manifest, vix_record) if vix_record else None
    table = compute_tier(tier, bars, vix=vix, timescale=timescale,
                         vix_lag_sessions=features.vix_lag_sessions)
    stored = save_frame(
        manifest, table, name=name, kind=FEATURES_KIND, directory=workspace.features_dir,
        source=FEATURES_SOURCE, config_hash=hash_, parents=parents,
        meta={"tier": tier_name, "ticker": ticker, "timescale": timescale,
              "features": list(table.columns), "max_lookback": tier.max_lookback},
    )
    return FeatureBuildResult(name, stored.record, created=True)


def feature_table_is_current(
    manifest: Manifest, features: FeaturesConfig, *, tier_name: str, ticker: str,
    timescale: str = "daily",
) -> bool:
    """Whether the latest stored table matches today's raw parents and config and its file
    still verifies (MD5): if not, a cached pointer to it must not be handed out."""
    tier = load_tier(tier_name, resolve_tiers_dir(features.tiers_dir))
    raw_record, vix_record = raw_inputs(manifest, tier, ticker)
    parents = tuple(sorted({raw_record.id, *([vix_record.id] if vix_record else [])}))
    name = feature_table_name(tier_name, ticker, timescale)
    hash_ = feature_config_hash(tier, features, timescale)
    return find_reusable(manifest, name, parents, hash_) is not None


def feature_inputs_key(
    manifest: Manifest, features: FeaturesConfig, *, tier_name: str, ticker: str,
    timescale: str = "daily",
) -> str:
    """A key that changes exactly when the table would: raw parent MD5s + config hash."""
    tier = load_tier(tier_name, resolve_tiers_dir(features.tiers_dir))
    raws = [r for r in raw_inputs(manifest, tier, ticker) if r is not None]
    return config_hash({
        "name": feature_table_name(tier_name, ticker, timescale),
        "parents": sorted(r.md5 for r in raws),
        "config": feature_config_hash(tier, features, timescale),
    })
