"""What the matching service publishes and consumes."""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.matching.library.service import apply_offer
from services.matching.models import Match, NeedView, OrganisationView

SERVICE = "matching"


def need_matched(match: Match) -> Event:
    return new_event(
        service=SERVICE,
        entity="need",
        verb="matched",
        subject=match.need_id,
        data={
            "match_id": match.id,
            "need_id": match.need_id,
            "recipient_ref": match.recipient_ref,
            "organisation_id": match.organisation_id,
            "region_code": match.region_code,
            "service_code": match.service_code,
            "score": match.score,
            "run_id": match.run_id,
            "matched_at": match.created_at,
        },
    )


async def _organisation(uow: UnitOfWork, organisation_id: str) -> OrganisationView:
    view = await uow.session.get(OrganisationView, organisation_id)
    if view is None:
        view = OrganisationView(organisation_id=organisation_id, updated_at=datetime.now(UTC))
        uow.session.add(view)
    return view


async def on_organisation_registered(uow: UnitOfWork, event: Event) -> None:
    data = event.data
    try:
        view = await _organisation(uow, str(data["organisation_id"]))
        # Shared with `organisation.updated` (library.events); guarded by the offer version.
        apply_offer(view, data)
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"organisation.registered without usable offer: {exc}") from exc


# Credit verb → standing in the market.
CREDIT_STATUS = {
    "admitted": "admitted",
    "rejected": "rejected",
    "suspended": "suspended",
    "exited": "exited",
    "blacklisted": "blacklisted",
    "reinstated": "admitted",
}


async def on_credit_decision(uow: UnitOfWork, event: Event) -> None:
    status = CREDIT_STATUS.get(event.nats_subject.rsplit(".", 1)[1])
    if status is None:
        return
    try:
        organisation_id = str(event.data["organisation_id"])
        version = int(event.data["decision_version"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(
            f"credit decision without organisation_id/decision_version: {exc}"
        ) from exc
    view = await _organisation(uow, organisation_id)
    if version <= view.status_version:
        return  # an older decision arriving late
    view.status = status
    view.status_version = version
    view.updated_at = datetime.now(UTC)


async def on_need_opened(uow: UnitOfWork, event: Event) -> None:
    data = event.data
    try:
        need = NeedView(
            need_id=str(data["need_id"]),
            recipient_ref=str(data["recipient_ref"]),
            region_code=str(data["region_code"]),
            service_code=str(data["service_code"]),
            urgency=int(data["urgency"]),
            categories=[str(c) for c in data.get("categories", [])],
            opened_at=datetime.fromisoformat(str(data["opened_at"])),
            status="open",
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentError(f"need.opened without required fields: {exc}") from exc
    if await uow.session.get(NeedView, need.need_id) is None:
        uow.session.add(need)


subscriptions = [
    Subscription(
        durable="matching-organisations",
        stream="PROVIDERS",
        subjects=["sa.providers.organisation.registered"],
        handler=on_organisation_registered,
    ),
    Subscription(
        durable="matching-credit-decisions",
        stream="CREDIT",
        subjects=["sa.credit.organisation.>"],
        handler=on_credit_decision,
    ),
    Subscription(
        durable="matching-needs",
        stream="NEEDS",
        subjects=["sa.needs.need.opened"],
        handler=on_need_opened,
    ),
]
