"""Rendering credit's public lines into the feeds, and reading the feeds back. No HTTP.

The lines are exactly what the public lists show (`sanctions.service.dishonesty_entry`, the
published evaluation of `performance`), rendered from credit's own tables after taking the
feed lock (libs.common.feed) in the consumer's transaction. A listing that ends (expired,
repaired, overturned) stays in the feed marked `removed`, so a follower drops it; the list
itself also filters by date, and the feed follows when the expiry job announces the end.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from libs.common.db import Database
from libs.common.feed import FeedEntry
from services.credit.models import BlacklistEntry, Evaluation, OrganisationRecord
from services.credit.performance.schemas import EvaluationPublished
from services.credit.public.models import DISHONESTY, EVALUATIONS, public_feeds
from services.credit.sanctions.service import dishonesty_entry


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def refresh_listings(session: AsyncSession, organisation_id: str, *, now: datetime) -> int:
    """Every listing of the organisation into the dishonesty feed; how many changed."""
    await public_feeds.lock(session)
    rows = (
        await session.execute(
            select(BlacklistEntry)
            .where(BlacklistEntry.organisation_id == organisation_id)
            .order_by(col(BlacklistEntry.created_at), col(BlacklistEntry.id))
            .execution_options(populate_existing=True)
        )
    ).scalars()
    record = await session.get(OrganisationRecord, organisation_id)
    changed = 0
    for entry in rows:
        seq = await public_feeds.put(
            session,
            feed=DISHONESTY,
            key=entry.id,
            document=dishonesty_entry(entry).model_dump(mode="json"),
            # The organisation's home region; else the registering authority's division,
            # characters 3–8 of the credit code (GB 32100).
            region_code=record.region_code if record is not None else entry.uscc[2:8],
            removed=entry.state != "listed",
            state=entry.state,
            published_at=_utc(entry.created_at),
            at=now,
        )
        changed += seq is not None
    return changed


async def refresh_evaluation(session: AsyncSession, evaluation_id: str, *, now: datetime) -> bool:
    """The published evaluation into the evaluations feed; whether it changed."""
    await public_feeds.lock(session)
    row = (
        await session.execute(
            select(Evaluation, OrganisationRecord.name)
            .join(
                OrganisationRecord,
                col(OrganisationRecord.organisation_id) == Evaluation.organisation_id,
                isouter=True,
            )
            .where(Evaluation.id == evaluation_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is None or row[0].state != "published":
        return False
    ev, name = row
    published = EvaluationPublished(
        id=ev.id,
        contract_id=ev.contract_id,
        organisation_id=ev.organisation_id,
        organisation_name=name,
        region_code=ev.region_code,
        period=ev.period,
        purchaser_score=ev.purchaser_score,
        satisfaction_score=ev.satisfaction_score,
        third_party_score=ev.third_party_score,
        responses=ev.responses,
        weights={k: ev.weights.get(k) for k in ("purchaser", "recipients", "third_party", "rule")},
        total=ev.total,
        result=ev.result,
        published_at=_utc(ev.published_at) if ev.published_at else None,
    )
    seq = await public_feeds.put(
        session,
        feed=EVALUATIONS,
        key=ev.id,
        document=published.model_dump(mode="json"),
        region_code=ev.region_code,
        group_key=ev.organisation_id,
        state=ev.result,
        published_at=published.published_at,
        at=now,
    )
    return seq is not None


async def read_feed(
    db: Database, *, feed: str, after: int, limit: int, region: str | None = None
) -> tuple[list[FeedEntry], bool]:
    async with db.session() as session:
        return await public_feeds.read(session, feed=feed, after=after, limit=limit, region=region)
