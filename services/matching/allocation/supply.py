"""What a run allocates: open needs and the supply that may serve them, read from matching's
own tables (projections of needs, organisations, charity resources; contracts and matches).

The reads are plain column selects (no ORM objects for the 100,000 rows of a large run) and
become the engine's inputs (`services.matching.engine`): a `Need` per open need, an
`OrganisationSupply` per contract (an organisation with two contracts is two supplies, so a
contract's capacity and regions stay its own), a `CharityResource` per usable resource.
`Offer` and `ResourceRef` keep, beside each engine input, where it came from.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from libs.common.regions import sql_inside
from services.matching import rules
from services.matching.contracts.models import Contract
from services.matching.engine import (
    CharityResource,
    Need,
    OrganisationSupply,
    division_prefix,
    waiting_days,
)
from services.matching.library.models import ResourceAllocation, ResourceView
from services.matching.models import Match, NeedView, OrganisationView
from services.matching.rules import Basis

log = logging.getLogger(__name__)

#: Ids per `IN (…)` list (well under SQLite's bound-parameter limit).
IN_CHUNK = 900

NEED = NeedView.__table__  # type: ignore[attr-defined]
MATCH = Match.__table__  # type: ignore[attr-defined]
ORG = OrganisationView.__table__  # type: ignore[attr-defined]
RESOURCE = ResourceView.__table__  # type: ignore[attr-defined]
ALLOCATION = ResourceAllocation.__table__  # type: ignore[attr-defined]


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass(frozen=True, slots=True)
class NeedRow:
    """An allocatable need as read (no personal data: the recipient is a pseudonymous ref)."""

    need_id: str
    recipient_ref: str
    region_code: str
    service_code: str
    urgency: int
    categories: tuple[str, ...]
    opened_at: datetime
    status: str
    # For an unplaced need: who served it before the takeover (from its unmatched detail).
    taken_from: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    """Where an engine `OrganisationSupply` comes from: a contract, or (walking skeleton
    only) the organisation's registered capacity; with the figures a "why not" names."""

    basis: Basis
    organisation_id: str
    contract_id: str | None
    monthly: dict[str, int]
    used: dict[str, int]
    status: str
    eligible: bool
    credit_score: float | None
    satisfaction: float | None


@dataclass(frozen=True, slots=True)
class ResourceRef:
    resource_id: str
    charity_id: str
    providers_remaining: int
    unconfirmed: int


@dataclass
class Supply:
    organisations: list[OrganisationSupply] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    resources: list[CharityResource] = field(default_factory=list)
    resource_refs: list[ResourceRef] = field(default_factory=list)
    registered_capacity: bool = False


@dataclass
class Snapshot:
    """Engine inputs for one partition, with their provenance, at one moment."""

    now: datetime
    period: str
    rows: list[NeedRow]  # parallel to `needs`
    needs: list[Need]
    invalid: list[tuple[NeedRow, str]]
    supply: Supply


# --------------------------------------------------------------------------------- needs


def _scope_filter(query: Select[Any], scopes: Sequence[str]) -> Select[Any]:
    """Restrict to one scope in SQL (an index range); several are filtered after reading."""
    if len(scopes) != 1 or not scopes[0]:
        return query
    return query.where(sql_inside(NEED.c.region_code, scopes[0]))


