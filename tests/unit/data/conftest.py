"""Fixtures of the data tests: an open manifest on the test's fresh workspace."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from finscale.manifest.store import Manifest
from finscale.workspace import Workspace


@pytest.fixture()
def manifest(workspace: Workspace) -> Iterator[Manifest]:
    """The workspace's manifest, closed after the test."""
    manifest = Manifest(workspace.manifest_url, workspace.home)
    yield manifest
    manifest.close()
