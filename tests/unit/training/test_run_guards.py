"""train_run refuses a model that misses its budget and a split below the floor."""

from __future__ import annotations

from pathlib import Path

import pytest

from finscale.config import load_config
from finscale.datasets.build import build_dataset
from finscale.datasets.load import open_splits
from finscale.manifest.store import Manifest
from finscale.models.budget import BudgetMismatchError
from finscale.training.run import TinySplitError, check_split_sizes, train_run
from finscale.workspace import Workspace
from tests.support.raw_workspace import fill_raw_workspace

REPO = Path(__file__).resolve().parents[3]
BASE = ["dataset.context=32", "training.device=cpu", "thermal.sensor=none"]


@pytest.mark.slow
def test_budget_miss_refuses_to_start(workspace: Workspace, shared_data_dir: Path) -> None:
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    config = load_config(REPO / "configs" / "base.yaml", overrides=[
        *BASE, "model.budget=100k", "model.d_model=32", "model.n_layers=1"])
    with pytest.raises(BudgetMismatchError, match="100k"):
        train_run(config, workspace)
    assert not (workspace.home / "mlflow.db").exists()  # nothing was started
    assert not any(workspace.checkpoints_dir.iterdir())

    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        good = load_config(REPO / "configs" / "base.yaml", overrides=BASE)
        splits = open_splits(manifest, build_dataset(manifest, workspace, good))
    finally:
        manifest.close()
    check_split_sizes(splits, len(splits.val))
    with pytest.raises(TinySplitError, match=f"split 'val' has {len(splits.val)} samples"):
        check_split_sizes(splits, len(splits.val) + 1)
