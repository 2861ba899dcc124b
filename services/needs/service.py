"""Use cases of the needs service (no HTTP here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from libs.common.auth import Principal, Role
from libs.common.crypto import BlindIndex, FieldCipher, KeyRing
from libs.common.db import Database
from libs.common.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, invalid
from libs.common.events import UnitOfWork
from libs.common.ids import new_id, new_person_ref
from libs.common.pagination import fetch_page
from libs.common.policy import pack_for_region
from libs.common.validators import CHINA_TZ, mask_resident_id
from services.needs import events, rules
from services.needs.models import (
    ConsentRecord,
    Need,
    OpenedNeed,
    PersonalDataAccess,
    Recipient,
    RecipientChange,
)
from services.needs.schemas import (
    ConsentIn,
    ConsentRecordIn,
    NeedCreate,
    NeedItem,
    PersonalDataPublic,
    RecipientCreate,
    RecipientPublic,
    RecipientUpdate,
)
from services.needs.settings import NeedsSettings

ID_INDEX_DOMAIN = "recipient.id_number"


@dataclass(frozen=True)
class PersonalData:
    """Encryption and blind indexing of recipients' direct identifiers."""

    cipher: FieldCipher
    index: BlindIndex

    @classmethod
    def from_settings(cls, settings: NeedsSettings) -> PersonalData:
        return cls(
            cipher=FieldCipher(KeyRing.from_config(settings.data_keys)),
            index=BlindIndex.from_config(settings.blind_index_key),
        )

    def seal(self, recipient_ref: str, field: str, value: str | None) -> str | None:
        # The context binds a ciphertext to its row and field: copied elsewhere it won't open.
        return self.cipher.encrypt_optional(value, context=f"recipient.{field}:{recipient_ref}")

    def open(self, recipient_ref: str, field: str, token: str | None) -> str | None:
        return self.cipher.decrypt_optional(token, context=f"recipient.{field}:{recipient_ref}")


def mask_phone(phone: str) -> str:
    """13812345678 → 138****5678."""
    digits = phone.replace(" ", "").replace("-", "")
    return digits[:3] + "*" * max(len(digits) - 7, 1) + digits[-4:] if len(digits) > 7 else "****"


def masked(recipient: Recipient, pd: PersonalData) -> RecipientPublic:
    id_number = pd.open(recipient.ref, "id_number", recipient.id_number_enc) or ""
    name = pd.open(recipient.ref, "name", recipient.name_enc) or ""
    phone = pd.open(recipient.ref, "phone", recipient.phone_enc)
    return RecipientPublic(
        ref=recipient.ref,
        id_number_masked=mask_resident_id(id_number),
        name_masked=rules.mask_name(name),
        phone_masked=mask_phone(phone) if phone else None,
        region_code=recipient.region_code,
        categories=recipient.categories,
        status=recipient.status,
        household_size=recipient.household_size,
        disability_level=recipient.disability_level,
        self_care_tier=recipient.self_care_tier,
        has_guardian=recipient.guardian_name_enc is not None,
        version=recipient.version,
        created_at=recipient.created_at,
        updated_at=recipient.updated_at,
    )


