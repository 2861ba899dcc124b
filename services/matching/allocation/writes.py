"""Writing a run's outcome: matches, resource allocations, need statuses and outbox events,
in batches (executemany), each batch in the caller's transaction.

Capacity is re-checked in SQL inside that transaction before anything is written: the needs
must still be allocatable and without an active match, each contract still active, in its
period and with room this month, its organisation still admitted, each resource still
offered with units left. Planned matches beyond the room found now (another run or a
takeover took it since this run read its snapshot) are not written: their needs go back to
"not yet considered", so the next micro-batch retries them. The first statement of the
transaction is a write, so on SQLite it holds the writer lock before it reads anything.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, MetaData, Table, bindparam, func, null, or_, select
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from libs.common.events import Event, UnitOfWork
from services.matching import events, rules
from services.matching.allocation.plan import Left, Planned, by_value
from services.matching.allocation.supply import (
    ALLOCATION,
    MATCH,
    NEED,
    ORG,
    RESOURCE,
    chunks,
    unconfirmed_allocations,
)
from services.matching.contracts.models import Contract
from services.matching.models import AllocationRun
from services.matching.rules import Basis

RUN = AllocationRun.__table__  # type: ignore[attr-defined]
CONTRACT = Contract.__table__  # type: ignore[attr-defined]

#: (planned match, the match row written, the resource allocation row or None) → events.
EventsFor = Callable[[Planned, dict[str, Any], dict[str, Any] | None], list[Event]]


class _Encoded(TypeDecorator[Any]):
    """A JSON column written from text already encoded (what `_Documents` makes)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None


#: The match table for inserts, its explanation taken as encoded JSON text.
MATCH_ROWS = Table(
    "match",
    MetaData(),
    *(Column(c.name, _Encoded() if c.name == "explanation" else c.type) for c in MATCH.c),
)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


class _Documents:
    """Explanations as JSON text. The part shared by the needs of one (group, provider) is
    encoded once, then spliced with each need's priority parts: encoding 100,000 whole
    explanations one by one costs more than the insert itself."""

    def __init__(self) -> None:
        self._shared: dict[int, str] = {}

    def of(self, p: Planned) -> str:
        body = self._shared.get(id(p.shared))
        if body is None:
            # The engine's "priority" there is the group's total: the need's parts replace it.
            rest = {k: v for k, v in p.shared.items() if k != "priority"}
            body = self._shared[id(p.shared)] = _ENCODER.encode(rest)[1:]
        head = '{"priority":' + _ENCODER.encode(p.priority)
        return head + ("," + body if body != "}" else "}")

    @staticmethod
    def whole(document: dict[str, Any]) -> str:
        return _ENCODER.encode(document)


RETRY_TEXT = (
    "capacity planned for this need was taken by a concurrent allocation; "
    "the next micro-batch retries it"
)


def matched_events(
    planned: Planned, match: dict[str, Any], allocation: dict[str, Any] | None
) -> list[Event]:
    """`need.matched` (and `resource.allocated`); a need that was unplaced after a takeover
    also gets `need.reassigned` naming its new provider, which the needs service accepts
    where `need.matched` is refused (a need still in service with the barred provider)."""
    out = [events.need_matched_event(match)]
    if planned.row.taken_from:
        taken = planned.row.taken_from
        out.append(
            events.need_reassigned(
                match,
                from_match_id=taken.get("from_match_id"),
                from_organisation_id=taken.get("from_organisation_id"),
                from_contract_id=taken.get("from_contract_id"),
                reason=str(taken.get("reason") or "taken over after an earlier takeover"),
                rules=list(taken.get("rules") or []),
                at=match["created_at"],
            )
        )
    if allocation is not None:
        out.append(events.resource_allocated(allocation, match_id=match["id"]))
    return out


@dataclass
class Written:
    matches: list[dict[str, Any]] = field(default_factory=list)
    retried: list[Planned] = field(default_factory=list)
    # No longer allocatable (matched, cancelled meanwhile): left alone.
    skipped: list[str] = field(default_factory=list)


async def _hold_writer(uow: UnitOfWork, run_id: str, now: datetime) -> None:
    # A real write first: SQLite takes its writer lock here, before this transaction reads.
    await uow.session.execute(RUN.update().where(RUN.c.id == run_id).values(finished_at=now))


