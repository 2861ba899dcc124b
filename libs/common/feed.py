"""Change feeds (`?since=<cursor>`) that never skip a record committed during a read.

A follower reads "everything changed after my cursor" again and again. Ordering by a
timestamp or an autoincrement id is not safe: transaction A takes value 5, transaction B
takes 6 and commits first, a reader sees 6 and moves its cursor past it, then A commits 5
behind the cursor, and the follower never sees it.

The design here: every database that serves feeds holds ONE counter row (`feed_counter`).
A writer takes that row before anything else it writes to a feed (`lock`, then `put`), and
every `put` takes its sequence number from it (`UPDATE … SET last_seq = last_seq + 1
RETURNING last_seq`) in the same transaction as the entry it stamps. On PostgreSQL the row
lock is held until commit; on SQLite the writer holds the database's only write lock anyway.
So number N+1 cannot be handed out before the transaction holding N has committed (or rolled
back, which gives N back: no gaps either), numbers become visible in commit order, and a
reader that has seen N has seen every number below N that will ever exist. `read` is then a
plain `seq > cursor ORDER BY seq` scan, the same on both databases.

The price is that feed writers of one database are serialised from their `lock` to their
commit. That is acceptable for disclosure: feed writes come from consumers that render a
public document in a short transaction. One lock (not one per feed) keeps it deadlock-free:
a transaction touches a feed entry only while holding the counter. Rendering after `lock`
also means that of two writers rendering the same record, the later one reads what the
earlier one committed, so a stale rendering can never be written last.

Considered and not chosen: on PostgreSQL alone, a sequence plus a reader that stops below
`pg_snapshot_xmin(pg_current_snapshot())` (the oldest transaction still running) avoids
serialising writers, but needs a transaction-id column and PostgreSQL-only SQL, and SQLite
serialises writers regardless.

Each entry is the latest public form of one record (`feed`, `key`): a change moves the entry
to a new, higher number, so a follower sees it again; an entry leaving a public list stays
in the feed with `removed` set, so followers can drop it. Writing an unchanged document
(same digest) is a no-op and takes no number. The cursor a client holds is opaque: base64
of the last number it has seen.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    and_,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import invalid
from libs.common.events.envelope import encode_json
from libs.common.regions import sql_inside

T = TypeVar("T")

#: The one counter row of a database's feeds.
COUNTER = "feeds"
#: `session.info` flag: this transaction holds the counter.
_LOCKED = "feed_counter_locked"

SinceQuery = Annotated[
    str | None,
    Query(
        max_length=40,
        description="Change feed: the `next_cursor` of the previous page; empty to start "
        "from the beginning. Entries come in order of modification.",
    ),
]


# -------------------------------------------------------------------------------- cursors


def encode_cursor(seq: int) -> str:
    """The opaque cursor a client holds: base64 (URL-safe, unpadded) of the last number."""
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, field: str = "query.since") -> int:
    """The number behind a cursor; "" or None starts from the beginning. 422 if malformed."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        seq = int(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid(field, "not a cursor returned by this feed") from None
    if seq < 0 or raw != str(seq):
        raise invalid(field, "not a cursor returned by this feed")
    return seq


# -------------------------------------------------------------------------------- responses


class FeedItem(BaseModel, Generic[T]):
    """One changed record: its latest public form, or its last one when it left the list."""

    id: str = Field(description="The record's id")
    removed: bool = Field(description="True when the record has left the public list")
    changed_at: datetime
    data: T


class FeedPage(BaseModel, Generic[T]):
    """A page of a change feed: pass `next_cursor` as `since` to get what changed next."""

    items: list[FeedItem[T]]
    next_cursor: str
    has_more: bool = Field(description="More changes are waiting: ask again at once")


# -------------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class FeedEntry:
    feed: str
    key: str
    seq: int
    document: dict[str, Any]
    removed: bool
    changed_at: datetime
    group_key: str | None
    region_code: str
    state: str | None
    published_at: datetime | None


