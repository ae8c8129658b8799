"""`finscale demo` (what `make demo` runs): every stage from an empty workspace to the
report, one plain line per stage when not on a terminal; offline without a mirror it says,
in one line, which variable to set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from finscale.cli import demo
from finscale.data.config import MIRROR_ENV
from tests.support.tiny_matrix import write_tiny_matrix

REPO = Path(__file__).resolve().parents[2]
DEMO_TIMEOUT_S = 1200


def _demo(home: Path, env_extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (MIRROR_ENV, "MLFLOW_TRACKING_URI")}
    env.update({"OMP_NUM_THREADS": "1", **env_extra})
    return subprocess.run([sys.executable, "-m", "finscale.cli.main", "--home", str(home),
                           "demo", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=DEMO_TIMEOUT_S)


def test_the_demo_names_the_same_mirror_variable_as_the_data_config() -> None:
    assert demo.MIRROR_ENV == MIRROR_ENV
    stages = demo.demo_stages("m.yaml", "/mirror")
    assert stages[0].argv == ("data", "refresh", "--source", "csv", "--mirror", "/mirror")
    assert demo.demo_stages("m.yaml", None)[0].argv[-2:] == ("--source", "online")
    assert [s.argv[0] for s in stages] == ["data", "features", "experiment", "report"]


@pytest.mark.slow
def test_demo_from_an_empty_workspace_to_the_report(tmp_path: Path, shared_data_dir: Path
                                                    ) -> None:
    matrix = write_tiny_matrix(tmp_path, study_overrides={"training.epochs": 1})
    home = tmp_path / "ws"
    done = _demo(home, {MIRROR_ENV: str(shared_data_dir)}, "--matrix", str(matrix))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for index, title in enumerate(("data refresh", "features a20 SPY", "experiment",
                                   "report"), start=1):
        assert f"[{index}/4] {title}" in done.stdout  # plain stage lines off a terminal
    report = home / "reports" / "tiny" / "index.html"
    assert report.is_file() and f"report       {report}" in done.stdout
    assert "make mlflow-ui" in done.stdout and "make stack" in done.stdout


def test_offline_without_a_mirror_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    done = _demo(tmp_path / "ws", {"FRED_API_KEY": ""})
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("demo: Yahoo Finance or FRED is unreachable") and MIRROR_ENV in last
