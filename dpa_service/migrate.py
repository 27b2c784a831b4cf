"""Run Alembic from code, wherever the package is installed (the CLI, `dpa serve`, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from dpa_service.core.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    return config


def ensure_sqlite_dir(url: str) -> None:
    if url.startswith("sqlite") and ":///" in url:
        path = url.split(":///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Migrate as the owner login (DATABASE_URL). Blocking: call it off the event loop."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    ensure_sqlite_dir(settings.database.url)
    command.upgrade(alembic_config(settings.database.url), revision)
