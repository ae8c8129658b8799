"""Start a local Prefect server on 127.0.0.1, wait until it is healthy, print its URLs.

The server keeps its state under ``--home`` (default ``$FINSCALE_HOME/prefect``): SQLite
``prefect.db`` there, unless ``PREFECT_SERVER_DATABASE_CONNECTION_URL`` names another
database (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/prefect``). Concurrency
leases are kept in files under ``--home`` too (Prefect keeps them in memory by default: a
restart would lose them while the database still counts their slots, so a slot held at a
crash, such as the ``gpu`` slot, would never be freed). The script stays in the foreground
as the server's supervisor; Ctrl-C or SIGTERM stops the server too.

    python deployments/server.py --port 4200
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from finscale.workspace import Workspace

HOST = "127.0.0.1"
DEFAULT_PORT = 4200
DEFAULT_STARTUP_TIMEOUT_S = 90.0
HEALTH_REQUEST_TIMEOUT_S = 2.0
HEALTH_POLL_INTERVAL_S = 0.5
STOP_TIMEOUT_S = 15.0
LOG_TAIL_CHARS = 4000
DATABASE_URL_ENV = "PREFECT_SERVER_DATABASE_CONNECTION_URL"
LEASE_STORAGE_ENV = "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE"
FILE_LEASE_STORAGE = "prefect.server.concurrency.lease_storage.filesystem"
# The UI asks /ui-settings where the API is; without this Prefect answers with the
# PREFECT_SERVER_API_PORT setting (4200), not the --port the server was started with.
UI_API_URL_ENV = "PREFECT_UI_API_URL"
SERVER_LOG_NAME = "server.log"
OFFLINE_SETTINGS: Mapping[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "DO_NOT_TRACK": "true",
}


class ServerStartError(RuntimeError):
    """The Prefect server exited or did not become healthy in time."""


def api_url(port: int) -> str:
    """The REST API root of a local server on ``port`` (what PREFECT_API_URL should be)."""
    return f"http://{HOST}:{port}/api"


def ui_url(port: int) -> str:
    return f"http://{HOST}:{port}"


def server_env(home: Path, base: Mapping[str, str], port: int = DEFAULT_PORT) -> dict[str, str]:
    """Environment of the server process: offline settings, PREFECT_HOME, the database.

    A database URL already in ``base`` wins (PostgreSQL); otherwise SQLite in ``home``.
    The UI is pointed at this server's API on ``port`` unless ``base`` names a UI API URL
    (e.g. behind a proxy).
    """
    env = {**base, **OFFLINE_SETTINGS, "PREFECT_HOME": str(home)}
    if not env.get(DATABASE_URL_ENV):
        env[DATABASE_URL_ENV] = f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    # leases in <home>/concurrency_leases outlive a restart, so they expire and free their slots
    env.setdefault(LEASE_STORAGE_ENV, FILE_LEASE_STORAGE)
    if not env.get(UI_API_URL_ENV) and not env.get("PREFECT_SERVER_UI_API_URL"):
        env[UI_API_URL_ENV] = api_url(port)
    env.pop("PREFECT_API_URL", None)  # a server must not act as a client of another one
    return env


def prefect_command() -> list[str]:
    """The ``prefect`` CLI of this interpreter (never a different install on PATH)."""
    return [sys.executable, "-m", "prefect"]


def start_server(
    port: int, home: Path, base_env: Mapping[str, str], host: str = HOST
) -> subprocess.Popen[bytes]:
    """Launch ``prefect server start`` bound to host:port (127.0.0.1 unless told otherwise,
    e.g. 0.0.0.0 for workers on other hosts), logging to home/server.log."""
    home.mkdir(parents=True, exist_ok=True)
    command = [*prefect_command(), "server", "start", "--host", host, "--port", str(port)]
    with (home / SERVER_LOG_NAME).open("ab") as log:
        return subprocess.Popen(
            command,
            env=server_env(home, base_env, port),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def is_healthy(url: str) -> bool:
    """One bounded GET of ``<api>/health``; True only on HTTP 200."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=HEALTH_REQUEST_TIMEOUT_S) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError, TimeoutError):
        return False


def log_tail(home: Path) -> str:
    path = home / SERVER_LOG_NAME
    return path.read_text(errors="replace")[-LOG_TAIL_CHARS:] if path.is_file() else ""


def wait_until_healthy(
    url: str, process: subprocess.Popen[bytes], home: Path, timeout_s: float
) -> float:
    """Poll the health endpoint until it answers; returns the seconds it took.

    Fails fast with the server's log tail if the process exits, or after ``timeout_s``.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(
                f"prefect server exited with code {process.returncode} before becoming "
                f"healthy; log {home / SERVER_LOG_NAME}:\n{log_tail(home)}"
            )
        if is_healthy(url):
            return time.monotonic() - started
        time.sleep(HEALTH_POLL_INTERVAL_S)
    raise ServerStartError(
        f"{url}/health did not answer within {timeout_s:.0f} s; "
        f"log {home / SERVER_LOG_NAME}:\n{log_tail(home)}"
    )


def stop_server(process: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL after ``timeout_s``; always reaps the process."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)


def default_home() -> Path:
    return Workspace.resolve().home / "prefect"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    parser.add_argument("--host", default=HOST,
                        help=f"address to bind (default {HOST}; 0.0.0.0 serves other hosts)")
    parser.add_argument(
        "--home", type=Path, default=None, help="server state folder ($FINSCALE_HOME/prefect)"
    )
    parser.add_argument(
        "--startup-timeout", type=float, default=DEFAULT_STARTUP_TIMEOUT_S,
        help="seconds to wait for /api/health",
    )
    return parser.parse_args(argv)


def _raise_keyboard_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Start, wait for health, print the URLs, then supervise until interrupted."""
    args = parse_args(argv)
    home: Path = (args.home or default_home()).expanduser().resolve()
    url = api_url(args.port)
    if is_healthy(url):
        print(f"error: something already answers on {url}; choose another --port",
              file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    process = start_server(args.port, home, os.environ, args.host)
    try:
        took = wait_until_healthy(url, process, home, args.startup_timeout)
        database = server_env(home, os.environ)[DATABASE_URL_ENV].split("://")[0]
        print(f"Prefect server healthy in {took:.1f} s ({database}, state in {home})")
        print(f"Prefect UI: {ui_url(args.port)}")
        print(f"export PREFECT_API_URL={url}", flush=True)
        return process.wait()
    except ServerStartError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_server(process)


if __name__ == "__main__":
    sys.exit(main())
