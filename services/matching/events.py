"""What the matching service publishes and consumes (projections and allocation).

Published (stream MATCHING), never with a recipient's name, ID number, phone or address —
only the pseudonymous `recipient_ref`:

- `sa.matching.need.matched` {match_id, need_id, recipient_ref, organisation_id, contract_id,
  resource_id, basis, region_code, service_code, score, run_id, matched_at}: a run matched
  the need (organisation_id is None for a charity resource);
- `sa.matching.need.reassigned` {need_id, recipient_ref, region_code, service_code, match_id,
  organisation_id, contract_id, to_organisation_id, to_resource_id, from_match_id,
  from_organisation_id, from_contract_id, reason, reason_code, rules, score, run_id,
  reassigned_at}: a takeover (临时接管) moved the need; `organisation_id` is the new provider
  (None: nobody could take it over, the need is reported unplaced);
- `sa.matching.takeover.unplaced` {organisation_id, contract_id, region_code,
  purchaser_region, reason, rules, run_id, needs: [{need_id, recipient_ref, region_code,
  service_code, reason_code, reason}], reported_at}: needs a takeover could not place, for
  the purchaser at once;
- `sa.matching.resource.allocated` {allocation_id, resource_id, quantity, need_id, match_id}
  and `sa.matching.resource.released` {allocation_id, resource_id, quantity, need_id,
  reason}: units of a charity resource taken and given back (providers keeps the count).

Consumed here: `sa.providers.organisation.registered` (offer), `sa.credit.organisation.*`
(standing, version-guarded), `sa.needs.need.opened` (a need to allocate) and
`sa.needs.need.cancelled` (its match ends, resource units go back). Contract and library
events are consumed in their packages; the takeover on `contract.paused|terminated` in
`services.matching.allocation.takeover`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from services.matching import rules
from services.matching.library.models import ResourceAllocation
from services.matching.library.service import apply_offer
from services.matching.models import Match, NeedView, OrganisationView
from services.matching.reconsider import reconsider, supply_regions

SERVICE = "matching"


def _basis(match: Mapping[str, Any]) -> str:
    if match.get("resource_id"):
        return "charity_resource"
    return "contract" if match.get("contract_id") else "registered_capacity"


def need_matched_event(match: Mapping[str, Any]) -> Event:
    """`need.matched` from a match's columns (a row being written, or a `Match`)."""
    return new_event(
        service=SERVICE,
        entity="need",
        verb="matched",
        subject=match["need_id"],
        data={
            "match_id": match["id"],
            "need_id": match["need_id"],
            "recipient_ref": match["recipient_ref"],
            "organisation_id": match["organisation_id"],
            "contract_id": match.get("contract_id"),
            "resource_id": match.get("resource_id"),
            "basis": _basis(match),
            "region_code": match["region_code"],
            "service_code": match["service_code"],
            "score": match["score"],
            "run_id": match["run_id"],
            "matched_at": match["created_at"],
        },
    )


def _columns(match: Match) -> dict[str, Any]:
    return {
        "id": match.id,
        "need_id": match.need_id,
        "recipient_ref": match.recipient_ref,
        "organisation_id": match.organisation_id,
        "contract_id": match.contract_id,
        "resource_id": match.resource_id,
        "region_code": match.region_code,
        "service_code": match.service_code,
        "score": match.score,
        "run_id": match.run_id,
        "created_at": match.created_at,
    }


def need_matched(match: Match) -> Event:
    return need_matched_event(_columns(match))


def need_reassigned(
    match: Mapping[str, Any] | None,
    *,
    need: Mapping[str, Any] | None = None,
    from_match_id: str | None,
    from_organisation_id: str | None,
    from_contract_id: str | None,
    reason: str,
    rules: Sequence[str],
    at: datetime,
    run_id: str | None = None,
) -> Event:
    """`need.reassigned`: to the provider of `match`, or to nobody (`match` None, `need` the
    need's columns). The needs service reads `organisation_id` (None: back to open)."""
    source = match if match is not None else (need or {})
    return new_event(
        service=SERVICE,
        entity="need",
        verb="reassigned",
        subject=source["need_id"],
        data={
            "need_id": source["need_id"],
            "recipient_ref": source["recipient_ref"],
            "region_code": source["region_code"],
            "service_code": source["service_code"],
            "match_id": match["id"] if match else None,
            "organisation_id": match["organisation_id"] if match else None,
            "contract_id": match.get("contract_id") if match else None,
            "to_organisation_id": match["organisation_id"] if match else None,
            "to_resource_id": match.get("resource_id") if match else None,
            "from_match_id": from_match_id,
            "from_organisation_id": from_organisation_id,
            "from_contract_id": from_contract_id,
            "reason": reason,
            "reason_code": "takeover",
            "rules": list(rules),
            "score": match["score"] if match else None,
            "run_id": match["run_id"] if match else run_id,
            "reassigned_at": at,
        },
    )


