"""`experiment run --local` on a tiny matrix with real data, a real study and real MLflow:
the study runs before the final runs that take its best parameters, a second run starts
nothing (nor does the Prefect flow), and a thermal-stopped cell is the only one a rerun starts.

The estimate is printed beside the measured time but not asserted: a timed test fails on a
machine faster or busier than the one it was tuned on. `benchmarks/experiment_estimate.py`
states the ratio for the demo matrix."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from finscale.cli.main import main
from finscale.experiments.hpo_adapter import study_progress
from finscale.experiments.matrix import Matrix, load_matrix
from finscale.experiments.plan import PlanInputs, plan_matrices
from finscale.experiments.run import LocalRunner, run_matrix
from finscale.experiments.shapes import stored_spans
from finscale.experiments.status import matrix_status, tracking_target
from finscale.experiments.throughput import MeasuredRates
from finscale.training.device import resolve_device
from finscale.workspace import Workspace
from flows.experiment import experiment
from tests.support.raw_workspace import fill_raw_workspace
from tests.support.tiny_matrix import write_tiny_matrix

JOB_OVERHEAD_S = 5.0  # the CLI's default for this machine


def _matrix(tmp_path: Path) -> Matrix:
    return load_matrix(write_tiny_matrix(tmp_path, study_overrides={"training.epochs": 1}))


def _estimate_s(matrix: Matrix, workspace: Workspace) -> float:
    from finscale.experiments.hpo_adapter import study_config

    rates = MeasuredRates(resolve_device("cpu"), workspace.cache_dir)
    spans = stored_spans(workspace, {"SPY"})
    inputs = PlanInputs(rates=rates.throughputs, overhead_s=JOB_OVERHEAD_S,
                        study_config=study_config, spans=spans)
    return plan_matrices([matrix], inputs)[0].totals.total_s


@pytest.mark.slow
def test_local_run_studies_first_then_finals_resumable_and_estimated(
    prefect_harness: None, workspace: Workspace, shared_data_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    torch.set_num_threads(1)
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    matrix = _matrix(tmp_path)
    before = matrix_status(matrix, workspace)
    assert [s.state for s in before] == ["pending", "waiting", "waiting"]
    estimate = _estimate_s(matrix, workspace)

    events: list[tuple[str, str]] = []
    report = run_matrix(matrix, workspace, LocalRunner(workspace, gate_timeout_s=5),
                        lambda event, job, _detail: events.append((event, job.id)))
    study_id = matrix.hpo_jobs[0].id
    finals = [job.id for job in matrix.final_jobs]
    assert report.failed == [] and report.started == [study_id, *finals]
    assert events[:2] == [("start", study_id), ("done", study_id)]  # the study comes first
    assert estimate > 0
    print(f"tiny matrix: estimate {estimate:.1f} s, measured {report.seconds:.1f} s")

    progress = study_progress(matrix.hpo_jobs[0], workspace)
    assert progress.state == "done" and progress.counted == 2 and progress.best_overrides
    after = matrix_status(matrix, workspace)
    assert [s.state for s in after] == ["done", "done", "done"]
    client = MlflowClient(workspace.mlflow_uri)
    for status, planned in zip(after[1:], matrix.final_jobs, strict=True):
        run = client.get_run(str(status.run_id))
        # the final run trained the study's best parameters: another identity than planned
        assert status.job.study_overrides == progress.best_overrides
        assert run.data.tags["run_key"] == status.job.identity != planned.identity
        assert run.data.params["training.lr"] == progress.best_overrides[0].split("=")[1]
        assert run.data.tags["test_split"] == "scored"
        assert run.data.tags["matrix_job"] == planned.id

    again = run_matrix(matrix, workspace, LocalRunner(workspace, gate_timeout_s=5))
    assert again.started == [] and again.skipped == finals  # a finished matrix starts nothing
    # the Prefect flow reads the same state: nothing to submit (no deployment is needed)
    summary = experiment(config_path=str(matrix.path), home=str(workspace.home), gpu_slot=None)
    assert summary == {"done": 3}
    home = ["--home", str(workspace.home)]
    assert main([*home, "experiment", "run", str(matrix.path), "--local"]) == 0
    assert "started 0 jobs, skipped 2 finished" in capsys.readouterr().out

    # a thermal stop puts its cell back to pending: a rerun starts that cell only
    stopped = after[2]
    client.set_terminated(str(stopped.run_id), "KILLED")
    client.set_tag(str(stopped.run_id), "stop_reason", "thermal")
    assert [s.state for s in matrix_status(matrix, workspace)][2] == "thermal-stopped"
    assert main(["--home", str(workspace.home), "experiment", "status",
                 str(matrix.path)]) == 0
    out = capsys.readouterr().out
    assert "thermal-stopped" in out and tracking_target(matrix, workspace).run_url(
        str(after[1].experiment_id), str(after[1].run_id)) in out
    rerun = run_matrix(matrix, workspace, LocalRunner(workspace, gate_timeout_s=5))
    assert rerun.started == [finals[1]] and rerun.skipped == [finals[0]]
