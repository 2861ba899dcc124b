"""Use cases of purchasing projects (项目库) and fund ledgers (资金台账), no HTTP here.

Money is integer fen. A region's ledger for a year holds the central + provincial special
social-assistance funds recorded for it (`base_fen`), the cap the pack derives from them
(`cap_fen` = floor(base × ratio), Jilin 2 %) and what approved projects hold
(`reserved_fen`). Approval reserves with ONE conditional UPDATE
(`… WHERE reserved_fen + :amount <= cap_fen`) in the same transaction as the project's
state change and its outbox event: on PostgreSQL the row lock makes a concurrent approver
wait and re-check the condition against the committed row (READ COMMITTED), and SQLite has
one writer; so concurrent approvals can never oversubscribe the cap. Nothing is read in
Python and written back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import String, cast, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from libs.common.auth import Principal
from libs.common.db import Database
from libs.common.errors import Conflict, NotFound, PreconditionFailed, invalid
from libs.common.events import PermanentError, UnitOfWork
from libs.common.ids import new_id
from libs.common.pagination import fetch_page
from libs.common.policy import PolicyPack, pack_for_region
from services.providers.projects import events, rules
from services.providers.projects.models import (
    FundAllocation,
    FundLedger,
    Project,
    ProjectTransition,
)
from services.providers.projects.schemas import (
    NULLABLE_UPDATES,
    AllocationCreate,
    LedgerPublic,
    ProjectCreate,
    ProjectUpdate,
)

log = logging.getLogger(__name__)

#: Namespace of allocation ids: the id is derived from the idempotency key, so recording the
#: same document twice hits the primary key instead of a check-then-insert race.
ALLOCATION_NAMESPACE = uuid.UUID("6f3b2a0e-5c1d-4e8f-9a7b-2d4c6e8f0a1b")

RULES_DETAIL = "The project does not meet the province's rules; see `errors`."


# ------------------------------------------------------------------------------ helpers


def pack_label(pack: PolicyPack) -> str:
    return f"{pack.province}@{pack.version}"


def _pack(region_code: str, field_path: str) -> PolicyPack:
    try:
        return pack_for_region(region_code)
    except LookupError as exc:
        raise invalid(field_path, str(exc)) from exc


def _insert(session: AsyncSession) -> Any:
    """The dialect's INSERT (both have ON CONFLICT)."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def parse_if_match(value: str | None) -> int | None:
    """The version an `If-Match` header names: `"3"`, `W/"3"` or `3`; None when absent/`*`."""
    if value is None:
        return None
    text = value.strip()
    if text in ("", "*"):
        return None
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if not text.isascii() or not text.isdigit():
        raise invalid("header.If-Match", 'expected the project version as an ETag, e.g. "3"')
    return int(text)


def _check_version(project: Project, expected: int | None) -> None:
    if expected is not None and expected != project.version:
        raise PreconditionFailed(
            detail=f"Project {project.id} is at version {project.version}, not {expected}; "
            "reload it and try again.",
            extra={"current_version": project.version, "project_state": project.state},
        )


def _require_state(project: Project, action: str) -> None:
    allowed = rules.MANUAL_TRANSITIONS[action]
    if project.state not in allowed:
        raise Conflict(
            detail=f"Project {project.id} is {project.state}; it cannot {action} from there "
            f"(only from {', '.join(allowed)}).",
            extra={"project_state": project.state, "allowed_from": list(allowed)},
        )


def _move(
    session: AsyncSession, project: Project, to_state: str, *, actor: str, reason: str | None
) -> None:
    """Change state, bump the version and write the history row (ProjectTransition)."""
    now = datetime.now(UTC)
    session.add(
        ProjectTransition(
            id=new_id(),
            project_id=project.id,
            from_state=project.state,
            to_state=to_state,
            actor=actor,
            reason=reason,
            at=now,
        )
    )
    project.state = to_state
    project.version += 1
    project.updated_at = now


async def _locked_project(session: AsyncSession, project_id: str, actor: Principal) -> Project:
    # FOR UPDATE (PostgreSQL): two officials acting on one project wait for each other, and
    # the version check then sees the winner's change. SQLite serialises writers already.
    project = (
        await session.execute(
            select(Project).where(col(Project.id) == project_id).with_for_update()
        )
    ).scalar_one_or_none()
    if project is None or not actor.covers(project.region_code):
        raise NotFound(detail=f"No project {project_id}.")
    return project


