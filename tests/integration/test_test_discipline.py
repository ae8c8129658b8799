"""Test-set discipline: with ``training.evaluate_test`` off the test split is never loaded, so
nothing that selects (HPO, early experiments) can see it; the dataset API refuses it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from finscale.config import load_config
from finscale.datasets.build import build_dataset
from finscale.datasets.load import WithheldSplitError, open_splits
from finscale.manifest.store import Manifest
from finscale.training.run import train_run
from finscale.workspace import Workspace
from tests.support.raw_workspace import fill_raw_workspace

REPO = Path(__file__).resolve().parents[2]
SMALL = ["experiment.phase=test", "model.budget=10k", "dataset.context=32", "training.epochs=2",
         "training.device=cpu", "thermal.sensor=none", "training.log_model=false"]


@pytest.mark.slow
def test_a_run_without_evaluate_test_never_scores_or_loads_test(
    workspace: Workspace, shared_data_dir: Path
) -> None:
    torch.set_num_threads(1)
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    config = load_config(REPO / "configs" / "base.yaml",
                         overrides=[*SMALL, "training.evaluate_test=false"])
    result = train_run(config, workspace)
    run = MlflowClient(workspace.mlflow_uri).get_run(result.run_id)
    assert result.stop_reason == "completed"
    assert not [k for k in run.data.metrics if k.startswith("test_")]
    assert not [k for k in run.data.params if k.startswith("split.test.")]
    assert run.data.tags["test_split"] == "withheld"
    assert "sample_hash_test" not in run.data.tags
    assert "best_val_auc" in run.data.metrics  # validation still drives selection


@pytest.mark.slow
def test_splits_opened_without_test_refuse_it_and_blank_its_rows(
    workspace: Workspace, shared_data_dir: Path
) -> None:
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    config = load_config(REPO / "configs" / "base.yaml", overrides=SMALL)
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        record = build_dataset(manifest, workspace, config)
        full = open_splits(manifest, record)
        withheld = open_splits(manifest, record, include_test=False)
    finally:
        manifest.close()
    assert full.has_test and len(full.test) > 0
    assert not withheld.has_test
    with pytest.raises(WithheldSplitError, match="evaluate_test"):
        _ = withheld.test
    # the rows behind the test windows hold no data at all in the withheld tensor
    x, y = withheld.val.batch(torch.arange(len(withheld.val)))
    assert torch.isfinite(x).all() and torch.isfinite(y).all()
    assert torch.equal(x, full.val.batch(torch.arange(len(full.val)))[0])
    test_ends = full.test.positions
    assert np.isfinite(full.val.labels[test_ends].numpy()).all()
    assert torch.isnan(withheld.val.features[test_ends]).all()
    assert torch.isnan(withheld.val.labels[test_ends]).all()
