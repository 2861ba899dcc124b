"""Use cases of the expert library (专家库), no HTTP here.

Contact details are sealed with the providers service's data keys; the encryption context
binds each token to its expert and field, so a token copied to another row will not open.
Every change raises the expert's `version` and emits `sa.providers.expert.updated` with the
whole public state (affiliations included) in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import and_, not_, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, delete, select

from libs.common.auth import Principal
from libs.common.crypto import FieldCipher, KeyRing
from libs.common.db import Database
from libs.common.errors import Conflict, InvalidInput, NotFound, invalid
from libs.common.events import UnitOfWork
from libs.common.ids import new_id, new_person_ref
from libs.common.masking import mask_email, mask_phone
from libs.common.pagination import fetch_page
from libs.common.policy import PolicyPack, pack_for_region
from services.providers.experts import events, rules
from services.providers.experts.models import Expert, ExpertAffiliation, ExpertField
from services.providers.experts.schemas import (
    AffiliationCreate,
    ExpertContacts,
    ExpertCreate,
    ExpertPublic,
    ExpertUpdate,
)
from services.providers.models import Organisation

CONTACT_FIELDS = ("phone", "email")

# `sort` values → columns; the id always breaks ties so pages never overlap.
SORTS: dict[str, Any] = {
    "name": col(Expert.name),
    "-name": col(Expert.name).desc(),
    "created_at": col(Expert.created_at),
    "-created_at": col(Expert.created_at).desc(),
}


@dataclass(frozen=True)
class ExpertContactsCipher:
    """Sealing and opening of experts' contact details (联系方式)."""

    cipher: FieldCipher

    @classmethod
    def from_data_keys(cls, data_keys: str) -> ExpertContactsCipher:
        return cls(cipher=FieldCipher(KeyRing.from_config(data_keys)))

    def seal(self, expert_id: str, field: str, value: str | None) -> str | None:
        return self.cipher.encrypt_optional(value, context=f"expert.{field}:{expert_id}")

    def open(self, expert_id: str, field: str, token: str | None) -> str | None:
        return self.cipher.decrypt_optional(token, context=f"expert.{field}:{expert_id}")


def to_public(expert: Expert, contacts: ExpertContactsCipher) -> ExpertPublic:
    phone = contacts.open(expert.id, "phone", expert.phone_enc)
    email = contacts.open(expert.id, "email", expert.email_enc)
    return ExpertPublic(
        id=expert.id,
        name=expert.name,
        region_code=expert.region_code,
        fields=list(expert.fields),
        title=expert.title,
        phone_masked=mask_phone(phone) if phone else None,
        email_masked=mask_email(email) if email else None,
        available=expert.available,
        unavailable_until=expert.unavailable_until,
        status=expert.status,
        version=expert.version,
        created_by=expert.created_by,
        created_at=expert.created_at,
        updated_at=expert.updated_at,
    )


def _pack(region_code: str) -> PolicyPack:
    try:
        return pack_for_region(region_code)
    except LookupError as exc:
        raise invalid("body.region_code", str(exc)) from exc


def _check_fields(pack: PolicyPack, fields: Sequence[str]) -> None:
    errors = rules.field_errors(pack, fields)
    if errors:
        raise InvalidInput(detail="Unknown expert fields; see `errors`.", errors=errors)


