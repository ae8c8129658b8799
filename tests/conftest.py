"""Fixtures shared by all tests: the real-data mirror and a fresh workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from finscale.workspace import Workspace

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA_ENV = "FINSCALE_TEST_DATA"


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
