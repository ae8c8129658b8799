"""The results table read from a real (SQLite) MLflow store, page by page."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from finscale import tracking
from finscale.evaluation.results import load_results, read_results, write_results
from finscale.tracking import TrackingTarget
from finscale.workspace import Workspace

pytestmark = pytest.mark.integration
TARGET = "y_h1_1pct"


def _log_run(client: MlflowClient, experiment_id: str, seed: int, status: str,
             extra_tags: dict[str, str] | None = None) -> str:
    tags = {"run_key": f"phase=dev|seed={seed}", "phase": "dev", "tickers": "SPY",
            "timescale": "daily", "tier": "a20", "horizon": "1", "budget": "10k",
            "task": "th0.01", "seed": str(seed), "settings": "0123456789",
            "test_split": "scored", "collapsed": "false", "collapsed_tasks": "none",
            "stop_reason": "completed", **(extra_tags or {})}
    run = client.create_run(experiment_id, tags=tags)
    run_id = run.info.run_id
    client.log_param(run_id, "n_parameters", "10234")
    client.log_param(run_id, f"split.val.positives.{TARGET}", "55")
    client.log_metric(run_id, f"test_auc_{TARGET}", 0.55 + 0.01 * seed)
    client.set_terminated(run_id, status)
    return run_id


def test_load_results_reads_every_run_of_the_experiment(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = TrackingTarget.for_workspace(workspace, "matrix")
    client = MlflowClient(tracking_uri=target.uri)
    experiment_id = client.create_experiment("matrix")
    finished = [_log_run(client, experiment_id, seed, "FINISHED") for seed in range(5)]
    _log_run(client, experiment_id, 9, "KILLED")
    _log_run(client, experiment_id, 8, "FINISHED", {"test_split": "withheld"})
    monkeypatch.setattr(tracking, "SEARCH_PAGE_SIZE", 2)  # four pages of runs

    table = load_results(workspace, "matrix")
    assert sorted(table.frame["run_id"]) == sorted(finished)
    assert table.skipped_runs == {"status KILLED": 1, "test split withheld (selection run)": 1}
    assert table.frame["test_auc"].round(2).tolist() == [0.55, 0.56, 0.57, 0.58, 0.59]
    assert (table.frame["n_parameters"] == 10234).all()
    parquet, _csv = write_results(table.frame, workspace.reports_dir / "matrix")
    assert read_results(parquet).equals(table.frame)
    assert load_results(workspace, "no-such-experiment").frame.empty
