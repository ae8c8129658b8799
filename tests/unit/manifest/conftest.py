"""The manifest database every test here runs against: SQLite, and PostgreSQL in a fresh
schema of its own (so tests never collide, and a schema starts empty)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import STORE_KINDS, fresh_store_url


@pytest.fixture(params=STORE_KINDS)
def manifest_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh manifest database: a SQLite file, or a new PostgreSQL schema dropped after."""
    with fresh_store_url(request.param, tmp_path, "manifest_test") as url:
        yield url
