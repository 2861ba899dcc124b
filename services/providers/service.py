"""Use cases of the social-forces library (社会力量库): register, maintain, staff, search.

No HTTP here. Status is never written by these use cases: it follows credit's decisions
(`events.on_credit_decision`). Service regions and capabilities are kept twice: as JSON on the
organisation (what it declared, in order) and as one row each in `organisation_service_region`
/ `organisation_capability`, the index search runs on; both are written in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, false, func, or_, union_all
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from libs.common import regions
from libs.common.auth import Principal, Role
from libs.common.db import Database
from libs.common.errors import (
    AppError,
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    RuleViolation,
    invalid,
)
from libs.common.events import UnitOfWork
from libs.common.ids import new_id
from libs.common.pagination import fetch_page
from libs.common.policy import PolicyPack, pack_for_region
from services.providers import events, rules
from services.providers.models import (
    Organisation,
    OrganisationCapability,
    OrganisationServiceRegion,
    OrganisationStaff,
)
from services.providers.schemas import (
    OrganisationCreate,
    OrganisationUpdate,
    StaffCreate,
    StaffPublic,
    StaffUpdate,
)


def _refuse(errors: list[FieldError], clauses: list[str]) -> AppError:
    """A policy refusal (with the clauses) when a rule is behind it, else plain bad input."""
    detail = "The request does not meet the province's rules; see `errors`."
    if clauses:
        return RuleViolation(detail=detail, errors=errors, extra={"rules": clauses})
    return InvalidInput(detail=detail, errors=errors)


def _pack(region_code: str) -> PolicyPack:
    try:
        return pack_for_region(region_code)
    except LookupError as exc:
        raise invalid("body.region_code", str(exc)) from exc


def pack_of(org: Organisation) -> PolicyPack:
    """The pack of the province an organisation is registered in."""
    return _pack(org.region_code)


def _index_rows(
    org_id: str, service_regions: Sequence[str], services: Sequence[dict[str, Any]]
) -> list[OrganisationServiceRegion | OrganisationCapability]:
    rows: list[OrganisationServiceRegion | OrganisationCapability] = [
        OrganisationServiceRegion(organisation_id=org_id, code=code) for code in service_regions
    ]
    rows += [
        OrganisationCapability(
            organisation_id=org_id, code=s["code"], monthly_capacity=s["monthly_capacity"]
        )
        for s in services
    ]
    return rows


# --------------------------------------------------------------------------------------------
# Organisations
# --------------------------------------------------------------------------------------------


async def register_organisation(
    *, uow: UnitOfWork, data: OrganisationCreate, actor: Principal
) -> tuple[Organisation, list[OrganisationStaff]]:
    """Register a social force with its index rows and staff; emit `registered`."""
    actor.require_region(data.region_code)
    pack = _pack(data.region_code)
    errors, clauses = rules.registration_errors(
        pack,
        kind=data.kind,
        service_codes=[s.code for s in data.services],
        service_regions=data.service_regions,
        qualifications=data.qualifications,
        evidence=data.evidence,
    )
    for i, member in enumerate(data.staff):
        check = _check_staff(pack, member, f"body.staff.{i}")
        errors += check.errors
        clauses += [c for c in check.clauses if c not in clauses]
    if errors:
        raise _refuse(errors, clauses)
    existing = (
        await uow.session.execute(select(Organisation.id).where(Organisation.uscc == data.uscc))
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(
            detail="An organisation with this credit code is already registered.",
            extra={"existing_id": existing},
        )
    now = datetime.now(UTC)
    org = Organisation(
        id=new_id(),
        uscc=data.uscc,
        name=data.name,
        kind=data.kind,
        registration_authority=data.registration_authority,
        region_code=data.region_code,
        service_regions=list(data.service_regions),
        services=[s.model_dump() for s in data.services],
        qualifications=dict(data.qualifications),
        evidence=dict(data.evidence),
        pack=f"{pack.province}@{pack.version}",
        status="pending",
        version=1,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(org)
    try:
        # The organisation first: the index and staff rows reference it.
        await uow.session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same code won the race
        raise Conflict(
            detail="An organisation with this credit code is already registered."
        ) from exc
    staff = [_new_staff(org.id, member, now) for member in data.staff]
    uow.session.add_all([*_index_rows(org.id, org.service_regions, org.services), *staff])
    uow.emit(events.organisation_registered(org))
    await uow.commit()
    return org, staff


def _visible(org: Organisation, actor: Principal) -> bool:
    """An organisation sees itself; others see organisations reaching their region."""
    if actor.org_id is not None and actor.org_id == org.id:
        return True
    return rules.reaches(org.region_code, org.service_regions, actor.region)


async def get_organisation(*, db: Database, organisation_id: str, actor: Principal) -> Organisation:
    async with db.session() as session:
        org = await session.get(Organisation, organisation_id)
    if org is None or not _visible(org, actor):
        raise NotFound(detail=f"No organisation {organisation_id}.")
    return org


def _require_editor(org: Organisation | None, organisation_id: str, actor: Principal) -> None:
    """Who may maintain an organisation: an operator whose region holds its registration, or
    the organisation itself. Anyone else learns nothing (404)."""
    allowed = org is not None and (
        (actor.role == Role.organisation and actor.org_id == org.id)
        or (actor.role == Role.operator and actor.covers(org.region_code))
    )
    if not allowed:
        raise NotFound(detail=f"No organisation {organisation_id}.")


async def _organisation_for_update(
    session: AsyncSession, organisation_id: str, actor: Principal
) -> Organisation:
    # FOR UPDATE (PostgreSQL) so two concurrent edits serialise on the row and the version
    # check below sees the winner's; SQLite serialises writers already and ignores it.
    org = (
        await session.execute(
            select(Organisation).where(col(Organisation.id) == organisation_id).with_for_update()
        )
    ).scalar_one_or_none()
    _require_editor(org, organisation_id, actor)
    assert org is not None
    return org


async def update_organisation(
    *,
    uow: UnitOfWork,
    organisation_id: str,
    data: OrganisationUpdate,
    actor: Principal,
    if_match: int | None = None,
) -> Organisation:
    """Change what an organisation offers; rewrite its index rows; version += 1; emit
    `updated`. `if_match` (the version the client last saw) makes the change conditional."""
    org = await _organisation_for_update(uow.session, organisation_id, actor)
    if if_match is not None and if_match != org.version:
        raise PreconditionFailed(
            detail=f"The organisation is at version {org.version}, not {if_match}; "
            "read it again and reapply the change.",
            extra={"current_version": org.version},
        )
    changes = data.changes()
    pack = _pack(org.region_code)
    service_regions: list[str] = changes.get("service_regions", org.service_regions)
    services: list[dict[str, Any]] = changes.get("services", org.services)
    errors = rules.offer_errors(
        pack,
        service_codes=[s["code"] for s in services],
        service_regions=service_regions,
    )
    errors += rules.condition_errors(pack, "qualifications", changes.get("qualifications", {}))
    errors += rules.condition_errors(pack, "evidence", changes.get("evidence", {}))
    if errors:
        raise _refuse(errors, [])
    changed = sorted(k for k, v in changes.items() if getattr(org, k) != v)
    if not changed:
        # The same values again: nothing to record, nothing to announce. Still commit: a
        # rollback would expire the row the caller is about to show.
        await uow.commit()
        return org
    for key in changed:
        setattr(org, key, changes[key])
    if "service_regions" in changed or "services" in changed:
        # Rewrite the search index from the declared lists, in the same transaction.
        for table in (OrganisationServiceRegion, OrganisationCapability):
            await uow.session.execute(delete(table).where(col(table.organisation_id) == org.id))
        uow.session.add_all(_index_rows(org.id, service_regions, services))
    org.version += 1
    org.updated_at = datetime.now(UTC)
    uow.emit(events.organisation_updated(org, changed))
    await uow.commit()
    return org


# --------------------------------------------------------------------------------------------
# Staff (专业人员)
# --------------------------------------------------------------------------------------------


def _check_staff(
    pack: PolicyPack, member: StaffCreate | OrganisationStaff, field_prefix: str = "body"
) -> rules.StaffCheck:
    return rules.check_staff(
        pack,
        education=member.education,
        qualification_level=member.qualification_level,
        social_work_education=member.social_work_education,
        dispatched=member.dispatched,
        field_prefix=field_prefix,
    )


def _new_staff(org_id: str, member: StaffCreate, now: datetime) -> OrganisationStaff:
    return OrganisationStaff(
        id=new_id(),
        organisation_id=org_id,
        name=member.name,
        qualification_level=member.qualification_level,
        education=member.education,
        social_work_education=member.social_work_education,
        dispatched=member.dispatched,
        active=True,
        created_at=now,
        updated_at=now,
    )


def staff_to_public(staff: OrganisationStaff, pack: PolicyPack) -> StaffPublic:
    """The worker with the pack's preference (优先考虑) and its reason."""
    check = _check_staff(pack, staff)
    return StaffPublic.model_validate(
        {
            **staff.model_dump(),
            "preferred": check.preferred,
            "preferred_reason": check.preferred_reason,
        }
    )


