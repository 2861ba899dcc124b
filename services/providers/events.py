"""What the providers service publishes and consumes about organisations (社会力量).

Published: `sa.providers.organisation.registered` and `.updated` — the organisation's offer
(kind, regions, capabilities, qualifications and evidence references), never staff names.
Consumed: credit's decisions (`sa.credit.organisation.*`), the only way status changes, and
credit's scores (`sa.credit.score.changed`); both guarded by credit's own version counters so
a late or replayed event never overwrites a newer one.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from sqlmodel import select

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.providers.models import Organisation

SERVICE = "providers"
ENTITY = "organisation"

# Credit decision verb → the organisation's status in the library.
CREDIT_STATUS: dict[str, str] = {
    "admitted": "admitted",
    "rejected": "rejected",
    "suspended": "suspended",
    "exited": "exited",
    "blacklisted": "blacklisted",
    "reinstated": "admitted",
}


def _offer(org: Organisation) -> dict[str, Any]:
    """The payload `registered` and `updated` share (credit reads uscc, kind, qualifications,
    pack; matching reads service_regions and services)."""
    return {
        "organisation_id": org.id,
        "uscc": org.uscc,
        "name": org.name,
        "kind": org.kind,
        "region_code": org.region_code,
        "service_regions": org.service_regions,
        "services": org.services,
        "qualifications": org.qualifications,
        "pack": org.pack,
        "registered_at": org.created_at,
        "registration_authority": org.registration_authority,
        "evidence": org.evidence,
        "version": org.version,
    }


def organisation_registered(org: Organisation) -> Event:
    """`sa.providers.organisation.registered`: a new social force; credit reviews admission."""
    return new_event(
        service=SERVICE, entity=ENTITY, verb="registered", subject=org.id, data=_offer(org)
    )


def organisation_updated(org: Organisation, changed: list[str]) -> Event:
    """`sa.providers.organisation.updated`: the registered shape at the new `version`, plus
    which fields changed; consumers keep the highest version they have seen."""
    data = _offer(org)
    data["changed"] = changed
    data["updated_at"] = org.updated_at
    return new_event(service=SERVICE, entity=ENTITY, verb="updated", subject=org.id, data=data)


async def _organisation(uow: UnitOfWork, org_id: str) -> Organisation:
    org = (
        await uow.session.execute(select(Organisation).where(Organisation.id == org_id))
    ).scalar_one_or_none()
    if org is None:
        # Credit only learns of organisations from our own `registered` event, committed here
        # before it was published: an unknown id is bad data, not a race.
        raise PermanentError(f"credit event about unknown organisation {org_id}")
    return org


async def on_credit_decision(uow: UnitOfWork, event: Event) -> None:
    """Status changes only here, from credit's decisions (sa.credit.organisation.*)."""
    verb = event.nats_subject.rsplit(".", 1)[1]
    status = CREDIT_STATUS.get(verb)
    if status is None:
        return  # a credit event about organisations that does not change library status
    try:
        org_id = str(event.data["organisation_id"])
        version = int(event.data["decision_version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(
            f"credit decision without organisation_id/decision_version: {exc}"
        ) from exc
    org = await _organisation(uow, org_id)
    if version <= org.status_version:
        return  # stale or replayed decision
    org.status = status
    org.status_version = version
    reason = event.data.get("summary") or event.data.get("reason")
    org.status_reason = str(reason)[:2000] if reason else None
    org.updated_at = datetime.now(UTC)


def _score_payload(data: dict[str, Any]) -> tuple[str, float | None, str | None, int]:
    try:
        org_id = str(data["organisation_id"])
        version = int(data["version"])
        raw_score, raw_grade = data["score"], data["grade"]
        score = None if raw_score is None else float(raw_score)
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"score.changed without usable fields: {exc}") from exc
    if score is not None and not math.isfinite(score):
        raise PermanentError(f"score.changed with a non-finite score {raw_score!r}")
    grade = None if raw_grade is None else str(raw_grade)
    if grade is not None and not 1 <= len(grade) <= 10:
        raise PermanentError(f"score.changed with an unusable grade {raw_grade!r}")
    return org_id, score, grade, version


async def on_score_changed(uow: UnitOfWork, event: Event) -> None:
    """Credit's score and grade (信用等级), shown and searched in the library.

    `version` is credit's score counter: an older score arriving late is ignored.
    """
    org_id, score, grade, version = _score_payload(event.data)
    org = await _organisation(uow, org_id)
    if version <= org.score_version:
        return  # stale or replayed score
    org.credit_score = score
    org.credit_grade = grade
    org.score_version = version
    org.updated_at = datetime.now(UTC)


subscriptions = [
    Subscription(
        durable="providers-credit-decisions",
        stream="CREDIT",
        subjects=["sa.credit.organisation.>"],
        handler=on_credit_decision,
    ),
    Subscription(
        durable="providers-credit-scores",
        stream="CREDIT",
        subjects=["sa.credit.score.changed"],
        handler=on_score_changed,
    ),
]
