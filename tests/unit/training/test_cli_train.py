"""`finscale train` runs in-process and prints where the run is in MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from finscale.cli.main import main
from finscale.workspace import Workspace
from tests.support.raw_workspace import fill_raw_workspace

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_cli_trains_and_prints_the_mlflow_location(
    workspace: Workspace, shared_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.set_num_threads(1)
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    code = main(["--home", str(workspace.home), "train", "--config",
                 str(REPO / "configs" / "base.yaml"), "model.budget=10k", "dataset.context=32",
                 "training.epochs=1", "training.device=cpu", "thermal.sensor=none",
                 "training.log_model=false"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"sqlite:///{workspace.home}/mlflow.db" in out
    assert f"mlflow ui --backend-store-uri sqlite:///{workspace.home}/mlflow.db" in out
    assert "phase=dev|budget=10k" in out
    from mlflow.tracking import MlflowClient

    (run,) = MlflowClient(f"sqlite:///{workspace.home}/mlflow.db").search_runs(
        [MlflowClient(f"sqlite:///{workspace.home}/mlflow.db")
         .get_experiment_by_name("finscale").experiment_id])
    assert f"run {run.info.run_id}" in out  # the printed run is the one that exists
    assert f"#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}" in out


def test_cli_reports_a_bad_override(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    code = main(["--home", str(tmp_path), "train", "--config",
                 str(REPO / "configs" / "base.yaml"), "training.lr=-1"])
    assert code == 2
    assert "training.lr" in capsys.readouterr().err
