"""The UIs a researcher lives in, checked in a real browser: with the local stack up, the
smallest training runs through the `train` deployment on a worker; headless Chromium then
sees the finscale deployments and the finished flow run in the Prefect UI, and the run with
its metrics in the MLflow UI. Screenshots are saved under the workspace."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings

from finscale.workspace import Workspace
from tests.support.browser import rendered_dom, screenshot
from tests.support.raw_workspace import fill_raw_workspace
from tests.support.stack import free_port, run_stack

START_TIMEOUT_S = 600
STOP_TIMEOUT_S = 120
FLOW_TIMEOUT_S = 420
POLL_S = 2.0
TINY = ["model.budget=10k", "dataset.context=32", "training.epochs=1", "training.device=cpu",
        "training.log_model=false", "experiment.phase=ui"]


def _train_through_the_pool(api_url: str, home: Path, sensor: Path) -> tuple[str, str]:
    """Start the `train` deployment and wait for its final state; (state, flow run name)."""
    overrides = [*TINY, "thermal.sensor=file", f"thermal.file_path={sensor}"]
    with temporary_settings(updates={PREFECT_API_URL: api_url}), \
            get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("train/train")
        run = client.create_flow_run_from_deployment(deployment.id, parameters={
            "config_path": "configs/base.yaml", "overrides": overrides, "home": str(home),
            "gate_timeout_s": 60})
        deadline = time.monotonic() + FLOW_TIMEOUT_S
        while time.monotonic() < deadline:
            run = client.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                break
            time.sleep(POLL_S)
        return (run.state.type.value if run.state else "none"), run.name


@pytest.mark.slow
@pytest.mark.browser
def test_prefect_and_mlflow_uis_show_deployments_flow_run_and_metrics(
    tmp_path: Path, shared_data_dir: Path
) -> None:
    home = tmp_path / "ws"
    workspace = Workspace.resolve(home).ensure()
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    sensor = tmp_path / "gpu_temp"
    sensor.write_text("45.0")
    prefect_port, mlflow_port = free_port(), free_port()
    prefect_ui, mlflow_ui = f"http://127.0.0.1:{prefect_port}", f"http://127.0.0.1:{mlflow_port}"
    started = run_stack(home, "start", "--prefect-port", str(prefect_port), "--mlflow-port",
                        str(mlflow_port), timeout=START_TIMEOUT_S)
    try:
        assert started.returncode == 0, started.stderr + started.stdout
        state, flow_run_name = _train_through_the_pool(f"{prefect_ui}/api", home, sensor)
        worker_log = home / "stack" / "worker-finscale-gpu.log"
        assert state == "COMPLETED", worker_log.read_text()[-3000:]
        profile, shots = tmp_path / "chromium", home / "screenshots"
        deployments = rendered_dom(f"{prefect_ui}/deployments", profile)
        for name in ("nightly-data-refresh", "build-features", "train"):
            assert name in deployments, f"Prefect UI does not list deployment {name}"
        runs = rendered_dom(f"{prefect_ui}/runs", profile)
        assert flow_run_name in runs, "Prefect UI does not list the finished flow run"
        screenshot(f"{prefect_ui}/deployments", shots / "prefect-deployments.png", profile)
        screenshot(f"{prefect_ui}/runs", shots / "prefect-runs.png", profile)

        client = MlflowClient(workspace.mlflow_uri)
        experiment = client.get_experiment_by_name("finscale")
        (run,) = client.search_runs([experiment.experiment_id])
        run_page = f"{mlflow_ui}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}"
        page = rendered_dom(run_page, profile)
        assert run.info.run_name in page, "MLflow UI does not show the run"
        for metric in ("val_auc", "train_loss", "test_auc"):
            assert metric in page, f"MLflow UI does not show metric {metric}"
        runs_page = f"{mlflow_ui}/#/experiments/{experiment.experiment_id}/runs"
        listing = rendered_dom(runs_page, profile)
        assert "Training runs" in listing and run.info.run_name in listing, (
            "MLflow UI does not list the run among the experiment's training runs")
        screenshot(run_page, shots / "mlflow-run.png", profile)
        screenshot(runs_page, shots / "mlflow-runs.png", profile)
    finally:
        run_stack(home, "stop", timeout=STOP_TIMEOUT_S)
