"""Build, store and open datasets: the manifest-level entry points of the dataset area.

``build_dataset`` reads raw and feature artifacts through the manifest, assembles the
table (target tier + VIX + macro + cross-asset inputs, or several tickers pooled), labels
it from raw prices, assigns leakage-safe splits, fits robust normalisation on train rows
only and stores the result as one Parquet artifact whose meta holds the feature and task
names, the normalisation statistics, the split report and the drop report.
With ``splits.walk_forward.fold`` = k the build uses fold k's ranges (splits, normalisation
and size floor alike) and stores its own artifact, named ``.../h<H>/fold<k>``.
``open_splits`` verifies the MD5 and returns zero-copy windowed train/val/test datasets.
"""

from __future__ import annotations

from finscale.config.loader import config_hash
from finscale.config.schema import AppConfig
from finscale.datasets.config import DatasetConfig
from finscale.datasets.load import DatasetSplits, open_splits
from finscale.datasets.prepare import macro_tier_for, prepare_table
from finscale.datasets.splits import check_min_samples, fold_label, fold_splits
from finscale.datasets.table import assign_splits, normalised_frame
from finscale.features.vix import load_vix_tier
from finscale.manifest.artifacts import save_frame
from finscale.manifest.store import ArtifactRecord, Manifest
from finscale.workspace import Workspace

__all__ = ["DatasetSplits", "build_dataset", "dataset_name", "open_splits"]

DATASET_KIND = "dataset"
DATASET_SOURCE = "finscale.datasets"


def dataset_name(config: DatasetConfig) -> str:
    """``datasets/<who>/<tier>/<timescale>/h<H>[/fold<k>]``; who is ``SPY``, ``SPY-x-DIA-QQQ``
    (cross-asset inputs) or ``pool-SPY-DIA`` (pooled); ``fold<k>`` for walk-forward fold k."""
    if config.pooled_tickers:
        who = "pool-" + "-".join(config.pooled_tickers)
    else:
        others = [t for t in config.cross_assets if t != config.ticker]
        who = config.ticker + ("-x-" + "-".join(others) if others else "")
    name = f"datasets/{who}/{config.tier}/{config.timescale}/h{config.horizon}"
    fold = config.splits.fold
    return name if fold is None else f"{name}/fold{fold}"


def dataset_config_hash(config: AppConfig) -> str:
    """Hash of everything that shapes the table but is not a parent artifact: the dataset and
    features settings plus the VIX and macro tier declarations (read from
    ``features.tiers_dir``) when those inputs are included, so editing ``vix.yaml`` or
    ``macro.yaml`` yields a new dataset instead of reusing a stale one. The folder's location
    is left out: its content is what counts (the target tier is covered by its parent
    feature artifact)."""
    dcfg = config.dataset
    features = config.features.model_dump(mode="json", exclude={"tiers_dir"})
    covered: dict[str, object] = {"dataset": dcfg.model_dump(mode="json"), "features": features}
    if dcfg.include_vix:
        covered["vix_tier"] = load_vix_tier(config.features.tiers_dir).model_dump(mode="json")
    if dcfg.include_macro and dcfg.macro_series:
        covered["macro_tier"] = macro_tier_for(config).model_dump(mode="json")
    return config_hash(covered)


def build_dataset(manifest: Manifest, workspace: Workspace, config: AppConfig) -> ArtifactRecord:
    """Build (or reuse) the dataset ``config.dataset`` describes; returns its manifest record.

    Raises ``SplitTooSmallError`` when a split is below ``splits.min_samples``.
    """
    dcfg = config.dataset
    prepared = prepare_table(manifest, workspace, config)
    name = dataset_name(dcfg)
    hash_ = dataset_config_hash(config)
    latest = manifest.latest(name)
    if (latest is not None and latest.config_hash == hash_
            and latest.parent_ids == prepared.parents and manifest.verify([latest])[0].ok):
        return latest
    # fold k: its own ranges for splits, train-only normalisation and the size floor
    resolved = dcfg.model_copy(update={"splits": fold_splits(dcfg.splits)})
    positions, report = assign_splits(prepared, resolved)
    label = fold_label(dcfg.splits)
    check_min_samples(report, dcfg.splits.min_samples,
                      f"dataset {name}" + (f" ({label})" if label else ""))
    frame, stats = normalised_frame(prepared, positions, resolved)
    wf = dcfg.splits.walk_forward
    stored = save_frame(
        manifest, frame, name=name, kind=DATASET_KIND, directory=workspace.datasets_dir,
        source=DATASET_SOURCE, config_hash=hash_, parents=prepared.parents,
        meta={"features": list(prepared.features), "tasks": list(prepared.tasks),
              "tickers": list(prepared.tickers), "context": dcfg.context,
              "horizon": dcfg.horizon, "timescale": dcfg.timescale,
              "pooled": bool(dcfg.pooled_tickers), "normalisation": stats.to_dict(),
              "split_report": report.to_dict(),
              "drop_report": [d.to_dict() for d in prepared.drops],
              "fold": dcfg.splits.fold,
              "folds": wf.folds if wf is not None and wf.fold is not None else None},
    )
    return stored.record


