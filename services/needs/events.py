"""What the needs service publishes and consumes.

Events never carry a direct identifier (name, ID number, phone, address): only the
pseudonymous `recipient_ref`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.needs import rules
from services.needs.models import Need, OpenedNeed

SERVICE = "needs"
log = logging.getLogger(__name__)


def _need_data(need: Need | OpenedNeed) -> dict[str, object]:
    return {
        "need_id": need.id,
        "recipient_ref": need.recipient_ref,
        "region_code": need.region_code,
        "service_code": need.service_code,
        "urgency": need.urgency,
        "categories": need.categories,
        "quantity": need.quantity,
        "unit": need.unit,
        "period_months": need.period_months,
    }


def need_opened(need: Need | OpenedNeed, *, trace: Mapping[str, str] | None = None) -> Event:
    return new_event(
        service=SERVICE,
        entity="need",
        verb="opened",
        subject=need.id,
        data={**_need_data(need), "opened_at": need.created_at},
        trace=trace,
    )


def need_cancelled(need: Need) -> Event:
    return new_event(
        service=SERVICE,
        entity="need",
        verb="cancelled",
        subject=need.id,
        data={**_need_data(need), "reason": need.status_reason, "cancelled_at": need.updated_at},
    )


async def on_need_moved(uow: UnitOfWork, event: Event) -> None:
    """Matching linked, re-linked or started serving a need (need.matched|reassigned,
    service.delivered): move its status as the lifecycle allows."""
    kind = event.nats_subject.split(".", 2)[2]  # need.matched, need.reassigned, ...
    try:
        need_id = str(event.data["need_id"])
    except KeyError as exc:
        raise PermanentError(f"{kind} without need_id") from exc
    need = await uow.session.get(Need, need_id)
    if need is None:
        raise PermanentError(f"{kind} for need {need_id}, unknown here")
    data = event.data
    organisation_id = data.get("organisation_id") or data.get("to_organisation_id")
    # A charity resource serves too: a takeover onto one names `to_resource_id` and no
    # organisation, and the need stays matched (only a reassignment to nobody reopens it).
    resource_id = data.get("resource_id") or data.get("to_resource_id")
    try:
        new_status = rules.status_after_event(
            need.status, kind, new_provider=bool(organisation_id or resource_id)
        )
    except rules.InvalidTransition:
        # A late or stale event (e.g. a match arriving after cancellation): nothing to do.
        log.info("need %s: %s ignored in status %s", need_id, kind, need.status)
        return
    need.status = new_status
    if kind in ("need.matched", "need.reassigned"):
        need.matched_organisation_id = str(organisation_id) if organisation_id else None
        need.match_id = data.get("match_id")
    need.updated_at = datetime.now(UTC)


subscriptions = [
    Subscription(
        durable="needs-matches",
        stream="MATCHING",
        subjects=[
            "sa.matching.need.matched",
            "sa.matching.need.reassigned",
            "sa.matching.service.delivered",
        ],
        handler=on_need_moved,
    )
]
