"""Programmatic ``alembic upgrade head``, used by the run command and the tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

PROJECT_DIR = Path(__file__).resolve().parent.parent


def alembic_config(url: str) -> Config:
    # No ini file: the caller's logging setup stays untouched.
    config = Config()
    config.set_main_option("script_location", str(PROJECT_DIR / "migrations"))
    config.attributes["url"] = url
    return config


def ensure_sqlite_folder(url: str) -> None:
    """SQLite creates the file but not its folder."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)


def upgrade_database(url: str) -> None:
    ensure_sqlite_folder(url)
    command.upgrade(alembic_config(url), "head")