async def load_needs(
    session: AsyncSession,
    *,
    scopes: Sequence[str],
    need_ids: Sequence[str] | None = None,
    statuses: Sequence[str] = rules.ALLOCATABLE,
) -> list[NeedRow]:
    """Needs in `statuses` inside the scopes (or exactly `need_ids`), oldest first."""
    cols = (
        NEED.c.need_id,
        NEED.c.recipient_ref,
        NEED.c.region_code,
        NEED.c.service_code,
        NEED.c.urgency,
        NEED.c.categories,
        NEED.c.opened_at,
        NEED.c.status,
    )
    raw: list[Any] = []
    if need_ids is not None:
        for part in chunks(list(need_ids)):
            query = select(*cols).where(NEED.c.need_id.in_(part), NEED.c.status.in_(statuses))
            raw += (await session.execute(query)).all()
    else:
        query = _scope_filter(select(*cols).where(NEED.c.status.in_(statuses)), scopes)
        raw = list((await session.execute(query)).all())
    rows = [
        NeedRow(
            r[0],
            r[1],
            r[2],
            r[3],
            int(r[4]),
            tuple(str(c) for c in (r[5] or ())),
            rules.aware(r[6]),
            r[7],
        )
        for r in raw
        if rules.in_scope(r[2], scopes)
    ]
    unplaced = [r.need_id for r in rows if r.status == "unplaced"]
    if unplaced:
        taken: dict[str, dict[str, Any]] = {}
        for part in chunks(unplaced):
            for need_id, detail in (
                await session.execute(
                    select(NEED.c.need_id, NEED.c.unmatched_detail).where(NEED.c.need_id.in_(part))
                )
            ).all():
                if isinstance(detail, dict) and isinstance(detail.get("takeover"), dict):
                    taken[need_id] = detail["takeover"]
        rows = [replace(r, taken_from=taken[r.need_id]) if r.need_id in taken else r for r in rows]
    # Oldest first, then by id: the engine breaks ties between equal needs by input order.
    rows.sort(key=lambda r: (r.opened_at, r.need_id))
    return rows


def engine_needs(
    rows: Sequence[NeedRow], now: datetime
) -> tuple[list[NeedRow], list[Need], list[tuple[NeedRow, str]]]:
    """(rows kept, engine needs, rows refused with why): a region that is not a 6/9/12-digit
    division code or an urgency outside 1–4 cannot be allocated (bad event data)."""
    kept: list[NeedRow] = []
    needs: list[Need] = []
    invalid: list[tuple[NeedRow, str]] = []
    for r in rows:
        region = rules.engine_region(r.region_code)
        if region is None:
            invalid.append((r, f"region {r.region_code!r} is not a 6-, 9- or 12-digit code"))
            continue
        if not 1 <= r.urgency <= 4:
            invalid.append((r, f"urgency {r.urgency} is not 1–4"))
            continue
        kept.append(r)
        needs.append(
            Need(
                r.need_id,
                r.recipient_ref,
                region,
                r.service_code,
                r.urgency,
                waiting_days(r.opened_at, now),
                r.categories,
            )
        )
    return kept, needs, invalid


# --------------------------------------------------------------------------------- supply


def _prefixes(regions: Iterable[str]) -> tuple[str, ...]:
    """Coverage prefixes the engine accepts; a malformed one is left out (and logged)."""
    out = []
    for code in rules.covering_prefixes(regions):
        try:
            division_prefix(code)
        except ValueError:
            log.warning("allocation: ignoring malformed coverage prefix %r", code)
            continue
        out.append(code)
    return tuple(out)


async def _organisation_views(
    session: AsyncSession, organisation_ids: Iterable[str]
) -> dict[str, Any]:
    ids = sorted(set(organisation_ids))
    out: dict[str, Any] = {}
    for part in chunks(ids):
        rows = await session.execute(
            select(
                ORG.c.organisation_id, ORG.c.status, ORG.c.credit_score, ORG.c.satisfaction
            ).where(ORG.c.organisation_id.in_(part))
        )
        out.update({r[0]: r for r in rows.all()})
    return out


async def contracts_exist(session: AsyncSession) -> bool:
    """Whether any contract has ever been signed here (ends the walking skeleton's supply)."""
    found = await session.execute(
        select(col(Contract.id)).where(col(Contract.signed_at).is_not(None)).limit(1)
    )
    return found.first() is not None