async def register_recipient(
    *, uow: UnitOfWork, data: RecipientCreate, actor: Principal, pd: PersonalData
) -> Recipient:
    actor.require_region(data.region_code)
    try:
        pack = pack_for_region(data.region_code)
    except LookupError as exc:
        raise invalid("body.region_code", str(exc)) from exc
    today = datetime.now(CHINA_TZ).date()
    errors = rules.category_errors(pack, data.categories)
    errors += rules.guardian_errors(
        id_number=data.id_number,
        on=today,
        has_guardian=data.guardian is not None,
        guardian_consent=data.guardian is not None and data.guardian.consent,
    )
    if errors:
        raise InvalidInput(detail="The registration is incomplete; see `errors`.", errors=errors)
    index = pd.index.compute(data.id_number, domain=ID_INDEX_DOMAIN)
    existing = (
        await uow.session.execute(select(Recipient).where(Recipient.id_number_index == index))
    ).scalar_one_or_none()
    if existing is not None:
        raise _duplicate(existing, actor)
    ref = new_person_ref()
    now = datetime.now(UTC)
    guardian = data.guardian
    recipient = Recipient(
        ref=ref,
        region_code=data.region_code,
        categories=list(data.categories),
        id_number_enc=pd.seal(ref, "id_number", data.id_number) or "",
        id_number_index=index,
        name_enc=pd.seal(ref, "name", data.name) or "",
        phone_enc=pd.seal(ref, "phone", data.phone),
        address_enc=pd.seal(ref, "address", data.address),
        household_size=data.household_size,
        disability_level=data.disability_level,
        guardian_name_enc=pd.seal(ref, "guardian_name", guardian.name if guardian else None),
        guardian_phone_enc=pd.seal(ref, "guardian_phone", guardian.phone if guardian else None),
        guardian_relation=guardian.relation if guardian else None,
        created_by=actor.subject,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(recipient)
    try:
        await uow.session.flush()  # the recipient row first: consents refer to it
    except IntegrityError as exc:  # the same person registered concurrently
        raise Conflict(detail="This person is already registered.") from exc
    consents = list(data.consents)
    if guardian is not None and guardian.consent:
        consents.append(ConsentIn(purpose="registration for social assistance", basis="consent"))
    for consent in consents:
        uow.session.add(
            ConsentRecord(
                id=new_id(),
                recipient_ref=ref,
                purpose=consent.purpose,
                basis=consent.basis,
                given=consent.given,
                given_by="guardian" if guardian is not None else "recipient",
                recorded_by=actor.subject,
                recorded_at=now,
            )
        )
    await uow.commit()
    return recipient


def _duplicate(existing: Recipient, actor: Principal) -> Conflict:
    # The existing reference is shown only to a caller who may see that recipient.
    extra = {"existing_ref": existing.ref} if actor.covers(existing.region_code) else {}
    return Conflict(detail="This person is already registered.", extra=extra)


async def visible_recipient(session: AsyncSession, ref: str, actor: Principal) -> Recipient:
    """The recipient, or 404 when absent or outside the caller's region.

    Out of scope reads as absent, so existence does not leak across regions.
    """
    recipient = await session.get(Recipient, ref)
    if recipient is None or not actor.covers(recipient.region_code):
        raise NotFound(detail=f"No recipient {ref}.")
    return recipient


async def get_recipient(*, db: Database, ref: str, actor: Principal) -> Recipient:
    async with db.session() as session:
        return await visible_recipient(session, ref, actor)


# Who may see unmasked personal data, always with a stated purpose and an audit record:
# case workers of the purchasing civil-affairs bureau and platform operators.
REVEAL_ROLES = frozenset({Role.operator, Role.purchaser})
PERSONAL_FIELDS = ("id_number", "name", "phone", "address", "guardian_name", "guardian_phone")


async def reveal_personal_data(
    *, uow: UnitOfWork, ref: str, actor: Principal, purpose: str, pd: PersonalData
) -> PersonalDataPublic:
    """Unmasked identifiers for a stated purpose; the audit record commits with the read."""
    if actor.role not in REVEAL_ROLES:
        raise Forbidden(detail="Your role may not see unmasked personal data.")
    recipient = await visible_recipient(uow.session, ref, actor)
    access = PersonalDataAccess(
        id=new_id(),
        recipient_ref=ref,
        accessed_by=actor.subject,
        role=str(actor.role),
        region=actor.region,
        purpose=purpose,
        fields=list(PERSONAL_FIELDS),
        accessed_at=datetime.now(UTC),
    )
    uow.session.add(access)
    await uow.commit()  # no audit record, no data
    return PersonalDataPublic(
        ref=ref,
        id_number=pd.open(ref, "id_number", recipient.id_number_enc) or "",
        name=pd.open(ref, "name", recipient.name_enc) or "",
        phone=pd.open(ref, "phone", recipient.phone_enc),
        address=pd.open(ref, "address", recipient.address_enc),
        guardian_name=pd.open(ref, "guardian_name", recipient.guardian_name_enc),
        guardian_phone=pd.open(ref, "guardian_phone", recipient.guardian_phone_enc),
        access_id=access.id,
    )


SEALED_FIELDS = {"name", "phone", "address"}


async def update_recipient(
    *, uow: UnitOfWork, ref: str, data: RecipientUpdate, actor: Principal, pd: PersonalData
) -> Recipient:
    """Apply the given changes; every changed field is kept in the history."""
    recipient = await visible_recipient(uow.session, ref, actor)
    changes = data.model_dump(exclude_unset=True)
    if "region_code" in changes:
        actor.require_region(changes["region_code"])  # may not move someone out of reach
    if "categories" in changes:
        pack = pack_for_region(changes.get("region_code") or recipient.region_code)
        errors = rules.category_errors(pack, changes["categories"])
        if errors:
            raise InvalidInput(detail="Unknown recipient categories; see `errors`.", errors=errors)
    now = datetime.now(UTC)
    changed = []
    for field_name, value in changes.items():
        if field_name in SEALED_FIELDS:
            column = f"{field_name}_enc"
            old = getattr(recipient, column)
            if pd.open(ref, field_name, old) == value:
                continue
            new = pd.seal(ref, field_name, value)
            setattr(recipient, column, new)
            changed.append((field_name, old, new, True))
        else:
            old = getattr(recipient, field_name)
            if old == value:
                continue
            setattr(recipient, field_name, value)
            changed.append((field_name, _text(old), _text(value), False))
    if not changed:
        await uow.commit()  # nothing to write; a rollback would expire what we return
        return recipient
    recipient.version += 1
    recipient.updated_at = now
    for field_name, old, new, sealed in changed:
        uow.session.add(
            RecipientChange(
                id=new_id(),
                recipient_ref=ref,
                version=recipient.version,
                field_name=field_name,
                old_value=old,
                new_value=new,
                sealed=sealed,
                changed_by=actor.subject,
                changed_at=now,
            )
        )
    await uow.commit()
    return recipient


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


async def recipient_history(*, db: Database, ref: str, actor: Principal) -> list[RecipientChange]:
    async with db.session() as session:
        await visible_recipient(session, ref, actor)
        result = await session.execute(
            select(RecipientChange)
            .where(RecipientChange.recipient_ref == ref)
            .order_by(col(RecipientChange.version), col(RecipientChange.field_name))
        )
        return list(result.scalars().all())


async def list_recipients(
    *,
    db: Database,
    actor: Principal,
    region: str | None,
    category: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Recipient], int]:
    query = select(Recipient)
    scope = region if region and region.startswith(actor.region) else actor.region
    if region and not region.startswith(actor.region):
        # Asking outside one's region yields nothing rather than an error that leaks.
        return [], 0
    if scope:
        query = query.where(col(Recipient.region_code).startswith(scope))
    if status:
        query = query.where(Recipient.status == status)
    async with db.session() as session:
        rows = (
            (await session.execute(query.order_by(col(Recipient.created_at), col(Recipient.ref))))
            .scalars()
            .all()
        )
    if category:
        # JSON membership differs across databases; the page is cut after filtering.
        rows = [r for r in rows if category in r.categories]
    return rows[offset : offset + limit], len(rows)


