"""Crash recovery of the `train` deployment on a real Prefect server with `process` workers.

deployments/bootstrap.py creates the heartbeat automation (a run whose heartbeats stop is
marked Crashed, freeing its deployment and pool slots) and the re-run-once automation;
prefect.yaml gives train runs 30 s heartbeats and output that does not go through the
worker. Three runs of the deployment on one server:

- ``survivor`` (seed 0): only its worker is SIGKILLed mid-training; the run goes on and
  completes by itself (no Crashed state, one FINISHED MLflow run);
- ``zombie`` (seed 1): its worker and its flow process group are SIGKILLed mid-training;
  it must be Crashed within the heartbeat window, then re-run once and continue its
  checkpoint (still one MLflow run for the identity);
- ``again`` (seed 0 once more), created right after that kill: not stuck Late behind the
  zombie, it runs and returns the survivor's finished MLflow run instead of training.

And a `gpu` slot held when the server restarts (a crashed host) is still freed when its
lease runs out: deployments/server.py keeps leases in files, not in the server's memory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psutil
import pytest
import yaml
from mlflow.tracking import MlflowClient
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.client.schemas.objects import StateType

from finscale.workspace import Workspace
from tests.integration.test_deployments import (
    BOOTSTRAP_SCRIPT,
    BOOTSTRAP_TIMEOUT_S,
    CRASH_AUTOMATION,
    RETRY_AUTOMATION,
    client_for,
    isolated_env,
    prefect_server,
    stop_group,
    tail,
)
from tests.support.raw_workspace import fill_raw_workspace

pytestmark = pytest.mark.integration

HEARTBEAT_S = 30  # prefect.yaml, train job variables (Prefect's minimum)
HEARTBEATS_MISSED = 2  # the bootstrap's floor: the shortest window that tolerates one miss
WINDOW_S = HEARTBEAT_S * HEARTBEATS_MISSED
# Proactive triggers are evaluated every 5 s; events and the state change take a moment.
CRASH_SLACK_S = 25.0
GPU_LEASE_S = 60  # the server's minimum lease
PHASE_TIMEOUT_S = 420.0
REPOSSESSION_SLACK_S = 30.0
POLL_S = 1.0
# Small server intervals so the test waits for the mechanism, not for polling loops.
FAST_SERVER = {
    "PREFECT_SERVER_SERVICES_REPOSSESSOR_LOOP_SECONDS": "2",
    "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": "5",
    "PREFECT_SERVER_CONCURRENCY_MAXIMUM_CONCURRENCY_SLOT_WAIT_SECONDS": "5",
}
TINY = ["model.budget=10k", "dataset.context=32", "training.epochs=6", "training.patience=100",
        "training.device=cpu", "thermal.sensor=none", "training.log_model=false"]
REUSED_LINE = "returned the finished run"


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def gpu_worker(api_url: str, home: Path, name: str) -> Iterator[Worker]:
    """``prefect worker start --pool finscale-gpu`` in its own session; stopped on exit."""
    log = home / f"{name}.log"
    env = isolated_env(home / "worker", PREFECT_API_URL=api_url, OMP_NUM_THREADS="1",
                       PREFECT_WORKER_QUERY_SECONDS="2")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "finscale-gpu"],
            env=env, cwd=home, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    try:
        yield Worker(process, log)
    finally:
        stop_group(process)


def sigkill(worker: Worker, *, with_flow_runs: bool) -> datetime:
    """SIGKILL the worker's process group (and each flow run's, whose group is its own)."""
    groups = {worker.process.pid}
    if with_flow_runs:
        groups |= {os.getpgid(child.pid) for child in psutil.Process(worker.process.pid).children()}
    for group in groups:
        os.killpg(group, signal.SIGKILL)
    worker.process.wait(timeout=30)
    return datetime.now(UTC)


def wait_for(check: Callable[[], Any], what: str, log: Path) -> Any:
    deadline = time.monotonic() + PHASE_TIMEOUT_S
    while not (found := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {PHASE_TIMEOUT_S:.0f} s; worker log:\n{tail(log)}")
        time.sleep(POLL_S)
    return found


def checkpoint(workspace: Workspace, seed: int) -> Path | None:
    return next(workspace.checkpoints_dir.glob(f"*__seed={seed}__*/last.pt"), None)


def mlflow_runs(workspace: Workspace) -> list[Any]:
    client = MlflowClient(workspace.mlflow_uri)
    experiment = client.get_experiment_by_name("finscale")
    return client.search_runs([experiment.experiment_id]) if experiment else []


def statuses_by_seed(workspace: Workspace) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for run in mlflow_runs(workspace):
        found.setdefault(run.data.tags["seed"], []).append(run.info.status)
    return found


def final_run(client: SyncPrefectClient, flow_run_id: UUID, run_count: int = 1) -> Any:
    """The flow run once it is in a final state on attempt ``run_count`` (else None)."""
    run = client.read_flow_run(flow_run_id)
    final = run.state is not None and run.state.is_final() and run.run_count >= run_count
    return run if final else None


def states(client: SyncPrefectClient, flow_run_id: UUID) -> list[Any]:
    return sorted(client.read_flow_run_states(flow_run_id), key=lambda state: state.timestamp)


def flow_log(client: SyncPrefectClient, flow_run_id: UUID) -> str:
    logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return "\n".join(log.message for log in logs)


def bootstrap(api_url: str, home: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(BOOTSTRAP_SCRIPT), "--api-url", api_url,
         "--heartbeats-missed", str(HEARTBEATS_MISSED)],
        env=isolated_env(home / "client"), cwd=home, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=BOOTSTRAP_TIMEOUT_S,
    )
    assert done.returncode == 0, f"bootstrap failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_killed_train_runs_recover_without_a_hand_on_the_state(
    tmp_path: Path, shared_data_dir: Path
) -> None:
    workspace = Workspace.resolve(tmp_path / "ws")
    fill_raw_workspace(workspace, shared_data_dir, tickers=["SPY", "VIX"])
    with prefect_server(tmp_path / "prefect", **FAST_SERVER) as server:
        report = bootstrap(server.api_url, tmp_path)
        assert f"automation {CRASH_AUTOMATION}: created" in report
        assert f"automation {RETRY_AUTOMATION}: created" in report
        with client_for(server.api_url) as client:
            train_id = client.read_deployment_by_name("train/train").id

            def submit(seed: int) -> UUID:
                parameters = {"config_path": "configs/base.yaml", "home": str(workspace.home),
                              "overrides": [*TINY, f"training.seed={seed}"],
                              "gpu_lease_s": GPU_LEASE_S}
                return client.create_flow_run_from_deployment(train_id, parameters=parameters).id

            survivor, zombie = submit(0), submit(1)
            # 1. only the worker dies: the run trains on and completes by itself
            with gpu_worker(server.api_url, tmp_path, "worker-1") as worker:
                wait_for(lambda: checkpoint(workspace, 0), "survivor's first checkpoint",
                         worker.log)
                sigkill(worker, with_flow_runs=False)
            assert statuses_by_seed(workspace)["0"] == ["RUNNING"]  # killed mid-training
            with gpu_worker(server.api_url, tmp_path, "worker-2") as worker:
                done = wait_for(lambda: final_run(client, survivor), "survivor final",
                                worker.log)
                survived = [(state.type, state.name) for state in states(client, survivor)]
                assert (done.state.type, done.run_count) == (StateType.COMPLETED, 1), survived
                assert StateType.CRASHED not in dict(survived), flow_log(client, survivor)
                # 2. the worker and the flow process die: nothing reports the run's end
                wait_for(lambda: checkpoint(workspace, 1), "zombie's first checkpoint",
                         worker.log)
                killed_at = sigkill(worker, with_flow_runs=True)
            again = submit(0)
            assert statuses_by_seed(workspace)["1"] == ["RUNNING"]  # killed mid-training
            with gpu_worker(server.api_url, tmp_path, "worker-3") as worker:
                wait_for(lambda: final_run(client, again), "the next run's end", worker.log)
                wait_for(lambda: final_run(client, zombie, run_count=2), "zombie re-run",
                         worker.log)
            assert_recovered(client, zombie, again, killed_at)
            assert client.read_global_concurrency_limit_by_name("gpu").active_slots == 0
    # one MLflow run per identity: the re-run continued its checkpoint, `again` reused
    assert statuses_by_seed(workspace) == {"0": ["FINISHED"], "1": ["FINISHED"]}


def assert_recovered(
    client: SyncPrefectClient, zombie: UUID, again: UUID, killed_at: datetime
) -> None:
    """The states each run went through, and the crash's delay against its bound."""
    history = states(client, zombie)
    crashed = [state for state in history if state.type == StateType.CRASHED]
    assert len(crashed) == 1, [(state.type, state.name) for state in history]
    delay_s = (crashed[0].timestamp - killed_at).total_seconds()
    print(f"zombie marked Crashed {delay_s:.1f} s after the kill (window {WINDOW_S} s)")
    assert 0 < delay_s <= WINDOW_S + CRASH_SLACK_S, delay_s
    names = Counter(state.name for state in history)
    assert names["AwaitingRetry"] == 1 and names["Running"] == 2, names
    rerun = client.read_flow_run(zombie)
    assert (rerun.state.type, rerun.run_count) == (StateType.COMPLETED, 2), rerun.state
    final = client.read_flow_run(again)
    assert final.state.type == StateType.COMPLETED, flow_log(client, again)
    assert REUSED_LINE in flow_log(client, again)