def _scope(actor_region: str, region: str | None) -> str | None:
    """The region to list: the overlap of the asked region and the caller's; None if none."""
    if not region or region.startswith(actor_region):
        return region or actor_region
    if actor_region.startswith(region):
        return actor_region
    return None


# ------------------------------------------------------------------------------ funds


def allocation_id(*, region_code: str, year: int, source: str, document: str) -> str:
    """The allocation's id: the idempotency key (region, year, source, document), hashed."""
    return str(uuid.uuid5(ALLOCATION_NAMESPACE, f"{region_code}|{year}|{source}|{document}"))


def ledger_public(ledger: FundLedger) -> LedgerPublic:
    pack = pack_for_region(ledger.region_code)
    capped = pack.budget_cap is not None
    return LedgerPublic(
        region_code=ledger.region_code,
        year=ledger.year,
        pack=pack_label(pack),
        base_fen=ledger.base_fen,
        cap_ratio=str(Decimal(ledger.cap_ratio).normalize()) if capped else None,
        cap_fen=ledger.cap_fen if capped else None,
        reserved_fen=ledger.reserved_fen,
        available_fen=max(ledger.cap_fen - ledger.reserved_fen, 0) if capped else None,
        cap_rule=pack.budget_cap.source.cite() if pack.budget_cap is not None else None,
        version=ledger.version,
        updated_at=ledger.updated_at,
    )


