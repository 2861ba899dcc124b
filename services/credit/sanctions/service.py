"""Use cases of violations and sanctions (失信惩戒), no HTTP here.

Due process first: a violation is recorded with evidence, the organisation is notified and
may respond (陈述申辩) until `response_due`; only then (or after its response) may an
operator decide. Each decision is a `Sanction` with its reason, legal basis, period and
deciding authority, and emits its event. The organisation's status is the heaviest status a
sanction in force imposes (blacklisted > exited > suspended), else its admission standing;
every change of it increments `OrganisationRecord.decision_version`, which every status event
carries so consumers can ignore one that arrives late.

A way back from every decision: an appeal (申诉) decided by an operator other than the one
who decided the sanction (回避), credit repair (信用修复) after the minimum publication
period, and the end of each period by itself (`jobs`). Nothing is deleted: a lifted listing
keeps its row with the state, day and reason it was lifted, and the credit history shows
every step.

Concurrency: every change of an organisation's sanctions first locks its `OrganisationRecord`
row (SELECT … FOR UPDATE on PostgreSQL; SQLite has one writer at a time), then re-reads what
it changes, so two operators (or two replicas of a job) cannot both lift or impose.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from libs.common.auth import Principal, Role
from libs.common.clock import china_day
from libs.common.db import Database
from libs.common.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, invalid
from libs.common.events import PermanentError, UnitOfWork
from libs.common.ids import new_id
from libs.common.pagination import fetch_page
from libs.common.policy import PolicyPack, calendar_for, pack_for_region
from libs.common.workdays import UnknownCalendarYear
from services.credit.models import (
    AdmissionOverride,
    AdmissionReview,
    Appeal,
    BlacklistEntry,
    ContractRecord,
    OrganisationRecord,
    RepairApplication,
    Sanction,
    Violation,
)
from services.credit.sanctions import events, rules
from services.credit.sanctions.schemas import (
    AppealCreate,
    AppealDecision,
    AppealPublic,
    BlacklistCreate,
    BlacklistPublic,
    CreditHistory,
    DecisionCreate,
    DecisionResult,
    DishonestyEntry,
    HistoryItem,
    RepairCreate,
    RepairDecision,
    RepairPublic,
    SanctionPublic,
    ViolationCreate,
    ViolationPublic,
    ViolationResponse,
)

OPEN_VIOLATION_STATES: tuple[str, ...] = ("notified", "responded")
SYSTEM_REFUSALS = "system:matching-contract-refused"


# ------------------------------------------------------------------------------ helpers


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; SQLite hands back naive ones, which are stored as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _pack(record: OrganisationRecord) -> PolicyPack:
    try:
        return pack_for_region(record.region_code)
    except LookupError as exc:  # credit admitted it under a pack, so this is bad data
        raise PermanentError(str(exc)) from exc


def _visible(actor: Principal, record: OrganisationRecord) -> bool:
    """Officials of the organisation's region, and the organisation itself."""
    if actor.role == Role.organisation:
        return actor.org_id == record.organisation_id
    return actor.role in (Role.operator, Role.purchaser) and actor.covers(record.region_code)


def _not_found(what: str, ident: str) -> NotFound:
    return NotFound(detail=f"No {what} {ident}.")


