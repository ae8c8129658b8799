"""`finscale doctor`: its checks, hard failures vs warnings, and real HTTP probes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from finscale.cli.doctor import (
    check_mlflow,
    check_prefect,
    check_thermal,
    check_workspace,
    http_ok,
    run_checks,
)
from finscale.cli.main import main
from finscale.config import AppConfig, load_config
from finscale.workspace import Workspace


class HealthHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/api/health" else 404
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def health_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HealthHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def closed_port_url() -> str:
    server = ThreadingHTTPServer(("127.0.0.1", 0), HealthHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}"


def test_prefect_ephemeral_reachable_and_unreachable(health_server: str) -> None:
    assert check_prefect({}, http_ok).status == "ok"
    assert "ephemeral" in check_prefect({}, http_ok).detail
    up = check_prefect({"PREFECT_API_URL": f"{health_server}/api"}, http_ok)
    assert (up.status, up.detail.endswith("HTTP 200")) == ("ok", True)
    down = check_prefect({"PREFECT_API_URL": f"{closed_port_url()}/api"}, http_ok)
    assert down.status == "fail" and "unreachable" in down.detail


def test_mlflow_sqlite_in_workspace_and_http(workspace: Workspace, health_server: str) -> None:
    config = AppConfig()
    local = check_mlflow(config, workspace, http_ok)
    assert local.status == "ok" and str(workspace.home) in local.detail
    elsewhere = load_config(overrides=["tracking.uri=sqlite:////nonexistent/x/m.db"])
    assert check_mlflow(elsewhere, workspace, http_ok).status == "fail"
    remote = load_config(overrides=[f"tracking.uri={closed_port_url()}"])
    assert check_mlflow(remote, workspace, http_ok).status == "fail"


def test_mlflow_tracking_uri_env_is_honoured_and_reported(
    workspace: Workspace, health_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert workspace.tracking_uri(None) == (workspace.mlflow_uri, "workspace default")
    assert "from workspace default" in check_mlflow(AppConfig(), workspace, http_ok).detail
    monkeypatch.setenv("MLFLOW_TRACKING_URI", health_server)
    assert workspace.tracking_uri(None) == (health_server, "MLFLOW_TRACKING_URI")
    from_env = check_mlflow(AppConfig(), workspace, http_ok)
    assert from_env.status == "ok" and "from MLFLOW_TRACKING_URI" in from_env.detail
    assert health_server in from_env.detail
    # the config's tracking.uri wins over the environment
    configured = load_config(overrides=[f"tracking.uri={closed_port_url()}"])
    assert workspace.tracking_uri(configured.tracking.uri)[1] == "tracking.uri"
    assert "from tracking.uri" in check_mlflow(configured, workspace, http_ok).detail
    from finscale.tracking import TrackingTarget  # training's choice is the same function

    assert TrackingTarget.for_workspace(workspace, "x").uri == health_server


def test_workspace_writable_and_not(workspace: Workspace, tmp_path: Path) -> None:
    checks = check_workspace(workspace)
    assert checks[0].status == "ok" and checks[1].name == "free disk"
    # a home that is a regular file cannot hold the layout, even for root
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("x")
    failed = check_workspace(Workspace.resolve(blocked))
    assert failed[0].status == "fail" and "not writable" in failed[0].detail


def test_thermal_file_sensor_is_found(tmp_path: Path) -> None:
    sensor = tmp_path / "temp_c"
    sensor.write_text("45.0\n")
    found = check_thermal(load_config(overrides=["thermal.sensor=file",
                                                 f"thermal.file_path={sensor}"]))
    assert found.status == "ok" and str(sensor) in found.detail
    absent = check_thermal(load_config(overrides=["thermal.sensor=file",
                                                  f"thermal.file_path={tmp_path / 'none'}"]))
    assert absent.status == "warn" and "does not exist" in absent.detail


def test_run_checks_covers_everything(workspace: Workspace) -> None:
    names = [c.name for c in run_checks(AppConfig(), workspace, env={})]
    for expected in ("python", "torch", "pandas", "torch device", "workspace", "free disk",
                     "thermal sensor", "prefect api", "mlflow uri"):
        assert expected in names


def test_cli_exit_code_reflects_hard_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["--home", str(tmp_path / "ws"), "doctor"]) == 0
    assert "prefect api" in capsys.readouterr().out
    monkeypatch.setenv("PREFECT_API_URL", f"{closed_port_url()}/api")
    assert main(["--home", str(tmp_path / "ws"), "doctor"]) == 1
    assert "hard failure(s): prefect api" in capsys.readouterr().out
    monkeypatch.delenv("PREFECT_API_URL")
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    # an unusable workspace is reported as a failed check, not a traceback
    assert main(["--home", str(blocked / "ws"), "doctor"]) == 1
    assert "hard failure(s): workspace" in capsys.readouterr().out
