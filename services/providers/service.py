"""Use cases of the providers service (no HTTP here)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from libs.common.auth import Principal
from libs.common.db import Database
from libs.common.errors import Conflict, InvalidInput, NotFound, RuleViolation, invalid
from libs.common.events import UnitOfWork
from libs.common.policy import pack_for_region
from services.providers import events, rules
from services.providers.models import Organisation
from services.providers.schemas import OrganisationCreate


async def register_organisation(
    *, uow: UnitOfWork, data: OrganisationCreate, actor: Principal
) -> Organisation:
    actor.require_region(data.region_code)
    try:
        pack = pack_for_region(data.region_code)
    except LookupError as exc:
        raise invalid("body.region_code", str(exc)) from exc
    errors, clauses = rules.registration_errors(
        pack,
        kind=data.kind,
        service_codes=[s.code for s in data.services],
        service_regions=data.service_regions,
    )
    if errors:
        cls = RuleViolation if clauses else InvalidInput
        raise cls(
            detail="The registration does not meet the province's rules; see `errors`.",
            errors=errors,
            extra={"rules": clauses} if clauses else {},
        )
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
        id=str(uuid.uuid4()),
        uscc=data.uscc,
        name=data.name,
        kind=data.kind,
        region_code=data.region_code,
        service_regions=list(data.service_regions),
        services=[s.model_dump() for s in data.services],
        qualifications=dict(data.qualifications),
        pack=f"{pack.province}@{pack.version}",
        status="pending",
        created_at=now,
        updated_at=now,
    )
    uow.session.add(org)
    try:
        await uow.session.flush()
    except IntegrityError as exc:  # a concurrent registration of the same code won the race
        raise Conflict(
            detail="An organisation with this credit code is already registered."
        ) from exc
    uow.emit(events.organisation_registered(org))
    await uow.commit()
    return org


async def get_organisation(*, db: Database, organisation_id: str, actor: Principal) -> Organisation:
    async with db.session() as session:
        org = await session.get(Organisation, organisation_id)
    if org is None or not _visible(org, actor):
        raise NotFound(detail=f"No organisation {organisation_id}.")
    return org


def _reaches(org: Organisation, scope: str) -> bool:
    """Registered inside `scope`, or serving an area that overlaps it."""
    return org.region_code.startswith(scope) or any(
        s.startswith(scope) or scope.startswith(s) for s in org.service_regions
    )


def _visible(org: Organisation, actor: Principal) -> bool:
    if actor.org_id is not None and actor.org_id == org.id:
        return True
    return not actor.region or _reaches(org, actor.region)


async def list_organisations(
    *,
    db: Database,
    actor: Principal,
    status: str | None,
    region: str | None,
    service: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Organisation], int]:
    # The skeleton filters coverage in memory; the library search (issue 5) replaces this
    # with an indexed coverage table.
    query = select(Organisation).order_by(col(Organisation.created_at), col(Organisation.id))
    if status:
        query = query.where(Organisation.status == status)
    async with db.session() as session:
        rows = (await session.execute(query)).scalars().all()
    scope = region or ""
    selected = [
        o
        for o in rows
        if _visible(o, actor)
        and (not scope or _reaches(o, scope))
        and (not service or any(c.get("code") == service for c in o.services))
    ]
    return selected[offset : offset + limit], len(selected)
