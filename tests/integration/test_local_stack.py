"""`make stack` / `make stop`: the Prefect server and UI, the MLflow UI and a worker per pool
start in the background on 127.0.0.1, and stop ends exactly the processes start started.
A port in use is one line naming the port and the setting that changes it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.support.stack import free_port as _free_port
from tests.support.stack import run_stack as _stack

START_TIMEOUT_S = 600
STOP_TIMEOUT_S = 120


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return int(reply.status)


@pytest.mark.slow
def test_stack_starts_both_uis_and_stop_ends_exactly_its_processes(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    prefect_port, mlflow_port = _free_port(), _free_port()
    ports = ("--prefect-port", str(prefect_port), "--mlflow-port", str(mlflow_port))
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        started = _stack(home, "start", *ports, timeout=START_TIMEOUT_S)
        assert started.returncode == 0, started.stderr + started.stdout
        assert f"http://127.0.0.1:{prefect_port}" in started.stdout
        assert f"http://127.0.0.1:{mlflow_port}" in started.stdout
        assert _get(f"http://127.0.0.1:{prefect_port}/api/health") == 200
        assert _get(f"http://127.0.0.1:{mlflow_port}/health") == 200
        recorded = json.loads((home / "stack" / "pids.json").read_text())
        names = {item["name"] for item in recorded}
        assert names == {"prefect-server", "mlflow-ui", "worker-finscale-cpu",
                         "worker-finscale-gpu"}
        pids = [item["pid"] for item in recorded]
        assert all(psutil.pid_exists(pid) for pid in pids)
        for connection in psutil.net_connections(kind="tcp"):
            if connection.laddr and connection.laddr.port in (prefect_port, mlflow_port) \
                    and connection.status == psutil.CONN_LISTEN:
                assert connection.laddr.ip == "127.0.0.1"
        again = _stack(home, "start", *ports, timeout=60)
        assert again.returncode == 3 and "already running" in again.stderr
    finally:
        stopped = _stack(home, "stop", timeout=STOP_TIMEOUT_S)
    assert stopped.returncode == 0 and "prefect-server" in stopped.stdout
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                   for pid in pids)
    assert bystander.poll() is None  # a process the stack did not start is untouched
    bystander.kill()
    bystander.wait()
    assert "nothing was running" in _stack(home, "stop", timeout=STOP_TIMEOUT_S).stdout


def test_a_port_in_use_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _stack(tmp_path / "ws", "start", "--prefect-port", str(port), "--mlflow-port",
                      str(_free_port()), timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"port {port} on 127.0.0.1 is in use: choose another with "
                                   "`make stack PREFECT_PORT=<port>`")
    assert not (tmp_path / "ws" / "stack" / "pids.json").exists()