async def add_staff(
    *, uow: UnitOfWork, organisation_id: str, data: StaffCreate, actor: Principal
) -> tuple[OrganisationStaff, PolicyPack]:
    org = await _organisation_for_update(uow.session, organisation_id, actor)
    pack = _pack(org.region_code)
    check = _check_staff(pack, data)
    if check.errors:
        raise _refuse(check.errors, check.clauses)
    staff = _new_staff(org.id, data, datetime.now(UTC))
    uow.session.add(staff)
    await uow.commit()
    return staff, pack


async def _staff_for_update(
    uow: UnitOfWork, organisation_id: str, staff_id: str, actor: Principal
) -> tuple[OrganisationStaff, PolicyPack]:
    org = await _organisation_for_update(uow.session, organisation_id, actor)
    staff = (
        await uow.session.execute(
            select(OrganisationStaff).where(
                col(OrganisationStaff.id) == staff_id,
                col(OrganisationStaff.organisation_id) == org.id,
            )
        )
    ).scalar_one_or_none()
    if staff is None:
        raise NotFound(detail=f"No staff member {staff_id} in organisation {organisation_id}.")
    return staff, _pack(org.region_code)


async def update_staff(
    *,
    uow: UnitOfWork,
    organisation_id: str,
    staff_id: str,
    data: StaffUpdate,
    actor: Principal,
) -> tuple[OrganisationStaff, PolicyPack]:
    """Change a worker; the dispatch rule is checked on the result (e.g. dispatching someone
    below college level is refused just as registering them dispatched would be)."""
    staff, pack = await _staff_for_update(uow, organisation_id, staff_id, actor)
    for key, value in data.model_dump(exclude_unset=True).items():
        setattr(staff, key, value)
    if staff.active:
        check = _check_staff(pack, staff)
        if check.errors:
            raise _refuse(check.errors, check.clauses)  # the rollback undoes the setattr
    staff.updated_at = datetime.now(UTC)
    await uow.commit()
    return staff, pack


