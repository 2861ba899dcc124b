"""What the providers service publishes and consumes about experts (专家库).

Published: `sa.providers.expert.registered` and `sa.providers.expert.updated`, each carrying
the whole public state of the expert with its affiliations, so matching can draw panels and
apply recusal from its own projection. `version` grows with every change: a consumer keeps
the highest it has seen and ignores anything older. Contact details never travel.

Consumed: `sa.providers.organisation.registered`, to link affiliations recorded by credit
code before the organisation joined the library.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.providers.experts.models import Expert, ExpertAffiliation

SERVICE = "providers"
ENTITY = "expert"


def affiliation_data(a: ExpertAffiliation) -> dict[str, Any]:
    return {
        "affiliation_id": a.id,
        "organisation_uscc": a.organisation_uscc,
        "organisation_id": a.organisation_id,
        "kind": a.kind,
        "started_on": a.started_on,
        "ended_on": a.ended_on,
    }


def expert_event(verb: str, expert: Expert, affiliations: Sequence[ExpertAffiliation]) -> Event:
    """`sa.providers.expert.<verb>` (registered | updated): the expert's public state."""
    ordered = sorted(affiliations, key=lambda a: (a.started_on, a.id))
    return new_event(
        service=SERVICE,
        entity=ENTITY,
        verb=verb,
        subject=expert.id,
        data={
            "expert_id": expert.id,
            "name": expert.name,
            "region_code": expert.region_code,
            "fields": list(expert.fields),
            "available": expert.available,
            "unavailable_until": expert.unavailable_until,
            "status": expert.status,
            "title": expert.title,
            "version": expert.version,
            "affiliations": [affiliation_data(a) for a in ordered],
        },
    )


async def on_organisation_registered(uow: UnitOfWork, event: Event) -> None:
    """Fill `organisation_id` of affiliations naming the newly registered credit code.

    Each expert touched gets a new version and an `updated` event. Replays find nothing
    left to fill, so they change nothing.
    """
    try:
        uscc = str(event.data["uscc"])
        org_id = str(event.data["organisation_id"])
    except (KeyError, TypeError) as exc:
        raise PermanentError(f"organisation event without uscc/organisation_id: {exc}") from exc
    rows = (
        await uow.session.execute(
            select(ExpertAffiliation).where(
                col(ExpertAffiliation.organisation_uscc) == uscc,
                col(ExpertAffiliation.organisation_id).is_(None),
            )
        )
    ).scalars()
    expert_ids = set()
    for affiliation in rows.all():
        affiliation.organisation_id = org_id
        expert_ids.add(affiliation.expert_id)
    if not expert_ids:
        return
    await uow.session.flush()
    now = datetime.now(UTC)
    for expert_id in sorted(expert_ids):
        expert = (
            await uow.session.execute(
                select(Expert).where(col(Expert.id) == expert_id).with_for_update()
            )
        ).scalar_one()
        expert.version += 1
        expert.updated_at = now
        affiliations = (
            await uow.session.execute(
                select(ExpertAffiliation).where(col(ExpertAffiliation.expert_id) == expert_id)
            )
        ).scalars()
        uow.emit(expert_event("updated", expert, list(affiliations.all())))


subscriptions: list[Subscription] = [
    Subscription(
        durable="providers-expert-affiliations",
        stream="PROVIDERS",
        subjects=["sa.providers.organisation.registered"],
        handler=on_organisation_registered,
    )
]
