"""Shared fixture of the dataset tests: a manifest filled from the real mirror."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from finscale.manifest.store import Manifest
from finscale.workspace import Workspace
from tests.support.raw_workspace import fill_raw_workspace


@pytest.fixture()
def filled(workspace: Workspace, shared_data_dir: Path) -> Iterator[Manifest]:
    """The workspace's manifest with every mirror series stored as raw artifacts."""
    fill_raw_workspace(workspace, shared_data_dir)
    manifest = Manifest(workspace.manifest_url, workspace.home)
    yield manifest
    manifest.close()
