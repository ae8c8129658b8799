"""creation_lock picks the lock a database needs: a held flock beside a SQLite file, a held
advisory lock on PostgreSQL, nothing for a server URL or in-memory SQLite."""

from __future__ import annotations

import fcntl
import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from finscale.io.locks import LOCK_KEY_HEX, creation_lock, sqlite_file
from tests.support.postgres import PG_SERVER

PG_URL = PG_SERVER


def _flock_free(path: Path) -> bool:
    """Whether another open file description can take ``path``'s flock right now."""
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_sqlite_file_is_locked_beside_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    lock_file = tmp_path / "store.db.lock"

    with creation_lock(url):
        assert not _flock_free(lock_file)
    assert _flock_free(lock_file)


def test_postgresql_takes_an_advisory_lock_keyed_by_the_url() -> None:
    key = int(hashlib.sha256(PG_URL.encode()).hexdigest()[:LOCK_KEY_HEX], 16)
    other = sa.create_engine(PG_URL, connect_args={"connect_timeout": 5})
    probe = sa.text("SELECT pg_try_advisory_lock(:key), pg_advisory_unlock_all()")
    try:
        with creation_lock(PG_URL), other.connect() as conn:
            assert conn.execute(probe, {"key": key}).first()[0] is False
        with other.connect() as conn:
            assert conn.execute(probe, {"key": key}).first()[0] is True
    except sa.exc.OperationalError as exc:
        pytest.fail(f"PostgreSQL not reachable at {PG_URL} ({exc}); .ci/run starts it")
    finally:
        other.dispose()


@pytest.mark.parametrize("url", ["http://127.0.0.1:5000", "sqlite:///:memory:", "file:./runs"])
def test_nothing_to_lock(url: str) -> None:
    assert sqlite_file(url) is None
    with creation_lock(url):
        pass
