"""Migrations match the models on both databases, and upgrading is repeatable."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import store.models  # noqa: F401  (registers the tables)
from store.migrate import alembic_config, upgrade_database


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
        assert context.get_current_revision() == "0006"


def test_upgrade_is_repeatable(database_url: str, engine: Engine) -> None:
    upgrade_database(database_url)  # the engine fixture already upgraded once
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_heads() == ["0006"]


def test_sqlite_parent_folder_is_created(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "deeper" / "loanflow.db"
    upgrade_database(f"sqlite:///{target}")
    assert target.exists()