async def register_expert(
    *, uow: UnitOfWork, data: ExpertCreate, actor: Principal, contacts: ExpertContactsCipher
) -> Expert:
    actor.require_region(data.region_code)
    _check_fields(_pack(data.region_code), data.fields)
    expert_id = new_person_ref()
    now = datetime.now(UTC)
    expert = Expert(
        id=expert_id,
        name=data.name,
        region_code=data.region_code,
        fields=list(data.fields),
        title=data.title,
        phone_enc=contacts.seal(expert_id, "phone", data.contacts.phone),
        email_enc=contacts.seal(expert_id, "email", data.contacts.email),
        available=data.available,
        unavailable_until=data.unavailable_until,
        status="active",
        version=1,
        created_by=actor.subject,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(expert)
    await uow.session.flush()  # the expert row first: the field index refers to it
    uow.session.add_all(ExpertField(expert_id=expert_id, field=f) for f in data.fields)
    uow.emit(events.expert_event("registered", expert, []))
    await uow.commit()
    return expert


async def _visible_expert(
    session: AsyncSession, expert_id: str, actor: Principal, *, for_update: bool = False
) -> Expert:
    """The expert, or 404 when absent or outside the caller's region (existence does not
    leak across regions)."""
    query = select(Expert).where(col(Expert.id) == expert_id)
    if for_update:
        # Row lock on PostgreSQL so concurrent changes take versions one after another;
        # SQLite serialises writers already.
        query = query.with_for_update()
    expert = (await session.execute(query)).scalar_one_or_none()
    if expert is None or not actor.covers(expert.region_code):
        raise NotFound(detail=f"No expert {expert_id}.")
    return expert


async def get_expert(*, db: Database, expert_id: str, actor: Principal) -> Expert:
    async with db.session() as session:
        return await _visible_expert(session, expert_id, actor)


def _scope(actor_region: str, region: str | None) -> str | None:
    """The region to list: the overlap of the asked region and the caller's; None if none."""
    if not region or region.startswith(actor_region):
        return region or actor_region
    if actor_region.startswith(region):
        return actor_region  # asked wider than allowed: the caller's own area
    return None


async def list_experts(
    *,
    db: Database,
    actor: Principal,
    field: str | None,
    region: str | None,
    available: bool | None,
    status: str | None,
    sort: str,
    today: date,
    limit: int,
    offset: int,
) -> tuple[Sequence[Expert], int]:
    """Experts in the caller's region (and inside `region`), filtered.

    `available` follows `rules.available_on` for `today`: active, switched on, and not
    within a temporary absence.
    """
    scope = _scope(actor.region, region)
    if scope is None:
        return [], 0  # outside one's region: nothing, rather than an error that leaks
    query = select(Expert)
    if scope:
        query = query.where(col(Expert.region_code).startswith(scope))
    if field:
        query = query.where(
            col(Expert.id).in_(select(ExpertField.expert_id).where(ExpertField.field == field))
        )
    if status:
        query = query.where(col(Expert.status) == status)
    if available is not None:
        can_serve = and_(
            col(Expert.status) == "active",
            col(Expert.available).is_(True),
            or_(col(Expert.unavailable_until).is_(None), col(Expert.unavailable_until) < today),
        )
        query = query.where(can_serve if available else not_(can_serve))
    async with db.session() as session:
        return await fetch_page(
            session, query, order_by=[SORTS[sort], col(Expert.id)], limit=limit, offset=offset
        )


async def _affiliations(session: AsyncSession, expert_id: str) -> list[ExpertAffiliation]:
    rows = await session.execute(
        select(ExpertAffiliation)
        .where(col(ExpertAffiliation.expert_id) == expert_id)
        .order_by(col(ExpertAffiliation.started_on), col(ExpertAffiliation.id))
    )
    return list(rows.scalars().all())


async def _changed(uow: UnitOfWork, expert: Expert) -> None:
    """A new version and its `updated` event (with the affiliations as they now stand)."""
    expert.version += 1
    expert.updated_at = datetime.now(UTC)
    await uow.session.flush()
    affiliations = await _affiliations(uow.session, expert.id)
    uow.emit(events.expert_event("updated", expert, affiliations))


def _apply_contacts(expert: Expert, given: ExpertContacts, contacts: ExpertContactsCipher) -> bool:
    changed = False
    for name in CONTACT_FIELDS:
        if name not in given.model_fields_set:
            continue
        column = f"{name}_enc"
        value = getattr(given, name)
        if contacts.open(expert.id, name, getattr(expert, column)) == value:
            continue
        setattr(expert, column, contacts.seal(expert.id, name, value))
        changed = True
    return changed


async def update_expert(
    *,
    uow: UnitOfWork,
    expert_id: str,
    data: ExpertUpdate,
    actor: Principal,
    contacts: ExpertContactsCipher,
) -> Expert:
    """Apply the given changes; no change, no new version and no event."""
    expert = await _visible_expert(uow.session, expert_id, actor, for_update=True)
    changes = data.model_dump(exclude_unset=True, exclude={"contacts"})
    changed = False
    if "fields" in changes:
        _check_fields(_pack(expert.region_code), changes["fields"])
        if changes["fields"] != expert.fields:
            expert.fields = list(changes["fields"])
            # Rewrite the search index; flush the delete first so re-added keys don't clash.
            await uow.session.execute(
                delete(ExpertField).where(col(ExpertField.expert_id) == expert.id)
            )
            await uow.session.flush()
            uow.session.add_all(ExpertField(expert_id=expert.id, field=f) for f in expert.fields)
            changed = True
        del changes["fields"]
    for name, value in changes.items():
        if getattr(expert, name) != value:
            setattr(expert, name, value)
            changed = True
    if data.contacts is not None:
        changed = _apply_contacts(expert, data.contacts, contacts) or changed
    if changed:
        await _changed(uow, expert)
    await uow.commit()  # also when unchanged: a rollback would expire what we return
    return expert


async def _organisation_id(session: AsyncSession, uscc: str) -> str | None:
    row = await session.execute(select(Organisation.id).where(Organisation.uscc == uscc))
    return row.scalar_one_or_none()


async def add_affiliation(
    *, uow: UnitOfWork, expert_id: str, data: AffiliationCreate, actor: Principal
) -> ExpertAffiliation:
    expert = await _visible_expert(uow.session, expert_id, actor, for_update=True)
    errors = rules.period_errors(data.started_on, data.ended_on)
    if errors:
        raise InvalidInput(detail="The affiliation's dates are inverted.", errors=errors)
    for existing in await _affiliations(uow.session, expert.id):
        if (existing.organisation_uscc, existing.kind, existing.started_on) == (
            data.organisation_uscc,
            data.kind,
            data.started_on,
        ):
            raise Conflict(
                detail="This affiliation is already recorded.",
                extra={"existing_id": existing.id},
            )
    affiliation = ExpertAffiliation(
        id=new_id(),
        expert_id=expert.id,
        organisation_uscc=data.organisation_uscc,
        # Filled later from `organisation.registered` when the library does not know it yet.
        organisation_id=await _organisation_id(uow.session, data.organisation_uscc),
        kind=data.kind,
        started_on=data.started_on,
        ended_on=data.ended_on,
        recorded_by=actor.subject,
        recorded_at=datetime.now(UTC),
    )
    uow.session.add(affiliation)
    await _changed(uow, expert)
    await uow.commit()
    return affiliation


async def end_affiliation(
    *,
    uow: UnitOfWork,
    expert_id: str,
    affiliation_id: str,
    ended_on: date | None,
    actor: Principal,
) -> ExpertAffiliation:
    """Set (or clear) the end date of an affiliation."""
    expert = await _visible_expert(uow.session, expert_id, actor, for_update=True)
    affiliation = await uow.session.get(ExpertAffiliation, affiliation_id)
    if affiliation is None or affiliation.expert_id != expert.id:
        raise NotFound(detail=f"No affiliation {affiliation_id} of expert {expert_id}.")
    errors = rules.period_errors(affiliation.started_on, ended_on)
    if errors:
        raise InvalidInput(detail="The affiliation's dates are inverted.", errors=errors)
    if affiliation.ended_on != ended_on:
        affiliation.ended_on = ended_on
        await _changed(uow, expert)
    await uow.commit()
    return affiliation


async def list_affiliations(
    *, db: Database, expert_id: str, actor: Principal, limit: int, offset: int
) -> tuple[Sequence[ExpertAffiliation], int]:
    async with db.session() as session:
        await _visible_expert(session, expert_id, actor)
        query = select(ExpertAffiliation).where(col(ExpertAffiliation.expert_id) == expert_id)
        return await fetch_page(
            session,
            query,
            order_by=[col(ExpertAffiliation.started_on), col(ExpertAffiliation.id)],
            limit=limit,
            offset=offset,
        )