async def _read_ledger(session: AsyncSession, region_code: str, year: int) -> FundLedger | None:
    return (
        await session.execute(
            select(FundLedger)
            .where(col(FundLedger.region_code) == region_code, col(FundLedger.year) == year)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()


async def record_allocation(
    *, uow: UnitOfWork, data: AllocationCreate, actor: Principal
) -> tuple[FundAllocation, FundLedger, bool]:
    """Record special funds (专项资金) into the ledger of (region, year); recompute its cap.

    Returns (allocation, ledger, created). Recording the same (region, year, source,
    document) again changes nothing and returns the first allocation (created=False); the
    same key with another amount is a 409.
    """
    actor.require_region(data.region_code)
    pack = _pack(data.region_code, "body.region_code")
    session = uow.session
    insert = _insert(session)
    now = datetime.now(UTC)
    key = allocation_id(
        region_code=data.region_code, year=data.year, source=data.source, document=data.document
    )
    inserted = (
        await session.execute(
            insert(FundAllocation)
            .values(
                id=key,
                region_code=data.region_code,
                year=data.year,
                source=data.source,
                amount_fen=data.amount_fen,
                document=data.document,
                recorded_by=actor.subject,
                recorded_at=now,
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(col(FundAllocation.id))
        )
    ).first()
    if inserted is None:
        existing = await session.get(FundAllocation, key)
        assert existing is not None  # the conflict was on this very key
        if existing.amount_fen != data.amount_fen:
            raise Conflict(
                detail=f"Document {data.document!r} ({data.source}) is already recorded for "
                f"{data.region_code} in {data.year} with {existing.amount_fen} fen.",
                extra={"existing_id": existing.id, "existing_amount_fen": existing.amount_fen},
            )
        ledger = await _read_ledger(session, data.region_code, data.year)
        assert ledger is not None
        await uow.commit()  # nothing to write; a rollback would expire what we return
        return existing, ledger, False
    ratio = rules.cap_ratio(pack) or Decimal(0)
    where = (
        col(FundLedger.region_code) == data.region_code,
        col(FundLedger.year) == data.year,
    )
    await session.execute(
        insert(FundLedger)
        .values(
            region_code=data.region_code,
            year=data.year,
            base_fen=0,
            cap_ratio=ratio,
            cap_fen=0,
            reserved_fen=0,
            version=0,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["region_code", "year"])
    )
    # The additive UPDATE takes the row lock, so the cap computed from its result cannot be
    # overtaken by a concurrent allocation before this transaction commits.
    base = (
        await session.execute(
            update(FundLedger)
            .where(*where)
            .values(
                base_fen=col(FundLedger.base_fen) + data.amount_fen,
                version=col(FundLedger.version) + 1,
                updated_at=now,
            )
            .returning(col(FundLedger.base_fen))
            .execution_options(synchronize_session=False)
        )
    ).scalar_one()
    cap = rules.cap_for(pack, base)
    await session.execute(
        update(FundLedger)
        .where(*where)
        .values(cap_fen=cap or 0, cap_ratio=ratio)
        .execution_options(synchronize_session=False)
    )
    ledger = await _read_ledger(session, data.region_code, data.year)
    allocation = await session.get(FundAllocation, key)
    assert ledger is not None and allocation is not None
    uow.emit(events.fund_recorded(allocation, ledger=ledger, cap_fen=cap, pack=pack_label(pack)))
    await uow.commit()
    return allocation, ledger, True


async def get_ledger(
    *, db: Database, region_code: str, year: int, actor: Principal
) -> tuple[FundLedger, list[FundAllocation]]:
    if not actor.covers(region_code):
        raise NotFound(detail=f"No fund ledger for {region_code} in {year}.")
    async with db.session() as session:
        ledger = await _read_ledger(session, region_code, year)
        if ledger is None:
            raise NotFound(detail=f"No fund ledger for {region_code} in {year}.")
        allocations = (
            await session.execute(
                select(FundAllocation)
                .where(
                    col(FundAllocation.region_code) == region_code,
                    col(FundAllocation.year) == year,
                )
                .order_by(col(FundAllocation.recorded_at), col(FundAllocation.id))
            )
        ).scalars()
        return ledger, list(allocations)


async def list_ledgers(
    *,
    db: Database,
    actor: Principal,
    region: str | None,
    year: int | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[FundLedger], int]:
    scope = _scope(actor.region, region)
    if scope is None:
        return [], 0
    query = select(FundLedger)
    if scope:
        query = query.where(col(FundLedger.region_code).startswith(scope))
    if year is not None:
        query = query.where(col(FundLedger.year) == year)
    async with db.session() as session:
        return await fetch_page(
            session,
            query,
            order_by=[col(FundLedger.region_code), col(FundLedger.year)],
            limit=limit,
            offset=offset,
        )


async def _reserve(
    session: AsyncSession, pack: PolicyPack, project: Project
) -> tuple[int, int | None]:
    """Hold the project's budget in its ledger; (reserved after, cap). Refuses over the cap.

    With a cap: one conditional UPDATE, no read before it. Without one (the pack sets none)
    the ledger only tracks: an upsert adds to `reserved_fen`.
    """
    now = datetime.now(UTC)
    amount = project.budget_fen
    if pack.budget_cap is None:
        insert = _insert(session)
        stmt = insert(FundLedger).values(
            region_code=project.region_code,
            year=project.budget_year,
            base_fen=0,
            cap_ratio=Decimal(0),
            cap_fen=0,
            reserved_fen=amount,
            version=1,
            updated_at=now,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["region_code", "year"],
            set_={
                "reserved_fen": col(FundLedger.reserved_fen) + stmt.excluded.reserved_fen,
                "version": col(FundLedger.version) + 1,
                "updated_at": now,
            },
        ).returning(col(FundLedger.reserved_fen))
        return int((await session.execute(stmt)).scalar_one()), None
    row = (
        await session.execute(
            update(FundLedger)
            .where(
                col(FundLedger.region_code) == project.region_code,
                col(FundLedger.year) == project.budget_year,
                col(FundLedger.reserved_fen) + amount <= col(FundLedger.cap_fen),
            )
            .values(
                reserved_fen=col(FundLedger.reserved_fen) + amount,
                version=col(FundLedger.version) + 1,
                updated_at=now,
            )
            .returning(col(FundLedger.reserved_fen), col(FundLedger.cap_fen))
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if row is not None:
        return int(row[0]), int(row[1])
    # Refused: read the ledger only to explain why (the decision was the UPDATE's).
    ledger = await _read_ledger(session, project.region_code, project.budget_year)
    if ledger is None or ledger.base_fen == 0:
        raise rules.no_funds_refusal(
            pack, region_code=project.region_code, year=project.budget_year
        )
    raise rules.cap_refusal(
        pack,
        region_code=project.region_code,
        year=project.budget_year,
        base_fen=ledger.base_fen,
        cap_fen=ledger.cap_fen,
        reserved_fen=ledger.reserved_fen,
        requested_fen=amount,
    )


async def _release(session: AsyncSession, project: Project) -> int:
    """Give the project's budget back to its ledger (the mirror UPDATE); never below 0."""
    amount = project.budget_fen
    released = (
        await session.execute(
            update(FundLedger)
            .where(
                col(FundLedger.region_code) == project.region_code,
                col(FundLedger.year) == project.budget_year,
                col(FundLedger.reserved_fen) >= amount,
            )
            .values(
                reserved_fen=col(FundLedger.reserved_fen) - amount,
                version=col(FundLedger.version) + 1,
                updated_at=datetime.now(UTC),
            )
            .returning(col(FundLedger.reserved_fen))
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if released is None:
        # Cannot happen while reservations and releases are the only writers; the cancel
        # still goes through (a project must be stoppable) and the mismatch is reported.
        log.error(
            "ledger %s/%s holds less than project %s's %d fen; nothing released",
            project.region_code,
            project.budget_year,
            project.id,
            amount,
        )
        return 0
    return amount


# ------------------------------------------------------------------------------ projects


def _refusals_for(pack: PolicyPack, values: dict[str, Any]) -> rules.Refusals:
    return rules.project_refusals(
        pack,
        service_codes=values["service_codes"],
        fund_source=values["fund_source"],
        period_start=values["period_start"],
        period_end=values["period_end"],
        stable_recurring=values["stable_recurring"],
        budget_secured=values["budget_secured"],
        purchasing_method=values["purchasing_method"],
        qualification_requirements=values["qualification_requirements"],
    )


async def create_project(*, uow: UnitOfWork, data: ProjectCreate, actor: Principal) -> Project:
    """Create a draft project in the caller's region; every pack rule is checked now."""
    actor.require_region(data.region_code)
    pack = _pack(data.region_code, "body.region_code")
    values = data.model_dump()
    _refusals_for(pack, values).raise_if_any(RULES_DETAIL)
    now = datetime.now(UTC)
    project = Project(
        id=new_id(),
        region_code=data.region_code,
        department=data.department,
        title=data.title,
        service_codes=list(data.service_codes),
        quantity=data.quantity,
        unit=data.unit,
        quality_standards=data.quality_standards,
        qualification_requirements=list(data.qualification_requirements),
        specific_conditions=data.specific_conditions,
        budget_fen=data.budget_fen,
        budget_year=data.budget_year or data.period_start.year,
        fund_source=data.fund_source,
        period_start=data.period_start,
        period_end=data.period_end,
        stable_recurring=data.stable_recurring,
        budget_secured=data.budget_secured,
        purchasing_method=data.purchasing_method,
        pack=pack_label(pack),
        state="draft",
        version=1,
        created_by=actor.subject,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(project)
    await uow.session.flush()  # the history row refers to it
    uow.session.add(
        ProjectTransition(
            id=new_id(),
            project_id=project.id,
            from_state="new",
            to_state="draft",
            actor=actor.subject,
            reason=None,
            at=now,
        )
    )
    await uow.commit()
    return project


_UPDATABLE: tuple[str, ...] = tuple(ProjectUpdate.model_fields)


async def update_project(
    *,
    uow: UnitOfWork,
    project_id: str,
    changes: ProjectUpdate,
    actor: Principal,
    if_match: int | None,
) -> Project:
    """Change a draft; the merged project must still meet every rule."""
    project = await _locked_project(uow.session, project_id, actor)
    _check_version(project, if_match)
    _require_state(project, "update")
    given = changes.model_fields_set
    nulled = sorted(f for f in given if getattr(changes, f) is None and f not in NULLABLE_UPDATES)
    if nulled:
        raise invalid(f"body.{nulled[0]}", "may be changed or left out, not set to null")
    values: dict[str, Any] = {f: getattr(project, f) for f in _UPDATABLE}
    values.update({f: getattr(changes, f) for f in given})
    if values["budget_year"] is None:
        values["budget_year"] = values["period_start"].year
    pack = _pack(project.region_code, "project.region_code")
    _refusals_for(pack, values).raise_if_any(RULES_DETAIL)
    changed = False
    for name, value in values.items():
        if getattr(project, name) != value:
            # New lists, not in-place edits: the ORM detects a JSON change by assignment.
            setattr(project, name, list(value) if isinstance(value, list) else value)
            changed = True
    if changed:
        project.pack = pack_label(pack)
        project.version += 1
        project.updated_at = datetime.now(UTC)
    await uow.commit()  # also when unchanged: a rollback would expire what we return
    return project


async def approve_project(
    *, uow: UnitOfWork, project_id: str, actor: Principal, if_match: int | None
) -> Project:
    """Approve a draft (立项): the rules again, then reserve its budget under the cap.

    The reservation, the state change, the history row and the outbox event commit
    together or not at all: a refused approval leaves the ledger and the project unchanged.
    """
    session = uow.session
    project = await _locked_project(session, project_id, actor)
    _check_version(project, if_match)
    _require_state(project, "approve")
    # The pack may have changed since the draft was written: approval applies today's rules.
    pack = _pack(project.region_code, "project.region_code")
    _refusals_for(pack, project.model_dump()).raise_if_any(RULES_DETAIL)
    reserved, cap = await _reserve(session, pack, project)
    _move(session, project, "approved", actor=actor.subject, reason=None)
    project.pack = pack_label(pack)
    project.approved_by = actor.subject
    project.approved_at = project.updated_at
    uow.emit(events.project_approved(project, reserved_fen=reserved, cap_fen=cap))
    await uow.commit()
    return project


async def publish_project(
    *, uow: UnitOfWork, project_id: str, actor: Principal, if_match: int | None
) -> Project:
    """Publish an approved project (信息发布); its event opens a tender in matching."""
    project = await _locked_project(uow.session, project_id, actor)
    _check_version(project, if_match)
    _require_state(project, "publish")
    _move(uow.session, project, "published", actor=actor.subject, reason=None)
    project.published_at = project.updated_at
    uow.emit(events.project_published(project))
    await uow.commit()
    return project


async def cancel_project(
    *, uow: UnitOfWork, project_id: str, reason: str, actor: Principal, if_match: int | None
) -> Project:
    """Cancel before award; an approved budget goes back to the ledger."""
    session = uow.session
    project = await _locked_project(session, project_id, actor)
    _check_version(project, if_match)
    _require_state(project, "cancel")
    from_state = project.state
    released = await _release(session, project) if from_state in rules.HOLDS_RESERVATION else 0
    _move(session, project, "cancelled", actor=actor.subject, reason=reason)
    project.state_reason = reason
    uow.emit(events.project_cancelled(project, from_state=from_state, released_fen=released))
    await uow.commit()
    return project


async def get_project(*, db: Database, project_id: str, actor: Principal) -> Project:
    async with db.session() as session:
        project = await session.get(Project, project_id)
    # Out of scope reads as absent, so existence does not leak across regions.
    if project is None or not actor.covers(project.region_code):
        raise NotFound(detail=f"No project {project_id}.")
    return project


async def project_history(
    *, db: Database, project_id: str, actor: Principal
) -> list[ProjectTransition]:
    async with db.session() as session:
        project = await session.get(Project, project_id)
        if project is None or not actor.covers(project.region_code):
            raise NotFound(detail=f"No project {project_id}.")
        rows = (
            await session.execute(
                select(ProjectTransition)
                .where(col(ProjectTransition.project_id) == project_id)
                .order_by(col(ProjectTransition.at), col(ProjectTransition.id))
            )
        ).scalars()
        return list(rows)


#: `sort` keys of GET /projects → columns; `-key` sorts descending, id breaks ties.
SORT_COLUMNS: dict[str, Any] = {
    "created_at": Project.created_at,
    "updated_at": Project.updated_at,
    "budget": Project.budget_fen,
    "period_start": Project.period_start,
    "title": Project.title,
}


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_projects(
    *,
    db: Database,
    actor: Principal,
    region: str | None,
    state: str | None,
    year: int | None,
    service: str | None,
    fund_source: str | None,
    sort: str,
    limit: int,
    offset: int,
) -> tuple[Sequence[Project], int]:
    """Projects in the caller's region (and the asked region prefix), filtered and sorted."""
    scope = _scope(actor.region, region)
    if scope is None:
        return [], 0
    query = select(Project)
    if scope:
        query = query.where(col(Project.region_code).startswith(scope))
    if state:
        query = query.where(col(Project.state) == state)
    if year is not None:
        query = query.where(col(Project.budget_year) == year)
    if fund_source:
        query = query.where(col(Project.fund_source) == fund_source)
    if service:
        # The JSON array's text holds each code in quotes (codes are snake_case, nothing to
        # escape in JSON); the same test works on SQLite and PostgreSQL.
        pattern = f'%"{_like_escape(service)}"%'
        query = query.where(cast(Project.service_codes, String).like(pattern, escape="\\"))
    descending = sort.startswith("-")
    column = col(SORT_COLUMNS[sort.lstrip("-")])
    tie = col(Project.id)
    order = [column.desc(), tie.desc()] if descending else [column.asc(), tie.asc()]
    async with db.session() as session:
        return await fetch_page(session, query, order_by=order, limit=limit, offset=offset)


# ------------------------------------------------------------------------------ market events


async def apply_market_event(
    uow: UnitOfWork, *, project_id: str, verb: str, data: dict[str, Any], event_type: str
) -> None:
    """Move a project by matching's tender, award and contract events.

    Forward only along published → tendered → awarded → in_service → closed, so a late event
    overtaken by a later one is ignored; a failed or cancelled tender reopens the project
    only when it is the project's current tender. Events for a project in a state where
    they make no sense are logged and ignored; an unknown project is a permanent error.
    """
    session = uow.session
    project = (
        await session.execute(
            select(Project).where(col(Project.id) == project_id).with_for_update()
        )
    ).scalar_one_or_none()
    if project is None:
        raise PermanentError(f"{event_type} for unknown project {project_id}")
    target = rules.market_target(verb)
    if target is None:
        log.info("%s: not a project event; ignored", event_type)
        return
    actor = f"event:{event_type}"
    state = project.state
    tender_id = _opt_str(data.get("tender_id"))
    contract_id = _opt_str(data.get("contract_id"))
    reason = _opt_str(data.get("reason"))

    def ignore(why: str) -> None:
        log.info("%s for project %s (%s): %s; ignored", event_type, project_id, state, why)

    if state not in rules.MARKET_RANK:
        return ignore("the project is not on the market")
    if verb == "tender.published":
        if tender_id is None:
            raise PermanentError(f"{event_type} without data.tender_id")
        if state != "published":
            return ignore("no tender can open now")
        project.tender_id = tender_id
        _move(session, project, target, actor=actor, reason=f"tender {tender_id} published")
        return None
    if verb in ("tender.failed", "tender.cancelled"):
        # An awarded tender still fails when every ranked bidder refuses to sign (before any
        # contract is signed): the project goes back on the market rather than stalling.
        reopenable = ("tendered", "awarded") if verb == "tender.failed" else ("tendered",)
        if state not in reopenable or (tender_id is not None and tender_id != project.tender_id):
            return ignore("not the project's open tender")
        what = "failed" if verb == "tender.failed" else "cancelled"
        note = f"tender {project.tender_id} {what}" + (f": {reason}" if reason else "")
        project.tender_id = None
        project.state_reason = note[:2000]
        _move(session, project, target, actor=actor, reason=note[:2000])
        return None
    if rules.MARKET_RANK[target] <= rules.MARKET_RANK[state]:
        return ignore("late or repeated")
    if (
        verb == "award.made"
        and tender_id is not None
        and project.tender_id not in (None, tender_id)
    ):
        return ignore(f"award of tender {tender_id}, not of {project.tender_id}")
    if contract_id is not None:
        if verb == "contract.signed" or project.contract_id is None:
            project.contract_id = contract_id
        elif project.contract_id != contract_id:
            return ignore(f"contract {contract_id}, not {project.contract_id}")
    note = {
        "award.made": "awarded" + (f" (tender {tender_id})" if tender_id else ""),
        "contract.signed": f"contract {contract_id} signed",
        "contract.completed": f"contract {contract_id} completed",
        "contract.terminated": f"contract {contract_id} terminated"
        + (f": {reason}" if reason else ""),
    }[verb]
    if verb == "contract.terminated":
        project.state_reason = note[:2000]
    _move(session, project, target, actor=actor, reason=note[:2000])
    return None


def _opt_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
