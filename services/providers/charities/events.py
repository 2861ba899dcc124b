"""What the providers service publishes and consumes about charities (慈善组织) and their
resources (慈善资源).

Published (stream PROVIDERS), each resource event carrying the whole state at its `version`,
so a consumer keeps the highest version it has seen and ignores anything older:

- `sa.providers.charity.registered` {charity_id, uscc, name, charity_registration,
  registration_authority, region_code, status, version, registered_at};
- `sa.providers.resource.offered` / `.withdrawn` (+ `reason`) / `.exhausted` (remaining reached
  0) / `.updated` (any other change of `remaining` or status from matching's allocations):
  {resource_id, charity_id, kind, title, service_codes, regions, target_categories, quantity,
  remaining, unit, valid_from, valid_until, status, version}; the events caused by an
  allocation add `movement` {allocation_id, reason, delta}.

Consumed (stream MATCHING): `sa.matching.resource.allocated` and `.released` {allocation_id,
resource_id, quantity}. Each becomes one `ResourceMovement`; an allocation is taken at most
once and released at most once, whatever the event id (the inbox only catches redeliveries of
the same event), checked on (allocation_id, reason) under the resource's row lock and enforced
by a unique constraint.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork, new_event
from libs.common.ids import new_id
from services.providers.charities import rules
from services.providers.charities.models import Charity, Resource, ResourceMovement

log = logging.getLogger(__name__)

SERVICE = "providers"
ALLOCATED = "sa.matching.resource.allocated"
RELEASED = "sa.matching.resource.released"


def charity_registered(charity: Charity) -> Event:
    """`sa.providers.charity.registered`: a charity joined the library."""
    return new_event(
        service=SERVICE,
        entity="charity",
        verb="registered",
        subject=charity.id,
        data={
            "charity_id": charity.id,
            "uscc": charity.uscc,
            "name": charity.name,
            "charity_registration": charity.charity_registration,
            "registration_authority": charity.registration_authority,
            "region_code": charity.region_code,
            "status": charity.status,
            "version": charity.version,
            "registered_at": charity.created_at,
        },
    )


def resource_state(resource: Resource) -> dict[str, Any]:
    """The payload every resource event shares: the resource at its `version`."""
    return {
        "resource_id": resource.id,
        "charity_id": resource.charity_id,
        "kind": resource.kind,
        "title": resource.title,
        "service_codes": list(resource.service_codes),
        "regions": list(resource.regions),
        "target_categories": list(resource.target_categories),
        "quantity": resource.quantity,
        "remaining": resource.remaining,
        "unit": resource.unit,
        "valid_from": resource.valid_from,
        "valid_until": resource.valid_until,
        "status": resource.status,
        "version": resource.version,
    }


def resource_event(verb: str, resource: Resource, **extra: Any) -> Event:
    """`sa.providers.resource.<verb>` (offered | withdrawn | exhausted | expired | updated)."""
    return new_event(
        service=SERVICE,
        entity="resource",
        verb=verb,
        subject=resource.id,
        data={**resource_state(resource), **extra},
    )


# --------------------------------------------------------------------------------------------
# Matching's allocations
# --------------------------------------------------------------------------------------------


def _movement_payload(data: dict[str, Any]) -> tuple[str, str, int]:
    """allocation_id, resource_id, quantity; anything unusable can never succeed."""
    try:
        allocation_id, resource_id, amount = (
            data["allocation_id"],
            data["resource_id"],
            data["quantity"],
        )
    except KeyError as exc:
        raise PermanentError(f"allocation event without {exc.args[0]}") from exc
    for name, value in (("allocation_id", allocation_id), ("resource_id", resource_id)):
        if not isinstance(value, str) or not 1 <= len(value) <= 36:
            raise PermanentError(f"allocation event with an unusable {name} {value!r}")
    # bool is an int in Python; `true` is not a quantity.
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise PermanentError(f"allocation event with a quantity that is not > 0: {amount!r}")
    return allocation_id, resource_id, amount


async def _resource_for_update(uow: UnitOfWork, resource_id: str) -> Resource:
    # FOR UPDATE (PostgreSQL): movements of one resource from two replicas serialise here;
    # SQLite serialises writers already.
    resource = (
        await uow.session.execute(
            select(Resource).where(col(Resource.id) == resource_id).with_for_update()
        )
    ).scalar_one_or_none()
    if resource is None:
        # Matching learns of resources only from our `offered` event, committed before it was
        # published: an unknown id is bad data, not a race.
        raise PermanentError(f"allocation event about unknown resource {resource_id}")
    return resource


async def on_resource_movement(uow: UnitOfWork, event: Event) -> None:
    """Apply `sa.matching.resource.allocated|released` to the remaining quantity.

    - allocated: remaining -= quantity. More than remains is a PermanentError (dead letter
      with the reason): matching must never over-allocate, and the figure never goes below 0.
    - released: remaining += quantity, never above the quantity offered; it needs the
      allocation taken first (a release that overtook its allocation is retried) and may not
      give back more than was taken.
    - the same allocation (or release) again under a new event id changes nothing; the same
      id with a different resource or quantity is a conflict, dead-lettered.
    - version += 1 and one event with the new state: `exhausted` when an offered resource
      reaches 0, else `updated`.
    """
    reason = event.nats_subject.rsplit(".", 1)[1]
    if reason not in ("allocated", "released"):
        raise PermanentError(f"not an allocation event: {event.nats_subject}")
    allocation_id, resource_id, amount = _movement_payload(event.data)
    resource = await _resource_for_update(uow, resource_id)
    earlier = {
        m.reason: m
        for m in (
            await uow.session.execute(
                select(ResourceMovement).where(col(ResourceMovement.allocation_id) == allocation_id)
            )
        ).scalars()
    }
    taken = earlier.get("allocated")
    if reason == "allocated":
        if taken is not None:
            if taken.resource_id == resource_id and -taken.delta == amount:
                log.info("allocation %s already taken (event %s): ignored", allocation_id, event.id)
                return
            raise PermanentError(
                f"allocation {allocation_id} was already taken as {-taken.delta} of resource "
                f"{taken.resource_id}; now {amount} of {resource_id}"
            )
        try:
            remaining = rules.take(resource.remaining, amount)
        except rules.OverAllocation as exc:
            raise PermanentError(
                f"allocation {allocation_id} of resource {resource_id}: {exc}; "
                "matching must not over-allocate"
            ) from exc
    else:
        released = earlier.get("released")
        if released is not None:
            if released.resource_id == resource_id:
                log.info(
                    "allocation %s already released (event %s): ignored", allocation_id, event.id
                )
                return
            raise PermanentError(
                f"allocation {allocation_id} was already released on resource "
                f"{released.resource_id}; now on {resource_id}"
            )
        if taken is None:
            # Not permanent: the allocation may still be on its way (a redelivery after a
            # transient failure can overtake it). After max_deliver it is dead-lettered.
            raise RuntimeError(f"release of allocation {allocation_id} before it was taken")
        if taken.resource_id != resource_id:
            raise PermanentError(
                f"allocation {allocation_id} was taken from resource {taken.resource_id}, "
                f"not {resource_id}"
            )
        if amount > -taken.delta:
            raise PermanentError(
                f"release of {amount} from allocation {allocation_id} exceeds the {-taken.delta} "
                "it took"
            )
        remaining = rules.give_back(resource.remaining, amount, resource.quantity)
    now = datetime.now(UTC)
    delta = remaining - resource.remaining
    uow.session.add(
        ResourceMovement(
            id=new_id(),
            resource_id=resource.id,
            allocation_id=allocation_id,
            delta=delta,
            reason=reason,
            event_id=event.id,
            at=now,
        )
    )
    before = resource.status
    resource.remaining = remaining
    resource.status = rules.status_after_movement(before, remaining)
    resource.version += 1
    resource.updated_at = now
    verb = "exhausted" if resource.status == "exhausted" and before != "exhausted" else "updated"
    movement = {"allocation_id": allocation_id, "reason": reason, "delta": delta}
    uow.emit(resource_event(verb, resource, movement=movement))


subscriptions: list[Subscription] = [
    Subscription(
        durable="providers-resource-allocations",
        stream="MATCHING",
        subjects=[ALLOCATED, RELEASED],
        handler=on_resource_movement,
    )
]
