"""Optuna storage from a URL: SQLite (the default, in the workspace) or PostgreSQL.

Creating the schema is not safe when two workers start at the same moment: on PostgreSQL
they crash with ``UniqueViolation ... alembic_version`` (STACK-NOTES), and both would try to
insert the version row. So the storage (tables, version row) and the study are created
under a lock: a PostgreSQL advisory lock, or an exclusive lock on a file beside the SQLite
database. Once created, workers share the storage without the lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from finscale.config.redact import redact_text

SQLITE_TIMEOUT_S = 60.0  # a writer waits this long for another worker's write
LOCK_KEY_HEX = 15  # 60 bits: fits PostgreSQL's signed bigint advisory key
SUPPORTED = ("sqlite", "postgresql")


class StorageURLError(ValueError):
    """A storage URL finscale cannot use (scheme or form)."""


def _scheme(url: str) -> str:
    try:
        backend = sa.engine.make_url(url).get_backend_name()
    except sa.exc.ArgumentError as exc:
        raise StorageURLError(f"storage URL {redact_text(url)!r} is not a database URL") from exc
    if backend not in SUPPORTED:
        raise StorageURLError(f"storage URL {redact_text(url)!r}: backend {backend!r} is not "
                              f"supported (use {' or '.join(SUPPORTED)})")
    return backend


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _advisory_lock(url: str) -> Iterator[None]:
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


@contextmanager
def creation_lock(url: str) -> Iterator[None]:
    """Held while a worker creates (or first opens) the storage and the study."""
    if _scheme(url) == "postgresql":
        with _advisory_lock(url):
            yield
        return
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:":
        raise StorageURLError("an in-memory SQLite storage cannot hold a resumable study")
    with _file_lock(Path(database).with_name(Path(database).name + ".lock")):
        yield


def _engine_kwargs(url: str) -> dict[str, Any]:
    if _scheme(url) == "sqlite":
        return {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    return {"pool_pre_ping": True}


def make_storage(url: str, heartbeat_s: int, grace_s: int) -> optuna.storages.RDBStorage:
    """The RDB storage at ``url`` with trial heartbeats (a worker that died leaves no trial
    RUNNING for ever: the next worker marks it failed after ``grace_s``). Call it inside
    ``creation_lock`` when the schema may not exist yet."""
    with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url, engine_kwargs=_engine_kwargs(url), heartbeat_interval=heartbeat_s,
            grace_period=grace_s,
        )
