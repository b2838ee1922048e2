"""Fixtures for the metrics tests: a real PostgreSQL with a Prisma-style call log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from callmetrics_db import CallDatabase, create_call_database
from callmetrics_pg import PostgresServer, running_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def call_db(postgres_server: PostgresServer) -> CallDatabase:
    return create_call_database(postgres_server, calls=2000, active=40)
