"""The deployment bootstrap against real Prefect servers (SQLite and PostgreSQL).

A real ``prefect server start`` (through deployments/server.py) on a free 127.0.0.1 port
with its own PREFECT_HOME; deployments/bootstrap.py run against it as a subprocess; the
result read back through the Prefect client; and on SQLite one nightly-data-refresh run
triggered like the UI does and executed by ``prefect worker start --run-once``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolUpdate
from prefect.client.schemas.objects import StateType
from prefect.exceptions import PrefectHTTPStatusError
from prefect.settings import PREFECT_API_URL, temporary_settings

from finscale.manifest.store import Manifest
from finscale.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
SERVER_SCRIPT = REPO / "deployments" / "server.py"
BOOTSTRAP_SCRIPT = REPO / "deployments" / "bootstrap.py"
STARTUP_TIMEOUT_S = 90.0
BOOTSTRAP_TIMEOUT_S = 300.0
WORKER_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 15.0
CLIENT_TIMEOUT_S = 30.0
FINAL_STATE_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.5
LOG_TAIL_CHARS = 4000
SCHEMA_REJECTS_SOURCE = "Validation failed for field 'source'"
DEPLOYMENTS = ("nightly-data-refresh", "build-features", "train", "hpo", "experiment",
               "experiment-study", "report")
GPU_POOL_DEPLOYMENTS = ("train", "hpo", "experiment-study")
CRASH_AUTOMATION = "finscale train: crash runs whose heartbeats stopped"
RETRY_AUTOMATION = "finscale train: run a crashed run again once"
OFFLINE_SETTINGS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "DO_NOT_TRACK": "true",
}


@dataclass(frozen=True)
class RunningServer:
    api_url: str
    process: subprocess.Popen[bytes]
    log: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def isolated_env(prefect_home: Path, **extra: str) -> dict[str, str]:
    """This process's env without any PREFECT_*/FINSCALE_* setting, plus a private home."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "FINSCALE_"))}
    return {**base, **OFFLINE_SETTINGS, "PREFECT_HOME": str(prefect_home), **extra}


def tail(path: Path) -> str:
    return path.read_text(errors="replace")[-LOG_TAIL_CHARS:] if path.is_file() else ""


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's whole process group, SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def prefect_server(home: Path, **extra_env: str) -> Iterator[RunningServer]:
    """deployments/server.py in its own process group; stopped on exit, always."""
    port = free_port()
    log = home / "supervisor.log"
    home.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(SERVER_SCRIPT), "--port", str(port), "--home",
               str(home / "server"), "--startup-timeout", str(STARTUP_TIMEOUT_S)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=isolated_env(home / "server", **extra_env),
                                   stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = RunningServer(f"http://127.0.0.1:{port}/api", process, log)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not healthy(server.api_url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prefect server not healthy (exit {process.poll()}):\n{tail(log)}")
            time.sleep(POLL_INTERVAL_S)
        yield server
    finally:
        stop_group(process)


def run_bootstrap(api_url: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, str(BOOTSTRAP_SCRIPT), "--api-url", api_url, *args],
        env=isolated_env(home / "client"), cwd=home, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=BOOTSTRAP_TIMEOUT_S,
    )
    assert done.returncode == 0, f"bootstrap failed:\n{done.stdout}\n{done.stderr}"
    return done


def deployments_by_name(client: SyncPrefectClient) -> dict[str, Any]:
    """Deployments keyed by deployment name (flow names belong to the flow files)."""
    return {deployment.name: deployment for deployment in client.read_deployments()}


@contextmanager
def client_for(api_url: str) -> Iterator[SyncPrefectClient]:
    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(
        sync_client=True, httpx_settings={"timeout": CLIENT_TIMEOUT_S}
    ) as client:
        yield client


def assert_bootstrapped(client: SyncPrefectClient) -> None:
    """Both process pools (GPU limit 1), the active `gpu` limit, the three deployments."""
    cpu, gpu = client.read_work_pool("finscale-cpu"), client.read_work_pool("finscale-gpu")
    assert (cpu.type, gpu.type) == ("process", "process")
    assert gpu.concurrency_limit == 1
    assert cpu.base_job_template.get("job_configuration"), "pool lacks the process template"
    limit = client.read_global_concurrency_limit_by_name("gpu")
    assert (limit.limit, limit.active) == (1, True)
    deployments = deployments_by_name(client)
    assert sorted(deployments) == sorted(DEPLOYMENTS)
    for deployment in deployments.values():
        assert deployment.enforce_parameter_schema is True
        assert deployment.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}
        ]
    assert deployments["train"].work_pool_name == "finscale-gpu"
    assert deployments["hpo"].work_pool_name == "finscale-gpu"
    for name in GPU_POOL_DEPLOYMENTS:  # each detects a dead host and runs its flow again once
        assert deployments[name].work_pool_name == "finscale-gpu"
        for automation in (f"finscale {name}: crash runs whose heartbeats stopped",
                           f"finscale {name}: run a crashed run again once"):
            assert [a.enabled for a in client.read_automations_by_name(automation)] == [True]


def assert_nightly_schedule_and_schema(client: SyncPrefectClient) -> Any:
    nightly = deployments_by_name(client)["nightly-data-refresh"]
    assert nightly.work_pool_name == "finscale-cpu"
    (schedule,) = nightly.schedules
    assert schedule.active is True
    assert schedule.schedule.cron == "30 18 * * 1-5"
    assert schedule.schedule.timezone == "America/New_York"
    properties = nightly.parameter_openapi_schema["properties"]
    assert {"tickers", "fred_series", "source", "mirror", "full"} <= set(properties)
    assert set(properties["source"]["enum"]) == {"csv", "yahoo", "fred", "online"}
    assert properties["full"]["type"] == "boolean"
    return nightly


