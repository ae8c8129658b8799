"""On real SPY: final runs log the full scored metrics of every task (test and val, from the
best checkpoint), so the results table of a real experiment has log loss, skill, their SEs
and calibration bins; a trial's splits cannot be scored on test at all; baselines are logged
as runs on the model's exact samples and never make a training identity look finished;
``finscale report`` and the ``report`` flow publish the experiment's report to MLflow."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from finscale.cli.main import main
from finscale.config import AppConfig, load_config
from finscale.datasets.build import build_dataset
from finscale.datasets.load import WithheldSplitError, open_splits
from finscale.datasets.windows import WindowedDataset
from finscale.evaluation.final import final_scored_metrics
from finscale.evaluation.results import load_results
from finscale.evaluation.runner import BaselineOutcome, score_and_log_baselines
from finscale.evaluation.scored import SampleMismatchError
from finscale.manifest.store import Manifest
from finscale.tracking import (
    EXPERIMENT_PARENT_ROLE,
    EXPERIMENT_ROLE_TAG,
    TrackingTarget,
    find_finished_run,
    find_run_ids,
    log_finished_run,
)
from finscale.training.run import TrainResult, train_run
from finscale.training.run_key import RunKey
from finscale.workspace import Workspace
from tests.support.raw_workspace import fill_raw_workspace

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = "final-eval"
TINY = ["experiment.phase=evaltest", f"tracking.experiment={EXPERIMENT}", "model.budget=10k",
        "dataset.context=32", "training.epochs=1", "training.device=cpu",
        "thermal.sensor=none", "training.log_model=false",
        "evaluation.bootstrap.replicates=50", "evaluation.baselines.lags=[1]",
        "evaluation.baselines.logistic_c=[0.1]", "evaluation.baselines.hgb_learning_rate=[0.1]",
        "evaluation.baselines.hgb_max_leaf_nodes=[7]", "evaluation.baselines.hgb_max_iter=20"]
SCORED = ("roc_auc", "pr_auc", "log_loss", "brier", "skill", "base_log_loss", "f1",
          "positive_calls", "roc_auc_se", "log_loss_se", "rel_pred_0", "rel_obs_0", "rel_n_0")


Trained = tuple[Workspace, AppConfig, TrainResult]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, shared_data_dir: Path
            ) -> tuple[Workspace, AppConfig, TrainResult]:
    torch.set_num_threads(1)
    workspace = Workspace.resolve(tmp_path_factory.mktemp("final") / "ws").ensure()
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    config = load_config(REPO / "configs" / "base.yaml", overrides=TINY)
    return workspace, config, train_run(config, workspace)


def test_a_final_run_logs_scored_metrics_the_results_table_reads(trained: Trained) -> None:
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


def test_test_metrics_cannot_be_computed_for_a_trial(trained: Trained) -> None:
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


@pytest.fixture(scope="module")
def baselines(trained: Trained) -> BaselineOutcome:
    workspace, config, _ = trained
    return score_and_log_baselines(config, workspace)


def test_baselines_are_logged_as_runs_on_the_model_samples(
    trained: Trained, baselines: BaselineOutcome
) -> None:
    workspace, config, result = trained
    client = MlflowClient(workspace.mlflow_uri)
    model = client.get_run(result.run_id).data
    assert model.tags["model"] == "patchtst"
    assert {"baseline-base-rate", "baseline-vix_level", "baseline-atr_close",
            "baseline-logistic", "baseline-hgb"} <= set(baselines.logged)
    assert baselines.reused == ()
    model_names = {k for k in model.metrics if k.startswith(("test_", "val_"))}
    for name, run_id in baselines.logged.items():
        run = client.get_run(run_id)
        tags = run.data.tags
        assert run.info.status == "FINISHED" and tags["model"] == name
        for field in ("sample_hash_train", "sample_hash_val", "sample_hash_test",
                      "dataset_md5", "phase", "tickers", "horizon", "tier", "task"):
            assert tags[field] == model.tags[field], (name, field)
        assert tags["budget"] == "baseline" and tags["run_key"] != model.tags["run_key"]
        assert set(run.data.metrics) <= model_names, name  # the model's metric names
    frame = load_results(workspace, EXPERIMENT).frame
    rows = frame[frame["model"] == "baseline-vix_level"]
    assert len(rows) == 4 and rows["test_auc"].notna().all() and rows["val_auc"].notna().all()
    again = score_and_log_baselines(config, workspace)
    assert again.logged == {} and set(again.reused) == set(baselines.logged)


def test_a_baseline_never_makes_a_training_identity_look_finished(
    trained: Trained, baselines: BaselineOutcome
) -> None:
    workspace, config, result = trained
    target = TrackingTarget.for_workspace(workspace, EXPERIMENT)
    untrained = RunKey.from_config(config.model_copy(
        update={"training": config.training.model_copy(update={"seed": 7})}))
    log_finished_run(target, "impostor", tags={**untrained.as_tags(),
                                               "model": "baseline-logistic"},
                     params={}, metrics={})
    assert find_finished_run(target, untrained) is None
    assert find_finished_run(target, RunKey.from_config(config)) == result.run_id


def test_baselines_refuse_samples_other_than_the_model_run(
    trained: Trained, baselines: BaselineOutcome
) -> None:
    workspace, config, result = trained
    client = MlflowClient(workspace.mlflow_uri)
    real = client.get_run(result.run_id).data.tags["sample_hash_val"]
    client.set_tag(result.run_id, "sample_hash_val", "0" * len(real))
    try:
        with pytest.raises(SampleMismatchError, match="sample_hash_val"):
            score_and_log_baselines(config, workspace)
    finally:
        client.set_tag(result.run_id, "sample_hash_val", real)


def _report(workspace: Workspace, capsys: pytest.CaptureFixture[str], *args: str
            ) -> tuple[int, str, str]:
    code = main(["--config", str(REPO / "configs" / "base.yaml"), "--home",
                 str(workspace.home), "report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_finscale_report_writes_the_report_and_logs_it_under_the_parent_run(
    trained: Trained, baselines: BaselineOutcome, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace, _, _ = trained
    folder = workspace.reports_dir / EXPERIMENT
    code, out, err = _report(workspace, capsys, EXPERIMENT, "--no-baselines")
    assert code == 0, err
    assert out.strip().splitlines()[-1] == str(folder / "index.html")
    html = (folder / "index.html").read_text(encoding="utf-8")
    images = re.findall(r'<img src="([^"]+)"', html)
    assert images and all((folder / name).is_file() for name in images)
    assert "baseline" in (folder / "report.md").read_text(encoding="utf-8")
    assert (folder / "results.parquet").is_file() and (folder / "results.csv").is_file()
    target = TrackingTarget.for_workspace(workspace, EXPERIMENT)
    (parent,) = find_run_ids(target, {EXPERIMENT_ROLE_TAG: EXPERIMENT_PARENT_ROLE})
    client = MlflowClient(workspace.mlflow_uri)
    logged = {a.path for a in client.list_artifacts(parent, "report")}
    assert {f"report/{n}" for n in ("index.html", "report.md", "results.parquet",
                                    *images)} <= logged
    (folder / "stale.png").write_bytes(b"from an older report")
    code, out, err = _report(workspace, capsys, EXPERIMENT, "--no-baselines")
    assert code == 0, err
    assert not (folder / "stale.png").exists()  # the folder is replaced whole
    assert find_run_ids(target, {EXPERIMENT_ROLE_TAG: EXPERIMENT_PARENT_ROLE}) == [parent]
    code, _, err = _report(workspace, capsys, "no-such-experiment")
    assert code == 3 and "no-such-experiment" in err


def test_the_report_flow_publishes_the_same_report(
    trained: Trained, baselines: BaselineOutcome, prefect_harness: None
) -> None:
    from flows.report import report

    workspace, _, _ = trained
    ref = report(experiment=EXPERIMENT, config_path=str(REPO / "configs" / "base.yaml"),
                 home=str(workspace.home), baselines=False)
    assert ref["index"] == str(workspace.reports_dir / EXPERIMENT / "index.html")
    assert int(ref["rows"]) > 0 and int(ref["images"]) > 0