async def record_consent(
    *, uow: UnitOfWork, ref: str, data: ConsentRecordIn, actor: Principal
) -> ConsentRecord:
    """Append a consent record; a withdrawal is a new record, never an edit of the old."""
    await visible_recipient(uow.session, ref, actor)
    record = ConsentRecord(
        id=new_id(),
        recipient_ref=ref,
        purpose=data.purpose,
        basis=data.basis,
        given=data.given,
        given_by=data.given_by,
        recorded_by=actor.subject,
        recorded_at=datetime.now(UTC),
    )
    uow.session.add(record)
    await uow.commit()
    return record


async def consents(*, db: Database, ref: str, actor: Principal) -> list[ConsentRecord]:
    async with db.session() as session:
        await visible_recipient(session, ref, actor)
        result = await session.execute(
            select(ConsentRecord)
            .where(ConsentRecord.recipient_ref == ref)
            .order_by(col(ConsentRecord.recorded_at), col(ConsentRecord.id))
        )
        return list(result.scalars().all())


async def access_log(
    *, db: Database, recipient_ref: str | None, limit: int, offset: int
) -> tuple[Sequence[PersonalDataAccess], int]:
    query = select(PersonalDataAccess)
    if recipient_ref:
        query = query.where(PersonalDataAccess.recipient_ref == recipient_ref)
    async with db.session() as session:
        return await fetch_page(
            session,
            query,
            order_by=[col(PersonalDataAccess.accessed_at).desc()],
            limit=limit,
            offset=offset,
        )


def need_values(
    *,
    recipient_ref: str,
    region_code: str,
    categories: Sequence[str],
    item: NeedItem,
    actor: Principal,
    assessment_id: str | None = None,
    field_path: str = "body.service_code",
) -> dict[str, Any]:
    """The columns of a new need item, checked against the recipient's province pack."""
    pack = pack_for_region(region_code)
    errors = [
        FieldError(field_path, e.reason) for e in rules.service_errors(pack, item.service_code)
    ]
    if errors:
        raise InvalidInput(
            detail="The service cannot be opened as a need; see `errors`.", errors=errors
        )
    now = datetime.now(UTC)
    return {
        "id": new_id(),
        "recipient_ref": recipient_ref,
        "region_code": region_code,
        "service_code": item.service_code,
        "urgency": item.urgency,
        "categories": list(categories),
        "quantity": item.quantity,
        "unit": item.unit,
        "period_months": item.period_months,
        "assessment_id": assessment_id,
        "status_reason": None,
        "status": "open",
        "matched_organisation_id": None,
        "match_id": None,
        "created_by": actor.subject,
        "created_at": now,
        "updated_at": now,
    }