def takeover_unplaced(
    *,
    organisation_id: str,
    contract_id: str,
    purchaser_region: str,
    reason: str,
    rules: Sequence[str],
    run_id: str,
    needs: Sequence[Mapping[str, Any]],
    at: datetime,
) -> Event:
    """`takeover.unplaced`: the needs a takeover could not place, for the purchaser."""
    return new_event(
        service=SERVICE,
        entity="takeover",
        verb="unplaced",
        subject=contract_id,
        data={
            "organisation_id": organisation_id,
            "contract_id": contract_id,
            "region_code": purchaser_region,
            "purchaser_region": purchaser_region,
            "reason": reason,
            "rules": list(rules),
            "run_id": run_id,
            "needs": [dict(n) for n in needs],
            "reported_at": at,
        },
    )


def resource_allocated(allocation: Mapping[str, Any], *, match_id: str) -> Event:
    """The payload providers' charities consume: {allocation_id, resource_id, quantity}."""
    return new_event(
        service=SERVICE,
        entity="resource",
        verb="allocated",
        subject=allocation["resource_id"],
        data={
            "allocation_id": allocation["id"],
            "resource_id": allocation["resource_id"],
            "quantity": allocation["quantity"],
            "need_id": allocation["need_id"],
            "match_id": match_id,
        },
    )


def resource_released(allocation: ResourceAllocation, *, reason: str) -> Event:
    return new_event(
        service=SERVICE,
        entity="resource",
        verb="released",
        subject=allocation.resource_id,
        data={
            "allocation_id": allocation.id,
            "resource_id": allocation.resource_id,
            "quantity": allocation.quantity,
            "need_id": allocation.need_id,
            "reason": reason,
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
    region, urgency = str(data.get("region_code", "")), data.get("urgency")
    if rules.engine_region(region) is None or urgency not in (1, 2, 3, 4):
        # The engine places a need by a 6/9/12-digit division code and urgency 1–4.
        raise PermanentError(f"need.opened with region {region!r} / urgency {urgency!r}")
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


async def on_need_cancelled(uow: UnitOfWork, event: Event) -> None:
    """The needs service cancelled a need: it leaves the allocation, its active match ends
    (the contract's capacity this month is free again) and charity units go back
    (`resource.released`). A cancellation overtaking the opening leaves a tombstone, so the
    late `need.opened` does not bring the need back."""
    data = event.data
    try:
        need_id = str(data["need_id"])
    except KeyError as exc:
        raise PermanentError("need.cancelled without need_id") from exc
    session = uow.session
    need = await session.get(NeedView, need_id)
    if need is None:
        try:
            need = NeedView(
                need_id=need_id,
                recipient_ref=str(data["recipient_ref"]),
                region_code=str(data["region_code"]),
                service_code=str(data["service_code"]),
                urgency=int(data["urgency"]),
                categories=[str(c) for c in data.get("categories", [])],
                opened_at=datetime.fromisoformat(str(data.get("cancelled_at") or event.time)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PermanentError(f"need.cancelled without required fields: {exc}") from exc
        session.add(need)
    need.status = "cancelled"
    need.considered_at = event.time
    active = (col(Match.need_id) == need_id, col(Match.state) == "active")
    contract_ids = (await session.execute(select(Match.contract_id).where(*active))).scalars()
    await session.execute(update(Match).where(*active).values(state="ended", ended_at=event.time))
    taken = (
        await session.execute(
            select(ResourceAllocation).where(
                ResourceAllocation.need_id == need_id,
                col(ResourceAllocation.state).in_(["allocated", "confirmed"]),
            )
        )
    ).scalars()
    resource_ids = []
    for allocation in taken:
        allocation.state = "released"
        allocation.updated_at = event.time
        resource_ids.append(allocation.resource_id)
        uow.emit(resource_released(allocation, reason="need cancelled"))
    # The unit this need held is free again: whoever waits for it goes first.
    await reconsider(session, await supply_regions(session, list(contract_ids), resource_ids))


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
    Subscription(
        durable="matching-need-cancellations",
        stream="NEEDS",
        subjects=["sa.needs.need.cancelled"],
        handler=on_need_cancelled,
    ),
]