def gpu_slots_taken(client: SyncPrefectClient) -> int:
    return int(client.read_global_concurrency_limit_by_name("gpu").active_slots)


@pytest.mark.slow
def test_a_gpu_slot_held_across_a_server_restart_is_freed_by_its_lease(tmp_path: Path) -> None:
    home = tmp_path / "prefect"  # the same state folder for both server lives
    with prefect_server(home, **FAST_SERVER) as server, client_for(server.api_url) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name="gpu", limit=1))
        client.increment_concurrency_slots_with_lease(
            names=["gpu"], slots=1, mode="concurrency", lease_duration=GPU_LEASE_S)
        expires = time.monotonic() + GPU_LEASE_S
        assert gpu_slots_taken(client) == 1
    with prefect_server(home, **FAST_SERVER) as server, client_for(server.api_url) as client:
        deadline = max(expires, time.monotonic()) + REPOSSESSION_SLACK_S
        while gpu_slots_taken(client) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        assert gpu_slots_taken(client) == 0, "the slot outlived its lease: leases lost"


def refused_bootstrap(tmp_path: Path, heartbeat: str, *args: str) -> str:
    """The bootstrap's error for a prefect.yaml whose train heartbeat is ``heartbeat``.

    Checks come before the API is called, so the URL may point at nothing.
    """
    env = {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": heartbeat}
    train = {"name": "train", "entrypoint": "flows/train.py:train",
             "work_pool": {"name": "finscale-gpu", "job_variables": {"env": env}}}
    (tmp_path / "prefect.yaml").write_text(yaml.safe_dump({"deployments": [train]}))
    done = subprocess.run(
        [sys.executable, str(BOOTSTRAP_SCRIPT), "--api-url", "http://127.0.0.1:9/api",
         "--repo", str(tmp_path), "--health-timeout", "1", *args],
        env=isolated_env(tmp_path / "client"), capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=BOOTSTRAP_TIMEOUT_S,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stderr


def test_bootstrap_refuses_a_window_that_would_crash_live_runs(tmp_path: Path) -> None:
    below_minimum = refused_bootstrap(tmp_path, "10")
    assert "deployment 'train': PREFECT_FLOWS_HEARTBEAT_FREQUENCY='10'" in below_minimum
    assert ">= 30" in below_minimum
    one_miss = refused_bootstrap(tmp_path, "30", "--heartbeats-missed", "1")
    assert "--heartbeats-missed must be >= 2, got 1" in one_miss
