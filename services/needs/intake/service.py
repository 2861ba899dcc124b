"""Use cases of single-window intake (一门受理), no HTTP here.

Time limits (限时办理) are counted in PRC working days from the pack's
`time_limits.intake_working_days` (`rules.intake_due`); a year the calendar does not know is
refused, never guessed. Every missing document is listed at once (一次性告知,
`rules.missing_documents`), and the official who first received the application stays
recorded as answerable for it (首问负责) whoever it is routed to.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy import and_, not_, update
from sqlmodel import col, select

from libs.common.auth import Principal
from libs.common.clock import today_in_china as china_today
from libs.common.crypto import FieldCipher
from libs.common.db import Database
from libs.common.errors import Conflict, FieldError, InvalidInput, NotFound, invalid
from libs.common.events import UnitOfWork
from libs.common.ids import new_id
from libs.common.pagination import fetch_page
from libs.common.policy import calendar_for, pack_for_region
from libs.common.workdays import UnknownCalendarYear, WorkdayCalendar
from services.needs import rules
from services.needs.intake import events
from services.needs.intake.models import Intake
from services.needs.intake.schemas import IntakeCreate, IntakePublic
from services.needs.models import Recipient

#: Statuses in which the time limit still runs: the application awaits a decision.
OPEN_STATUSES: tuple[str, ...] = ("received", "routed")


# -------------------------------------------------------------------------- personal data


def applicant_name_context(intake_id: str) -> str:
    # Binds the ciphertext to this intake and field: copied to another row it will not open.
    return f"intake.applicant_name:{intake_id}"


def seal_applicant_name(cipher: FieldCipher, intake_id: str, name: str | None) -> str | None:
    return cipher.encrypt_optional(name, context=applicant_name_context(intake_id))


def open_applicant_name(cipher: FieldCipher, intake_id: str, token: str | None) -> str | None:
    return cipher.decrypt_optional(token, context=applicant_name_context(intake_id))


# -------------------------------------------------------------------------- one-time notice


def one_time_notice(*, missing: Sequence[str], due_on: date) -> str:
    """The one-time notice (一次性告知) handed back to the applicant.

    Every missing document is listed in one notice, numbered in the order required, so the
    applicant need come back only once (最多跑一次). The due date is the window's own time
    limit (办结期限), not a deadline for the applicant.
    """
    if missing:
        items = "；".join(f"{i}. {doc}" for i, doc in enumerate(missing, start=1))
        head = f"一次性告知：尚缺以下材料共{len(missing)}项，请一次补齐：{items}。"
    else:
        head = "材料齐全，无需补正。"
    return f"{head}办结期限：{due_on.isoformat()}。"


def is_overdue(intake: Intake, *, today: date) -> bool:
    """Still open after its due date: the due date itself is still in time."""
    return intake.status in OPEN_STATUSES and today > intake.due_on


def to_public(intake: Intake, *, cipher: FieldCipher, today: date) -> IntakePublic:
    name = open_applicant_name(cipher, intake.id, intake.applicant_name_enc)
    return IntakePublic(
        id=intake.id,
        region_code=intake.region_code,
        channel=intake.channel,
        received_by=intake.received_by,
        received_on=intake.received_on,
        applicant_recipient_ref=intake.applicant_recipient_ref,
        applicant_name_masked=rules.mask_name(name) if name else None,
        requested=list(intake.requested),
        required_documents=list(intake.required_documents),
        provided_documents=list(intake.provided_documents),
        missing_documents=list(intake.missing_documents),
        notice=one_time_notice(missing=intake.missing_documents, due_on=intake.due_on),
        routed_to=intake.routed_to,
        status=intake.status,
        rejection_reason=intake.rejection_reason,
        due_on=intake.due_on,
        overdue=is_overdue(intake, today=today),
        overdue_notified_at=intake.overdue_notified_at,
        version=intake.version,
        created_at=intake.created_at,
        updated_at=intake.updated_at,
    )


# -------------------------------------------------------------------------- use cases


async def receive_intake(
    *,
    uow: UnitOfWork,
    data: IntakeCreate,
    actor: Principal,
    cipher: FieldCipher,
    today: date | None = None,
    calendar: WorkdayCalendar | None = None,
) -> Intake:
    """Record an application (一门受理) with its due date and one-time notice.

    The caller becomes the first-contact official (首问负责). 404 outside the caller's
    region; 422 for a region without a pack, a day of receipt after today, or a due date the
    working-day calendar cannot compute (`UnknownCalendarYear`).
    """
    actor.require_region(data.region_code)
    try:
        pack = pack_for_region(data.region_code)
    except LookupError as exc:
        raise invalid("body.region_code", str(exc)) from exc
    today = today or china_today()
    received_on = data.received_on or today
    if received_on > today:
        raise invalid("body.received_on", f"{received_on} is after today ({today}) in China")
    try:
        due_on = rules.intake_due(
            pack, received_on=received_on, calendar=calendar or calendar_for(pack)
        )
    except UnknownCalendarYear as exc:
        # Never a weekday guess: a wrong due date makes an intake overdue (or not) for a
        # reason nobody could explain.
        raise InvalidInput(
            detail=f"The due date cannot be computed in working days: {exc}.",
            errors=[FieldError("body.received_on", str(exc))],
            extra={"calendar_year": exc.year},
        ) from exc
    if data.applicant_recipient_ref is not None:
        recipient = await uow.session.get(Recipient, data.applicant_recipient_ref)
        if recipient is None or not actor.covers(recipient.region_code):
            raise invalid("body.applicant_recipient_ref", "no such recipient in your region")
    intake_id = new_id()
    now = datetime.now(UTC)
    provided = _unique(data.provided_documents)
    intake = Intake(
        id=intake_id,
        region_code=data.region_code,
        channel=data.channel,
        received_by=actor.subject,
        received_on=received_on,
        applicant_recipient_ref=data.applicant_recipient_ref,
        applicant_name_enc=seal_applicant_name(cipher, intake_id, data.applicant_name),
        requested=list(data.requested),
        required_documents=list(data.required_documents),
        provided_documents=provided,
        missing_documents=rules.missing_documents(data.required_documents, provided),
        status="received",
        due_on=due_on,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(intake)
    uow.emit(events.intake_received(intake))
    await uow.commit()
    return intake


async def get_intake(*, db: Database, intake_id: str, actor: Principal) -> Intake:
    async with db.session() as session:
        intake = await session.get(Intake, intake_id)
    # Out of scope reads as absent, so existence does not leak across regions.
    if intake is None or not actor.covers(intake.region_code):
        raise NotFound(detail=f"No intake {intake_id}.")
    return intake


def _scope(actor_region: str, region: str | None) -> str | None:
    """The region to list: the overlap of the asked region and the caller's; None if none."""
    if not region or region.startswith(actor_region):
        return region or actor_region
    if actor_region.startswith(region):
        return actor_region  # asked wider than allowed: the caller's own area
    return None


