"""Fixtures shared by all tests: the real-data mirror and a fresh workspace."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from finscale.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA_ENV = "FINSCALE_TEST_DATA"
PREFECT_HOME_KEY = pytest.StashKey[Path]()
OFFLINE_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def pytest_configure(config: pytest.Config) -> None:
    """Before any test module imports Prefect: offline settings and a private PREFECT_HOME.

    Prefect's test harness swaps the database but not result storage, so cached task results
    would survive in $PREFECT_HOME/storage and turn a later session's runs into cache hits.
    Each session therefore gets its own PREFECT_HOME (and result path) in a fresh temp folder.
    """
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    home = Path(tempfile.mkdtemp(prefix="finscale-prefect-home-"))
    os.environ["PREFECT_HOME"] = str(home)
    os.environ["PREFECT_RESULTS_LOCAL_STORAGE_PATH"] = str(home / "storage")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    config.stash[PREFECT_HOME_KEY] = home


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the session's private PREFECT_HOME."""
    home = config.stash.get(PREFECT_HOME_KEY, None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The folder of real market/FRED CSVs (../shared/data; $FINSCALE_TEST_DATA overrides)."""
    path = Path(os.environ.get(TEST_DATA_ENV) or REPO_ROOT.parent / "shared" / "data")
    if not (path / "market").is_dir() or not (path / "fred").is_dir():
        pytest.fail(f"real-data mirror not found at {path}; set {TEST_DATA_ENV}")
    return path


@pytest.fixture()
def workspace(tmp_path: Path) -> Workspace:
    """A fresh, empty workspace in a temp folder."""
    return Workspace.resolve(tmp_path / "ws").ensure()
