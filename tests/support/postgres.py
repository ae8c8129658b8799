"""The test PostgreSQL server and a fresh schema per test, so tests never collide.

``fresh_schema(prefix)`` creates ``<prefix>_<random>`` and yields a URL whose connections use
it as their search path; the schema is dropped afterwards. An unreachable server fails the
test (never skips it): ``.ci/run`` starts one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_S = 5


@contextmanager
def fresh_schema(prefix: str) -> Iterator[str]:
    """A URL on a new, empty schema of the test database (dropped on exit)."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_SERVER, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL not reachable at {PG_SERVER} ({exc}); .ci/run starts it")
    try:
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


STORE_KINDS = ("sqlite", "postgresql")


@contextmanager
def fresh_store_url(kind: str, folder: Path, name: str) -> Iterator[str]:
    """A new, empty store of ``kind`` (one of STORE_KINDS): the SQLite file
    ``folder/<name>.db``, or a fresh PostgreSQL schema ``<name>_<random>`` dropped on exit."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / f'{name}.db'}"
        return
    with fresh_schema(name) as url:
        yield url