async def list_intakes(
    *,
    db: Database,
    actor: Principal,
    status: str | None,
    region: str | None,
    overdue: bool | None,
    today: date,
    limit: int,
    offset: int,
) -> tuple[Sequence[Intake], int]:
    """Intakes in the caller's region, oldest due first; `overdue` = open and past due."""
    scope = _scope(actor.region, region)
    if scope is None:
        return [], 0  # outside one's region: nothing, rather than an error that leaks
    query = select(Intake)
    if scope:
        query = query.where(col(Intake.region_code).startswith(scope))
    if status:
        query = query.where(col(Intake.status) == status)
    late = and_(col(Intake.status).in_(OPEN_STATUSES), col(Intake.due_on) < today)
    if overdue is True:
        query = query.where(late)
    elif overdue is False:
        query = query.where(not_(late))
    async with db.session() as session:
        return await fetch_page(
            session,
            query,
            order_by=[col(Intake.due_on), col(Intake.created_at), col(Intake.id)],
            limit=limit,
            offset=offset,
        )


async def _open_intake_for_update(uow: UnitOfWork, intake_id: str, actor: Principal) -> Intake:
    # FOR UPDATE (PostgreSQL) so two officials editing the JSON lists at once cannot lose
    # one another's change; SQLite serialises writers already and ignores the clause.
    intake = (
        await uow.session.execute(
            select(Intake).where(col(Intake.id) == intake_id).with_for_update()
        )
    ).scalar_one_or_none()
    if intake is None or not actor.covers(intake.region_code):
        raise NotFound(detail=f"No intake {intake_id}.")
    if intake.status not in OPEN_STATUSES:
        raise Conflict(
            detail=f"Intake {intake_id} is {intake.status}; it can no longer change.",
            extra={"intake_status": intake.status},  # "status" is the HTTP status
        )
    return intake


