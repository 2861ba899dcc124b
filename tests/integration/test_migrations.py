"""Each service's migrations build exactly the schema its models declare.

A hand-edited or forgotten migration shows here as a difference between the database the
migrations produce and the tables the code expects, on SQLite and (with DATABASE_URL) on
PostgreSQL.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine

from libs.common.db import sync_url
from libs.common.migrations import upgrade_to_head

# service → module whose `metadata` holds every table of that service
SCHEMAS = {
    "needs": "services.needs.all_models",
    "providers": "services.providers.all_models",
    "matching": "services.matching.models",
    "credit": "services.credit.models",
}


@pytest.mark.parametrize("service", sorted(SCHEMAS))
def test_migrations_match_models(service: str, database_url_factory: Callable[[str], str]) -> None:
    url = database_url_factory(f"migrations-{service}")
    migrations = Path(importlib.import_module(f"services.{service}.app").__file__ or "").parent
    upgrade_to_head(database_url=url, script_location=migrations / "migrations")
    metadata: MetaData = importlib.import_module(SCHEMAS[service]).metadata
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert diff == [], f"{service}: migrations and models differ: {diff}"