async def _allocatable(uow: UnitOfWork, need_ids: Sequence[str]) -> set[str]:
    """Needs still open/unplaced and without an active match (rows locked on PostgreSQL)."""
    s = uow.session
    ok: set[str] = set()
    for part in chunks(need_ids):
        rows = await s.execute(
            select(NEED.c.need_id, NEED.c.status).where(NEED.c.need_id.in_(part)).with_for_update()
        )
        ok.update(n for n, status in rows.all() if status in rules.ALLOCATABLE)
        # The state is filtered here, not in SQL: with it there SQLite may scan by state.
        matched = await s.execute(
            select(MATCH.c.need_id, MATCH.c.state).where(MATCH.c.need_id.in_(part))
        )
        ok.difference_update(n for n, state in matched.all() if state == "active")
    return ok


async def _room(
    uow: UnitOfWork, planned: Sequence[Planned], today: date, period: str
) -> dict[tuple[str, ...], int]:
    """Room left now per target: ("c", contract, item), ("o", organisation, item) for
    registered capacity, ("r", resource)."""
    s = uow.session
    room: dict[tuple[str, ...], int] = {}
    contract_ids = sorted({p.contract_id for p in planned if p.contract_id})
    org_ids = sorted({p.organisation_id for p in planned if p.organisation_id})
    resource_ids = sorted({p.resource_id for p in planned if p.resource_id})
    standing: dict[str, tuple[str, dict[str, int]]] = {}
    for part in chunks(org_ids):
        rows = await s.execute(
            select(ORG.c.organisation_id, ORG.c.status, ORG.c.capacities).where(
                ORG.c.organisation_id.in_(part)
            )
        )
        standing.update({o: (st, dict(caps or {})) for o, st, caps in rows.all()})
    for part in chunks(contract_ids):
        contracts = await s.execute(
            select(
                CONTRACT.c.id,
                CONTRACT.c.organisation_id,
                CONTRACT.c.state,
                CONTRACT.c.period_start,
                CONTRACT.c.period_end,
                CONTRACT.c.service_codes,
                CONTRACT.c.monthly_capacity,
            ).where(CONTRACT.c.id.in_(part))
        )
        used = await s.execute(
            select(MATCH.c.contract_id, MATCH.c.service_code, func.count())
            .where(
                MATCH.c.contract_id.in_(part),
                MATCH.c.period == period,
                MATCH.c.state == "active",
            )
            .group_by(MATCH.c.contract_id, MATCH.c.service_code)
        )
        counts = {(c, sv): int(n) for c, sv, n in used.all()}
        for cid, org, state, start, end, items, monthly in contracts.all():
            status = standing.get(org, ("unknown", {}))[0]
            open_ = rules.contract_in_force(state, start, end, today)
            for item, cap in dict(monthly).items():
                left = int(cap) - counts.get((cid, item), 0)
                ok = open_ and rules.organisation_eligible(status) and item in items
                room[("c", cid, item)] = left if ok else 0
    registered = [p for p in planned if p.basis is Basis.registered_capacity]
    if registered:
        reg_orgs = sorted({p.organisation_id for p in registered if p.organisation_id})
        for part in chunks(reg_orgs):
            used = await s.execute(
                select(MATCH.c.organisation_id, MATCH.c.service_code, func.count())
                .where(
                    MATCH.c.organisation_id.in_(part),
                    MATCH.c.contract_id.is_(None),
                    MATCH.c.resource_id.is_(None),
                    MATCH.c.period == period,
                    MATCH.c.state == "active",
                )
                .group_by(MATCH.c.organisation_id, MATCH.c.service_code)
            )
            counts = {(o, sv): int(n) for o, sv, n in used.all()}
            for org in part:
                status, caps = standing.get(org, ("unknown", {}))
                for item, cap in caps.items():
                    left = int(cap) - counts.get((org, item), 0)
                    room[("o", org, item)] = left if rules.organisation_eligible(status) else 0
    pending = await unconfirmed_allocations(s, resource_ids) if resource_ids else {}
    for part in chunks(resource_ids):
        rows = await s.execute(
            select(
                RESOURCE.c.resource_id,
                RESOURCE.c.remaining,
                RESOURCE.c.status,
                RESOURCE.c.valid_from,
                RESOURCE.c.valid_until,
            ).where(RESOURCE.c.resource_id.in_(part))
        )
        for rid, remaining, status, start, until in rows.all():
            usable = rules.resource_usable(status, start, until, today)
            room[("r", rid)] = rules.resource_left(remaining, pending.get(rid, 0)) if usable else 0
    return room


def _still_allocatable() -> Any:
    # Not `IN (…)`: an expanding parameter cannot be used with executemany.
    return or_(*(NEED.c.status == s for s in rules.ALLOCATABLE))


def ordered_id() -> str:
    """A time-ordered UUID (version 7, RFC 9562): rows written in one run land next to each
    other in the primary-key index instead of on random pages."""
    value = (time.time_ns() // 1_000_000 & (1 << 48) - 1) << 80 | int.from_bytes(
        os.urandom(10), "big"
    )
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 9562 variant
    return str(uuid.UUID(int=value))


