"""Several hosts, shown on one machine: the `experiment` deployment over two GPU workers.

The shape deployments/README.md documents for more than one host ("Several GPU hosts"):
the Prefect server on PostgreSQL, the manifest and the Optuna study on PostgreSQL, MLflow
as a tracking server on PostgreSQL (jobs reach it through ``MLFLOW_TRACKING_URI``), the
bootstrap with ``--gpus 2``, two process workers on ``finscale-gpu`` with ``--limit 1`` (one
per GPU) and one on ``finscale-cpu`` for the `experiment` flow itself.

The flow run is created as the UI does. With the file thermal sensor over its limit nothing
is submitted; once the sensor cools, the study runs first, then the four final runs, split
between the two GPU workers; every cell ends done exactly once (one FINISHED MLflow run per
identity, the study's trial count in PostgreSQL), and a second `experiment` run submits
nothing.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from mlflow.tracking import MlflowClient
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterName,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
)
from prefect.client.schemas.objects import StateType

from finscale.experiments.hpo_adapter import study_progress
from finscale.experiments.matrix import Matrix, load_matrix
from finscale.experiments.status import matrix_status
from finscale.workspace import Workspace
from tests.integration.test_deployments import (
    REPO,
    client_for,
    free_port,
    healthy,
    isolated_env,
    prefect_server,
    run_bootstrap,
    stop_group,
    tail,
)
from tests.support.postgres import fresh_schema
from tests.support.raw_workspace import fill_raw_workspace
from tests.support.tiny_matrix import write_tiny_matrix

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOT_C, COOL_C = "95.0", "40.0"  # over the default hard limit (90 °C); well under the soft one
HELD_HOT_S = 20.0  # the gate reads the sensor every 1-2 s (see _matrix)
FLOW_TIMEOUT_S = 480.0
START_TIMEOUT_S = 120.0
POLL_S = 1.0
GPU_WORKERS = ("gpu-a", "gpu-b")


def _matrix(tmp_path: Path, storage: str, sensor: Path) -> Matrix:
    """Two seeds; the file sensor, read every 1-2 s, gates every job."""
    thermal = {"thermal.sensor": "file", "thermal.file_path": str(sensor),
               "thermal.poll_s": 1.0, "thermal.max_backoff_s": 2.0}
    return load_matrix(write_tiny_matrix(tmp_path, name="hosts", seeds=2, storage=storage,
                                         overrides={"training.epochs": 1, **thermal}))


@contextmanager
def _process(name: str, command: list[str], env: dict[str, str], logs: Path
             ) -> Iterator[Path]:
    """A background process in its own group, logging to ``logs/<name>.log``; stopped on exit."""
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    try:
        yield log
    finally:
        stop_group(process)


def _mlflow_server(stack: ExitStack, backend: str, tmp_path: Path, logs: Path) -> str:
    """An MLflow tracking server on PostgreSQL that serves its artifacts; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
               str(port), "--workers", "1", "--backend-store-uri", backend,
               "--serve-artifacts", "--artifacts-destination", str(tmp_path / "artifacts")]
    env = isolated_env(tmp_path / "mlflow-home", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    log = stack.enter_context(_process("mlflow", command, env, logs))
    deadline = time.monotonic() + START_TIMEOUT_S
    while not healthy(url):  # /health answers 200 once the store is migrated
        if time.monotonic() > deadline:
            pytest.fail(f"MLflow server not healthy:\n{tail(log)}")
        time.sleep(POLL_S)
    return url


def _worker(stack: ExitStack, pool: str, name: str, env: dict[str, str], logs: Path) -> Path:
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type",
               "process", "--name", name, "--limit", "1"]
    return stack.enter_context(_process(name, command, env, logs))


def _wait_state(client: SyncPrefectClient, run_id: UUID, done: Any, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = client.read_flow_run(run_id)
        if run.state is not None and done(run.state):
            return run
        time.sleep(POLL_S)
    pytest.fail(f"flow run {run_id} still {run.state} after {timeout_s:.0f} s")


def _children(client: SyncPrefectClient, parent: UUID, deployment: str) -> list[Any]:
    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])),
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])))


def _start_experiment(client: SyncPrefectClient, matrix: Matrix, home: Path) -> UUID:
    deployment = client.read_deployment_by_name("experiment/experiment")
    run = client.create_flow_run_from_deployment(deployment.id, parameters={
        "config_path": str(matrix.path), "home": str(home), "gpu_slot": "gpu",
        "gate_timeout_s": 300, "poll_s": 2})
    return run.id


