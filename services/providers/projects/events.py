"""What the providers service publishes and consumes about projects and funds.

Published (stream PROVIDERS), all with the project's `version` after the change:
- `sa.providers.fund.recorded`: special funds added to a region's ledger for a year;
- `sa.providers.project.approved`: the budget is reserved in the ledger;
- `sa.providers.project.published`: opens a tender in matching; carries everything matching
  needs to run it (event-carried state);
- `sa.providers.project.cancelled`: before award; `released_fen` went back to the ledger.

Consumed (stream MATCHING), each with `data.project_id`:
- `sa.matching.tender.published` {tender_id} → tendered;
- `sa.matching.tender.failed` / `.cancelled` {tender_id, reason} → published again (the
  purchaser may re-tender or switch method);
- `sa.matching.award.made` → awarded;
- `sa.matching.contract.signed` {contract_id} → in_service;
- `sa.matching.contract.completed` / `.terminated` {contract_id, reason} → closed.

No event carries personal data: projects hold none, and officials appear in no payload.
"""

from __future__ import annotations

from typing import Any

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.providers.projects.models import FundAllocation, FundLedger, Project

SERVICE = "providers"

#: The matching subjects this service follows for its projects.
MARKET_SUBJECTS: tuple[str, ...] = (
    "sa.matching.tender.published",
    "sa.matching.tender.failed",
    "sa.matching.tender.cancelled",
    "sa.matching.award.made",
    "sa.matching.contract.signed",
    "sa.matching.contract.completed",
    "sa.matching.contract.terminated",
)


def fund_recorded(
    allocation: FundAllocation, *, ledger: FundLedger, cap_fen: int | None, pack: str
) -> Event:
    """`sa.providers.fund.recorded`: central/provincial special funds added to a ledger."""
    return new_event(
        service=SERVICE,
        entity="fund",
        verb="recorded",
        subject=f"{allocation.region_code}:{allocation.year}",
        data={
            "allocation_id": allocation.id,
            "region_code": allocation.region_code,
            "year": allocation.year,
            "source": allocation.source,
            "amount_fen": allocation.amount_fen,
            "document": allocation.document,
            "base_fen": ledger.base_fen,
            "cap_fen": cap_fen,
            "reserved_fen": ledger.reserved_fen,
            "ledger_version": ledger.version,
            "pack": pack,
        },
    )


def project_approved(project: Project, *, reserved_fen: int, cap_fen: int | None) -> Event:
    """`sa.providers.project.approved`: the budget now counts against the ledger."""
    return new_event(
        service=SERVICE,
        entity="project",
        verb="approved",
        subject=project.id,
        data={
            "project_id": project.id,
            "region_code": project.region_code,
            "budget_year": project.budget_year,
            "budget_fen": project.budget_fen,
            "fund_source": project.fund_source,
            "pack": project.pack,
            "ledger_reserved_fen": reserved_fen,
            "ledger_cap_fen": cap_fen,
            "approved_at": project.approved_at,
            "version": project.version,
        },
    )


def published_payload(project: Project) -> dict[str, Any]:
    """What matching needs to open a tender for the project."""
    return {
        "project_id": project.id,
        "region_code": project.region_code,
        "department": project.department,
        "title": project.title,
        "service_codes": list(project.service_codes),
        "quantity": project.quantity,
        "unit": project.unit,
        "quality_standards": project.quality_standards,
        "qualification_requirements": list(project.qualification_requirements),
        "specific_conditions": project.specific_conditions,
        "budget_fen": project.budget_fen,
        "budget_year": project.budget_year,
        "fund_source": project.fund_source,
        "period_start": project.period_start,
        "period_end": project.period_end,
        "stable_recurring": project.stable_recurring,
        "budget_secured": project.budget_secured,
        "purchasing_method": project.purchasing_method,
        "pack": project.pack,
        "published_at": project.published_at,
        "version": project.version,
    }


def project_published(project: Project) -> Event:
    """`sa.providers.project.published`: the event that opens a tender in matching."""
    return new_event(
        service=SERVICE,
        entity="project",
        verb="published",
        subject=project.id,
        data=published_payload(project),
    )


def project_cancelled(project: Project, *, from_state: str, released_fen: int) -> Event:
    """`sa.providers.project.cancelled`: matching closes any open tender of it."""
    return new_event(
        service=SERVICE,
        entity="project",
        verb="cancelled",
        subject=project.id,
        data={
            "project_id": project.id,
            "region_code": project.region_code,
            "from_state": from_state,
            "reason": project.state_reason,
            "tender_id": project.tender_id,
            "budget_year": project.budget_year,
            "released_fen": released_fen,
            "version": project.version,
        },
    )


async def on_market_event(uow: UnitOfWork, event: Event) -> None:
    """Matching's tender, award and contract events move the project's state."""
    # Imported here: the use cases import this module's event builders.
    from services.providers.projects import service

    project_id = event.data.get("project_id")
    if not isinstance(project_id, str) or not project_id:
        raise PermanentError(f"{event.type} without data.project_id")
    verb = ".".join(event.nats_subject.split(".")[2:])  # e.g. "tender.published"
    await service.apply_market_event(
        uow, project_id=project_id, verb=verb, data=event.data, event_type=event.nats_subject
    )


subscriptions = [
    Subscription(
        durable="providers-projects-market",
        stream="MATCHING",
        subjects=list(MARKET_SUBJECTS),
        handler=on_market_event,
    )
]
