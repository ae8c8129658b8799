"""Tracking against a temporary SQLite MLflow: params, tags, per-epoch metrics, artifacts,
the model with a signature, the collapse tag when forced, and secrets never logged."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from finscale.config import load_config
from finscale.tracking import (
    MAX_PARAM_CHARS,
    RunTracker,
    TrackingTarget,
    find_finished_run,
    param_value,
    run_metrics_history,
)
from finscale.training.run import train_run
from finscale.training.run_key import RunKey
from finscale.workspace import Workspace
from tests.support.raw_workspace import fill_raw_workspace

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
KEY = RunKey("test", "SPY", "daily", "10k", 1, "a20", "all", 0, "0" * 10)


def test_params_are_redacted_and_truncated() -> None:
    assert param_value("workspace.manifest_url",
                       "postgresql+psycopg://me:hunter2@127.0.0.1/db") == (
        "postgresql+psycopg://me:***@127.0.0.1/db")
    assert param_value("data.fred_api_key", "abc123") == "***"
    assert len(param_value("x", "y" * 10_000)) == MAX_PARAM_CHARS


def test_tracker_run_and_find_finished(workspace: Workspace) -> None:
    target = TrackingTarget.for_workspace(workspace, "unit")
    tracker = RunTracker(target)
    run_id = tracker.start(KEY)
    tracker.log_params({"a.b": 1, "secret_token": "s3cr3t"})
    tracker.log_metrics({"val_auc": 0.6}, step=1)
    tracker.log_metrics({"val_auc": 0.7}, step=2)
    assert find_finished_run(target, KEY) is None  # still running
    tracker.end()
    assert find_finished_run(target, KEY) == run_id
    other_seed = RunKey("test", "SPY", "daily", "10k", 1, "a20", "all", 1, "0" * 10)
    assert find_finished_run(target, other_seed) is None
    assert run_metrics_history(target, run_id, "val_auc") == [0.6, 0.7]
    run = MlflowClient(target.uri).get_run(run_id)
    assert run.data.params["secret_token"] == "***"
    experiment = MlflowClient(target.uri).get_experiment(run.info.experiment_id)
    assert experiment.artifact_location == workspace.mlartifacts_dir.resolve().as_uri()
    # the UI opens it on its training runs, not the GenAI traces view (MLflow 3)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert workspace.mlflow_uri == target.uri


def test_train_run_is_fully_tracked_and_collapse_is_tagged(
    workspace: Workspace, shared_data_dir: Path
) -> None:
    torch.set_num_threads(1)
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    config = load_config(REPO / "configs" / "base.yaml", overrides=[
        "experiment.phase=test", "model.budget=10k", "dataset.context=32", "training.epochs=2",
        "training.device=cpu", "thermal.sensor=none", "training.collapse_std_floor=1.0",
        "training.warmup_steps=5",
    ])
    result = train_run(config, workspace)
    assert result.stop_reason == "completed" and result.collapsed is True
    client = MlflowClient(workspace.mlflow_uri)
    run = client.get_run(result.run_id)
    params, tags = run.data.params, run.data.tags
    assert params["training.lr"] == "0.001" and params["model.budget"] == "10k"
    assert int(params["n_parameters"]) == result.n_parameters
    assert abs(result.n_parameters - 10_000) <= 500
    assert params["device"] == "cpu" and len(params["git_sha"]) in (40, len("unknown"))
    assert tags["run_key"] == RunKey.from_config(config).as_tag()
    assert tags["run_key"].startswith("phase=test|tickers=SPY|timescale=daily|budget=10k|")
    assert tags["settings"] == RunKey.from_config(config).settings
    assert tags["phase"] == "test" and tags["seed"] == "0"
    assert tags["collapsed"] == "true" and tags["stop_reason"] == "completed"
    assert tags["collapsed_tasks"] == tags["included_tasks"]  # floor 1.0: every task
    assert len(tags["dataset_md5"]) == 32 and "raw/market/SPY:" in tags["input_md5s"]
    assert tags["sample_hash_val"] and tags["config_hash"]
    _assert_task_counts_and_selection(client, result.run_id, config.training.min_task_positives)
    assert ",".join(result.excluded_tasks) == tags["excluded_tasks"]
    target = TrackingTarget.for_workspace(workspace, config.tracking.experiment)
    for metric in ("train_loss", "val_loss", "val_auc", "val_pred_std", "val_pred_min",
                   "val_pred_max", "samples_per_s"):
        assert len(run_metrics_history(target, result.run_id, metric)) == 2, metric
    assert "test_auc" in run.data.metrics and "best_val_auc" in run.data.metrics
    assert tags["test_split"] == "scored" and tags["sample_hash_test"]
    assert "val_auc_last3_mean" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"config.yaml", "split_report.json", "checkpoints"} <= artifacts
    assert [a.path for a in client.list_artifacts(result.run_id, "checkpoints")] == [
        "checkpoints/best.pt"]
    models = client.search_logged_models([run.info.experiment_id])
    assert len(models) == 1 and models[0].source_run_id == result.run_id
    import mlflow.pytorch  # the logged model serves any batch (not only the example's size)

    loaded = mlflow.pytorch.load_model(f"models:/{models[0].model_id}")
    batch = torch.randn(3, int(params["context"]), int(params["n_features"]))
    assert loaded(batch).shape == (3, int(params["n_tasks"]))
    # sensor `none`: no fake temperature metric, a status tag instead
    assert tags["thermal_sensor"] == "none" and tags["thermal_status"] == "disabled"
    assert "temperature_c" not in run.data.metrics
    assert params["autocast_dtype"] == "torch.float32"  # fp32 on CPU
    assert find_finished_run(target, RunKey.from_config(config)) == result.run_id


def _assert_task_counts_and_selection(client: MlflowClient, run_id: str, floor: int) -> None:
    """Counts per task match the split report; the selection mean skips tasks under the floor."""
    run = client.get_run(run_id)
    params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
    report = json.loads(Path(client.download_artifacts(run_id, "split_report.json")).read_text())
    val = next(s for s in report["splits"] if s["name"] == "val")
    excluded = []
    for task, positives in val["positives"].items():
        assert int(params[f"split.val.positives.{task}"]) == positives
        negatives = int(params[f"split.val.negatives.{task}"])
        assert positives + negatives == val["samples"]
        assert float(params[f"split.val.positive_rate.{task}"]) == pytest.approx(
            positives / val["samples"], abs=1e-6)
        assert f"split.test.positives.{task}" in params
        if min(positives, negatives) < floor:
            excluded.append(task)
    assert excluded, "SPY a20 H1 val has a rare-threshold task under the floor"
    assert tags["excluded_tasks"] == ",".join(excluded)
    included = [t for t in val["positives"] if t not in excluded]
    assert tags["included_tasks"] == ",".join(included)
    assert metrics["best_val_auc"] == pytest.approx(
        sum(metrics[f"best_val_auc_{t}"] for t in included) / len(included))
    assert metrics["best_val_auc_n_tasks"] == len(included)
    # the test mean averages the SAME tasks as validation (not the test split's own selection)
    assert metrics["test_auc"] == pytest.approx(
        sum(metrics[f"test_auc_{t}"] for t in included) / len(included))
    assert metrics["test_auc_n_tasks"] == len(included)
    for task in val["positives"]:  # per-task spread, so per-task collapse is visible
        assert f"best_val_pred_rel_std_{task}" in metrics
        assert f"best_val_pred_distinct_{task}" in metrics


def test_thermal_stop_then_resume_continues_the_same_run(
    workspace: Workspace, shared_data_dir: Path, tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    sensor = tmp_path / "temp"
    sensor.write_text("95")  # above the hard limit: the first check stops the run
    config = load_config(REPO / "configs" / "base.yaml", overrides=[
        "model.budget=10k", "dataset.context=32", "training.epochs=2", "training.device=cpu",
        "thermal.sensor=file", f"thermal.file_path={sensor}", "training.log_model=false",
        "training.thermal_check_every_steps=5",
    ])
    stopped = train_run(config, workspace)
    assert stopped.stop_reason == "thermal"
    client = MlflowClient(workspace.mlflow_uri)
    run = client.get_run(stopped.run_id)
    assert run.info.status == "KILLED" and run.data.tags["stop_reason"] == "thermal"
    assert "collapsed" not in run.data.tags  # no final evaluation of an unfinished run
    sensor.write_text("50")
    resumed = train_run(config, workspace, resume=True)
    assert resumed.run_id == stopped.run_id and resumed.stop_reason == "completed"
    run = client.get_run(resumed.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["stop_reason"] == "completed"
    target = TrackingTarget.for_workspace(workspace, config.tracking.experiment)
    assert len(run_metrics_history(target, resumed.run_id, "val_auc")) == 2
    assert run_metrics_history(target, resumed.run_id, "temperature_c") == [50.0, 50.0]


def test_cpu_autocast_is_what_the_run_logs(workspace: Workspace, shared_data_dir: Path) -> None:
    """The logged precision is the one the trainer ran in (bf16 with training.cpu_autocast)."""
    torch.set_num_threads(1)
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    config = load_config(REPO / "configs" / "base.yaml", overrides=[
        "model.budget=10k", "dataset.context=32", "training.epochs=1", "training.device=cpu",
        "thermal.sensor=none", "training.log_model=false", "training.cpu_autocast=true",
    ])
    result = train_run(config, workspace)
    params = MlflowClient(workspace.mlflow_uri).get_run(result.run_id).data.params
    assert params["autocast_dtype"] == "torch.bfloat16"


def test_a_run_leaves_no_tracking_uri_behind_for_the_next_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; finscale honours that variable,
    so a leaked value would send a second workspace's runs into the first one's store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first = Workspace.resolve(tmp_path / "one").ensure()
    second = Workspace.resolve(tmp_path / "two").ensure()
    tracker = RunTracker(TrackingTarget.for_workspace(first, "leak"))
    tracker.start(KEY)
    tracker.end()
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert TrackingTarget.for_workspace(second, "leak").uri == second.mlflow_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    tracker = RunTracker(TrackingTarget.for_workspace(first, "leak", first.mlflow_uri))
    tracker.start(KEY)
    tracker.end()
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://tracking.example:5000"  # the user's
