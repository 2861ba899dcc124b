"""The consumer that keeps credit's public feeds current (stream CREDIT, durable
`credit-public`).

Consumed: `sa.credit.organisation.blacklisted` and `sa.credit.blacklist.expired | repaired |
overturned` {organisation_id} → the organisation's listings are rendered again;
`sa.credit.evaluation.recorded` {evaluation_id} → the published evaluation is rendered.
Rendering reads the current rows, so a late or repeated event changes nothing. Published:
nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork
from services.credit.public import service


async def on_public_change(uow: UnitOfWork, event: Event) -> None:
    now = datetime.now(UTC)
    entity = event.nats_subject.split(".")[2]
    if entity == "evaluation":
        evaluation_id = event.data.get("evaluation_id")
        if not isinstance(evaluation_id, str) or not evaluation_id:
            raise PermanentError(f"{event.type} without evaluation_id")
        await service.refresh_evaluation(uow.session, evaluation_id, now=now)
        return
    organisation_id = event.data.get("organisation_id")
    if not isinstance(organisation_id, str) or not organisation_id:
        raise PermanentError(f"{event.type} without organisation_id")
    await service.refresh_listings(uow.session, organisation_id, now=now)


subscriptions = [
    Subscription(
        durable="credit-public",
        stream="CREDIT",
        subjects=[
            "sa.credit.organisation.blacklisted",
            "sa.credit.blacklist.>",
            "sa.credit.evaluation.recorded",
        ],
        handler=on_public_change,
    )
]