async def _lock_record(uow: UnitOfWork, organisation_id: str) -> OrganisationRecord | None:
    """The organisation's credit record, locked for the rest of the transaction."""
    result = await uow.session.execute(
        select(OrganisationRecord)
        .where(OrganisationRecord.organisation_id == organisation_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def _reload(uow: UnitOfWork, model: Any, ident: str) -> Any:
    """Re-read a row after the organisation's lock is held (its state may have moved)."""
    return await uow.session.get(model, ident, populate_existing=True)


async def _imposed(uow: UnitOfWork, organisation_id: str, today: date) -> list[str]:
    """Statuses imposed by this organisation's sanctions in force today.

    A listing in force counts as a ban even without a sanction row (bans recorded before
    sanctions had rows), so no status is ever restored under a ban.
    """
    rows = await uow.session.execute(
        select(Sanction).where(
            Sanction.organisation_id == organisation_id,
            Sanction.state == "in_force",
            col(Sanction.kind).in_(tuple(rules.SANCTION_STATUS)),
        )
    )
    imposed = [
        rules.SANCTION_STATUS[s.kind]
        for s in rows.scalars().all()
        if rules.in_force_on(s.starts_on, s.ends_on, today)
    ]
    listed = await uow.session.execute(
        select(BlacklistEntry.id).where(
            BlacklistEntry.organisation_id == organisation_id,
            BlacklistEntry.state == "listed",
            col(BlacklistEntry.starts_on) <= today,
            col(BlacklistEntry.ends_on) > today,
        )
    )
    if listed.first() is not None:
        imposed.append("blacklisted")
    return imposed


async def _admission_standing(uow: UnitOfWork, organisation_id: str) -> str:
    """The organisation's status without sanctions: its latest admission outcome, or a
    confirmed override of it (四眼原则) if that came later."""
    review = (
        await uow.session.execute(
            select(AdmissionReview)
            .where(AdmissionReview.organisation_id == organisation_id)
            .order_by(col(AdmissionReview.decided_at).desc(), col(AdmissionReview.id).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    override = (
        await uow.session.execute(
            select(AdmissionOverride)
            .where(
                AdmissionOverride.organisation_id == organisation_id,
                AdmissionOverride.state == "confirmed",
            )
            .order_by(col(AdmissionOverride.confirmed_at).desc(), col(AdmissionOverride.id).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if (
        override is not None
        and override.confirmed_at is not None
        and (review is None or utc(override.confirmed_at) >= utc(review.decided_at))
    ):
        return override.outcome
    return review.outcome if review is not None else "pending"


async def sanction_standing(uow: UnitOfWork, organisation_id: str, today: date) -> str | None:
    """The status sanctions in force impose on an organisation today, or None.

    For other use cases of this service (an admission override must not lift a ban)."""
    imposed = await _imposed(uow, organisation_id, today)
    return rules.effective_status("", imposed) or None


async def _restore(
    uow: UnitOfWork,
    record: OrganisationRecord,
    *,
    today: date,
    now: datetime,
    cause: str,
    cause_id: str,
    reason: str,
) -> None:
    """After a sanction ends: recompute the status; emit it (and bump the version) if it
    changed. Call with the record locked and the ended sanction already marked."""
    await uow.session.flush()
    status = rules.effective_status(
        await _admission_standing(uow, record.organisation_id),
        await _imposed(uow, record.organisation_id, today),
    )
    if status == record.status:
        return
    record.status = status
    record.decision_version += 1
    record.updated_at = now
    uow.emit(events.status_restored(record, cause=cause, cause_id=cause_id, reason=reason, at=now))


def _window_conflict(pack: PolicyPack, field: str, detail: str, **extra: Any) -> Conflict:
    return Conflict(
        detail=detail,
        extra={
            "rules": [rules.setting_citation(pack, field), pack.sanctions.source.cite()],
            **extra,
        },
    )


# ------------------------------------------------------------------------------ views


def violation_to_public(v: Violation, *, today: date, pack: PolicyPack | None) -> ViolationPublic:
    """A violation with whether the response and decision windows are open, and the clauses
    those windows rest on."""
    out = ViolationPublic.model_validate(v)
    if pack is not None:
        out.rules = [
            rules.setting_citation(pack, "response_window_working_days"),
            pack.sanctions.source.cite(),
        ]
    out.response_open = v.state == "notified" and rules.response_open(
        today=today, due=v.response_due
    )
    out.decision_open = v.state in OPEN_VIOLATION_STATES and rules.decision_open(
        today=today, due=v.response_due, responded=v.state == "responded"
    )
    return out


def sanction_to_public(s: Sanction, pack: PolicyPack | None) -> SanctionPublic:
    out = SanctionPublic.model_validate(s)
    if pack is not None:
        out.appeal_due = rules.appeal_due(pack, calendar_for(pack), china_day(s.decided_at))
    return out


def entry_to_public(entry: BlacklistEntry, pack: PolicyPack | None) -> BlacklistPublic:
    out = BlacklistPublic.model_validate(entry)
    out.last_day = rules.last_day(entry.ends_on)
    if pack is not None and entry.severity in rules.SEVERITIES:
        out.repair_earliest = rules.repair_earliest(
            pack, severity=entry.severity, starts_on=entry.starts_on
        )
    return out


def dishonesty_entry(entry: BlacklistEntry) -> DishonestyEntry:
    """The public line of a listing: field by field, organisation facts only."""
    kind = entry.violation_kind
    return DishonestyEntry(
        entry_id=entry.id,
        name=entry.name,
        uscc=entry.uscc,
        violation_kind=kind,
        violation=rules.VIOLATION_KINDS.get(kind, kind) if kind else None,
        legal_basis=list(entry.legal_basis),
        sanction=rules.SANCTION_KINDS["blacklist"],
        starts_on=entry.starts_on,
        ends_on=entry.ends_on,
        last_day=rules.last_day(entry.ends_on),
        deciding_authority=entry.deciding_authority,
    )


def pack_of(region_code: str) -> PolicyPack | None:
    try:
        return pack_for_region(region_code)
    except (LookupError, ValueError):
        return None


# ------------------------------------------------------------------------------ violations


def _response_due(pack: PolicyPack, today: date, field: str) -> date:
    try:
        return rules.response_due(pack, calendar_for(pack), today)
    except UnknownCalendarYear as exc:
        # Never a weekday guess: a wrong window decides whether a defence is heard.
        raise InvalidInput(
            detail=f"The response window cannot be counted in working days: {exc}.",
            errors=[FieldError(field, str(exc))],
            extra={"calendar_year": exc.year},
        ) from exc


async def record_violation(
    *, uow: UnitOfWork, data: ViolationCreate, actor: Principal, now: datetime
) -> ViolationPublic:
    """Record a violation with evidence and notify the organisation (告知)."""
    record = await uow.session.get(OrganisationRecord, data.organisation_id)
    if record is None or not actor.covers(record.region_code):
        raise _not_found("organisation known to credit", data.organisation_id)
    if data.contract_id is not None:
        contract = await uow.session.get(ContractRecord, data.contract_id)
        if contract is not None and contract.organisation_id != record.organisation_id:
            raise invalid("body.contract_id", "the contract belongs to another organisation")
    pack = _pack(record)
    violation = Violation(
        id=new_id(),
        organisation_id=record.organisation_id,
        contract_id=data.contract_id,
        kind=data.kind,
        severity=data.severity,
        description=data.description,
        evidence=[e.model_dump() for e in data.evidence],
        state="notified",
        recorded_by=actor.subject,
        recorded_at=now,
        notified_at=now,
        response_due=_response_due(pack, china_day(now), "body"),
    )
    uow.session.add(violation)
    uow.emit(events.violation_recorded(violation))
    await uow.commit()
    return violation_to_public(violation, today=china_day(now), pack=pack)


async def record_refusal(
    uow: UnitOfWork,
    *,
    event_id: str,
    organisation_id: str,
    contract_id: str | None,
    reason: str | None,
    now: datetime | None = None,
) -> Violation | None:
    """A refusal to sign reported by matching → a `refusing_to_sign` violation (no commit:
    the consumer commits it with its inbox record).

    The notice runs from when credit records it (`now`, the system clock in the consumer).
    A response window the calendar cannot count yet goes to the dead-letter subject with
    its reason, to be replayed once the year's holidays are known, never guessed.
    """
    existing = (
        await uow.session.execute(select(Violation).where(Violation.source_event_id == event_id))
    ).scalar_one_or_none()
    if existing is not None:
        return None  # recorded already (the inbox also guards this)
    record = await uow.session.get(OrganisationRecord, organisation_id)
    if record is None:
        raise PermanentError(f"contract.refused for organisation {organisation_id} unknown here")
    now = now or datetime.now(UTC)
    pack = _pack(record)
    try:
        due = rules.response_due(pack, calendar_for(pack), china_day(now))
    except UnknownCalendarYear as exc:
        raise PermanentError(f"response window not countable: {exc}") from exc
    note = (reason or "no reason given")[:2000]
    violation = Violation(
        id=new_id(),
        organisation_id=organisation_id,
        contract_id=contract_id,
        kind="refusing_to_sign",
        severity=rules.REFUSAL_SEVERITY,
        description=f"拒绝签订合同（matching 报告）：{note}"[:4000],
        evidence=[
            {"kind": "event", "reference": f"sa.matching.contract.refused/{event_id}", "note": note}
        ],
        state="notified",
        recorded_by=SYSTEM_REFUSALS,
        recorded_at=now,
        notified_at=now,
        response_due=due,
        source_event_id=event_id,
    )
    uow.session.add(violation)
    uow.emit(events.violation_recorded(violation))
    return violation


async def respond(
    *,
    uow: UnitOfWork,
    violation_id: str,
    data: ViolationResponse,
    actor: Principal,
    now: datetime,
) -> ViolationPublic:
    """The organisation's statement and defence (陈述申辩), until `response_due`."""
    violation = await uow.session.get(Violation, violation_id)
    if violation is None or actor.org_id != violation.organisation_id:
        raise _not_found("violation", violation_id)
    record = await _lock_record(uow, violation.organisation_id)
    violation = await _reload(uow, Violation, violation_id)
    if record is None or violation is None:
        raise _not_found("violation", violation_id)
    if violation.state != "notified":
        raise Conflict(
            detail=f"The violation is {violation.state}; one response only, before the decision."
        )
    today = china_day(now)
    pack = _pack(record)
    if not rules.response_open(today=today, due=violation.response_due):
        raise _window_conflict(
            pack,
            "response_window_working_days",
            f"The response window (陈述申辩期限) closed on {violation.response_due}.",
            response_due=violation.response_due.isoformat(),
        )
    violation.response = data.response
    violation.responded_at = now
    violation.state = "responded"
    uow.emit(events.violation_responded(violation))
    await uow.commit()
    return violation_to_public(violation, today=today, pack=pack)


async def _active_listing(uow: UnitOfWork, uscc: str, today: date) -> BlacklistEntry | None:
    return (
        await uow.session.execute(
            select(BlacklistEntry)
            .where(
                BlacklistEntry.uscc == uscc,
                BlacklistEntry.state == "listed",
                col(BlacklistEntry.starts_on) <= today,
                col(BlacklistEntry.ends_on) > today,
            )
            .order_by(col(BlacklistEntry.ends_on).desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def _impose(
    uow: UnitOfWork,
    record: OrganisationRecord,
    *,
    kind: str,
    reason: str,
    severity: str,
    violation: Violation | None,
    violation_kind: str | None,
    months: int | None,
    deadline: date | None,
    authority: str | None,
    actor: Principal,
    now: datetime,
) -> tuple[Sanction, BlacklistEntry | None]:
    """Impose a sanction on a locked record: status, version, rows and events; no commit."""
    pack = _pack(record)
    today = china_day(now)
    imposed = await _imposed(uow, record.organisation_id, today)
    heavier = rules.lighter_than(kind, imposed)
    if heavier is not None:
        raise Conflict(
            detail=f"The organisation is {heavier} under a sanction in force; a "
            f"{kind} would not take effect.",
            extra={"organisation_status": heavier},
        )
    if kind == "blacklist":
        listing = await _active_listing(uow, record.uscc, today)
        if listing is not None or "blacklisted" in imposed:
            raise Conflict(detail="The organisation is already under a ban in force.")
    ends_on: date | None = None
    if kind == "suspension":
        assert months is not None  # the request model requires it
        ends_on = rules.suspension_end(today, months)
    elif kind == "blacklist":
        ends_on = rules.ban_end(pack, severity=severity, starts_on=today)  # type: ignore[arg-type]
    sanction = Sanction(
        id=new_id(),
        violation_id=violation.id if violation is not None else None,
        organisation_id=record.organisation_id,
        kind=kind,
        reason=reason,
        legal_basis=rules.legal_basis_for(pack, kind),
        starts_on=today,
        ends_on=ends_on,
        deadline=deadline,
        state="in_force",
        decided_by=actor.subject,
        deciding_authority=authority or rules.default_authority(pack, actor.region),
        decided_at=now,
        decision_version=record.decision_version,
    )
    status = rules.SANCTION_STATUS.get(kind)
    if status is not None:
        record.status = rules.effective_status(record.status, [*imposed, status])
        record.decision_version += 1
        record.updated_at = now
        sanction.decision_version = record.decision_version
    uow.session.add(sanction)
    entry: BlacklistEntry | None = None
    if kind == "blacklist":
        assert ends_on is not None
        entry = BlacklistEntry(
            id=new_id(),
            organisation_id=record.organisation_id,
            uscc=record.uscc,
            name=record.name,
            severity=severity,
            reason=reason,
            legal_basis=sanction.legal_basis,
            starts_on=today,
            ends_on=ends_on,
            decided_by=actor.subject,
            created_at=now,
            sanction_id=sanction.id,
            violation_kind=violation_kind,
            deciding_authority=sanction.deciding_authority,
            state="listed",
            updated_at=now,
        )
        uow.session.add(entry)
    uow.emit(events.organisation_sanctioned(record, sanction, entry))
    if entry is not None and pack.sanctions.joint_punishment:
        uow.emit(events.joint_punishment_notified(entry))
    return sanction, entry


async def _rescore(
    uow: UnitOfWork, organisation_id: str, cause: str, cause_id: str, reason: str, now: datetime
) -> None:
    """The score follows every decision that changes what it is made of (same transaction)."""
    # Imported here: the performance package imports this one's events and rules.
    from services.credit.performance.service import recompute_score

    await uow.session.flush()
    await recompute_score(uow, organisation_id, cause, cause_id, reason[:2000], now=now)


async def decide(
    *,
    uow: UnitOfWork,
    violation_id: str,
    data: DecisionCreate,
    actor: Principal,
    now: datetime,
) -> DecisionResult:
    """Decide on a violation (处理决定) once due process allows it.

    409 before `response_due` unless the organisation has responded (陈述申辩), and for a
    violation already decided.
    """
    found = await uow.session.get(Violation, violation_id)
    if found is None:
        raise _not_found("violation", violation_id)
    record = await _lock_record(uow, found.organisation_id)
    violation: Violation | None = await _reload(uow, Violation, violation_id)
    if record is None or violation is None or not actor.covers(record.region_code):
        raise _not_found("violation", violation_id)
    if violation.state not in OPEN_VIOLATION_STATES:
        raise Conflict(detail=f"The violation is already {violation.state}.")
    pack = _pack(record)
    today = china_day(now)
    responded = violation.state == "responded"
    if not rules.decision_open(today=today, due=violation.response_due, responded=responded):
        raise _window_conflict(
            pack,
            "response_window_working_days",
            f"The organisation may respond until {violation.response_due} (陈述申辩); a "
            "decision is possible after that day, or once it has responded.",
            response_due=violation.response_due.isoformat(),
        )
    if data.sanction == "dismiss":
        violation.state = "dismissed"
        uow.emit(events.violation_dismissed(violation, reason=data.reason, at=now))
        await uow.commit()
        return DecisionResult(
            violation=violation_to_public(violation, today=today, pack=pack),
            sanction=None,
            blacklist_entry=None,
        )
    if data.deadline is not None and data.deadline <= today:
        raise invalid("body.deadline", f"the rectification deadline must be after {today}")
    sanction, entry = await _impose(
        uow,
        record,
        kind=data.sanction,
        reason=data.reason,
        severity=violation.severity,
        violation=violation,
        violation_kind=violation.kind,
        months=data.months,
        deadline=data.deadline,
        authority=data.deciding_authority,
        actor=actor,
        now=now,
    )
    violation.state = "decided"
    await _rescore(
        uow,
        record.organisation_id,
        "violation",
        violation.id,
        f"{data.sanction}: {data.reason}",
        now,
    )
    await uow.commit()
    return DecisionResult(
        violation=violation_to_public(violation, today=today, pack=pack),
        sanction=sanction_to_public(sanction, pack),
        blacklist_entry=entry_to_public(entry, pack) if entry is not None else None,
    )


async def blacklist_directly(
    *, uow: UnitOfWork, data: BlacklistCreate, actor: Principal, now: datetime
) -> BlacklistPublic:
    """Record a ban decided by an authority outside this platform's violation procedure
    (e.g. a finance department under 政府采购法 第七十七条), which heard the organisation."""
    record = await _lock_record(uow, data.organisation_id)
    if record is None or not actor.covers(record.region_code):
        raise _not_found("organisation known to credit", data.organisation_id)
    _sanction, entry = await _impose(
        uow,
        record,
        kind="blacklist",
        reason=data.reason,
        severity=data.severity,
        violation=None,
        violation_kind=data.violation_kind,
        months=None,
        deadline=None,
        authority=data.deciding_authority,
        actor=actor,
        now=now,
    )
    assert entry is not None
    await uow.commit()
    return entry_to_public(entry, _pack(record))


# ------------------------------------------------------------------------------ reads


def _scoped(query: SelectOfScalar[Any], model: Any, actor: Principal) -> SelectOfScalar[Any]:
    """Only rows of organisations the caller may see (officials: its region; an
    organisation: itself)."""
    if actor.role == Role.organisation:
        return query.where(model.organisation_id == (actor.org_id or ""))
    return query.join(
        OrganisationRecord, OrganisationRecord.organisation_id == model.organisation_id
    ).where(col(OrganisationRecord.region_code).startswith(actor.region))


async def list_violations(
    *,
    db: Database,
    actor: Principal,
    organisation_id: str | None,
    contract_id: str | None,
    state: str | None,
    kind: str | None,
    severity: str | None,
    sort: str,
    today: date,
    limit: int,
    offset: int,
) -> tuple[list[ViolationPublic], int]:
    """Violations the caller may see, filtered, in a stable order (id breaks ties)."""
    query = _scoped(select(Violation), Violation, actor)
    if organisation_id:
        query = query.where(Violation.organisation_id == organisation_id)
    if contract_id:
        query = query.where(Violation.contract_id == contract_id)
    if state:
        query = query.where(Violation.state == state)
    if kind:
        query = query.where(Violation.kind == kind)
    if severity:
        query = query.where(Violation.severity == severity)
    key = {
        "recorded_at": col(Violation.recorded_at).asc(),
        "-recorded_at": col(Violation.recorded_at).desc(),
        "response_due": col(Violation.response_due).asc(),
        "-response_due": col(Violation.response_due).desc(),
    }[sort]
    async with db.session() as session:
        rows, total = await fetch_page(
            session, query, order_by=[key, col(Violation.id)], limit=limit, offset=offset
        )
        regions = await _regions(session, [v.organisation_id for v in rows])
    return [
        violation_to_public(v, today=today, pack=pack_of(regions.get(v.organisation_id, "")))
        for v in rows
    ], total


async def _regions(session: Any, organisation_ids: Sequence[str]) -> dict[str, str]:
    """Region code of each organisation (to find its pack) in one query."""
    if not organisation_ids:
        return {}
    result = await session.execute(
        select(OrganisationRecord.organisation_id, OrganisationRecord.region_code).where(
            col(OrganisationRecord.organisation_id).in_(sorted(set(organisation_ids)))
        )
    )
    return {str(org): str(region) for org, region in result.all()}


async def _visible_record(
    session: Any, actor: Principal, organisation_id: str
) -> OrganisationRecord | None:
    record: OrganisationRecord | None = await session.get(OrganisationRecord, organisation_id)
    return record if record is not None and _visible(actor, record) else None


async def get_violation(
    *, db: Database, violation_id: str, actor: Principal, today: date
) -> ViolationPublic:
    async with db.session() as session:
        violation = await session.get(Violation, violation_id)
        record = (
            await _visible_record(session, actor, violation.organisation_id) if violation else None
        )
        if violation is None or record is None:
            raise _not_found("violation", violation_id)
        return violation_to_public(violation, today=today, pack=pack_of(record.region_code))


async def get_sanction(
    *, db: Database, sanction_id: str, actor: Principal
) -> tuple[Sanction, PolicyPack | None]:
    async with db.session() as session:
        sanction = await session.get(Sanction, sanction_id)
        record = (
            await _visible_record(session, actor, sanction.organisation_id) if sanction else None
        )
        if sanction is None or record is None:
            raise _not_found("sanction", sanction_id)
        return sanction, pack_of(record.region_code)


async def list_blacklist(
    *,
    db: Database,
    actor: Principal,
    state: str | None,
    in_force_on: date | None,
    organisation_id: str | None,
    limit: int,
    offset: int,
) -> tuple[list[BlacklistPublic], int]:
    """Blacklist entries for officials (every state, reason and decider included)."""
    query = _scoped(select(BlacklistEntry), BlacklistEntry, actor)
    if state:
        query = query.where(BlacklistEntry.state == state)
    if organisation_id:
        query = query.where(BlacklistEntry.organisation_id == organisation_id)
    if in_force_on is not None:
        query = query.where(
            BlacklistEntry.state == "listed",
            col(BlacklistEntry.starts_on) <= in_force_on,
            col(BlacklistEntry.ends_on) > in_force_on,
        )
    async with db.session() as session:
        rows, total = await fetch_page(
            session,
            query,
            order_by=[col(BlacklistEntry.created_at).desc(), col(BlacklistEntry.id)],
            limit=limit,
            offset=offset,
        )
        regions = await _regions(session, [e.organisation_id for e in rows])
    return [entry_to_public(e, pack_of(regions.get(e.organisation_id, ""))) for e in rows], total


async def public_list(
    *, db: Database, today: date, uscc: str | None, limit: int, offset: int
) -> tuple[Sequence[BlacklistEntry], int]:
    """The dishonesty list (失信名单) as published today.

    Filters by date itself, so a listing never shows a day past its period even if the
    expiry job has not run yet: listed, started, and `today < ends_on`.
    """
    query = select(BlacklistEntry).where(
        BlacklistEntry.state == "listed",
        col(BlacklistEntry.starts_on) <= today,
        col(BlacklistEntry.ends_on) > today,
    )
    if uscc:
        query = query.where(BlacklistEntry.uscc == uscc)
    async with db.session() as session:
        return await fetch_page(
            session,
            query,
            order_by=[col(BlacklistEntry.starts_on).desc(), col(BlacklistEntry.id)],
            limit=limit,
            offset=offset,
        )


# ------------------------------------------------------------------------------ appeals


async def file_appeal(
    *, uow: UnitOfWork, sanction_id: str, data: AppealCreate, actor: Principal, now: datetime
) -> Appeal:
    """The organisation appeals (申诉) within the pack's working-day window of the decision."""
    sanction = await uow.session.get(Sanction, sanction_id)
    if sanction is None or actor.org_id != sanction.organisation_id:
        raise _not_found("sanction", sanction_id)
    record = await _lock_record(uow, sanction.organisation_id)
    sanction = await _reload(uow, Sanction, sanction_id)
    if record is None or sanction is None:
        raise _not_found("sanction", sanction_id)
    if sanction.state == "overturned":
        raise Conflict(detail="The sanction has been overturned already.")
    earlier = (
        await uow.session.execute(select(Appeal).where(Appeal.sanction_id == sanction_id))
    ).scalar_one_or_none()
    if earlier is not None:
        raise Conflict(
            detail=f"This sanction has an appeal already ({earlier.state}); one appeal each.",
            extra={"appeal_id": earlier.id},
        )
    pack = _pack(record)
    calendar = calendar_for(pack)
    decided_on = china_day(sanction.decided_at)
    today = china_day(now)
    days = pack.sanctions.appeal_window_working_days
    try:
        in_time = rules.within_working_days(calendar, start=decided_on, days=days, today=today)
    except UnknownCalendarYear as exc:
        raise InvalidInput(
            detail=f"The appeal window cannot be counted in working days: {exc}.",
            errors=[FieldError("body", str(exc))],
            extra={"calendar_year": exc.year},
        ) from exc
    if not in_time:
        due = rules.appeal_due(pack, calendar, decided_on)
        raise _window_conflict(
            pack,
            "appeal_window_working_days",
            f"The appeal window (申诉期限, {days} working days after the decision of "
            f"{decided_on}) closed on {due}.",
            appeal_due=due.isoformat() if due else None,
        )
    appeal = Appeal(
        id=new_id(),
        sanction_id=sanction.id,
        organisation_id=sanction.organisation_id,
        grounds=data.grounds,
        filed_at=now,
        state="filed",
    )
    uow.session.add(appeal)
    uow.emit(events.appeal_event(appeal, "filed"))
    await uow.commit()
    return appeal


async def _lift_listing(
    uow: UnitOfWork, sanction: Sanction, *, state: str, on: date, reason: str, now: datetime
) -> None:
    """Take a sanction's listing off the public list (state kept, nothing deleted)."""
    entries = await uow.session.execute(
        select(BlacklistEntry).where(
            BlacklistEntry.sanction_id == sanction.id, BlacklistEntry.state == "listed"
        )
    )
    for entry in entries.scalars().all():
        entry.state = state
        entry.lifted_on = on
        entry.lifted_reason = reason[:2000]
        entry.updated_at = now
        uow.emit(events.blacklist_lifted(entry, state))


async def decide_appeal(
    *, uow: UnitOfWork, appeal_id: str, data: AppealDecision, actor: Principal, now: datetime
) -> Appeal:
    """Decide an appeal; never by the operator who decided the sanction (回避, 四眼原则).

    Upheld: the sanction is overturned, its listing leaves the public list, the status is
    restored. The sanction, the listing and the appeal all stay in the history.
    """
    found = await uow.session.get(Appeal, appeal_id)
    if found is None:
        raise _not_found("appeal", appeal_id)
    record = await _lock_record(uow, found.organisation_id)
    appeal: Appeal | None = await _reload(uow, Appeal, appeal_id)
    if record is None or appeal is None or not actor.covers(record.region_code):
        raise _not_found("appeal", appeal_id)
    sanction: Sanction | None = await _reload(uow, Sanction, appeal.sanction_id)
    assert sanction is not None  # foreign key
    if actor.subject == sanction.decided_by:
        raise Forbidden(
            detail="The operator who decided the sanction may not decide its appeal (回避); "
            "another operator must.",
            extra={"decided_by": sanction.decided_by},
        )
    if appeal.state != "filed":
        raise Conflict(detail=f"The appeal is already {appeal.state}.")
    today = china_day(now)
    appeal.state = data.outcome
    appeal.decided_by = actor.subject
    appeal.decided_at = now
    appeal.decision_reason = data.reason
    if data.outcome == "upheld" and sanction.state != "overturned":
        reason = f"申诉成立（appeal upheld）: {data.reason}"
        sanction.state = "overturned"
        await _lift_listing(uow, sanction, state="overturned", on=today, reason=reason, now=now)
        uow.emit(events.sanction_ended(sanction, "overturned", on=today, reason=data.reason))
        await _restore(
            uow, record, today=today, now=now, cause="appeal", cause_id=appeal.id, reason=reason
        )
        await _rescore(uow, record.organisation_id, "appeal", appeal.id, reason, now)
    uow.emit(events.appeal_event(appeal, "decided"))
    await uow.commit()
    return appeal


async def get_appeal(*, db: Database, appeal_id: str, actor: Principal) -> Appeal:
    async with db.session() as session:
        appeal = await session.get(Appeal, appeal_id)
        if appeal is None or not await _visible_record(session, actor, appeal.organisation_id):
            raise _not_found("appeal", appeal_id)
        return appeal


# ------------------------------------------------------------------------------ repair


async def apply_for_repair(
    *, uow: UnitOfWork, entry_id: str, data: RepairCreate, actor: Principal, now: datetime
) -> RepairApplication:
    """Apply for credit repair (信用修复): only after the minimum publication period."""
    entry = await uow.session.get(BlacklistEntry, entry_id)
    if entry is None or actor.org_id != entry.organisation_id:
        raise _not_found("blacklist entry", entry_id)
    record = await _lock_record(uow, entry.organisation_id)
    entry = await _reload(uow, BlacklistEntry, entry_id)
    if record is None or entry is None:
        raise _not_found("blacklist entry", entry_id)
    today = china_day(now)
    if entry.state != "listed" or not rules.in_force_on(entry.starts_on, entry.ends_on, today):
        raise Conflict(
            detail=f"The listing is not in force (state {entry.state}); nothing to repair."
        )
    pack = _pack(record)
    earliest = rules.repair_earliest(pack, severity=entry.severity, starts_on=entry.starts_on)
    if today < earliest:
        raise Conflict(
            detail=f"Credit repair may be applied for from {earliest}: a {entry.severity} "
            f"listing stays published at least "
            f"{pack.sanctions.min_publication_months[entry.severity]} months "
            f"from {entry.starts_on} (最短公示期).",
            extra={
                "rules": [
                    rules.setting_citation(pack, "min_publication_months", entry.severity),
                    pack.sanctions.source.cite(),
                ],
                "earliest": earliest.isoformat(),
            },
        )
    pending = (
        await uow.session.execute(
            select(RepairApplication).where(
                RepairApplication.blacklist_entry_id == entry_id,
                RepairApplication.state == "filed",
            )
        )
    ).scalar_one_or_none()
    if pending is not None:
        raise Conflict(
            detail="An application for this listing awaits its decision.",
            extra={"repair_id": pending.id},
        )
    repair = RepairApplication(
        id=new_id(),
        blacklist_entry_id=entry.id,
        organisation_id=entry.organisation_id,
        correction=data.correction,
        evidence=[e.model_dump() for e in data.evidence],
        pledge=data.pledge,
        filed_at=now,
        state="filed",
    )
    uow.session.add(repair)
    uow.emit(events.repair_event(repair, "filed"))
    await uow.commit()
    return repair


async def decide_repair(
    *, uow: UnitOfWork, repair_id: str, data: RepairDecision, actor: Principal, now: datetime
) -> RepairApplication:
    """Approve (lifts the listing early, status reinstated) or refuse a repair application."""
    found = await uow.session.get(RepairApplication, repair_id)
    if found is None:
        raise _not_found("repair application", repair_id)
    record = await _lock_record(uow, found.organisation_id)
    repair: RepairApplication | None = await _reload(uow, RepairApplication, repair_id)
    if record is None or repair is None or not actor.covers(record.region_code):
        raise _not_found("repair application", repair_id)
    if repair.state != "filed":
        raise Conflict(detail=f"The application is already {repair.state}.")
    entry: BlacklistEntry | None = await _reload(uow, BlacklistEntry, repair.blacklist_entry_id)
    assert entry is not None  # foreign key
    today = china_day(now)
    if data.outcome == "approved":
        if entry.state != "listed" or not rules.in_force_on(entry.starts_on, entry.ends_on, today):
            raise Conflict(detail=f"The listing is no longer in force (state {entry.state}).")
        reason = f"信用修复（credit repair approved）: {data.reason}"
        entry.state = "repaired"
        entry.lifted_on = today
        entry.lifted_reason = reason[:2000]
        entry.updated_at = now
        uow.emit(events.blacklist_lifted(entry, "repaired"))
        sanction = await _reload(uow, Sanction, entry.sanction_id) if entry.sanction_id else None
        if sanction is not None and sanction.state == "in_force":
            sanction.state = "lifted"
            uow.emit(events.sanction_ended(sanction, "lifted", on=today, reason=reason))
        await _restore(
            uow, record, today=today, now=now, cause="repair", cause_id=repair.id, reason=reason
        )
        await _rescore(uow, record.organisation_id, "repair", repair.id, reason, now)
    repair.state = data.outcome
    repair.decided_by = actor.subject
    repair.decided_at = now
    repair.decision_reason = data.reason
    uow.emit(events.repair_event(repair, "decided"))
    await uow.commit()
    return repair


async def get_repair(*, db: Database, repair_id: str, actor: Principal) -> RepairApplication:
    async with db.session() as session:
        repair = await session.get(RepairApplication, repair_id)
        if repair is None or not await _visible_record(session, actor, repair.organisation_id):
            raise _not_found("repair application", repair_id)
        return repair


# ------------------------------------------------------------------------------ periods


async def due_expiries(*, db: Database, today: date) -> list[str]:
    """Listings whose period is over (ends_on ≤ today) but still marked listed."""
    async with db.session() as session:
        rows = await session.execute(
            select(BlacklistEntry.id).where(
                BlacklistEntry.state == "listed", col(BlacklistEntry.ends_on) <= today
            )
        )
        return [str(r) for r in rows.scalars().all()]


async def expire_listing(*, uow: UnitOfWork, entry_id: str, now: datetime) -> bool:
    """End a listing whose period is over (期满): expired, the ban lifts, status restored.

    False when another scan (or a repair, or an appeal) got there first.
    """
    found = await uow.session.get(BlacklistEntry, entry_id)
    if found is None:
        return False
    record = await _lock_record(uow, found.organisation_id)
    entry: BlacklistEntry | None = await _reload(uow, BlacklistEntry, entry_id)
    today = china_day(now)
    if record is None or entry is None or entry.state != "listed" or entry.ends_on > today:
        return False
    reason = f"公示期满（ban period over on {entry.ends_on}）"
    entry.state = "expired"
    entry.lifted_on = entry.ends_on
    entry.lifted_reason = reason
    entry.updated_at = now
    uow.emit(events.blacklist_lifted(entry, "expired"))
    sanction = await _reload(uow, Sanction, entry.sanction_id) if entry.sanction_id else None
    if sanction is not None and sanction.state == "in_force":
        sanction.state = "completed"
        uow.emit(events.sanction_ended(sanction, "completed", on=entry.ends_on, reason=reason))
    await _restore(
        uow,
        record,
        today=today,
        now=now,
        cause="blacklist_expired",
        cause_id=entry.id,
        reason=reason,
    )
    await uow.commit()
    return True


async def due_suspension_ends(*, db: Database, today: date) -> list[str]:
    async with db.session() as session:
        rows = await session.execute(
            select(Sanction.id).where(
                Sanction.kind == "suspension",
                Sanction.state == "in_force",
                col(Sanction.ends_on) <= today,
            )
        )
        return [str(r) for r in rows.scalars().all()]


async def end_suspension(*, uow: UnitOfWork, sanction_id: str, now: datetime) -> bool:
    """End a suspension whose months are over; the organisation is reinstated unless another
    sanction is in force. False when already ended."""
    found = await uow.session.get(Sanction, sanction_id)
    if found is None:
        return False
    record = await _lock_record(uow, found.organisation_id)
    sanction: Sanction | None = await _reload(uow, Sanction, sanction_id)
    today = china_day(now)
    if (
        record is None
        or sanction is None
        or sanction.state != "in_force"
        or sanction.ends_on is None
        or sanction.ends_on > today
    ):
        return False
    reason = f"暂停期满（suspension over on {sanction.ends_on}）"
    sanction.state = "completed"
    uow.emit(events.sanction_ended(sanction, "completed", on=sanction.ends_on, reason=reason))
    await _restore(
        uow,
        record,
        today=today,
        now=now,
        cause="suspension_ended",
        cause_id=sanction.id,
        reason=reason,
    )
    await uow.commit()
    return True


# ------------------------------------------------------------------------------ history


async def credit_history(
    *, db: Database, organisation_id: str, actor: Principal, now: datetime
) -> CreditHistory:
    """Every violation, response, sanction, listing, appeal and repair of an organisation,
    and a timeline of them oldest first (nothing is ever removed)."""
    async with db.session() as session:
        record = await _visible_record(session, actor, organisation_id)
        if record is None:
            raise _not_found("organisation known to credit", organisation_id)

        async def rows(model: Any, order: Any) -> list[Any]:
            result = await session.execute(
                select(model)
                .where(model.organisation_id == organisation_id)
                .order_by(order, col(model.id))
            )
            return list(result.scalars().all())

        violations: list[Violation] = await rows(Violation, col(Violation.recorded_at))
        sanctions: list[Sanction] = await rows(Sanction, col(Sanction.decided_at))
        entries: list[BlacklistEntry] = await rows(BlacklistEntry, col(BlacklistEntry.created_at))
        appeals: list[Appeal] = await rows(Appeal, col(Appeal.filed_at))
        repairs: list[RepairApplication] = await rows(
            RepairApplication, col(RepairApplication.filed_at)
        )
    pack = pack_of(record.region_code)
    steps: list[tuple[datetime, int, HistoryItem]] = []

    def add(at: datetime | None, rank: int, **item: Any) -> None:
        if at is not None:
            steps.append((utc(at), rank, HistoryItem(at=utc(at), **item)))

    for v in violations:
        add(
            v.recorded_at,
            0,
            step="violation.recorded",
            record="violation",
            record_id=v.id,
            state=v.state,
            summary=f"{rules.VIOLATION_KINDS.get(v.kind, v.kind)}（{v.severity}）",
        )
        add(
            v.responded_at,
            1,
            step="violation.responded",
            record="violation",
            record_id=v.id,
            state=v.state,
            summary="陈述申辩 (response received)",
        )
    for s in sanctions:
        add(
            s.decided_at,
            2,
            step="sanction.decided",
            record="sanction",
            record_id=s.id,
            state=s.state,
            summary=f"{rules.SANCTION_KINDS.get(s.kind, s.kind)}: {s.reason}",
        )
    for e in entries:
        add(
            e.created_at,
            3,
            step="blacklist.listed",
            record="blacklist",
            record_id=e.id,
            state=e.state,
            summary=f"listed {e.starts_on} – {rules.last_day(e.ends_on)}",
        )
        if e.state != "listed":
            add(
                e.updated_at,
                6,
                step=f"blacklist.{e.state}",
                record="blacklist",
                record_id=e.id,
                state=e.state,
                summary=e.lifted_reason or e.state,
            )
    for a in appeals:
        add(
            a.filed_at,
            4,
            step="appeal.filed",
            record="appeal",
            record_id=a.id,
            state=a.state,
            summary=f"申诉 against sanction {a.sanction_id}",
        )
        add(
            a.decided_at,
            5,
            step="appeal.decided",
            record="appeal",
            record_id=a.id,
            state=a.state,
            summary=f"{a.state}: {a.decision_reason or ''}",
        )
    for r in repairs:
        add(
            r.filed_at,
            4,
            step="repair.filed",
            record="repair",
            record_id=r.id,
            state=r.state,
            summary="信用修复 application with pledge",
        )
        add(
            r.decided_at,
            5,
            step="repair.decided",
            record="repair",
            record_id=r.id,
            state=r.state,
            summary=f"{r.state}: {r.decision_reason or ''}",
        )
    steps.sort(key=lambda s: (s[0], s[1], s[2].record_id))
    today = china_day(now)
    return CreditHistory(
        organisation_id=record.organisation_id,
        status=record.status,
        decision_version=record.decision_version,
        violations=[violation_to_public(v, today=today, pack=pack) for v in violations],
        sanctions=[sanction_to_public(s, pack) for s in sanctions],
        blacklist=[entry_to_public(e, pack) for e in entries],
        appeals=[AppealPublic.model_validate(a) for a in appeals],
        repairs=[RepairPublic.model_validate(r) for r in repairs],
        timeline=[item for _, _, item in steps],
    )