def add_need(
    *,
    uow: UnitOfWork,
    recipient: Recipient,
    item: NeedItem,
    actor: Principal,
    assessment_id: str | None = None,
    field_path: str = "body.service_code",
) -> Need:
    """Open one need item (in the caller's transaction) and queue `need.opened`."""
    need = Need(
        **need_values(
            recipient_ref=recipient.ref,
            region_code=recipient.region_code,
            categories=recipient.categories,
            item=item,
            actor=actor,
            assessment_id=assessment_id,
            field_path=field_path,
        )
    )
    uow.session.add(need)
    uow.emit(events.need_opened(need))
    return need


@dataclass(frozen=True)
class NeedRequest:
    """One `POST /needs`: what was asked, by whom, and the request's trace context (the
    group-commit worker serves many requests, so each event takes its own request's)."""

    data: NeedCreate
    actor: Principal
    trace: Mapping[str, str] = field(default_factory=dict)


async def open_needs(
    uow: UnitOfWork, requests: Sequence[NeedRequest]
) -> list[OpenedNeed | Exception]:
    """Open the need items of concurrent requests together (a group-commit batch operation).

    One query reads every recipient named (only the columns a need copies: never the sealed
    personal fields) and one statement inserts every need. A request for a recipient out of
    the caller's region, or for a service the pack refuses, gets its error and writes
    nothing; the others go ahead.
    """
    refs = list({r.data.recipient_ref for r in requests})
    rows = await uow.session.execute(
        select(col(Recipient.ref), col(Recipient.region_code), col(Recipient.categories)).where(
            col(Recipient.ref).in_(refs)
        )
    )
    found = {ref: (region, categories) for ref, region, categories in rows}
    results: list[OpenedNeed | Exception] = []
    opened: list[dict[str, Any]] = []
    for request in requests:
        recipient = found.get(request.data.recipient_ref)
        if recipient is None or not request.actor.covers(recipient[0]):
            results.append(invalid("body.recipient_ref", "no such recipient in your region"))
            continue
        try:
            values = need_values(
                recipient_ref=request.data.recipient_ref,
                region_code=recipient[0],
                categories=recipient[1],
                item=NeedItem(service_code=request.data.service_code, urgency=request.data.urgency),
                actor=request.actor,
            )
        except InvalidInput as exc:
            results.append(exc)
            continue
        need = OpenedNeed(**values)
        opened.append(values)
        results.append(need)
        uow.emit(events.need_opened(need, trace=request.trace))
    if opened:
        # The table, not the mapped class: ORM bulk-insert bookkeeping has nothing to do here.
        await uow.session.execute(insert(Need.__table__), opened)  # type: ignore[attr-defined]
    return results


def cancel(uow: UnitOfWork, need: Need, reason: str) -> None:
    """open/matched/in_service → cancelled, in the caller's transaction, with its event."""
    rules.check_transition(need.status, "cancelled")
    need.status = "cancelled"
    need.status_reason = reason
    need.updated_at = datetime.now(UTC)
    uow.emit(events.need_cancelled(need))


async def cancel_need(*, uow: UnitOfWork, need_id: str, reason: str, actor: Principal) -> Need:
    need = await uow.session.get(Need, need_id)
    if need is None or not actor.covers(need.region_code):
        raise NotFound(detail=f"No need {need_id}.")
    try:
        cancel(uow, need, reason)
    except rules.InvalidTransition as exc:
        raise Conflict(detail=str(exc)) from exc
    await uow.commit()
    return need


async def get_need(*, db: Database, need_id: str, actor: Principal) -> Need:
    async with db.session() as session:
        need = await session.get(Need, need_id)
    if need is None or not actor.covers(need.region_code):
        raise NotFound(detail=f"No need {need_id}.")
    return need


async def list_needs(
    *,
    db: Database,
    actor: Principal,
    status: str | None,
    region: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Need], int]:
    query = select(Need)
    scope = region if region and region.startswith(actor.region) else actor.region
    if scope:
        query = query.where(col(Need.region_code).startswith(scope))
    if status:
        query = query.where(Need.status == status)
    async with db.session() as session:
        return await fetch_page(
            session,
            query,
            order_by=[col(Need.created_at), col(Need.id)],
            limit=limit,
            offset=offset,
        )