def digest_of(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(json.loads(encode_json(value)), sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()


class FeedTables:
    """The feed tables of one service's database: `FeedTables.define(metadata)`."""

    def __init__(self, entries: Table, counter: Table) -> None:
        self.entries = entries
        self.counter = counter

    @classmethod
    def define(cls, metadata: MetaData) -> FeedTables:
        entries = Table(
            "feed_entry",
            metadata,
            Column("feed", String(40), primary_key=True),
            Column("key", String(200), primary_key=True),
            Column("seq", BigInteger, nullable=False),
            # What a public list filters and sorts on, beside the document itself.
            Column("group_key", String(200), nullable=True, index=True),
            Column("region_code", String(12), nullable=False),
            Column("state", String(40), nullable=True),
            Column("published_at", DateTime(timezone=True), nullable=True),
            Column("removed", Boolean, nullable=False),
            Column("digest", String(64), nullable=False),
            Column("document", JSON, nullable=False),
            Column("changed_at", DateTime(timezone=True), nullable=False),
            Index("ix_feed_entry_feed_seq", "feed", "seq", unique=True),
            Index("ix_feed_entry_feed_region_code", "feed", "region_code"),
        )
        counter = Table(
            "feed_counter",
            metadata,
            Column("name", String(40), primary_key=True),
            Column("last_seq", BigInteger, nullable=False),
        )
        return cls(entries, counter)

    # -- writing ------------------------------------------------------------------------

    async def lock(self, session: AsyncSession) -> int:
        """Take the feed counter for the rest of this transaction; returns its value.

        Call it BEFORE reading what a document is rendered from, so a concurrent writer of
        the same record has either committed (and is read) or waits for this one.
        """
        stmt = (
            update(self.counter)
            .where(self.counter.c.name == COUNTER)
            .values(last_seq=self.counter.c.last_seq)
            .returning(self.counter.c.last_seq)
        )
        value = (await session.execute(stmt)).scalar_one_or_none()
        if value is None:
            await self._create_counter(session)
            value = (await session.execute(stmt)).scalar_one()
        session.info[_LOCKED] = True
        return int(value)

    async def _create_counter(self, session: AsyncSession) -> None:
        # Migrations insert the row; a database built from metadata (tests) gets it here.
        # ON CONFLICT: two first writers racing both end up with the one row.
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        insert: Any
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        await session.execute(
            insert(self.counter).values(name=COUNTER, last_seq=0).on_conflict_do_nothing()
        )

    async def _next_seq(self, session: AsyncSession) -> int:
        if not session.info.get(_LOCKED):
            await self.lock(session)
        stmt = (
            update(self.counter)
            .where(self.counter.c.name == COUNTER)
            .values(last_seq=self.counter.c.last_seq + 1)
            .returning(self.counter.c.last_seq)
        )
        return int((await session.execute(stmt)).scalar_one())

    async def put(
        self,
        session: AsyncSession,
        *,
        feed: str,
        key: str,
        document: dict[str, Any],
        region_code: str,
        at: datetime,
        removed: bool = False,
        group_key: str | None = None,
        state: str | None = None,
        published_at: datetime | None = None,
        immutable: bool = False,
    ) -> int | None:
        """Write the public form of one record; returns its new number, or None when nothing
        changed (same digest) or when `immutable` and the record exists already.

        Must run in the caller's write transaction, which commits it.
        """
        if not session.info.get(_LOCKED):
            await self.lock(session)
        e = self.entries
        current = (
            await session.execute(select(e.c.digest).where(and_(e.c.feed == feed, e.c.key == key)))
        ).first()
        if current is not None and immutable:
            return None
        digest = digest_of([document, removed, group_key, region_code, state, published_at])
        if current is not None and current[0] == digest:
            return None
        seq = await self._next_seq(session)
        # Round-trip through JSON so the stored document is exactly what a reader gets.
        values = {
            "seq": seq,
            "group_key": group_key,
            "region_code": region_code,
            "state": state,
            "published_at": published_at,
            "removed": removed,
            "digest": digest,
            "document": json.loads(encode_json(document)),
            "changed_at": at,
        }
        if current is None:
            await session.execute(e.insert().values(feed=feed, key=key, **values))
        else:
            await session.execute(
                update(e).where(and_(e.c.feed == feed, e.c.key == key)).values(**values)
            )
        return seq

    # -- reading ------------------------------------------------------------------------

    @staticmethod
    def _entry(row: Any) -> FeedEntry:
        return FeedEntry(
            feed=row.feed,
            key=row.key,
            seq=int(row.seq),
            document=dict(row.document),
            removed=bool(row.removed),
            changed_at=row.changed_at,
            group_key=row.group_key,
            region_code=row.region_code,
            state=row.state,
            published_at=row.published_at,
        )

    def _in_region(self, region: str | None) -> list[Any]:
        if not region:
            return []
        return [sql_inside(self.entries.c.region_code, region)]

    async def read(
        self,
        session: AsyncSession,
        *,
        feed: str,
        after: int,
        limit: int,
        region: str | None = None,
        group_key: str | None = None,
    ) -> tuple[list[FeedEntry], bool]:
        """Entries changed after number `after`, oldest change first; and whether more wait."""
        e = self.entries
        query = select(e).where(e.c.feed == feed, e.c.seq > after, *self._in_region(region))
        if group_key is not None:
            query = query.where(e.c.group_key == group_key)
        rows = (await session.execute(query.order_by(e.c.seq).limit(limit + 1))).all()
        return [self._entry(r) for r in rows[:limit]], len(rows) > limit

    async def page(
        self,
        session: AsyncSession,
        *,
        feed: str,
        limit: int,
        offset: int,
        region: str | None = None,
        state: str | None = None,
        group_key: str | None = None,
        newest_first: bool = True,
    ) -> tuple[list[FeedEntry], int]:
        """The public list: entries not removed, by publication time, then key."""
        e = self.entries
        query = select(e).where(e.c.feed == feed, e.c.removed.is_(False), *self._in_region(region))
        if state is not None:
            query = query.where(e.c.state == state)
        if group_key is not None:
            query = query.where(e.c.group_key == group_key)
        total = (
            await session.execute(select(func.count()).select_from(query.subquery()))
        ).scalar_one()
        when = (e.c.published_at.desc() if newest_first else e.c.published_at.asc()).nulls_last()
        rows = (
            await session.execute(query.order_by(when, e.c.key).limit(limit).offset(offset))
        ).all()
        return [self._entry(r) for r in rows], int(total)

    async def get(self, session: AsyncSession, *, feed: str, key: str) -> FeedEntry | None:
        e = self.entries
        row = (await session.execute(select(e).where(e.c.feed == feed, e.c.key == key))).first()
        return self._entry(row) if row is not None else None

    async def group(self, session: AsyncSession, *, feed: str, group_key: str) -> list[FeedEntry]:
        """Every entry of one group (e.g. the releases of one OCDS process), in feed order."""
        e = self.entries
        rows = (
            await session.execute(
                select(e).where(e.c.feed == feed, e.c.group_key == group_key).order_by(e.c.seq)
            )
        ).all()
        return [self._entry(r) for r in rows]


def feed_page(entries: Sequence[FeedEntry], *, after: int, has_more: bool) -> dict[str, Any]:
    """The body of a feed response (`FeedPage`) from entries read after number `after`."""
    last = entries[-1].seq if entries else after
    return {
        "items": [
            {"id": x.key, "removed": x.removed, "changed_at": x.changed_at, "data": x.document}
            for x in entries
        ],
        "next_cursor": encode_cursor(last),
        "has_more": has_more,
    }