def wait_final(client: SyncPrefectClient, flow_run_id: uuid.UUID) -> Any:
    deadline = time.monotonic() + FINAL_STATE_TIMEOUT_S
    while True:
        run = client.read_flow_run(flow_run_id)
        if run.state is not None and run.state.is_final():
            return run
        if time.monotonic() > deadline:
            return run
        time.sleep(POLL_INTERVAL_S)


def run_worker_once(api_url: str, tmp_path: Path) -> Path:
    """``prefect worker start --run-once`` on finscale-cpu; returns its log.

    The worker's own FINSCALE_HOME is a decoy: the run must use the home it was given.
    """
    log = tmp_path / "worker.log"
    env = isolated_env(tmp_path / "worker", PREFECT_API_URL=api_url,
                       FINSCALE_HOME=str(tmp_path / "not-the-run-home"))
    with log.open("wb") as out:
        worker = subprocess.run(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "finscale-cpu",
             "--run-once"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, timeout=WORKER_TIMEOUT_S,
        )
    assert worker.returncode == 0, tail(log)
    return log


def latest_rows(workspace: Workspace, name: str) -> int:
    manifest = Manifest(workspace.manifest_url, workspace.home)
    try:
        record = manifest.latest(name)
    finally:
        manifest.close()
    return 0 if record is None else int(record.rows)  # 0: not in this workspace's manifest


@pytest.mark.slow
def test_bootstrap_and_nightly_refresh_on_sqlite_server(
    tmp_path: Path, shared_data_dir: Path
) -> None:
    workspace = Workspace.resolve(tmp_path / "ws")
    parameters = {"source": "csv", "mirror": str(shared_data_dir),
                  "tickers": ["SPY"], "fred_series": ["DGS10"]}
    with prefect_server(tmp_path / "prefect") as server:
        report = run_bootstrap(server.api_url, tmp_path)
        assert "work pool finscale-gpu: created" in report.stdout
        ui_root = server.api_url.removesuffix("/api")
        with urllib.request.urlopen(f"{ui_root}/ui-settings", timeout=5) as reply:
            # the UI must call this server's API, not Prefect's default port 4200
            assert json.loads(reply.read())["api_url"] == server.api_url
        with client_for(server.api_url) as client:
            assert_bootstrapped(client)
            nightly = assert_nightly_schedule_and_schema(client)
            with pytest.raises(PrefectHTTPStatusError, match=SCHEMA_REJECTS_SOURCE):
                client.create_flow_run_from_deployment(nightly.id, parameters={"source": "ftp"})
            flow_run = client.create_flow_run_from_deployment(
                nightly.id, parameters=parameters,
                job_variables={"env": {"FINSCALE_HOME": str(workspace.home)}},
            )
            worker_log = run_worker_once(server.api_url, tmp_path)
            finished = wait_final(client, flow_run.id)
            assert finished.state.type == StateType.COMPLETED, tail(worker_log)
    assert latest_rows(workspace, "raw/market/SPY") > 0, tail(worker_log)
    assert latest_rows(workspace, "raw/fred/DGS10") > 0, tail(worker_log)


@pytest.mark.slow
def test_bootstrap_on_postgres_server_is_idempotent(
    tmp_path: Path, postgres_database: str
) -> None:
    database_env: Mapping[str, str] = {"PREFECT_SERVER_DATABASE_CONNECTION_URL": postgres_database}
    with prefect_server(tmp_path / "prefect", **database_env) as server:
        first = run_bootstrap(server.api_url, tmp_path)
        assert "global concurrency limit gpu: created" in first.stdout
        with client_for(server.api_url) as client:
            assert_bootstrapped(client)
            client.update_work_pool("finscale-gpu", WorkPoolUpdate(concurrency_limit=3))
            client.pause_automation(client.read_automations_by_name(CRASH_AUTOMATION)[0].id)
        second = run_bootstrap(server.api_url, tmp_path)
        assert "work pool finscale-cpu: unchanged" in second.stdout
        assert "work pool finscale-gpu: updated" in second.stdout  # drift repaired
        assert "global concurrency limit gpu: unchanged" in second.stdout
        assert f"automation {CRASH_AUTOMATION}: updated" in second.stdout  # paused: resumed
        assert f"automation {RETRY_AUTOMATION}: unchanged" in second.stdout
        with client_for(server.api_url) as client:
            assert_bootstrapped(client)
            assert [a.enabled for a in client.read_automations_by_name(CRASH_AUTOMATION)] == [
                True]
    assert "postgresql" in tail(tmp_path / "prefect" / "supervisor.log")


def test_bootstrap_names_an_unreachable_api(tmp_path: Path) -> None:
    api_url = f"http://127.0.0.1:{free_port()}/api"
    done = subprocess.run(
        [sys.executable, str(BOOTSTRAP_SCRIPT), "--api-url", api_url, "--health-timeout", "2"],
        env=isolated_env(tmp_path / "client"), capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=BOOTSTRAP_TIMEOUT_S,
    )
    assert done.returncode == 1
    assert api_url in done.stderr and "not reachable" in done.stderr


def test_bootstrap_refuses_zero_gpus_before_calling_the_api(tmp_path: Path) -> None:
    api_url = f"http://127.0.0.1:{free_port()}/api"  # nothing listens: never reached
    done = subprocess.run(
        [sys.executable, str(BOOTSTRAP_SCRIPT), "--api-url", api_url, "--gpus", "0"],
        env=isolated_env(tmp_path / "client"), capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=BOOTSTRAP_TIMEOUT_S,
    )
    assert done.returncode == 1
    assert "--gpus must be >= 1" in done.stderr and "not reachable" not in done.stderr
