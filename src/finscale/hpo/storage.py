"""Optuna storage from a URL: SQLite (the default, in the workspace) or PostgreSQL.

Creating the schema is not safe when two workers start at the same moment: on PostgreSQL
they crash with ``UniqueViolation ... alembic_version`` (STACK-NOTES), and both would try to
insert the version row. So the storage (tables, version row) and the study are created
under a lock: a PostgreSQL advisory lock, or an exclusive lock on a file beside the SQLite
database. Once created, workers share the storage without the lock.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna
import sqlalchemy as sa

from finscale.config.redact import redact_text
from finscale.io.locks import creation_lock as database_creation_lock
from finscale.io.locks import sqlite_file

SQLITE_TIMEOUT_S = 60.0  # a writer waits this long for another worker's write
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
def creation_lock(url: str) -> Iterator[None]:
    """Held while a worker creates (or first opens) the storage and the study."""
    if _scheme(url) == "sqlite" and sqlite_file(url) is None:
        raise StorageURLError("an in-memory SQLite storage cannot hold a resumable study")
    with database_creation_lock(url):
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
