"""Database fixtures shared by every test layer: each test gets its own migrated database.

Tests that take ``database_url`` (or ``engine`` / ``sessions``) run twice, on SQLite
and on PostgreSQL. Temporal fixtures live in the sub-folder conftests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine

from store.db import SessionFactory, make_engine, session_factory
from store.migrate import upgrade_database

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
REQUIRE_POSTGRES_ENV = "LOANFLOW_REQUIRE_POSTGRES"


@cache
def _postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it can (asked once per session)."""
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return " ".join(str(exc).split()) or type(exc).__name__


def _admin_execute(sql: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'loanflow.db'}"
        return

    problem = _postgres_problem()
    if problem is not None:
        message = (
            f"PostgreSQL at 127.0.0.1:5432 is unreachable ({problem}); "
            f"start it, or set {REQUIRE_POSTGRES_ENV}=1 to fail instead of skipping"
        )
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(message)
        pytest.skip(message)

    name = f"lf_{uuid.uuid4().hex}"
    _admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    upgrade_database(database_url)
    eng = make_engine(database_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> SessionFactory:
    return session_factory(engine)
