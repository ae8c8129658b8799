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
    assert f"--backend-store-uri sqlite:///{workspace.home}/mlflow.db" in out
    assert "mlflow server --host 127.0.0.1" in out and "--workers 1" in out
    assert "phase=dev|tickers=SPY|timescale=daily|budget=10k" in out
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


def test_cli_refuses_an_unreachable_budget_without_a_traceback(
    workspace: Workspace, shared_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    code = main(["--home", str(workspace.home), "train", "--config",
                 str(REPO / "configs" / "base.yaml"), "model.budget=10", "dataset.context=32",
                 "training.device=cpu", "thermal.sensor=none"])
    err = capsys.readouterr().err
    assert code == 3
    assert err.startswith("train refused: budget 10") and "Traceback" not in err


@pytest.mark.parametrize("budget", ["7q", "0"])
def test_cli_rejects_a_malformed_budget_at_load(
    budget: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["--home", str(tmp_path), "train", "--config",
                 str(REPO / "configs" / "base.yaml"), f"model.budget={budget}"])
    assert code == 2
    assert f"field 'model.budget': Value error, budget '{budget}'" in capsys.readouterr().err
