"""Optuna storage: four processes that create the same fresh storage and study at the same
instant all succeed, on SQLite and on PostgreSQL (a fresh schema: the case that crashes
with UniqueViolation without the creation lock); unusable URLs are refused by name."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa

from finscale.hpo.storage import StorageURLError, creation_lock
from tests.support.postgres import STORE_KINDS, fresh_store_url

PROCESSES = 4
START_DELAY_S = 8.0  # all processes have imported optuna by then and start together
WORKER = """
import sys, time
import optuna
from finscale.hpo.storage import creation_lock, make_storage
url, start, name = sys.argv[1], float(sys.argv[2]), sys.argv[3]
time.sleep(max(0.0, start - time.time()))
with creation_lock(url):
    storage = make_storage(url, 60, 600)
    optuna.create_study(storage=storage, study_name=name, load_if_exists=True)
"""


@pytest.fixture(params=STORE_KINDS)
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An Optuna storage URL with no schema yet (SQLite file, or a new PostgreSQL schema)."""
    with fresh_store_url(request.param, tmp_path, "hpo_storage") as url:
        yield url


def test_simultaneous_workers_create_one_storage_and_one_study(fresh_url: str) -> None:
    start = time.time() + START_DELAY_S
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, fresh_url, str(start), "cell"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(PROCESSES)]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-2000:]
    assert optuna.get_all_study_names(fresh_url) == ["cell"]
    engine = sa.create_engine(fresh_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM version_info")).scalar() == 1
    engine.dispose()


@pytest.mark.parametrize(("url", "reason"), [
    ("mysql://user@localhost/optuna", "not supported"),
    ("sqlite:///:memory:", "in-memory"),
    ("not a url", "not a database URL"),
])
def test_unusable_storage_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(StorageURLError, match=reason), creation_lock(url):
        pass
