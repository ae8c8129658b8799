"""train_run refuses a model that misses its budget, a split below the floor, and a val split
where no task has enough positives and negatives for an AUC that is not noise."""

from __future__ import annotations

from pathlib import Path

import pytest

from finscale.config import load_config
from finscale.datasets.build import build_dataset
from finscale.datasets.load import open_splits
from finscale.datasets.splits import SplitTooSmallError
from finscale.manifest.store import Manifest
from finscale.models.budget import BudgetMismatchError
from finscale.training.checkpoint import CheckpointError
from finscale.training.metrics import NoUsableTaskError
from finscale.training.run import train_run
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
    tiny = load_config(REPO / "configs" / "base.yaml", overrides=[
        *BASE, f"dataset.splits.min_samples={len(splits.val) + 1}"])
    with pytest.raises(SplitTooSmallError, match=f"val={len(splits.val)} "):
        train_run(tiny, workspace)  # the one floor check of the datasets area refuses it
    assert not (workspace.home / "mlflow.db").exists()


@pytest.mark.slow
def test_val_split_without_a_usable_task_refuses_to_start(
    workspace: Workspace, shared_data_dir: Path
) -> None:
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    config = load_config(REPO / "configs" / "base.yaml", overrides=[
        *BASE, "model.budget=10k", "training.min_task_positives=100000"])
    with pytest.raises(NoUsableTaskError, match=r"val.*>= 100000.*y_h1_\S+: \d+ pos / \d+ neg"):
        train_run(config, workspace)
    assert not (workspace.home / "mlflow.db").exists()  # no run: better none than noise
    assert not any(workspace.checkpoints_dir.iterdir())


@pytest.mark.slow
def test_resume_without_a_checkpoint_refuses(workspace: Workspace, shared_data_dir: Path) -> None:
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    config = load_config(REPO / "configs" / "base.yaml", overrides=[*BASE, "model.budget=10k"])
    with pytest.raises(CheckpointError, match=r"nothing to resume.*without --resume"):
        train_run(config, workspace, resume=True)
    assert not any(workspace.checkpoints_dir.iterdir())
