"""Cross-process locks for the first use of a database that a library creates on demand.

Optuna's and MLflow's stores create (migrate) their schema when they first open an empty
database, and neither is safe when two processes do it at the same moment (one crashes on
a table or version row the other just made). Holding ``creation_lock(url)`` around that first
open serialises it: an exclusive ``flock`` on a file beside a SQLite database, a session
advisory lock on PostgreSQL. Once the schema exists, users need no lock.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

LOCK_KEY_HEX = 15  # 60 bits of the URL's hash: fits PostgreSQL's signed bigint advisory key
LOCK_SUFFIX = ".lock"


@contextmanager
def exclusive_file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing); the kernel drops it if
    the process dies, so a crash never leaves it held."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def advisory_lock(url: str) -> Iterator[None]:
    """Hold a PostgreSQL session advisory lock keyed by ``url`` (waits for other holders)."""
    key = int(hashlib.sha256(url.encode("utf-8")).hexdigest()[:LOCK_KEY_HEX], 16)
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL; None for other URLs and in-memory SQLite."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None  # not a database URL (e.g. an MLflow server's http://)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def creation_lock(url: str) -> AbstractContextManager[None]:
    """The lock to hold while first opening the database at ``url``: a file lock beside a
    SQLite file, an advisory lock on PostgreSQL, none for anything else (a server, memory)."""
    database = sqlite_file(url)
    if database is not None:
        return exclusive_file_lock(database.with_name(database.name + LOCK_SUFFIX))
    try:
        backend = sa.engine.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        return nullcontext()
    return advisory_lock(url) if backend == "postgresql" else nullcontext()
