"""Use cases of the OCDS export: load a process, store its releases, serve packages.

Releases are stored in the public feed table (feed `ocds`, grouped by ocid) by the public
consumer (services/matching/public/events.py) whenever a tender, award, contract or
acceptance event of the process is seen; a stored release is never rewritten. Serving and
exporting read only that table: `GET /ocds/releases?since=` follows it like any feed, and a
record compiles the releases of one ocid.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from libs.common.db import Database
from libs.common.errors import NotFound
from libs.common.feed import FeedEntry, encode_cursor
from services.matching.contracts.models import Acceptance, Contract, Delivery
from services.matching.contracts.rules import ANNOUNCED_STATES, period_range
from services.matching.library.models import ProjectView
from services.matching.market.models import Award, Bid, Tender
from services.matching.models import OrganisationView
from services.matching.ocds import mapping, merge
from services.matching.public.models import OCDS, public_feeds

VERSION = "1.1"
OPENED_BID_STATES = ("valid", "invalid")


async def fresh_rows(session: AsyncSession, query: Any) -> list[Any]:
    # populate_existing: a consumer's session may hold an older copy of the same row.
    result = await session.execute(query.execution_options(populate_existing=True))
    return list(result.scalars().all())


async def load_process(session: AsyncSession, tender_id: str) -> mapping.Process | None:
    """The tender and everything public about it, read in the caller's transaction."""
    tenders = await fresh_rows(session, select(Tender).where(Tender.id == tender_id))
    if not tenders:
        return None
    tender = tenders[0]
    projects = await fresh_rows(
        session, select(ProjectView).where(ProjectView.project_id == tender.project_id)
    )
    bids = await fresh_rows(
        session,
        select(Bid)
        .where(Bid.tender_id == tender.id, col(Bid.state).in_(OPENED_BID_STATES))
        .order_by(col(Bid.submitted_at), col(Bid.id)),
    )
    awards = await fresh_rows(
        session,
        select(Award)
        .where(Award.tender_id == tender.id)
        .order_by(col(Award.created_at), col(Award.rank), col(Award.id)),
    )
    contracts = await fresh_rows(
        session,
        select(Contract)
        .where(Contract.tender_id == tender.id, col(Contract.state).in_(ANNOUNCED_STATES))
        .order_by(col(Contract.signed_at), col(Contract.id)),
    )
    acceptances: list[Acceptance] = []
    deliveries: dict[str, tuple[int, int]] = {}
    if contracts:
        acceptances = await fresh_rows(
            session,
            select(Acceptance)
            .where(
                col(Acceptance.contract_id).in_([c.id for c in contracts]),
                col(Acceptance.published_at).is_not(None),
            )
            .order_by(col(Acceptance.published_at), col(Acceptance.id)),
        )
        for acceptance in acceptances:
            deliveries[acceptance.id] = await delivered(session, acceptance)
    org_ids = {b.organisation_id for b in bids} | {a.organisation_id for a in awards}
    org_ids |= {c.organisation_id for c in contracts}
    orgs = await fresh_rows(
        session,
        select(OrganisationView).where(col(OrganisationView.organisation_id).in_(sorted(org_ids))),
    )
    return mapping.Process(
        tender=tender,
        project=projects[0] if projects else None,
        bids=bids,
        organisations={o.organisation_id: o for o in orgs},
        prices={b.id: b.price_fen for b in bids},
        awards=awards,
        contracts=contracts,
        acceptances=acceptances,
        deliveries=deliveries,
    )


async def delivered(session: AsyncSession, acceptance: Acceptance) -> tuple[int, int]:
    """Confirmed sessions and units of the acceptance's contract in its period (服务记录)."""
    first, last = period_range(acceptance.period)
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(Delivery.units), 0)).where(
                Delivery.contract_id == acceptance.contract_id,
                col(Delivery.confirmed_at).is_not(None),
                col(Delivery.delivered_on) >= first,
                col(Delivery.delivered_on) <= last,
            )
        )
    ).one()
    return int(row[0]), int(row[1])


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


async def store_releases(
    session: AsyncSession, process: mapping.Process, *, prefix: str, at: datetime
) -> list[int]:
    """Store the process's releases not stored yet; the new feed numbers."""
    ocid = mapping.ocid_of(prefix, process.tender.id)
    stored = []
    for release in mapping.releases(process, prefix):
        seq = await public_feeds.put(
            session,
            feed=OCDS,
            key=release["id"],
            document=release,
            region_code=process.tender.region_code,
            group_key=ocid,
            state=release["tag"][0],
            published_at=_parse(release["date"]),
            at=at,
            immutable=True,  # a published release never changes; a change is a new release
        )
        if seq is not None:
            stored.append(seq)
    return stored


# ----------------------------------------------------------------------------- packages


def publisher(name: str) -> dict[str, Any]:
    return {"name": name}


def release_package(
    releases: Sequence[dict[str, Any]],
    *,
    uri: str,
    publisher_name: str,
    next_uri: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """An OCDS 1.1 release package (`links.next` continues the feed)."""
    package: dict[str, Any] = {
        "uri": uri,
        "version": VERSION,
        "publishedDate": mapping.iso(now or datetime.now(UTC)),
        "publisher": publisher(publisher_name),
        "releases": list(releases),
    }
    if next_uri is not None:
        package["links"] = {"next": next_uri}
    return package


def record_package(
    records: Sequence[dict[str, Any]],
    *,
    uri: str,
    publisher_name: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    return {
        "uri": uri,
        "version": VERSION,
        "publishedDate": mapping.iso(now or datetime.now(UTC)),
        "publisher": publisher(publisher_name),
        "records": list(records),
    }


async def read_releases(
    db: Database, *, after: int, limit: int, region: str | None = None
) -> tuple[list[FeedEntry], bool]:
    async with db.session() as session:
        return await public_feeds.read(session, feed=OCDS, after=after, limit=limit, region=region)


def next_cursor(entries: Sequence[FeedEntry], after: int) -> str:
    return encode_cursor(entries[-1].seq if entries else after)


async def compiled_record(db: Database, ocid: str) -> dict[str, Any]:
    async with db.session() as session:
        entries = await public_feeds.group(session, feed=OCDS, group_key=ocid)
    if not entries:
        raise NotFound(detail=f"No contracting process {ocid}.")
    return merge.record([e.document for e in entries])


async def all_ocids(db: Database) -> list[str]:
    e = public_feeds.entries
    async with db.session() as session:
        rows = await session.execute(
            select(e.c.group_key).where(e.c.feed == OCDS).distinct().order_by(e.c.group_key)
        )
        return [str(r[0]) for r in rows.all() if r[0]]
