"""Temp files of killed atomic writes are removed when the workspace is next opened; a temp
file a live writer (this process or another) is still using is never touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from finscale.io.atomic import atomic_path
from finscale.io.temp_files import host_tag, is_stale_temp_file
from finscale.workspace import Workspace

REPO = Path(__file__).resolve().parents[3]

# Opens an atomic write, writes half a file, prints the temp path, then hangs until killed.
HANGING_WRITER = """
import sys, time
from pathlib import Path
from finscale.io.atomic import atomic_path
with atomic_path(Path(sys.argv[1])) as tmp:
    tmp.write_bytes(b"half a file")
    print(tmp, flush=True)
    time.sleep(300)
"""


def _start_writer(target: Path) -> tuple[subprocess.Popen[str], Path]:
    child = subprocess.Popen([sys.executable, "-c", HANGING_WRITER, str(target)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    assert line, "writer ended before it wrote"
    return child, Path(line)


def _kill(child: subprocess.Popen[str]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)


def test_temp_name_carries_pid_and_host_and_a_live_writer_is_kept(workspace: Workspace) -> None:
    target = workspace.raw_dir / "market" / "x.parquet"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"in progress")
        assert tmp.name.startswith(f".x.parquet.pid{os.getpid()}.{host_tag()}.")
        assert tmp.name.endswith(".tmp") and not is_stale_temp_file(tmp)
        workspace.ensure()  # another command opening the workspace meanwhile
        assert tmp.exists()
    assert target.read_bytes() == b"in progress"


def test_killed_writers_temp_is_removed_at_next_open_another_live_writers_is_not(
    workspace: Workspace,
) -> None:
    market = workspace.raw_dir / "market"
    live, live_tmp = _start_writer(market / "live.parquet")
    dead, dead_tmp = _start_writer(workspace.checkpoints_dir / "run" / "model.pt")
    _kill(dead)
    other_host = "0" * 8 if host_tag() != "0" * 8 else "1" * 8
    foreign = market / f".y.parquet.pid{dead.pid}.{other_host}.abcdefgh.tmp"
    others = [market / ".vendor-file.tmp", market / "raw_market_SPY-0123.parquet", foreign]
    for path in others:
        path.write_bytes(b"keep")
    try:
        Workspace.resolve(workspace.home).ensure()
        assert live_tmp.exists(), "a live writer's temp file was deleted"
        assert not dead_tmp.exists(), "the killed writer's temp file was left behind"
        assert all(p.exists() for p in others)
    finally:
        _kill(live)
    Workspace.resolve(workspace.home).ensure()
    assert not live_tmp.exists()
    assert not (market / "live.parquet").exists()