async def _used_under_contracts(session: AsyncSession, period: str) -> dict[tuple[str, str], int]:
    rows = await session.execute(
        select(MATCH.c.contract_id, MATCH.c.service_code, func.count())
        .where(
            MATCH.c.state == "active",
            MATCH.c.period == period,
            MATCH.c.contract_id.is_not(None),
        )
        .group_by(MATCH.c.contract_id, MATCH.c.service_code)
    )
    return {(c, s): int(n) for c, s, n in rows.all()}


async def _contract_supply(
    session: AsyncSession, supply: Supply, *, scopes: Sequence[str], today: date, period: str
) -> None:
    contracts = (
        (
            await session.execute(
                select(Contract)
                .where(col(Contract.state).in_(rules.COVERING_STATES))
                .order_by(col(Contract.id))
            )
        )
        .scalars()
        .all()
    )
    covering = []
    for c in contracts:
        if not rules.contract_covers(c.state, c.period_start, c.period_end, today):
            continue
        prefixes = _prefixes(c.regions)
        if prefixes and rules.overlaps_scope(prefixes, scopes):
            covering.append((c, prefixes))
    if not covering:
        return
    views = await _organisation_views(session, (c.organisation_id for c, _ in covering))
    used = await _used_under_contracts(session, period)
    for c, prefixes in covering:
        view = views.get(c.organisation_id)
        status = str(view[1]) if view is not None else "unknown"
        if c.state == "terminated" and status not in rules.BARRED_STATUSES:
            continue  # ended by the purchaser: no longer covers anything
        in_force = rules.contract_in_force(c.state, c.period_start, c.period_end, today)
        eligible = in_force and rules.organisation_eligible(status)
        if not rules.organisation_eligible(status):
            shown = status
        elif not in_force:
            shown = f"under {c.state} contract {c.id}"
        else:
            shown = status
        monthly = {str(k): int(v) for k, v in dict(c.monthly_capacity).items()}
        mine = {s: used.get((c.id, s), 0) for s in monthly}
        credit = view[2] if view is not None else None
        satisfaction = view[3] if view is not None else None
        supply.organisations.append(
            OrganisationSupply(
                c.organisation_id,
                rules.capacity_left(c.service_codes, monthly, mine),
                prefixes,
                credit_score=credit,
                satisfaction=satisfaction,
                status=shown,
                eligible=eligible,
            )
        )
        supply.offers.append(
            Offer(
                Basis.contract,
                c.organisation_id,
                c.id,
                monthly,
                mine,
                shown,
                eligible,
                credit,
                satisfaction,
            )
        )


async def _registered_supply(
    session: AsyncSession, supply: Supply, *, scopes: Sequence[str], period: str
) -> None:
    """The walking skeleton's supply: organisations' own registered capacities."""
    views = (
        await session.execute(
            select(
                ORG.c.organisation_id,
                ORG.c.status,
                ORG.c.credit_score,
                ORG.c.satisfaction,
                ORG.c.service_regions,
                ORG.c.capacities,
            )
            .where(ORG.c.registered.is_(True))
            .order_by(ORG.c.organisation_id)
        )
    ).all()
    used_rows = await session.execute(
        select(MATCH.c.organisation_id, MATCH.c.service_code, func.count())
        .where(
            MATCH.c.state == "active",
            MATCH.c.period == period,
            MATCH.c.contract_id.is_(None),
            MATCH.c.resource_id.is_(None),
        )
        .group_by(MATCH.c.organisation_id, MATCH.c.service_code)
    )
    used = {(o, s): int(n) for o, s, n in used_rows.all()}
    for org_id, status, credit, satisfaction, regions, capacities in views:
        prefixes = _prefixes(regions or ())
        monthly = {str(k): int(v) for k, v in dict(capacities or {}).items()}
        if not prefixes or not monthly or not rules.overlaps_scope(prefixes, scopes):
            continue
        mine = {s: used.get((org_id, s), 0) for s in monthly}
        eligible = rules.organisation_eligible(status)
        supply.organisations.append(
            OrganisationSupply(
                org_id,
                rules.capacity_left(monthly, monthly, mine),
                prefixes,
                credit_score=credit,
                satisfaction=satisfaction,
                status=str(status),
                eligible=eligible,
            )
        )
        supply.offers.append(
            Offer(
                Basis.registered_capacity,
                org_id,
                None,
                monthly,
                mine,
                str(status),
                eligible,
                credit,
                satisfaction,
            )
        )


