"""Use cases of the credit service (no HTTP here)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func
from sqlmodel import col, select

from libs.common.auth import Principal
from libs.common.clock import today_in_china
from libs.common.db import Database
from libs.common.errors import NotFound
from libs.common.events import PermanentError, UnitOfWork
from libs.common.ids import new_id
from libs.common.policy import pack_for_region
from services.credit import events, rules
from services.credit.models import AdmissionReview, BlacklistEntry, OrganisationRecord


async def active_ban_until(uow: UnitOfWork, *, uscc: str, today: date) -> date | None:
    """The end (first free day) of the longest ban in force for this credit code, if any.

    A ban binds while listed and `today < ends_on`: on `ends_on` itself it is over, and a
    listing lifted early (repaired, overturned on appeal) no longer counts.
    """
    result = await uow.session.execute(
        select(func.max(BlacklistEntry.ends_on)).where(
            BlacklistEntry.uscc == uscc,
            BlacklistEntry.state == "listed",
            BlacklistEntry.ends_on > today,
        )
    )
    value = result.scalar_one_or_none()
    return value


async def admit_new_organisation(
    *, uow: UnitOfWork, record: OrganisationRecord, today: date | None = None
) -> AdmissionReview:
    """Record a newly registered organisation and decide its admission with reasons."""
    today = today or today_in_china(uow.clock)
    existing = await uow.session.get(OrganisationRecord, record.organisation_id)
    if existing is not None:
        raise PermanentError(f"organisation {record.organisation_id} registered twice")
    try:
        pack = pack_for_region(record.region_code)
    except LookupError as exc:
        raise PermanentError(str(exc)) from exc
    decision = rules.review_admission(
        pack,
        kind=record.kind,
        qualifications=record.qualifications,
        banned_until=await active_ban_until(uow, uscc=record.uscc, today=today),
        today=today,
    )
    record.status = decision.outcome
    record.decision_version = 1
    review = AdmissionReview(
        id=new_id(),
        organisation_id=record.organisation_id,
        outcome=decision.outcome,
        reasons=[r.as_dict() for r in decision.reasons],
        pack=f"{pack.province}@{pack.version}",
        decided_by="system:admission-review",
        decided_at=datetime.now(UTC),
    )
    uow.session.add(record)
    uow.session.add(review)
    uow.emit(events.admission_decided(record, review, decision.summary()))
    return review


async def latest_admission(
    *, db: Database, organisation_id: str, actor: Principal
) -> AdmissionReview:
    async with db.session() as session:
        record = await session.get(OrganisationRecord, organisation_id)
        review = (
            await session.execute(
                select(AdmissionReview)
                .where(AdmissionReview.organisation_id == organisation_id)
                .order_by(col(AdmissionReview.decided_at).desc())
                .limit(1)
            )
        ).scalar_one_or_none()
    visible = record is not None and (
        actor.covers(record.region_code) or actor.org_id == organisation_id
    )
    if review is None or not visible:
        raise NotFound(detail=f"No admission review for organisation {organisation_id} yet.")
    return review
