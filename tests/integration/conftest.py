"""Integration fixtures: one Prefect test harness per session, a fresh PostgreSQL database.

The session's private PREFECT_HOME (and so its result storage) is set up by
``pytest_configure`` in the root conftest, before any test module imports Prefect.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PG_SERVER_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{database}"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect database for the whole session (about 11 s to start once)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture()
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one Prefect server; dropped afterwards."""
    import psycopg  # a dependency: a missing one must fail, never skip

    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        pytest.fail(f"PostgreSQL not reachable at {PG_ADMIN_DSN}; .ci/run starts it")
    database = f"finscale_prefect_{uuid.uuid4().hex[:12]}"
    try:
        admin.execute(f'CREATE DATABASE "{database}"')
        yield PG_SERVER_URL.format(database=database)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()