async def unconfirmed_allocations(
    session: AsyncSession, resource_ids: Sequence[str] | None = None
) -> dict[str, int]:
    """Units matching allocated that providers' figure does not count yet, per resource."""
    query = (
        select(ALLOCATION.c.resource_id, func.sum(ALLOCATION.c.quantity))
        .where(ALLOCATION.c.state == "allocated")
        .group_by(ALLOCATION.c.resource_id)
    )
    if resource_ids is None:
        return {r: int(n or 0) for r, n in (await session.execute(query)).all()}
    out: dict[str, int] = {}
    for part in chunks(list(resource_ids)):
        rows = await session.execute(query.where(ALLOCATION.c.resource_id.in_(part)))
        out.update({r: int(n or 0) for r, n in rows.all()})
    return out


async def _resource_supply(
    session: AsyncSession, supply: Supply, *, scopes: Sequence[str], today: date
) -> None:
    rows = (
        await session.execute(
            select(
                RESOURCE.c.resource_id,
                RESOURCE.c.charity_id,
                RESOURCE.c.service_codes,
                RESOURCE.c.regions,
                RESOURCE.c.target_categories,
                RESOURCE.c.remaining,
                RESOURCE.c.status,
                RESOURCE.c.valid_from,
                RESOURCE.c.valid_until,
            )
            .where(RESOURCE.c.status == "offered")
            .order_by(RESOURCE.c.resource_id)
        )
    ).all()
    unconfirmed = await unconfirmed_allocations(session)
    for rid, charity, services, regions, targets, remaining, status, start, until in rows:
        if not rules.resource_usable(status, start, until, today):
            continue
        prefixes = _prefixes(regions or ())
        if not prefixes or not rules.overlaps_scope(prefixes, scopes):
            continue
        pending = unconfirmed.get(rid, 0)
        supply.resources.append(
            CharityResource(
                rid,
                tuple(str(s) for s in services or ()),
                prefixes,
                tuple(str(t) for t in targets or ()),
                rules.resource_left(remaining, pending),
                charity_id=charity,
            )
        )
        supply.resource_refs.append(ResourceRef(rid, charity, int(remaining), pending))


async def load_supply(
    session: AsyncSession,
    *,
    scopes: Sequence[str],
    now: datetime,
    environment: str,
    resources: bool = True,
) -> Supply:
    """Everything that may serve needs inside the scopes now (see `rules` for what counts)."""
    today = rules.china_today(now)
    period = rules.period_of(now)
    supply = Supply()
    await _contract_supply(session, supply, scopes=scopes, today=today, period=period)
    if rules.uses_registered_capacity(
        environment=environment, contracts_exist=await contracts_exist(session)
    ):
        supply.registered_capacity = True
        await _registered_supply(session, supply, scopes=scopes, period=period)
    if resources:
        await _resource_supply(session, supply, scopes=scopes, today=today)
    return supply


async def snapshot(
    session: AsyncSession,
    *,
    scopes: Sequence[str],
    now: datetime,
    environment: str,
    rows: Sequence[NeedRow] | None = None,
    resources: bool = True,
) -> Snapshot:
    """Needs (all allocatable ones in the scopes, or `rows`) and the supply for them."""
    if rows is None:
        rows = await load_needs(session, scopes=scopes)
    kept, needs, invalid = engine_needs(rows, now)
    supply = (
        await load_supply(
            session, scopes=scopes, now=now, environment=environment, resources=resources
        )
        if needs
        else Supply()
    )
    return Snapshot(now, rules.period_of(now), kept, needs, invalid, supply)
