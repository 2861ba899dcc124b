"""What the credit service publishes and consumes."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.credit.models import AdmissionReview, OrganisationRecord

SERVICE = "credit"


def admission_decided(record: OrganisationRecord, review: AdmissionReview, summary: str) -> Event:
    """`sa.credit.organisation.admitted` or `.rejected`, with every reason and its clause."""
    return new_event(
        service=SERVICE,
        entity="organisation",
        verb=review.outcome,
        subject=record.organisation_id,
        data={
            "organisation_id": record.organisation_id,
            "decision_version": record.decision_version,
            "review_id": review.id,
            "outcome": review.outcome,
            "reasons": review.reasons,
            "summary": summary,
            "pack": review.pack,
            "decided_at": review.decided_at,
        },
    )


async def on_organisation_registered(uow: UnitOfWork, event: Event) -> None:
    """A new organisation in the library: record it and review its admission (准入)."""
    from services.credit import service

    data = event.data
    try:
        record = OrganisationRecord(
            organisation_id=str(data["organisation_id"]),
            uscc=str(data["uscc"]),
            name=str(data["name"]),
            kind=str(data["kind"]),
            region_code=str(data["region_code"]),
            pack=str(data["pack"]),
            qualifications={
                str(k): bool(v) for k, v in dict(data.get("qualifications") or {}).items()
            },
            updated_at=datetime.now(UTC),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"organisation.registered without required fields: {exc}") from exc
    await service.admit_new_organisation(uow=uow, record=record)


subscriptions = [
    Subscription(
        durable="credit-organisation-registrations",
        stream="PROVIDERS",
        subjects=["sa.providers.organisation.registered"],
        handler=on_organisation_registered,
    )
]