async def deactivate_staff(
    *, uow: UnitOfWork, organisation_id: str, staff_id: str, actor: Principal
) -> tuple[OrganisationStaff, PolicyPack]:
    """A worker leaves: kept for the record, no longer active (idempotent)."""
    staff, pack = await _staff_for_update(uow, organisation_id, staff_id, actor)
    if staff.active:
        staff.active = False
        staff.updated_at = datetime.now(UTC)
    await uow.commit()  # also when already inactive: a rollback would expire the row
    return staff, pack


async def list_staff(
    *,
    db: Database,
    organisation_id: str,
    actor: Principal,
    active: bool | None,
    dispatched: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[OrganisationStaff], int, PolicyPack]:
    """Workers of an organisation: for the organisation itself and for operators and
    purchasers who can see it."""
    org = await get_organisation(db=db, organisation_id=organisation_id, actor=actor)
    if actor.role in (Role.organisation, Role.charity) and actor.org_id != org.id:
        raise NotFound(detail=f"No organisation {organisation_id}.")
    query = select(OrganisationStaff).where(col(OrganisationStaff.organisation_id) == org.id)
    if active is not None:
        query = query.where(col(OrganisationStaff.active) == active)
    if dispatched is not None:
        query = query.where(col(OrganisationStaff.dispatched) == dispatched)
    async with db.session() as session:
        rows, total = await fetch_page(
            session,
            query,
            order_by=[col(OrganisationStaff.created_at), col(OrganisationStaff.id)],
            limit=limit,
            offset=offset,
        )
    return rows, total, _pack(org.region_code)


# --------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------


