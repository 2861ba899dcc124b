"""What the providers service publishes and consumes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import select

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.providers.models import Organisation

SERVICE = "providers"

# Credit decision verb → the organisation's status in the library.
CREDIT_STATUS: dict[str, str] = {
    "admitted": "admitted",
    "rejected": "rejected",
    "suspended": "suspended",
    "exited": "exited",
    "blacklisted": "blacklisted",
    "reinstated": "admitted",
}


def organisation_registered(org: Organisation) -> Event:
    return new_event(
        service=SERVICE,
        entity="organisation",
        verb="registered",
        subject=org.id,
        data={
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
        },
    )


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
    org = (
        await uow.session.execute(select(Organisation).where(Organisation.id == org_id))
    ).scalar_one_or_none()
    if org is None:
        raise PermanentError(f"credit decided on unknown organisation {org_id}")
    if version <= org.status_version:
        return  # stale or replayed decision
    org.status = status
    org.status_version = version
    reason = event.data.get("summary") or event.data.get("reason")
    org.status_reason = str(reason)[:2000] if reason else None
    org.updated_at = datetime.now(UTC)


subscriptions = [
    Subscription(
        durable="providers-credit-decisions",
        stream="CREDIT",
        subjects=["sa.credit.organisation.>"],
        handler=on_credit_decision,
    )
]
