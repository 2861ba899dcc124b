"""Temporary takeover (临时接管预案): when a contract stops, its needs move at once.

Credit suspends, exits or blacklists an organisation; the contracts package pauses or
terminates its contracts and announces each (`sa.matching.contract.paused|terminated`, as
does a purchaser's own termination). For each such contract, in the consumer's transaction:

1. under the province's allocation lock, every active match under the contract is ended
   (`replaced`) and its need becomes `unplaced`;
2. the engine re-allocates exactly those needs over the contracted organisations eligible
   now (the barred one is not: its contract is no longer active and its standing is not
   `admitted`), best first, within the capacity left this month;
3. each placed need gets a new match and `need.reassigned` naming the new provider; each
   need nobody can take stays `unplaced` (visible at `GET /needs?status=unplaced`, retried
   by every run), gets `need.reassigned` without a provider (the needs service reopens it)
   and all of them go to the purchaser at once in one `takeover.unplaced`.

Takeover moves needs between contracted organisations (承接主体) only: the plan is the
purchaser's, for the service it bought; charity resources stay with the regular runs.
A match whose need matching has no record of is left alone (logged): there is nothing to
re-allocate it from. Sources: 吉民发〔2018〕21号 §二(六), 吉民发〔2020〕44号 §四(四)3 and the
other provinces' clauses in `rules.TAKEOVER_CLAUSES`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from libs.common.events import Event, PermanentError, Subscription, UnitOfWork
from libs.common.ids import new_id
from services.matching import events, rules
from services.matching.allocation import locks
from services.matching.allocation.plan import Left, Planned, plan
from services.matching.allocation.supply import MATCH, NEED, chunks, load_needs, snapshot
from services.matching.allocation.writes import RUN, write_assignments, write_unassigned
from services.matching.contracts.models import Contract
from services.matching.engine import allocate

log = logging.getLogger(__name__)

STOPPED = ("paused", "terminated")


@dataclass
class TakeoverReport:
    contract_id: str
    organisation_id: str
    run_id: str
    placed: dict[str, str] = field(default_factory=dict)  # need → new organisation
    unplaced: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # matches whose need is not known here


async def take_over(
    uow: UnitOfWork, *, contract_id: str, now: datetime, environment: str
) -> TakeoverReport | None:
    """Re-allocate the needs of a stopped contract (see the module docstring); None when the
    contract is not stopped (resumed meanwhile) or holds no active match. The caller commits."""
    s = uow.session
    contract = (
        await s.execute(select(Contract).where(col(Contract.id) == contract_id))
    ).scalar_one_or_none()
    if contract is None:
        raise LookupError(f"no contract {contract_id}")
    if contract.state not in STOPPED:
        return None
    matches = (
        await s.execute(
            select(MATCH.c.id, MATCH.c.need_id, MATCH.c.organisation_id, MATCH.c.region_code).where(
                MATCH.c.contract_id == contract.id, MATCH.c.state == "active"
            )
        )
    ).all()
    if not matches:
        return None
    for province in sorted({str(m[3])[:2] for m in matches if str(m[3])[:2].isdigit()}):
        await locks.lock_in_transaction(s, province)
    report = TakeoverReport(contract.id, contract.organisation_id, new_id())
    reason = rules.takeover_reason(contract.id, contract.state, contract.state_reason)
    cited = rules.takeover_rules(contract.region_code)
    rows = await load_needs(
        s, scopes=[""], need_ids=[m[1] for m in matches], statuses=rules.NEED_STATUSES
    )
    known = {r.need_id: r for r in rows if r.status != "cancelled"}
    ours = [m for m in matches if m[1] in known]
    report.unknown = [m[1] for m in matches if m[1] not in known]
    if report.unknown:
        log.warning(
            "takeover of contract %s: %d match(es) of needs unknown to matching left alone",
            contract.id,
            len(report.unknown),
        )
    if not ours:
        return report
    await s.execute(
        RUN.insert().values(
            id=report.run_id,
            requested_by=f"takeover of contract {contract.id}"[:100],
            region_scope=rules.common_prefix([known[m[1]].region_code for m in ours])[:12],
            matched=0,
            unmatched=0,
            started_at=now,
            finished_at=now,
        )
    )
    ended = [m[0] for m in ours]
    for part in chunks(ended):
        await s.execute(
            MATCH.update()
            .where(MATCH.c.id.in_(part), MATCH.c.state == "active")
            .values(state="replaced", ended_at=now)
        )
    taken_from = {
        m[1]: {
            "from_match_id": m[0],
            "from_organisation_id": m[2],
            "from_contract_id": contract.id,
            "reason": reason,
            "rules": cited,
            "at": now.isoformat(),
        }
        for m in ours
    }
    for part in chunks(list(taken_from)):
        await s.execute(NEED.update().where(NEED.c.need_id.in_(part)).values(status="unplaced"))
    needing = [replace(known[n], status="unplaced", taken_from=taken_from[n]) for n in taken_from]
    counties = sorted({r.region_code[:6] for r in needing})
    snap = await snapshot(
        s, scopes=counties, now=now, environment=environment, rows=needing, resources=False
    )
    result = allocate(snap.needs, snap.supply.organisations, ())
    planned, left = plan(snap, result, run_id=report.run_id)

    def reassigned(
        p: Planned, match: dict[str, Any], _allocation: dict[str, Any] | None
    ) -> list[Event]:
        taken = taken_from[p.row.need_id]
        match["explanation"] = {**match["explanation"], "takeover": taken}
        report.placed[p.row.need_id] = str(match["organisation_id"])
        return [
            events.need_reassigned(
                match,
                from_match_id=taken["from_match_id"],
                from_organisation_id=taken["from_organisation_id"],
                from_contract_id=contract.id,
                reason=reason,
                rules=cited,
                at=now,
            )
        ]

    written = await write_assignments(
        uow, run_id=report.run_id, now=now, planned=planned, events_for=reassigned
    )
    # Under the lock nothing competes; a need the re-check still refused is unplaced too.
    for p in written.retried:
        left.append(
            _left_from(p, "capacity_exhausted", "capacity was taken by a concurrent allocation")
        )
    for x in left:
        x.detail["takeover"] = taken_from[x.row.need_id]
    await write_unassigned(uow, now=now, left=left)
    unplaced = []
    for x in left:
        need = {
            "need_id": x.row.need_id,
            "recipient_ref": x.row.recipient_ref,
            "region_code": x.row.region_code,
            "service_code": x.row.service_code,
        }
        taken = taken_from[x.row.need_id]
        uow.emit(
            events.need_reassigned(
                None,
                need=need,
                from_match_id=taken["from_match_id"],
                from_organisation_id=taken["from_organisation_id"],
                from_contract_id=contract.id,
                reason=f"{reason}; not placed: {x.text}",
                rules=cited,
                at=now,
                run_id=report.run_id,
            )
        )
        unplaced.append({**need, "reason_code": x.code, "reason": x.text})
        report.unplaced.append(x.row.need_id)
    if unplaced:
        uow.emit(
            events.takeover_unplaced(
                organisation_id=contract.organisation_id,
                contract_id=contract.id,
                purchaser_region=contract.region_code,
                reason=reason,
                rules=cited,
                run_id=report.run_id,
                needs=unplaced,
                at=now,
            )
        )
    await s.execute(
        RUN.update()
        .where(RUN.c.id == report.run_id)
        .values(matched=len(written.matches), unmatched=len(unplaced), finished_at=now)
    )
    log.info(
        "takeover of contract %s (%s): %d need(s) placed, %d unplaced",
        contract.id,
        contract.state,
        len(report.placed),
        len(report.unplaced),
    )
    return report


def _left_from(p: Planned, code: str, text: str) -> Left:
    return Left(p.row, code, text, {"reason": code, "text": text})


def subscription(now: Callable[[], datetime], environment: Callable[[], str]) -> Subscription:
    """The takeover consumer: `contract.paused|terminated` → `take_over` at the app's now."""

    async def on_contract_stopped(uow: UnitOfWork, event: Event) -> None:
        try:
            contract_id = str(event.data["contract_id"])
        except KeyError as exc:
            raise PermanentError(f"{event.nats_subject} without contract_id") from exc
        try:
            await take_over(uow, contract_id=contract_id, now=now(), environment=environment())
        except LookupError as exc:
            raise PermanentError(str(exc)) from exc

    return Subscription(
        durable="matching-takeover",
        stream="MATCHING",
        subjects=["sa.matching.contract.paused", "sa.matching.contract.terminated"],
        handler=on_contract_stopped,
    )
