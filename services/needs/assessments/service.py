"""Assessment use cases: record the assessment, store the self-care tier, open the needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlmodel import col, select

from libs.common.auth import Principal
from libs.common.db import Database
from libs.common.errors import FieldError, InvalidInput, NotFound
from libs.common.events import UnitOfWork
from libs.common.ids import new_id
from libs.common.pagination import fetch_page
from libs.common.policy import pack_for_region
from libs.common.validators import CHINA_TZ
from services.needs import rules
from services.needs import service as needs_service
from services.needs.assessments.models import Assessment
from services.needs.assessments.schemas import AssessmentCreate
from services.needs.models import Need, Recipient, RecipientChange

# Whose assessment must include the self-care part (特困人员供养: 生活自理能力评估).
SELF_CARE_CATEGORY = "tekun"


async def record_assessment(
    *, uow: UnitOfWork, data: AssessmentCreate, actor: Principal
) -> Assessment:
    recipient = await uow.session.get(Recipient, data.recipient_ref)
    if recipient is None or not actor.covers(recipient.region_code):
        raise InvalidInput(
            detail="No such recipient in your region.",
            errors=[FieldError("body.recipient_ref", "no such recipient in your region")],
        )
    assessed_on = data.assessed_on or datetime.now(CHINA_TZ).date()
    if assessed_on > datetime.now(CHINA_TZ).date():
        raise InvalidInput(
            detail="An assessment cannot be dated in the future.",
            errors=[FieldError("body.assessed_on", "in the future")],
        )
    tier = _self_care_tier(recipient, data)
    if data.kind == "closure" and data.needs:
        raise InvalidInput(
            detail="A closure assessment opens no needs.",
            errors=[FieldError("body.needs", "must be empty for a closure")],
        )
    assessment_id = new_id()
    opened: list[Need] = []
    for i, item in enumerate(data.needs):
        opened.append(
            needs_service.add_need(
                uow=uow,
                recipient=recipient,
                item=item,
                actor=actor,
                assessment_id=assessment_id,
                field_path=f"body.needs.{i}.service_code",
            )
        )
    if data.kind == "closure":
        # Closing the case ends every need still open or in hand (结案).
        live = (
            (
                await uow.session.execute(
                    select(Need).where(
                        Need.recipient_ref == recipient.ref,
                        col(Need.status).in_(["open", "matched", "in_service"]),
                    )
                )
            )
            .scalars()
            .all()
        )
        for need in live:
            needs_service.cancel(uow, need, "case closed by assessment")
    pack = pack_for_region(recipient.region_code)
    due = (
        None
        if data.kind == "closure"
        else rules.reassessment_due(pack, categories=recipient.categories, assessed_on=assessed_on)
    )
    now = datetime.now(UTC)
    if tier is not None and tier != recipient.self_care_tier:
        recipient.version += 1
        uow.session.add(
            RecipientChange(
                id=new_id(),
                recipient_ref=recipient.ref,
                version=recipient.version,
                field_name="self_care_tier",
                old_value=recipient.self_care_tier,
                new_value=tier,
                changed_by=actor.subject,
                changed_at=now,
            )
        )
        recipient.self_care_tier = tier
        recipient.updated_at = now
    if data.kind == "closure":
        recipient.status = "inactive"
        recipient.updated_at = now
    assessment = Assessment(
        id=assessment_id,
        recipient_ref=recipient.ref,
        kind=data.kind,
        assessor_name=data.assessor_name,
        assessed_on=assessed_on,
        self_care_answers=data.self_care,
        self_care_tier=tier,
        needs_found=[item.model_dump() for item in data.needs],
        need_ids=[n.id for n in opened],
        reassessment_due_on=due,
        notes=data.notes,
        created_by=actor.subject,
        created_at=now,
    )
    uow.session.add(assessment)
    await uow.commit()
    return assessment


def _self_care_tier(recipient: Recipient, data: AssessmentCreate) -> str | None:
    required = SELF_CARE_CATEGORY in recipient.categories and data.kind != "closure"
    if data.self_care is None:
        if required:
            raise InvalidInput(
                detail="特困人员 assessments include the self-care ability assessment.",
                errors=[FieldError("body.self_care", "required for 特困人员: six activities")],
            )
        return None
    try:
        return rules.self_care_from_answers(data.self_care)
    except ValueError as exc:
        raise InvalidInput(
            detail="The self-care assessment is incomplete or unknown.",
            errors=[FieldError("body.self_care", str(exc))],
        ) from exc


async def get_assessment(*, db: Database, assessment_id: str, actor: Principal) -> Assessment:
    async with db.session() as session:
        assessment = await session.get(Assessment, assessment_id)
        recipient = await session.get(Recipient, assessment.recipient_ref) if assessment else None
    if assessment is None or recipient is None or not actor.covers(recipient.region_code):
        raise NotFound(detail=f"No assessment {assessment_id}.")
    return assessment


async def list_assessments(
    *,
    db: Database,
    actor: Principal,
    recipient_ref: str | None,
    due_before: date | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Assessment], int]:
    """Assessments in the caller's region; `due_before` lists reassessments falling due."""
    query = select(Assessment).join(Recipient, col(Recipient.ref) == col(Assessment.recipient_ref))
    if actor.region:
        query = query.where(col(Recipient.region_code).startswith(actor.region))
    if recipient_ref:
        query = query.where(Assessment.recipient_ref == recipient_ref)
    if due_before:
        query = query.where(col(Assessment.reassessment_due_on) <= due_before)
    async with db.session() as session:
        return await fetch_page(
            session,
            query,
            order_by=[col(Assessment.assessed_on).desc(), col(Assessment.id)],
            limit=limit,
            offset=offset,
        )
