"""Final runs log the full scored metrics of every task (test and val, from the best
checkpoint), so the results table of a real experiment has log loss, skill, their SEs and
calibration bins; a trial's splits cannot be scored on test at all."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from finscale.config import AppConfig, load_config
from finscale.datasets.build import build_dataset
from finscale.datasets.load import WithheldSplitError, open_splits
from finscale.datasets.windows import WindowedDataset
from finscale.evaluation.final import final_scored_metrics
from finscale.evaluation.results import load_results
from finscale.manifest.store import Manifest
from finscale.training.run import TrainResult, train_run
from finscale.workspace import Workspace
from tests.support.raw_workspace import fill_raw_workspace

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = "final-eval"
TINY = ["experiment.phase=evaltest", f"tracking.experiment={EXPERIMENT}", "model.budget=10k",
        "dataset.context=32", "training.epochs=1", "training.device=cpu",
        "thermal.sensor=none", "training.log_model=false",
        "evaluation.bootstrap.replicates=50"]
SCORED = ("roc_auc", "pr_auc", "log_loss", "brier", "skill", "base_log_loss", "f1",
          "positive_calls", "roc_auc_se", "log_loss_se", "rel_pred_0", "rel_obs_0", "rel_n_0")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, shared_data_dir: Path
            ) -> tuple[Workspace, AppConfig, TrainResult]:
    torch.set_num_threads(1)
    workspace = Workspace.resolve(tmp_path_factory.mktemp("final") / "ws").ensure()
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    config = load_config(REPO / "configs" / "base.yaml", overrides=TINY)
    return workspace, config, train_run(config, workspace)


def test_a_final_run_logs_scored_metrics_the_results_table_reads(
    trained: tuple[Workspace, AppConfig, TrainResult]
) -> None:
    workspace, _, result = trained
    metrics = MlflowClient(workspace.mlflow_uri).get_run(result.run_id).data.metrics
    tasks = [k.removeprefix("test_auc_") for k in metrics
             if k.startswith("test_auc_") and k.removeprefix("test_auc_").startswith("y_")]
    assert len(tasks) == 4
    for task in tasks:
        for split in ("val", "test"):
            missing = [m for m in SCORED if f"{split}_{m}_{task}" not in metrics]
            assert not missing, (split, task, missing)
        # the trainer's test AUC and the scored one come from the same (best) weights
        assert metrics[f"test_roc_auc_{task}"] == pytest.approx(metrics[f"test_auc_{task}"],
                                                                abs=1e-6)
        assert metrics[f"val_roc_auc_{task}"] == pytest.approx(
            metrics[f"best_val_auc_{task}"], abs=1e-6)
    assert "test_auc" in metrics  # the trainer's mean test AUC stays
    frame = load_results(workspace, EXPERIMENT).frame
    assert sorted(frame["target"]) == sorted(tasks)
    for column in ("test_log_loss", "test_skill", "test_auc_se", "test_log_loss_se",
                   "test_base_log_loss", "val_auc"):
        assert frame[column].notna().all(), column
    assert (frame["model"] == "patchtst").all()
    for bins in frame["test_reliability"]:
        assert sum(b["count"] for b in json.loads(bins)) == frame["test_samples"].iloc[0]


def test_test_metrics_cannot_be_computed_for_a_trial(
    trained: tuple[Workspace, AppConfig, TrainResult]
) -> None:
    workspace, config, _ = trained
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        trial = open_splits(manifest, build_dataset(manifest, workspace, config),
                            include_test=False)
    finally:
        manifest.close()
    predicted: list[int] = []

    def predict(dataset: WindowedDataset) -> np.ndarray:
        predicted.append(len(dataset))
        return np.full((len(dataset), dataset.n_tasks), 0.5)

    with pytest.raises(WithheldSplitError, match="evaluate_test"):
        final_scored_metrics(trial, predict, horizon=1, config=config.evaluation,
                             predictor="patchtst")
    assert predicted == []  # refused before anything was predicted
    assert not math.isnan(trial.val.label_array().mean())