def reaching(scope: str) -> ColumnElement[bool]:
    """SQL form of `rules.reaches`: organisations registered inside `scope`, or with a service
    region covering it (one of its few prefixes: equality) or inside it (a range).

    An IN over three index lookups, so the database starts from the index rows that match
    rather than testing every organisation. A province (or wider) needs no service-region
    lookup: service regions always lie in the organisation's own province
    (`rules.offer_errors` refuses others at registration and on change), so an organisation
    reaches its province exactly when it is registered in it. That keeps a provincial
    operator's every list — filtered by the token's region "22" — to one index range.
    """
    inside = regions.sql_inside(col(Organisation.region_code), scope)
    if len(scope) <= 2:
        return inside
    region = col(OrganisationServiceRegion.code)
    owner = col(OrganisationServiceRegion.organisation_id)
    # UNION ALL: IN does not need the duplicates removed, and skipping that saves a sort.
    reached = union_all(
        select(col(Organisation.id)).where(inside),
        select(owner).where(region.in_(regions.region_prefixes(scope))),
        select(owner).where(regions.sql_inside(region, scope)),
    )
    return col(Organisation.id).in_(reached)


@dataclass(frozen=True)
class OrganisationSearch:
    """Filters of `GET /organisations`; every one is applied in SQL."""

    region: str | None = None
    service: str | None = None
    min_capacity: int | None = None
    statuses: Sequence[str] = ()
    grades: Sequence[str] = ()
    kind: str | None = None
    q: str | None = None
    sort: str = "-created_at"


def search_query(search: OrganisationSearch, actor: Principal) -> tuple[Select[Any], list[Any]]:
    """The ids of the matching organisations and their ORDER BY (ending with the id as a
    stable tie-breaker)."""
    if search.min_capacity is not None and not search.service:
        raise invalid("query.min_capacity", "min_capacity needs `service`")
    if search.sort == "-capacity" and not search.service:
        raise invalid("query.sort", "sorting by capacity needs `service`")
    query: Select[Any] = select(col(Organisation.id)).select_from(Organisation)
    capacity = col(OrganisationCapability.monthly_capacity)
    if search.service:
        # (organisation_id, code) is the primary key: the join adds at most one row per
        # organisation, so no DISTINCT is needed.
        query = query.join(
            OrganisationCapability,
            and_(
                col(OrganisationCapability.organisation_id) == col(Organisation.id),
                col(OrganisationCapability.code) == search.service,
            ),
        )
        if search.min_capacity is not None:
            query = query.where(capacity >= search.min_capacity)
    if actor.region:
        own = col(Organisation.id) == actor.org_id if actor.org_id else false()
        query = query.where(or_(own, reaching(actor.region)))
    if search.region:
        query = query.where(reaching(search.region))
    if search.statuses:
        query = query.where(col(Organisation.status).in_(search.statuses))
    if search.grades:
        query = query.where(col(Organisation.credit_grade).in_(search.grades))
    if search.kind:
        query = query.where(col(Organisation.kind) == search.kind)
    if search.q:
        query = query.where(col(Organisation.name).contains(search.q, autoescape=True))
    key = {
        "name": col(Organisation.name).asc(),
        "-name": col(Organisation.name).desc(),
        "created_at": col(Organisation.created_at).asc(),
        "-created_at": col(Organisation.created_at).desc(),
        "credit_score": col(Organisation.credit_score).asc().nulls_last(),
        "-credit_score": col(Organisation.credit_score).desc().nulls_last(),
        "-capacity": capacity.desc(),
    }[search.sort]
    return query, [key, col(Organisation.id)]


async def list_organisations(
    *,
    db: Database,
    actor: Principal,
    search: OrganisationSearch,
    limit: int,
    offset: int,
) -> tuple[Sequence[Organisation], int]:
    """Organisations reaching the caller's region that match every filter, one page.

    The page is chosen on ids alone and only its rows are read whole: sorting thousands of
    matches with every column (JSON lists included) costs several times more.
    """
    ids, order_by = search_query(search, actor)
    async with db.session() as session:
        total = (
            await session.execute(select(func.count()).select_from(ids.subquery()))
        ).scalar_one()
        page = list(
            (await session.execute(ids.order_by(*order_by).limit(limit).offset(offset))).scalars()
        )
        if not page:
            return [], int(total)
        rows = (
            (await session.execute(select(Organisation).where(col(Organisation.id).in_(page))))
            .scalars()
            .all()
        )
    by_id = {org.id: org for org in rows}
    return [by_id[i] for i in page], int(total)