def _ran_on(logs: dict[str, Path], run_ids: list[UUID]) -> dict[str, set[UUID]]:
    """Which GPU worker submitted which of ``run_ids`` (a worker logs each id it submits)."""
    return {name: {rid for rid in run_ids if str(rid) in log.read_text(errors="replace")}
            for name, log in logs.items()}


def test_experiment_waits_for_a_cool_host_then_two_workers_share_the_matrix(
    tmp_path: Path, shared_data_dir: Path, postgres_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, logs, sensor = tmp_path / "ws", tmp_path / "logs", tmp_path / "gpu_temp"
    logs.mkdir()
    sensor.write_text(HOT_C)
    with ExitStack() as stack:
        manifest_url = stack.enter_context(fresh_schema("hosts_manifest"))
        optuna_url = stack.enter_context(fresh_schema("hosts_optuna"))
        mlflow_url = _mlflow_server(stack, stack.enter_context(fresh_schema("hosts_mlflow")),
                                    tmp_path, logs)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_url)  # where this test reads runs
        workspace = Workspace.resolve(home, manifest_url=manifest_url).ensure()
        fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
        matrix = _matrix(tmp_path, optuna_url, sensor)
        server = stack.enter_context(prefect_server(
            tmp_path / "prefect", PREFECT_SERVER_DATABASE_CONNECTION_URL=postgres_database))
        run_bootstrap(server.api_url, tmp_path, "--gpus", "2")

        job_env = {"PREFECT_API_URL": server.api_url, "FINSCALE_HOME": str(home),
                   "FINSCALE_MANIFEST_URL": manifest_url, "MLFLOW_TRACKING_URI": mlflow_url,
                   "PREFECT_WORKER_QUERY_SECONDS": "2", "OMP_NUM_THREADS": "1"}
        gpu_logs = {name: _worker(stack, "finscale-gpu", name,
                                  isolated_env(tmp_path / name, **job_env), logs)
                    for name in GPU_WORKERS}
        cpu_log = _worker(stack, "finscale-cpu", "cpu",
                          isolated_env(tmp_path / "cpu", **job_env), logs)

        with client_for(server.api_url) as client:
            experiment_id = _start_experiment(client, matrix, home)
            _wait_state(client, experiment_id, lambda s: s.is_running() or s.is_final(),
                        START_TIMEOUT_S)
            time.sleep(HELD_HOT_S)
            assert client.read_flow_run(experiment_id).state.is_running(), tail(cpu_log)
            assert _children(client, experiment_id, "experiment-study") == [], (
                "a job was submitted while the thermal sensor read over its limit")
            cooled_at = datetime.now(UTC)
            sensor.write_text(COOL_C)

            finished = _wait_state(client, experiment_id, lambda s: s.is_final(),
                                   FLOW_TIMEOUT_S)
            worker_tails = "\n".join(tail(log) for log in [cpu_log, *gpu_logs.values()])
            assert finished.state.type == StateType.COMPLETED, worker_tails
            studies = _children(client, experiment_id, "experiment-study")
            finals = _children(client, experiment_id, "train")
            assert len(studies) == 1 and len(finals) == 4, worker_tails
            for run in [*studies, *finals]:
                assert run.state.type == StateType.COMPLETED, worker_tails
                assert run.created >= cooled_at  # submitted only once the host cooled
            assert min(run.created for run in finals) >= studies[0].end_time  # study first
            ran_on = _ran_on(gpu_logs, [run.id for run in [*studies, *finals]])
            assert all(ran_on.values()), f"jobs not split between the workers: {ran_on}"
            assert sum(len(ids) for ids in ran_on.values()) == 5  # each job on one worker

            again = _start_experiment(client, matrix, home)
            second = _wait_state(client, again, lambda s: s.is_final(), FLOW_TIMEOUT_S)
            assert second.state.type == StateType.COMPLETED, tail(cpu_log)
            assert _children(client, again, "experiment-study") == []
            assert _children(client, again, "train") == []  # nothing left to submit

        statuses = matrix_status(matrix, workspace)
        assert [s.state for s in statuses] == ["done"] * 5
        progress = study_progress(matrix.hpo_jobs[0], workspace)
        assert progress.state == "done" and progress.counted == 2
        tracking = MlflowClient(mlflow_url)
        experiment = tracking.get_experiment_by_name("finscale")
        for final in statuses[1:]:
            runs = tracking.search_runs([experiment.experiment_id],
                                        f"tags.run_key = '{final.job.identity}'")
            assert [r.info.status for r in runs] == ["FINISHED"], final.job.id  # once
