"""Fresh databases for tests: a SQLite file, or a new PostgreSQL database when DATABASE_URL
points at a PostgreSQL server (created per test, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url


def postgres_admin_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgresql") else None


@contextmanager
def fresh_database(tmp_dir: Path, name: str) -> Iterator[str]:
    admin = postgres_admin_url()
    if admin is None:
        yield f"sqlite+aiosqlite:///{tmp_dir / (name + '.db')}"
        return
    import psycopg

    base = make_url(admin)
    db_name = f"sa_test_{name}_{uuid.uuid4().hex[:8]}"
    conninfo = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    try:
        yield base.set(drivername="postgresql+asyncpg", database=db_name).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
