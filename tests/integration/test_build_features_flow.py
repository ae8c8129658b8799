"""The build_features flow under the Prefect harness: second run is a cache hit."""

from __future__ import annotations

from pathlib import Path

import pytest

from finscale.manifest.store import Manifest
from finscale.workspace import Workspace
from flows.build_features import build_features
from tests.support.raw_workspace import fill_raw_workspace, read_market_csv, store_raw_market

pytestmark = pytest.mark.integration


def test_second_run_hits_cache_and_new_raw_version_rebuilds(
    prefect_harness: None, workspace: Workspace, shared_data_dir: Path
) -> None:
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "DIA", "VIX"], fred_series=[])
    home = str(workspace.home)
    first = build_features(tier="a20", tickers=["SPY", "DIA"], home=home)
    assert [o.state for o in first.tables] == ["Completed", "Completed"]
    assert all(o.table.created for o in first.tables)

    second = build_features(tier="a20", tickers=["SPY", "DIA"], home=home)
    assert [o.state for o in second.tables] == ["Cached", "Cached"]
    assert [o.table.artifact_id for o in second.tables] == [
        o.table.artifact_id for o in first.tables
    ]
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        assert len(manifest.history("features/a20/SPY")) == 1
        # a new raw SPY version (one bar fewer) changes the key: SPY rebuilds, DIA stays cached
        spy = read_market_csv(shared_data_dir / "market" / "SPY.csv").iloc[:-1]
        store_raw_market(manifest, workspace, "SPY", spy)
        third = build_features(tier="a20", tickers=["SPY", "DIA"], home=home)
        assert [o.state for o in third.tables] == ["Completed", "Cached"]
        assert len(manifest.history("features/a20/SPY")) == 2
        latest = manifest.latest("features/a20/SPY")
        assert latest is not None and latest.rows == len(spy)
        # the dataset step: SPY target, DIA cross-asset, VIX features, no macro
        fourth = build_features(tier="a20", tickers=["SPY", "DIA"], include_macro=False,
                                build_dataset=True, home=home)
        assert [o.state for o in fourth.tables] == ["Cached", "Cached"]
        assert fourth.dataset is not None
        assert fourth.dataset.name == "datasets/SPY-x-DIA/a20/daily/h1"
        assert min(fourth.dataset.split_samples.values()) >= 200
        stored = manifest.get(fourth.dataset.artifact_id)
        assert latest.id in stored.parent_ids
    finally:
        manifest.close()


def test_cache_hit_never_hands_out_a_deleted_or_altered_table(
    prefect_harness: None, workspace: Workspace, shared_data_dir: Path
) -> None:
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY"], fred_series=[])
    home = str(workspace.home)
    first = build_features(tier="a20", tickers=["SPY"], home=home)
    assert [o.state for o in first.tables] == ["Completed"]
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        path = manifest.absolute(manifest.get(first.tables[0].table.artifact_id))
        path.unlink()
        second = build_features(tier="a20", tickers=["SPY"], home=home)
        assert [o.state for o in second.tables] == ["Completed"]
        rebuilt = manifest.get(second.tables[0].table.artifact_id)
        assert manifest.verify([rebuilt])[0].ok
        # alter the stored bytes: again rebuilt, never served from the cache
        manifest.absolute(rebuilt).write_bytes(b"not parquet")
        third = build_features(tier="a20", tickers=["SPY"], home=home)
        assert [o.state for o in third.tables] == ["Completed"]
        assert manifest.verify([manifest.get(third.tables[0].table.artifact_id)])[0].ok
        # intact again: the next run is a cache hit on the rebuilt table
        fourth = build_features(tier="a20", tickers=["SPY"], home=home)
        assert [o.state for o in fourth.tables] == ["Cached"]
        assert fourth.tables[0].table.artifact_id == third.tables[0].table.artifact_id
    finally:
        manifest.close()
