"""What the matching service consumes about the providers' library and credit scores.

Consumed (durable pull consumers; each effect guarded by the producer's `version`):
- stream PROVIDERS `sa.providers.project.published` → ProjectView upserted;
  `sa.providers.project.cancelled` → ProjectView cancelled, and every tender of the project
  still open is cancelled (`sa.matching.tender.cancelled`);
- `sa.providers.expert.registered|updated` → ExpertView (fields, availability, affiliations
  for recusal);
- `sa.providers.resource.*` (offered, withdrawn, exhausted, expired, updated) → ResourceView;
- `sa.providers.organisation.updated` → OrganisationView's offer (the `registered` handler in
  services/matching/events.py applies the same offer through `service.apply_offer`);
- stream CREDIT `sa.credit.score.changed` → OrganisationView credit score and grade.

Nothing is published here except the tender cancellations a project cancellation causes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork
from services.matching.library import service
from services.matching.library.service import BadPayload
from services.matching.reconsider import reconsider
from services.matching.tenders import service as tenders


async def on_project_published(uow: UnitOfWork, event: Event) -> None:
    try:
        await service.upsert_project(uow.session, event.data)
    except BadPayload as exc:
        raise PermanentError(f"project.published: {exc}") from exc


async def on_project_cancelled(uow: UnitOfWork, event: Event) -> None:
    try:
        view = await service.cancel_project(uow.session, event.data)
    except BadPayload as exc:
        raise PermanentError(f"project.cancelled: {exc}") from exc
    if view is None:
        return  # stale: a newer state of the project is already applied
    reason = str(event.data.get("reason") or "the purchasing project was cancelled")
    await tenders.cancel_tenders_of_project(
        uow, project_id=view.project_id, reason=f"project cancelled: {reason}", now=_now()
    )


async def on_project_event(uow: UnitOfWork, event: Event) -> None:
    """One consumer for both project subjects keeps them in stream order when it can."""
    if event.nats_subject.endswith(".cancelled"):
        await on_project_cancelled(uow, event)
    else:
        await on_project_published(uow, event)


async def on_expert(uow: UnitOfWork, event: Event) -> None:
    try:
        await service.upsert_expert(uow.session, event.data)
    except BadPayload as exc:
        raise PermanentError(f"{event.nats_subject}: {exc}") from exc


async def on_resource(uow: UnitOfWork, event: Event) -> None:
    try:
        view = await service.upsert_resource(uow.session, event.data)
    except BadPayload as exc:
        raise PermanentError(f"{event.nats_subject}: {exc}") from exc
    if view is not None and view.status == "offered" and view.remaining > 0:
        # Offered, or units back: needs already left unmatched there may take them.
        await reconsider(uow.session, view.regions)


async def on_organisation_updated(uow: UnitOfWork, event: Event) -> None:
    try:
        organisation_id = str(event.data["organisation_id"])
        view = await service.organisation_view(uow.session, organisation_id)
        service.apply_offer(view, event.data)
    except (KeyError, BadPayload) as exc:
        raise PermanentError(f"organisation.updated: {exc}") from exc


async def on_score_changed(uow: UnitOfWork, event: Event) -> None:
    try:
        await service.apply_score(uow.session, event.data)
    except BadPayload as exc:
        raise PermanentError(f"score.changed: {exc}") from exc


async def on_evaluation_recorded(uow: UnitOfWork, event: Event) -> None:
    try:
        await service.apply_satisfaction(uow.session, event.data)
    except (KeyError, BadPayload) as exc:
        raise PermanentError(f"evaluation.recorded: {exc}") from exc


def _now() -> datetime:
    return datetime.now(UTC)


subscriptions: list[Subscription] = [
    Subscription(
        durable="matching-library-projects",
        stream="PROVIDERS",
        subjects=["sa.providers.project.published", "sa.providers.project.cancelled"],
        handler=on_project_event,
    ),
    Subscription(
        durable="matching-library-experts",
        stream="PROVIDERS",
        subjects=["sa.providers.expert.registered", "sa.providers.expert.updated"],
        handler=on_expert,
    ),
    Subscription(
        durable="matching-library-resources",
        stream="PROVIDERS",
        # offered | withdrawn | exhausted | expired | updated (units released come back)
        subjects=["sa.providers.resource.>"],
        handler=on_resource,
    ),
    Subscription(
        durable="matching-organisation-updates",
        stream="PROVIDERS",
        subjects=["sa.providers.organisation.updated"],
        handler=on_organisation_updated,
    ),
    Subscription(
        durable="matching-credit-scores",
        stream="CREDIT",
        subjects=["sa.credit.score.changed"],
        handler=on_score_changed,
    ),
    Subscription(
        durable="matching-credit-evaluations",
        stream="CREDIT",
        subjects=["sa.credit.evaluation.recorded"],
        handler=on_evaluation_recorded,
    ),
]