def for_writing(planned: Sequence[Planned]) -> list[Planned]:
    """Planned matches grouped by what they draw on (contract and item, resource), best
    first within each: a write chunk then re-checks few contracts, and a target short of
    room keeps its highest-value needs."""
    return sorted(planned, key=lambda p: (_target(p), -p.score))


def _target(p: Planned) -> tuple[str, ...]:
    if p.basis is Basis.contract:
        return ("c", p.contract_id or "", p.row.service_code)
    if p.basis is Basis.registered_capacity:
        return ("o", p.organisation_id or "", p.row.service_code)
    return ("r", p.resource_id or "")


async def write_assignments(
    uow: UnitOfWork,
    *,
    run_id: str,
    now: datetime,
    planned: Sequence[Planned],
    events_for: EventsFor = matched_events,
) -> Written:
    """Re-check, then write the planned matches that still fit (the caller commits)."""
    out = Written()
    if not planned:
        return out
    s = uow.session
    today, period = rules.china_today(now), rules.period_of(now)
    await _hold_writer(uow, run_id, now)
    allocatable = await _allocatable(uow, [p.row.need_id for p in planned])
    room = await _room(uow, planned, today, period)
    keep: list[Planned] = []
    for p in by_value(planned):
        if p.row.need_id not in allocatable:
            out.skipped.append(p.row.need_id)
            continue
        target = _target(p)
        if room.get(target, 0) <= 0:
            out.retried.append(p)
            continue
        room[target] -= 1
        keep.append(p)
    matches: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    allocations: list[dict[str, Any]] = []
    emitted: list[Event] = []
    documents = _Documents()
    for p in keep:
        explanation = p.explanation
        match: dict[str, Any] = {
            "id": ordered_id(),
            "need_id": p.row.need_id,
            "organisation_id": p.organisation_id,
            "contract_id": p.contract_id,
            "resource_id": p.resource_id,
            "recipient_ref": p.row.recipient_ref,
            "region_code": p.row.region_code,
            "service_code": p.row.service_code,
            "period": period,
            "score": float(p.score),
            "explanation": explanation,
            "run_id": run_id,
            "created_at": now,
            "state": "active",
            "ended_at": None,
        }
        allocation = None
        if p.resource_id is not None:
            # One unit per need: the engine counts a need as one unit of a resource.
            allocation = {
                "id": ordered_id(),
                "resource_id": p.resource_id,
                "need_id": p.row.need_id,
                "quantity": 1,
                "state": "allocated",
                "created_at": now,
                "updated_at": now,
            }
            allocations.append(allocation)
        matches.append(match)
        emitted += events_for(p, match, allocation)
        # The hook may have added to the explanation (a takeover does): then encode it whole.
        shared = match["explanation"] is explanation
        doc = documents.of(p) if shared else documents.whole(match["explanation"])
        rows.append({**match, "explanation": doc})
    if matches:
        await s.execute(MATCH_ROWS.insert(), rows)
        await s.execute(
            NEED.update()
            .where(NEED.c.need_id == bindparam("b_need"))
            .values(
                status="matched",
                last_unmatched_reason=None,
                unmatched_code=None,
                unmatched_detail=null(),
                considered_at=now,
            ),
            [{"b_need": n} for n in sorted(m["need_id"] for m in matches)],
        )
    if allocations:
        await s.execute(ALLOCATION.insert(), allocations)
    if out.retried:
        await s.execute(
            NEED.update()
            .where(NEED.c.need_id == bindparam("b_need"))
            .values(considered_at=None, last_unmatched_reason=RETRY_TEXT, unmatched_code=None),
            [{"b_need": p.row.need_id} for p in out.retried],
        )
    for e in emitted:
        uow.emit(e)
    out.matches = matches
    return out


async def write_unassigned(uow: UnitOfWork, *, now: datetime, left: Sequence[Left]) -> None:
    """Record why each need is unmatched (code, text with figures, detail); a need that was
    matched or cancelled meanwhile is left alone. The caller commits."""
    if not left:
        return
    await uow.session.execute(
        NEED.update()
        .where(NEED.c.need_id == bindparam("b_need"), _still_allocatable())
        .values(
            unmatched_code=bindparam("b_code"),
            last_unmatched_reason=bindparam("b_text"),
            unmatched_detail=bindparam("b_detail"),
            considered_at=now,
        ),
        [
            {
                "b_need": x.row.need_id,
                "b_code": x.code,
                "b_text": rules.reason_text(x.code, x.text),
                "b_detail": x.detail,
            }
            for x in left
        ],
    )