def _touch(intake: Intake) -> None:
    intake.version += 1
    intake.updated_at = datetime.now(UTC)


def _unique(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(values))


async def add_documents(
    *, uow: UnitOfWork, intake_id: str, documents: Sequence[str], actor: Principal
) -> Intake:
    """Record documents the applicant brought (补正材料) and recompute what is missing."""
    intake = await _open_intake_for_update(uow, intake_id, actor)
    provided = _unique([*intake.provided_documents, *documents])
    if provided != intake.provided_documents:
        # New lists, not in-place appends: the ORM detects a JSON change by assignment.
        intake.provided_documents = provided
        intake.missing_documents = rules.missing_documents(intake.required_documents, provided)
        _touch(intake)
    await uow.commit()  # also when unchanged: a rollback would expire what we return
    return intake


async def route_intake(
    *, uow: UnitOfWork, intake_id: str, routed_to: str, actor: Principal
) -> Intake:
    """Send the application to the handling department (转办); `received_by` stays."""
    intake = await _open_intake_for_update(uow, intake_id, actor)
    if intake.routed_to != routed_to or intake.status != "routed":
        intake.routed_to = routed_to
        intake.status = "routed"
        _touch(intake)
    await uow.commit()
    return intake


async def complete_intake(*, uow: UnitOfWork, intake_id: str, actor: Principal) -> Intake:
    """Close the intake as handled (办结). 409 while documents are still missing."""
    intake = await _open_intake_for_update(uow, intake_id, actor)
    if intake.missing_documents:
        raise Conflict(
            detail=(
                f"Intake {intake_id} still misses {len(intake.missing_documents)} "
                "document(s) of its one-time notice (一次性告知)."
            ),
            extra={"missing_documents": list(intake.missing_documents)},
        )
    intake.status = "completed"
    _touch(intake)
    await uow.commit()
    return intake


async def reject_intake(
    *, uow: UnitOfWork, intake_id: str, reason: str, actor: Principal
) -> Intake:
    """Refuse to accept the application (不予受理), with the reason given to the applicant."""
    intake = await _open_intake_for_update(uow, intake_id, actor)
    intake.status = "rejected"
    intake.rejection_reason = reason
    _touch(intake)
    await uow.commit()
    return intake


async def mark_overdue(*, uow: UnitOfWork, intake_id: str, today: date) -> bool:
    """Emit `sa.needs.intake.overdue` for one intake, once; True if this call did it.

    The conditional UPDATE (… WHERE overdue_notified_at IS NULL AND still open AND past due)
    decides who notifies: of several replicas scanning at once exactly one updates the row,
    and the event is written in the same transaction, so the notice exists iff the mark does.
    On PostgreSQL a concurrent completion holds the row lock; the UPDATE then re-reads the
    row and finds it no longer open.
    """
    now = datetime.now(UTC)
    stmt = (
        update(Intake)
        .where(
            col(Intake.id) == intake_id,
            col(Intake.overdue_notified_at).is_(None),
            col(Intake.status).in_(OPEN_STATUSES),
            col(Intake.due_on) < today,
        )
        .values(overdue_notified_at=now, updated_at=now, version=col(Intake.version) + 1)
        .returning(
            col(Intake.region_code),
            col(Intake.channel),
            col(Intake.due_on),
            col(Intake.missing_documents),
        )
        .execution_options(synchronize_session=False)
    )
    row = (await uow.session.execute(stmt)).one_or_none()
    if row is None:
        return False  # another scan notified it, or it was completed or rejected meanwhile
    uow.emit(
        events.intake_overdue(
            intake_id=intake_id,
            region_code=row.region_code,
            channel=row.channel,
            due_on=row.due_on,
            missing_documents=len(row.missing_documents),
            today=today,
        )
    )
    await uow.commit()
    return True


async def overdue_candidates(*, db: Database, today: date) -> list[str]:
    """Ids of open intakes past due that have not been notified yet, oldest due first."""
    async with db.session() as session:
        rows = (
            await session.execute(
                select(Intake.id)
                .where(
                    col(Intake.status).in_(OPEN_STATUSES),
                    col(Intake.due_on) < today,
                    col(Intake.overdue_notified_at).is_(None),
                )
                .order_by(col(Intake.due_on), col(Intake.id))
            )
        ).scalars()
        return list(rows)
