"""A refresh killed with SIGKILL while it writes Parquet leaves the previous version and the
manifest intact; the next command removes its temp file, `finscale manifest verify` passes and
the next refresh completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from finscale.manifest.store import Manifest
from finscale.workspace import Workspace

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
WAIT_FOR_WRITER_S = 120

# Runs a refresh whose Parquet writer writes half a file, tells the parent, then hangs.
CRASHING_REFRESH = """
import sys, time
from pathlib import Path
import pandas as pd
import finscale.config
from finscale.data.config import DataConfig
from finscale.data.refresh import refresh_market
from finscale.data.sources.csv_mirror import CsvMirrorSource
from finscale.manifest.store import Manifest
from finscale.workspace import Workspace

home, mirror, signal_file = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
real_to_parquet = pd.DataFrame.to_parquet

def to_parquet_then_hang(self, path, *args, **kwargs):
    real_to_parquet(self, path, *args, **kwargs)
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    signal_file.touch()
    time.sleep(600)

pd.DataFrame.to_parquet = to_parquet_then_hang
workspace = Workspace.resolve(home).ensure()
manifest = Manifest(workspace.manifest_url, workspace.home)
refresh_market(manifest, workspace, CsvMirrorSource(mirror), "SPY", DataConfig())
"""


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINSCALE_")}
    env["FINSCALE_HOME"] = str(home)
    return env


def _finscale(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "finscale.cli.main", *args], cwd=REPO,
                          env=_env(home), capture_output=True, text=True, timeout=300,
                          check=False)


def test_sigkill_during_parquet_write_keeps_previous_version(
    tmp_path: Path, shared_data_dir: Path
) -> None:
    home, mirror = tmp_path / "home", tmp_path / "mirror"
    (mirror / "market").mkdir(parents=True)
    lines = (shared_data_dir / "market" / "SPY.csv").read_text().splitlines()
    (mirror / "market" / "SPY.csv").write_text("\n".join(lines[:-20]) + "\n")
    seeded = _finscale(home, "data", "refresh", "--mirror", str(mirror), "--tickers", "SPY",
                       "--series")
    assert seeded.returncode == 0, seeded.stderr
    workspace = Workspace.resolve(home)
    manifest = Manifest(workspace.manifest_url, home)
    before = manifest.latest("raw/market/SPY")
    assert before is not None
    before_bytes = manifest.absolute(before).read_bytes()
    manifest.close()

    (mirror / "market" / "SPY.csv").write_text("\n".join(lines) + "\n")
    signal_file = tmp_path / "writing"
    child = subprocess.Popen(
        [sys.executable, "-c", CRASHING_REFRESH, str(home), str(mirror), str(signal_file)],
        cwd=REPO, env=_env(home),
    )
    deadline = time.monotonic() + WAIT_FOR_WRITER_S
    while not signal_file.exists():
        assert child.poll() is None, "refresh ended before it wrote"
        assert time.monotonic() < deadline, "refresh never reached the Parquet writer"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL

    manifest = Manifest(workspace.manifest_url, home)
    assert manifest.history("raw/market/SPY") == [before]
    assert manifest.absolute(before).read_bytes() == before_bytes
    leftovers = [p for p in (home / "data" / "raw" / "market").iterdir() if p.suffix == ".tmp"]
    assert leftovers, "the kill should have left a half-written temp file behind"
    manifest.close()
    verify = _finscale(home, "manifest", "verify")
    assert verify.returncode == 0, verify.stderr
    # opening the workspace removed the dead writer's temp file (its PID is gone)
    assert not [p for p in (home / "data" / "raw" / "market").iterdir() if p.suffix == ".tmp"]

    resumed = _finscale(home, "data", "refresh", "--mirror", str(mirror), "--tickers", "SPY",
                        "--series")
    assert resumed.returncode == 0, resumed.stderr
    manifest = Manifest(workspace.manifest_url, home)
    after = manifest.latest("raw/market/SPY")
    assert after is not None and after.version == 2 and after.rows == before.rows + 20
    manifest.close()
