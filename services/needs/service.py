"""Use cases of the needs service (no HTTP here)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from libs.common.auth import Principal
from libs.common.crypto import BlindIndex, FieldCipher, KeyRing
from libs.common.db import Database
from libs.common.errors import Conflict, InvalidInput, NotFound, invalid
from libs.common.events import UnitOfWork
from libs.common.policy import pack_for_region
from libs.common.validators import mask_resident_id
from services.needs import events, rules
from services.needs.models import Need, Recipient
from services.needs.schemas import NeedCreate, RecipientCreate, RecipientPublic
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


def masked(recipient: Recipient, pd: PersonalData) -> RecipientPublic:
    id_number = pd.open(recipient.ref, "id_number", recipient.id_number_enc) or ""
    name = pd.open(recipient.ref, "name", recipient.name_enc) or ""
    return RecipientPublic(
        ref=recipient.ref,
        id_number_masked=mask_resident_id(id_number),
        name_masked=rules.mask_name(name),
        region_code=recipient.region_code,
        categories=recipient.categories,
        created_at=recipient.created_at,
    )


async def register_recipient(
    *, uow: UnitOfWork, data: RecipientCreate, actor: Principal, pd: PersonalData
) -> Recipient:
    actor.require_region(data.region_code)
    try:
        pack = pack_for_region(data.region_code)
    except LookupError as exc:
        raise invalid("body.region_code", str(exc)) from exc
    errors = rules.category_errors(pack, data.categories)
    if errors:
        raise InvalidInput(detail="Unknown recipient categories; see `errors`.", errors=errors)
    index = pd.index.compute(data.id_number, domain=ID_INDEX_DOMAIN)
    existing = (
        await uow.session.execute(select(Recipient).where(Recipient.id_number_index == index))
    ).scalar_one_or_none()
    if existing is not None:
        raise _duplicate(existing, actor)
    ref = str(uuid.uuid4())
    now = datetime.now(UTC)
    recipient = Recipient(
        ref=ref,
        region_code=data.region_code,
        categories=list(data.categories),
        id_number_enc=pd.seal(ref, "id_number", data.id_number) or "",
        id_number_index=index,
        name_enc=pd.seal(ref, "name", data.name) or "",
        phone_enc=pd.seal(ref, "phone", data.phone),
        address_enc=pd.seal(ref, "address", data.address),
        created_by=actor.subject,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(recipient)
    try:
        await uow.session.flush()
    except IntegrityError as exc:  # the same person registered concurrently
        raise Conflict(detail="This person is already registered.") from exc
    await uow.commit()
    return recipient


def _duplicate(existing: Recipient, actor: Principal) -> Conflict:
    # The existing reference is shown only to a caller who may see that recipient.
    extra = {"existing_ref": existing.ref} if actor.covers(existing.region_code) else {}
    return Conflict(detail="This person is already registered.", extra=extra)


async def get_recipient(*, db: Database, ref: str, actor: Principal) -> Recipient:
    async with db.session() as session:
        recipient = await session.get(Recipient, ref)
    # Out of scope reads as absent, so existence does not leak across regions.
    if recipient is None or not actor.covers(recipient.region_code):
        raise NotFound(detail=f"No recipient {ref}.")
    return recipient


async def open_need(*, uow: UnitOfWork, data: NeedCreate, actor: Principal) -> Need:
    recipient = await uow.session.get(Recipient, data.recipient_ref)
    if recipient is None or not actor.covers(recipient.region_code):
        raise invalid("body.recipient_ref", "no such recipient in your region")
    pack = pack_for_region(recipient.region_code)
    errors = rules.service_errors(pack, data.service_code)
    if errors:
        raise InvalidInput(
            detail="The service cannot be opened as a need; see `errors`.", errors=errors
        )
    now = datetime.now(UTC)
    need = Need(
        id=str(uuid.uuid4()),
        recipient_ref=recipient.ref,
        region_code=recipient.region_code,
        service_code=data.service_code,
        urgency=data.urgency,
        categories=list(recipient.categories),
        status="open",
        created_by=actor.subject,
        created_at=now,
        updated_at=now,
    )
    uow.session.add(need)
    uow.emit(events.need_opened(need))
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
        total = (
            await session.execute(select(func.count()).select_from(query.subquery()))
        ).scalar_one()
        rows = (
            (
                await session.execute(
                    query.order_by(col(Need.created_at), col(Need.id)).limit(limit).offset(offset)
                )
            )
            .scalars()
            .all()
        )
    return rows, int(total)
