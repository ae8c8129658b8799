"""Run deployments/stack.py (the local service stack) from tests on free loopback ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "deployments" / "stack.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_stack(home: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``stack.py ARGS`` with FINSCALE_HOME=home and a private Prefect client home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({"FINSCALE_HOME": str(home), "PREFECT_HOME": str(home / "prefect-client")})
    return subprocess.run([sys.executable, str(STACK), *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)
