"""docker/compose.yaml agrees with prefect.yaml and the settings the code reads: every work
pool has a worker, every store is on PostgreSQL, every port binds to 127.0.0.1, and the
variables the services set are the ones finscale, MLflow and Prefect read. The file is
validated by Docker's own compose tool (no engine is needed for `config`)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from finscale.workspace import HOME_ENV, MANIFEST_URL_ENV, TRACKING_URI_ENV

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker" / "compose.yaml"
PASSWORD = "compose-check-password"
CONFIG_TIMEOUT_S = 60
WORKER_SERVICES = ("worker-cpu", "worker-gpu")


def _compose_command() -> list[str]:
    """`docker compose` (the v2 plugin) when present, else the standalone docker-compose."""
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 timeout=CONFIG_TIMEOUT_S).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone is None:
        pytest.fail("neither `docker compose` nor `docker-compose` is installed; .ci/run "
                    "installs Debian's docker-compose")
    return [standalone]


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The compose file as the compose tool resolves it (anchors, variables, defaults)."""
    env = {**os.environ, "FINSCALE_DB_PASSWORD": PASSWORD}
    done = subprocess.run([*_compose_command(), "-f", str(COMPOSE), "config"], env=env,
                          capture_output=True, text=True, timeout=CONFIG_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def _prefect_pools() -> set[str]:
    deployments = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    return {d["work_pool"]["name"] for d in deployments}


def _command(service: dict[str, Any]) -> str:
    command = service["command"]
    return command if isinstance(command, str) else " ".join(command)


def test_compose_refuses_to_start_without_the_database_password() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FINSCALE_DB_PASSWORD"}
    done = subprocess.run([*_compose_command(), "-f", str(COMPOSE), "config"], env=env,
                          capture_output=True, text=True, timeout=CONFIG_TIMEOUT_S)
    assert done.returncode != 0 and "FINSCALE_DB_PASSWORD" in done.stderr
    assert PASSWORD not in COMPOSE.read_text()  # no literal secret in the file


def test_every_work_pool_has_a_worker(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    served = {_command(services[name]).split("--pool ")[1].split()[0] for name in WORKER_SERVICES}
    assert served == _prefect_pools()
    for name in WORKER_SERVICES:
        assert "--type process" in _command(services[name])


def test_published_ports_bind_to_loopback_only(resolved: dict[str, Any]) -> None:
    published = [(name, port) for name, service in resolved["services"].items()
                 for port in service.get("ports", [])]
    assert {name for name, _ in published} == {"postgres", "prefect-server", "mlflow"}
    for name, port in published:
        host_ip = port["host_ip"] if isinstance(port, dict) else str(port).split(":")[0]
        assert host_ip == "127.0.0.1", f"{name} publishes {port}"


def test_every_store_is_postgresql_and_each_database_is_created(
    resolved: dict[str, Any]
) -> None:
    services = resolved["services"]
    prefect_db = urlparse(services["prefect-server"]["environment"][
        "PREFECT_SERVER_DATABASE_CONNECTION_URL"])
    mlflow_store = urlparse(_command(services["mlflow"]).split("--backend-store-uri ")[1]
                            .split()[0])
    worker_env = services["worker-gpu"]["environment"]
    manifest = urlparse(worker_env[MANIFEST_URL_ENV])
    optuna = urlparse(worker_env["FINSCALE_OPTUNA_URL"])
    for url in (prefect_db, mlflow_store, manifest, optuna):
        assert url.scheme.startswith("postgresql") and url.hostname == "postgres"
        assert url.password == PASSWORD  # from the environment variable
    initdb = (REPO / "docker" / "initdb" / "01-databases.sql").read_text()
    created = {services["postgres"]["environment"]["POSTGRES_DB"],
               *(line.split()[2].rstrip(";") for line in initdb.splitlines()
                 if line.startswith("CREATE DATABASE"))}
    assert {u.path.lstrip("/") for u in (prefect_db, mlflow_store, manifest, optuna)} <= created


def test_the_prefect_server_keeps_leases_on_a_volume(resolved: dict[str, Any]) -> None:
    # the setting deployments/server.py gives a local server (a script, not a package)
    source = (REPO / "deployments" / "server.py").read_text()
    assert 'LEASE_STORAGE_ENV = "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"' in source
    storage = "prefect.server.concurrency.lease_storage.filesystem"
    assert f'FILE_LEASE_STORAGE = "{storage}"' in source
    server = resolved["services"]["prefect-server"]
    assert server["environment"]["PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"] == storage
    assert any(v.split(":")[1] == server["environment"]["PREFECT_HOME"]
               for v in _volumes(server))


def test_workers_point_at_the_servers_the_stack_runs(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    mlflow_port = _command(services["mlflow"]).split("--port ")[1].split()[0]
    prefect_port = _command(services["prefect-server"]).split("--port ")[1].split()[0]
    api_url = f"http://prefect-server:{prefect_port}/api"
    assert api_url in _command(services["bootstrap"])
    assert "deployments/bootstrap.py" in _command(services["bootstrap"])
    for name in WORKER_SERVICES:
        env = services[name]["environment"]
        assert env["PREFECT_API_URL"] == api_url
        assert env[TRACKING_URI_ENV] == f"http://mlflow:{mlflow_port}"  # training reads it
        assert env[HOME_ENV] == "/workspace" and env["FINSCALE_REPO"] == "/app"
        assert any(v.split(":")[1] == "/workspace" for v in _volumes(services[name]))
        assert services[name]["depends_on"]["bootstrap"]["condition"] == (
            "service_completed_successfully")


def _volumes(service: dict[str, Any]) -> list[str]:
    out = []
    for volume in service.get("volumes", []):
        out.append(volume if isinstance(volume, str) else f"{volume['source']}:"
                   f"{volume['target']}")
    return out


def test_the_image_carries_what_the_deployments_run() -> None:
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    deployments = yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]
    needed = {d["entrypoint"].split("/")[0] for d in deployments} | {
        "src", "tasks", "configs", "deployments"}
    for folder in needed:
        assert f"COPY {folder} ./{folder}" in dockerfile, folder
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in dockerfile
    assert "ARG BASE_IMAGE=" in dockerfile
