"""Integration fixtures: one Prefect test harness per session.

The session's private PREFECT_HOME (and so its result storage) is set up by
``pytest_configure`` in the root conftest, before any test module imports Prefect.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect database for the whole session (about 11 s to start once)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
