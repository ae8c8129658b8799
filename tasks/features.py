"""Prefect tasks of the feature area: one library call each, cached on inputs' MD5s.

The cache key is computed from the manifest (raw parent MD5s + tier/config hash), never
from DataFrames: unchanged raw data and config make the task a cache hit that rebuilds
nothing; a new raw version or a changed tier file makes a new key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.context import TaskRunContext

from finscale.config import AppConfig
from finscale.datasets.build import build_dataset
from finscale.features.build import (
    build_feature_table,
    feature_inputs_key,
    feature_table_is_current,
)
from finscale.manifest.store import Manifest
from finscale.runtime import load_runtime
from finscale.workspace import Workspace

TASK_RETRIES = 2
TASK_RETRY_DELAY_S = 5


@dataclass(frozen=True)
class FeatureTableRef:
    """What the task hands on: the artifact's name, id and MD5 (not its data)."""

    name: str
    artifact_id: int
    md5: str
    rows: int
    created: bool


def load_context(
    home: str | None, config_path: str | None, overrides: Sequence[str] = ()
) -> tuple[AppConfig, Workspace]:
    """Config from ``config_path`` (else the runtime default) and the workspace."""
    return load_runtime([config_path] if config_path else None, overrides, home)


def feature_table_cache_key(_context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Cache key of ``build_feature_table_task``: workspace + raw MD5s + config hash."""
    config, workspace = load_context(parameters["home"], parameters["config_path"])
    manifest = Manifest.for_workspace(workspace)
    try:
        key = feature_inputs_key(manifest, config.features, tier_name=parameters["tier"],
                                 ticker=parameters["ticker"], timescale=parameters["timescale"])
    finally:
        manifest.close()
    return f"features-{workspace.home.as_posix()}-{key}"


@task(task_run_name="check-features-{tier}-{ticker}-{timescale}")
def feature_table_is_current_task(
    home: str | None, config_path: str | None, tier: str, ticker: str, timescale: str = "daily"
) -> bool:
    """Uncached: whether the stored table for today's inputs exists and its MD5 verifies.

    The flow refreshes the build task's cache when this is False, so a cache hit never
    hands out an artifact whose file was deleted or altered."""
    config, workspace = load_context(home, config_path)
    manifest = Manifest.for_workspace(workspace)
    try:
        return feature_table_is_current(manifest, config.features, tier_name=tier,
                                        ticker=ticker, timescale=timescale)
    finally:
        manifest.close()


@task(
    cache_key_fn=feature_table_cache_key,
    persist_result=True,
    retries=TASK_RETRIES,
    retry_delay_seconds=TASK_RETRY_DELAY_S,
    task_run_name="features-{tier}-{ticker}-{timescale}",
)
def build_feature_table_task(
    home: str | None, config_path: str | None, tier: str, ticker: str, timescale: str = "daily"
) -> FeatureTableRef:
    """Build (or reuse) ``features/<tier>/<ticker>`` in the workspace's manifest."""
    config, workspace = load_context(home, config_path)
    manifest = Manifest.for_workspace(workspace)
    try:
        result = build_feature_table(manifest, workspace, config.features, tier_name=tier,
                                     ticker=ticker, timescale=timescale)
    finally:
        manifest.close()
    record = result.record
    return FeatureTableRef(name=result.name, artifact_id=record.id, md5=record.md5,
                           rows=record.rows, created=result.created)


@dataclass(frozen=True)
class DatasetRef:
    """The dataset artifact a build produced: name, id, MD5 and split sizes."""

    name: str
    artifact_id: int
    md5: str
    split_samples: dict[str, int]


@task(retries=TASK_RETRIES, retry_delay_seconds=TASK_RETRY_DELAY_S)
def build_dataset_task(
    home: str | None, config_path: str | None, overrides: list[str]
) -> DatasetRef:
    """Build (or reuse, when parents and config hash match) the configured dataset."""
    config, workspace = load_context(home, config_path, overrides)
    manifest = Manifest.for_workspace(workspace)
    try:
        record = build_dataset(manifest, workspace, config)
    finally:
        manifest.close()
    report = record.meta["split_report"]["splits"]
    return DatasetRef(name=record.name, artifact_id=record.id, md5=record.md5,
                      split_samples={s["name"]: int(s["samples"]) for s in report})
