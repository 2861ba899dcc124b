"""Alembic migrations per service, applied at start-up.

Each service keeps `services/<name>/migrations/` (env.py calls `run_env`); revisions are
named by date and slug. Replicas starting together on PostgreSQL take an advisory lock so
only one of them migrates.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, pool, text

from libs.common.db import sync_url

FILE_TEMPLATE = "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s"


def alembic_config(*, database_url: str, script_location: Path) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    cfg.set_main_option("file_template", FILE_TEMPLATE)
    return cfg


def upgrade_to_head(*, database_url: str, script_location: Path) -> None:
    """Bring the service's database to the newest revision (idempotent)."""
    url = sync_url(database_url)
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(
        alembic_config(database_url=database_url, script_location=script_location), "head"
    )


def make_revision(*, database_url: str, script_location: Path, message: str) -> None:
    """Autogenerate a revision from the difference between the models and the database."""
    cfg = alembic_config(database_url=database_url, script_location=script_location)
    command.upgrade(cfg, "head")
    command.revision(cfg, message=message, autogenerate=True)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's `migrations/env.py` (online mode only)."""
    cfg = context.config
    url = cfg.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set by alembic_config()"
    engine = create_engine(url, poolclass=pool.NullPool)
    is_sqlite = engine.dialect.name == "sqlite"
    lock_key = zlib.crc32(str(cfg.get_main_option("script_location")).encode())
    with engine.connect() as connection:
        if not is_sqlite:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key})
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=is_sqlite,  # SQLite alters tables by copy-and-move
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            if not is_sqlite:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key})
                connection.commit()
    engine.dispose()
