"""Two processes on an EMPTY manifest at the same instant (SQLite, and PostgreSQL in a fresh
schema): neither crashes creating the schema, identical content is one version, different
content gets versions 1 and 2. Repeated, because one round can miss the race window."""

from __future__ import annotations

from pathlib import Path

import pytest

from finscale.manifest.store import Manifest
from tests.support import IMPORT_ROOT
from tests.support.first_use_race import (
    EACH_NAME,
    SAME_NAME,
    register_on_empty_manifest,
    run_pair,
)

ROUNDS = 3


@pytest.fixture()
def importable_support(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spawned children get this process's sys.path: let them import tests.support."""
    monkeypatch.syspath_prepend(str(IMPORT_ROOT))


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_two_first_writers_at_once(
    importable_support: None, manifest_url: str, tmp_path: Path, round_: int
) -> None:
    run_pair(register_on_empty_manifest, manifest_url, str(tmp_path))

    manifest = Manifest(manifest_url, tmp_path)
    same = manifest.history(SAME_NAME)
    each = manifest.history(EACH_NAME)
    assert [r.version for r in same] == [1], "identical content registered twice"
    assert [r.version for r in each] == [1, 2] and len({r.md5 for r in each}) == 2
    assert all(r.ok for r in manifest.verify())
    manifest.close()
