"""Serialising allocation per province, so two runs never promise the same capacity twice.

Provinces are independent partitions: every coverage prefix (2–12 digits) lies inside one
province, so a need can only be served by supply of its own province. Runs lock the
provinces they touch, one at a time:

* PostgreSQL: an advisory lock per province (`pg_advisory_lock(class, province)`), held on a
  connection of its own for the whole run (load, solve, chunked writes), and taken inside
  the transaction by a takeover (`pg_advisory_xact_lock`), so replicas serialise too;
* SQLite: one writer at a time already (the database's writer lock, held by every write
  transaction); an in-process lock per province keeps two runs of one process from solving
  the same needs twice. Writers of other processes are caught by the re-check at write time.

Whatever the lock, each write transaction re-checks capacity in SQL (`writes.py`): a lock
avoids wasted work, the re-check is what guarantees no over-allocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db import Database

#: First key of every allocation advisory lock ("SAAL"), the second being the province.
LOCK_CLASS = 0x5341414C

_local: weakref.WeakKeyDictionary[Database, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def _key(province: str) -> int:
    if len(province) != 2 or not province.isdigit():
        raise ValueError(f"not a province code: {province!r}")
    return int(province)


@contextlib.asynccontextmanager
async def province_lock(db: Database, province: str) -> AsyncIterator[None]:
    """Hold the allocation lock of `province` for a whole run."""
    key = _key(province)
    if db.dialect != "postgresql":
        locks = _local.setdefault(db, {})
        async with locks.setdefault(province, asyncio.Lock()):
            yield
        return
    conn = await db.engine.connect()
    try:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("SELECT pg_advisory_lock(:c, :k)"), {"c": LOCK_CLASS, "k": key})
        try:
            yield
        finally:
            await conn.execute(
                text("SELECT pg_advisory_unlock(:c, :k)"), {"c": LOCK_CLASS, "k": key}
            )
    finally:
        await conn.close()


async def lock_in_transaction(session: AsyncSession, province: str) -> None:
    """Take the province's allocation lock until the session's transaction ends (PostgreSQL;
    on SQLite the transaction already holds the writer lock)."""
    key = _key(province)
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:c, :k)"), {"c": LOCK_CLASS, "k": key}
        )
