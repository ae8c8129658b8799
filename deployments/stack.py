"""The local service stack in the background: Prefect server + UI, MLflow UI, a process
worker per work pool, and the deployments; ``stop`` ends exactly the processes ``start``
started.

    python deployments/stack.py start [--prefect-port 4200] [--mlflow-port 5000]
    python deployments/stack.py stop

Everything binds to 127.0.0.1. State lives in ``$FINSCALE_HOME/stack``: one log per
process and ``pids.json`` (pid, process-group id and start time of each). ``stop`` checks
the start time before signalling, so a recycled PID is never killed, and signals the whole
process group, so a worker's flow-run subprocesses end with it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling scripts, run as files

from server import (
    HOST,
    OFFLINE_SETTINGS,
    api_url,
    is_healthy,
    prefect_command,
    server_env,
    ui_url,
)

from finscale.workspace import Workspace

REPO = Path(__file__).resolve().parents[1]
POOLS = ("finscale-cpu", "finscale-gpu")
STATE_DIR = "stack"
PIDS_FILE = "pids.json"
STARTUP_TIMEOUT_S = 120.0
BOOTSTRAP_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 20.0
POLL_S = 0.5
EXIT_PORT_IN_USE = 2
EXIT_ALREADY_RUNNING = 3


class StackError(RuntimeError):
    """A stack process failed to start; names it and its log."""


@dataclass(frozen=True)
class Started:
    """One process the stack started (enough to find and stop exactly it later)."""

    name: str
    pid: int
    pgid: int
    created: float
    log: str


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


def _spawn(name: str, command: Sequence[str], env: Mapping[str, str], state: Path) -> Started:
    """Start ``command`` in its own session (own process group), logging to state/name.log."""
    log = state / f"{name}.log"
    with log.open("ab") as out:
        process = subprocess.Popen(list(command), env=dict(env), cwd=REPO, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    created = psutil.Process(process.pid).create_time()
    return Started(name, process.pid, process.pid, created, str(log))


def _wait_healthy(started: Started, url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not psutil.pid_exists(started.pid) or psutil.Process(started.pid).status() == "zombie":
            raise StackError(f"{started.name} exited while starting; see {started.log}")
        if is_healthy(url):
            return
        time.sleep(POLL_S)
    raise StackError(f"{started.name} did not answer at {url} within {STARTUP_TIMEOUT_S:.0f} s; "
                     f"see {started.log}")


def _client_env(workspace: Workspace, prefect_port: int) -> dict[str, str]:
    return {**os.environ, **OFFLINE_SETTINGS, "PREFECT_API_URL": api_url(prefect_port),
            "FINSCALE_HOME": str(workspace.home), "FINSCALE_REPO": str(REPO)}


def _mlflow_command(workspace: Workspace, port: int) -> list[str]:
    uri, _source = workspace.tracking_uri(None)
    return [sys.executable, "-m", "mlflow", "server", "--host", HOST, "--port", str(port),
            "--workers", "1", "--backend-store-uri", uri,
            "--default-artifact-root", str(workspace.mlartifacts_dir)]


def _bootstrap(workspace: Workspace, prefect_port: int, state: Path) -> None:
    log = state / "bootstrap.log"
    with log.open("ab") as out:
        done = subprocess.run([sys.executable, str(REPO / "deployments" / "bootstrap.py"),
                               "--api-url", api_url(prefect_port)], cwd=REPO, stdout=out,
                              stderr=subprocess.STDOUT, env=_client_env(workspace, prefect_port),
                              timeout=BOOTSTRAP_TIMEOUT_S)
    if done.returncode != 0:
        raise StackError(f"bootstrap failed (exit {done.returncode}); see {log}")


def start(workspace: Workspace, prefect_port: int, mlflow_port: int) -> list[Started]:
    """Start every process, wait for both UIs, bootstrap, start the workers."""
    state = workspace.home / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    started: list[Started] = []
    try:
        prefect_env = server_env(state / "prefect", os.environ, prefect_port)
        (state / "prefect").mkdir(exist_ok=True)
        server = _spawn("prefect-server", [*prefect_command(), "server", "start", "--host", HOST,
                                           "--port", str(prefect_port)], prefect_env, state)
        started.append(server)
        mlflow_env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
                      **OFFLINE_SETTINGS, "MLFLOW_DISABLE_TELEMETRY": "true"}
        mlflow = _spawn("mlflow-ui", _mlflow_command(workspace, mlflow_port), mlflow_env, state)
        started.append(mlflow)
        _save(state, started)
        _wait_healthy(server, api_url(prefect_port))
        _wait_healthy(mlflow, f"{ui_url(mlflow_port)}")
        _bootstrap(workspace, prefect_port, state)
        for pool in POOLS:
            started.append(_spawn(f"worker-{pool}", [*prefect_command(), "worker", "start",
                                                     "--pool", pool, "--type", "process"],
                                  _client_env(workspace, prefect_port), state))
            _save(state, started)
    except BaseException:
        stop_processes(started)
        _save(state, [])
        raise
    return started


def _save(state: Path, started: list[Started]) -> None:
    path = state / PIDS_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(s) for s in started], indent=2))
    os.replace(tmp, path)


def load_started(workspace: Workspace) -> list[Started]:
    path = workspace.home / STATE_DIR / PIDS_FILE
    return [Started(**item) for item in json.loads(path.read_text())] if path.is_file() else []


def _alive(item: Started) -> bool:
    """The recorded process still runs and is the same one (same start time)."""
    try:
        return abs(psutil.Process(item.pid).create_time() - item.created) < 1.0
    except psutil.NoSuchProcess:
        return False


def stop_processes(started: Sequence[Started]) -> list[str]:
    """SIGTERM each recorded process group (workers first), SIGKILL what is left."""
    live = [item for item in reversed(started) if _alive(item)]
    for item in live:
        os.killpg(item.pgid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and any(_alive(i) for i in live):
        time.sleep(POLL_S)
    for item in live:
        if _alive(item):
            os.killpg(item.pgid, signal.SIGKILL)
    return [item.name for item in live]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("--prefect-port", type=int, default=4200)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    args = parser.parse_args(argv)
    workspace = Workspace.resolve().ensure()
    if args.action == "stop":
        stopped = stop_processes(load_started(workspace))
        _save(workspace.home / STATE_DIR, [])
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    if any(_alive(item) for item in load_started(workspace)):
        print("the stack is already running (make stop ends it)", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    for port, setting in ((args.prefect_port, "PREFECT_PORT"), (args.mlflow_port, "MLFLOW_PORT")):
        if port_in_use(port):
            print(f"port {port} on {HOST} is in use: choose another with "
                  f"`make stack {setting}=<port>`", file=sys.stderr)
            return EXIT_PORT_IN_USE
    start(workspace, args.prefect_port, args.mlflow_port)
    print(f"Prefect UI   {ui_url(args.prefect_port)}\nMLflow UI    {ui_url(args.mlflow_port)}\n"
          f"logs         {workspace.home / STATE_DIR}\nstop with    make stop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
