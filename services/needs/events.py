"""What the needs service publishes and consumes.

Events never carry a direct identifier (name, ID number, phone, address): only the
pseudonymous `recipient_ref`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.needs.models import Need

SERVICE = "needs"


def need_opened(need: Need) -> Event:
    return new_event(
        service=SERVICE,
        entity="need",
        verb="opened",
        subject=need.id,
        data={
            "need_id": need.id,
            "recipient_ref": need.recipient_ref,
            "region_code": need.region_code,
            "service_code": need.service_code,
            "urgency": need.urgency,
            "categories": need.categories,
            "opened_at": need.created_at,
        },
    )


async def on_need_matched(uow: UnitOfWork, event: Event) -> None:
    """Matching linked the need to a provider: open → matched."""
    try:
        need_id = str(event.data["need_id"])
        organisation_id = str(event.data["organisation_id"])
    except KeyError as exc:
        raise PermanentError(f"need.matched without {exc}") from exc
    need = await uow.session.get(Need, need_id)
    if need is None:
        raise PermanentError(f"matched need {need_id} is unknown here")
    if need.status not in ("open", "matched"):
        return  # cancelled or already in service: the match arrives too late to matter
    need.status = "matched"
    need.matched_organisation_id = organisation_id
    need.match_id = event.data.get("match_id")
    need.updated_at = datetime.now(UTC)


subscriptions = [
    Subscription(
        durable="needs-matches",
        stream="MATCHING",
        subjects=["sa.matching.need.matched"],
        handler=on_need_matched,
    )
]
