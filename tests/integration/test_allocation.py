"""Allocation in the matching service (issue 6 item 6), in-process over HTTP on a real database
(SQLite, and PostgreSQL with DATABASE_URL) and the session's real nats-server.

Supply comes from contracts and charity resources seeded as rows of matching's own tables
(the market before them is tested in test_contracts.py); needs and organisations' standing
are seeded as the projections their events build. Event workers are off unless a test needs
them: the events a run queues are read from the outbox, in the run's own transaction. The
clock is the app's (`FrozenClock`), so "this month" is fixed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlmodel import col

from libs.common.auth import Role
from libs.common.clock import FrozenClock
from libs.common.events import new_event
from services.matching import events as matching_events
from services.matching.allocation import runs
from services.matching.allocation.plan import plan
from services.matching.allocation.supply import snapshot
from services.matching.allocation.wiring import RESOURCE_DURABLE, with_movements
from services.matching.allocation.writes import RUN, write_assignments
from services.matching.app import create_app
from services.matching.contracts.models import Contract
from services.matching.engine import allocate
from services.matching.library import events as library_events
from services.matching.library.models import ResourceAllocation, ResourceView
from services.matching.models import AllocationRun, Match, NeedView, OrganisationView, event_tables
from services.matching.settings import MatchingSettings
from tests.support.platform import FAST_EVENTS, Platform, auth, eventually

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in China, November 2026
PERIOD = "2026-11"
COUNTY = "220102"  # 长春市南关区
OTHER = "220104"  # 长春市朝阳区
VILLAGE = "220102001001"
OPERATOR = auth(Role.operator)
PURCHASER = auth(Role.purchaser, region=COUNTY)
OTHER_PURCHASER = auth(Role.purchaser, region=OTHER)


# ---------------------------------------------------------------------------------- seeding


def organisation(
    org_id: str, *, status: str = "admitted", credit: float = 80.0, satisfaction: float = 0.8
) -> OrganisationView:
    return OrganisationView(
        organisation_id=org_id,
        registered=True,
        status=status,
        status_version=1,
        credit_score=credit,
        satisfaction=satisfaction,
        updated_at=NOW,
    )


def contract(
    org_id: str,
    *,
    regions: tuple[str, ...] = (COUNTY,),
    capacity: dict[str, int] | None = None,
    state: str = "active",
    start: date = date(2026, 1, 1),
    end: date = date(2026, 12, 31),
) -> Contract:
    capacity = capacity if capacity is not None else {"care": 5}
    return Contract(
        id=str(uuid.uuid4()),
        tender_id=str(uuid.uuid4()),
        award_id=str(uuid.uuid4()),
        project_id=str(uuid.uuid4()),
        organisation_id=org_id,
        region_code=regions[0][:6],
        service_codes=list(capacity),
        regions=list(regions),
        monthly_capacity=capacity,
        original_value_fen=1_000_000,
        value_fen=1_000_000,
        settlement="按月结算",
        obligations=["no_subcontracting"],
        period_start=start,
        period_end=end,
        state=state,
        version=2,
        created_at=NOW - timedelta(days=60),
        updated_at=NOW - timedelta(days=60),
        signed_at=None if state == "pending" else NOW - timedelta(days=60),
    )


def need(
    *,
    region: str = VILLAGE,
    service: str = "care",
    urgency: int = 2,
    categories: tuple[str, ...] = ("dibao",),
    waited_days: int = 0,
    status: str = "open",
) -> NeedView:
    return NeedView(
        need_id=str(uuid.uuid4()),
        recipient_ref=str(uuid.uuid4()),
        region_code=region,
        service_code=service,
        urgency=urgency,
        categories=list(categories),
        opened_at=NOW - timedelta(days=waited_days),
        status=status,
    )


def resource(
    *,
    regions: tuple[str, ...] = (COUNTY,),
    services: tuple[str, ...] = ("care",),
    targets: tuple[str, ...] = ("tekun",),
    remaining: int = 2,
    version: int = 1,
) -> ResourceView:
    return ResourceView(
        resource_id=str(uuid.uuid4()),
        charity_id=str(uuid.uuid4()),
        kind="service",
        service_codes=list(services),
        regions=list(regions),
        target_categories=list(targets),
        remaining=remaining,
        unit="人次",
        valid_from=date(2026, 1, 1),
        valid_until=date(2026, 12, 31),
        status="offered",
        version=version,
        updated_at=NOW,
    )


def seeded_match(c: Contract, n: NeedView) -> Match:
    return Match(
        id=str(uuid.uuid4()),
        need_id=n.need_id,
        organisation_id=c.organisation_id,
        contract_id=c.id,
        recipient_ref=n.recipient_ref,
        region_code=n.region_code,
        service_code=n.service_code,
        period=PERIOD,
        score=1.0,
        explanation={"seeded": True},
        run_id=str(uuid.uuid4()),
        created_at=NOW - timedelta(days=3),
    )


@dataclass
class Matching:
    app: FastAPI
    http: httpx.AsyncClient
    clock: FrozenClock

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime

    async def add(self, *rows: Any) -> None:
        async with self.runtime.db.write_session() as session:
            session.add_all(rows)
            await session.commit()

    async def run(self, headers: dict[str, str] = OPERATOR, **body: Any) -> dict[str, Any]:
        r = await self.http.post("/allocations/run", json=body or None, headers=headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def explain(self, need_id: str, headers: dict[str, str] = OPERATOR) -> dict[str, Any]:
        r = await self.http.get(f"/needs/{need_id}/explanation", headers=headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def need(self, need_id: str) -> NeedView:
        async with self.runtime.db.session() as session:
            row = await session.get(NeedView, need_id)
        assert row is not None
        return row

    async def active_matches(self) -> list[Match]:
        async with self.runtime.db.session() as session:
            rows = await session.execute(select(Match).where(col(Match.state) == "active"))
            return list(rows.scalars().all())

    async def outbox(self, subject: str) -> list[dict[str, Any]]:
        t = event_tables.outbox
        async with self.runtime.db.session() as session:
            rows = await session.execute(
                select(t.c.body).where(t.c.nats_subject == subject).order_by(t.c.seq)
            )
            return [json.loads(body) for (body,) in rows.all()]


def _app(settings: MatchingSettings, clock: FrozenClock) -> FastAPI:
    app = create_app(settings)
    app.state.clock = clock
    app.state.runtime.clock = clock
    return app


@pytest.fixture
async def matching(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Matching]:
    platform = Platform(
        nats_url=nats_url,
        database_url=database_url_factory,
        services=["matching"],
        start_event_workers=False,
    )
    clock = FrozenClock(NOW)
    platform.apps["matching"].state.clock = clock
    platform.runtime("matching").clock = clock
    async with platform as p:
        yield Matching(p.apps["matching"], p["matching"], clock)


# ---------------------------------------------------------------------- runs over contracts


async def test_run_matches_under_active_contracts_only_with_events_in_the_same_commit(
    matching: Matching,
) -> None:
    live = contract("org-live", capacity={"care": 2})
    paused = contract("org-paused", capacity={"care": 50}, state="paused")
    pending = contract("org-pending", capacity={"care": 50}, state="pending")
    expired = contract("org-old", capacity={"care": 50}, end=date(2026, 10, 31))
    needs = [need(urgency=u) for u in (1, 4, 3)]
    await matching.add(
        *(organisation(o) for o in ("org-live", "org-paused", "org-pending", "org-old")),
        live,
        paused,
        pending,
        expired,
        *needs,
    )

    result = await matching.run()
    assert result["matched"] == 2 and result["unmatched_count"] == 1
    # The two most urgent needs take the contract's two places this month.
    assert {m["need_id"] for m in result["matches"]} == {needs[1].need_id, needs[2].need_id}
    for m in result["matches"]:
        assert m["organisation_id"] == "org-live" and m["contract_id"] == live.id
        assert m["basis"] == "contract" and m["period"] == PERIOD
    (left,) = result["unmatched"]
    assert left["need_id"] == needs[0].need_id and left["reason_code"] == "capacity_exhausted"

    assert (await matching.need(needs[1].need_id)).status == "matched"
    waiting = await matching.need(needs[0].need_id)
    assert waiting.status == "open" and waiting.unmatched_code == "capacity_exhausted"
    assert waiting.considered_at is not None

    # need.matched per match, in the outbox with the run (the payload needs consumes).
    announced = await matching.outbox("sa.matching.need.matched")
    assert sorted(e["need_id"] for e in announced) == sorted(
        m["need_id"] for m in result["matches"]
    )
    for e in announced:
        assert e["organisation_id"] == "org-live" and e["contract_id"] == live.id
        assert e["match_id"] and e["recipient_ref"] and e["run_id"] == result["run_id"]
        assert set(e) >= {"region_code", "service_code", "score", "matched_at"}
    async with matching.runtime.db.session() as session:
        run = await session.get(AllocationRun, result["run_id"])
    assert run is not None and (run.matched, run.unmatched) == (2, 1)

    # A second run changes nothing: the capacity this month is used up.
    again = await matching.run()
    assert again["matched"] == 0 and len(await matching.active_matches()) == 2


async def test_why_this_provider_names_score_parts_and_the_binding_constraint(
    matching: Matching,
) -> None:
    # A covers the village itself and has better credit, but one place; B covers the county.
    near = contract("org-near", regions=("220102001",), capacity={"care": 1})
    wide = contract("org-wide", regions=(COUNTY,), capacity={"care": 10})
    first = need(urgency=4, categories=("tekun",), waited_days=65)
    second = need(urgency=2)
    await matching.add(
        organisation("org-near", credit=95.0, satisfaction=0.9),
        organisation("org-wide", credit=70.0, satisfaction=0.6),
        near,
        wide,
        first,
        second,
    )
    await matching.run()

    best = await matching.explain(first.need_id)
    assert best["organisation_id"] == "org-near" and best["contract_id"] == near.id
    assert best["basis"] == "contract" and best["status"] == "matched"
    ex = best["explanation"]
    # priority parts: urgency 4 → 8, waited 65 days → 2 steps, 特困 → 2
    assert ex["priority"] == {
        "total": 12,
        "urgency": 8,
        "waiting": 2,
        "waiting_days": 65,
        "vulnerability": 2,
        "vulnerable_category": "tekun",
    }
    # fit parts: township prefix → 8, credit 95 → 5, satisfaction 0.9 → 5
    assert ex["fit"] == {
        "total": 18,
        "region_closeness": 8,
        "covering_prefix_digits": 9,
        "credit": 5,
        "satisfaction": 5,
    }
    assert best["score"] == 12 * 18 == ex["score"]
    assert ex["provider"] == {"credit_score": 95.0, "satisfaction": 0.9}
    assert best["binding_constraints"] == [
        "capacity of organisation org-near for care used up: 1/1"
    ]

    other = await matching.explain(second.need_id)
    assert other["organisation_id"] == "org-wide"
    # It would have scored higher with org-near, whose capacity was full: that bound it.
    (passed,) = other["explanation"]["passed_over"]
    assert passed["id"] == "org-near" and passed["constraint"]["binding"] is True
    assert "capacity of organisation org-near for care used up: 1/1" in other["binding_constraints"]
    assert other["explanation"]["fit"]["region_closeness"] == 6  # county prefix


async def test_why_not_capacity_exhausted_names_the_capacity_figures(matching: Matching) -> None:
    c = contract("org-a", capacity={"care": 2})
    served = [need(), need()]
    waiting = need()
    await matching.add(
        organisation("org-a"),
        c,
        *served,
        *(seeded_match(c, n) for n in served),
        waiting,
    )
    for n in served:  # their matches were made earlier this month
        async with matching.runtime.db.write_session() as session:
            row = await session.get(NeedView, n.need_id)
            assert row is not None
            row.status = "matched"
            await session.commit()

    result = await matching.run()
    assert result["matched"] == 0
    why = await matching.explain(waiting.need_id)
    assert why["status"] == "open" and why["organisation_id"] is None
    assert why["reason_code"] == "capacity_exhausted"
    assert why["reason"].startswith("capacity_exhausted: ")
    assert f"organisation org-a (contract {c.id}): 2/2 care matched this month" in why["reason"]
    (figures,) = why["why_not"]["capacity_figures"]
    assert figures == {
        "kind": "organisation",
        "id": "org-a",
        "basis": "contract",
        "contract_id": c.id,
        "status": "admitted",
        "eligible": True,
        "covering_prefix": COUNTY,
        "monthly_capacity": 2,
        "used_before_run": 2,
        "taken_in_run": 0,
        "left": 0,
    }


async def test_why_not_no_coverage_and_all_ineligible(matching: Matching) -> None:
    suspended = contract("org-s", regions=(COUNTY,), capacity={"care": 9}, state="paused")
    blacklisted = contract("org-b", regions=(COUNTY,), capacity={"care": 9}, state="terminated")
    elsewhere = need(region="220104001001")
    barred = need()
    await matching.add(
        organisation("org-s", status="suspended"),
        organisation("org-b", status="blacklisted"),
        suspended,
        blacklisted,
        elsewhere,
        barred,
    )
    await matching.run()

    nobody = await matching.explain(elsewhere.need_id)
    assert nobody["reason_code"] == "no_coverage"
    assert "no contract or charity resource covers care in 220104001001" in nobody["reason"]

    ineligible = await matching.explain(barred.need_id)
    assert ineligible["reason_code"] == "all_ineligible"
    assert "organisation org-s is suspended" in ineligible["reason"]
    assert "organisation org-b is blacklisted" in ineligible["reason"]
    assert {c["id"] for c in ineligible["why_not"]["candidates"]} == {"org-s", "org-b"}


async def test_a_county_sees_and_runs_only_its_own_region(matching: Matching) -> None:
    mine, theirs = need(), need(region="220104001001")
    await matching.add(organisation("org-a"), contract("org-a"), mine, theirs)
    r = await matching.http.post(
        "/allocations/run", json={"region_scope": OTHER}, headers=PURCHASER
    )
    assert r.status_code == 403 and r.json()["errors"][0]["field"] == "body.region_scope"
    r = await matching.http.post(
        "/allocations/run", json={"region_scope": "22x"}, headers=PURCHASER
    )
    assert r.status_code == 422
    r = await matching.http.post("/allocations/run", headers=auth(Role.organisation, org_id="x"))
    assert r.status_code == 403
    async with matching.runtime.db.session() as session:  # refused requests wrote nothing
        assert (await session.execute(select(func.count()).select_from(RUN))).scalar_one() == 0

    result = await matching.run(PURCHASER)
    assert [m["need_id"] for m in result["matches"]] == [mine.need_id]
    assert (await matching.need(theirs.need_id)).considered_at is None
    r = await matching.http.get(f"/needs/{theirs.need_id}/explanation", headers=PURCHASER)
    assert r.status_code == 404
    listed = (await matching.http.get("/needs", headers=PURCHASER)).json()
    assert [n["need_id"] for n in listed["items"]] == [mine.need_id]


async def test_matches_list_filters_sorts_and_pages(matching: Matching) -> None:
    a, b = contract("org-a", capacity={"care": 3}), contract("org-b", capacity={"care": 3})
    needs = [need(urgency=1 + i % 4) for i in range(6)]
    await matching.add(organisation("org-a"), organisation("org-b", credit=60), a, b, *needs)
    await matching.run()
    page = (await matching.http.get("/matches?sort=-score&limit=4", headers=OPERATOR)).json()
    assert page["total"] == 6 and len(page["items"]) == 4
    scores = [m["score"] for m in page["items"]]
    assert scores == sorted(scores, reverse=True)
    rest = (
        await matching.http.get("/matches?sort=-score&limit=4&offset=4", headers=OPERATOR)
    ).json()
    assert len({m["id"] for m in page["items"] + rest["items"]}) == 6
    only_b = (
        await matching.http.get(f"/matches?contract_id={b.id}&state=active", headers=OPERATOR)
    ).json()
    assert only_b["total"] == 3 and {m["organisation_id"] for m in only_b["items"]} == {"org-b"}
    one = page["items"][0]
    got = await matching.http.get(f"/matches/{one['id']}", headers=PURCHASER)
    assert got.status_code == 200 and got.json()["explanation"] == one["explanation"]
    hidden = await matching.http.get(f"/matches/{one['id']}", headers=OTHER_PURCHASER)
    assert hidden.status_code == 404
    theirs = await matching.http.get(
        f"/matches/{one['id']}", headers=auth(Role.organisation, org_id="org-x")
    )
    assert theirs.status_code == 404


async def test_an_optional_fairness_cap_limits_one_organisations_share_of_a_county(
    matching: Matching,
) -> None:
    best = contract("org-best", regions=("220102001",), capacity={"care": 10})
    other = contract("org-other", capacity={"care": 10})
    needs = [need() for _ in range(4)]
    await matching.add(
        organisation("org-best", credit=99), organisation("org-other", credit=50), best, other
    )
    await matching.add(*needs)
    result = await matching.run(max_share=0.5)
    taken = [m["organisation_id"] for m in result["matches"]]
    assert sorted(taken) == ["org-best", "org-best", "org-other", "org-other"]
    capped = next(m for m in result["matches"] if m["organisation_id"] == "org-other")
    (passed,) = capped["explanation"]["passed_over"]
    assert passed["constraint"]["kind"] == "fairness_cap" and passed["constraint"]["limit"] == 2
    r = await matching.http.post("/allocations/run", json={"max_share": 0}, headers=OPERATOR)
    assert r.status_code == 422 and r.json()["errors"][0]["field"].endswith("max_share")


# ----------------------------------------------------------------------- charity resources


async def test_charity_resource_serves_its_categories_and_counts_unconfirmed_units(
    matching: Matching,
) -> None:
    res = resource(targets=("tekun",), remaining=2)
    tekun = [need(categories=("tekun", "dibao"), urgency=3 - i) for i in range(3)]
    dibao = need(categories=("dibao",))
    await matching.add(res, *tekun, dibao)

    result = await matching.run()
    assert {m["need_id"] for m in result["matches"]} == {tekun[0].need_id, tekun[1].need_id}
    for m in result["matches"]:
        assert m["resource_id"] == res.resource_id and m["organisation_id"] is None
        assert m["basis"] == "charity_resource"
    allocated = await matching.outbox("sa.matching.resource.allocated")
    assert len(allocated) == 2
    for e in allocated:
        assert e["resource_id"] == res.resource_id and e["quantity"] == 1 and e["allocation_id"]
    assert (await matching.explain(tekun[2].need_id))["reason_code"] == "capacity_exhausted"
    other = await matching.explain(dibao.need_id)
    assert other["reason_code"] == "no_coverage"
    assert "cover it there but target other categories" in other["reason"]

    # Providers' figure (still 2) minus our 2 unconfirmed allocations: nothing left.
    assert (await matching.run())["matched"] == 0

    # Providers counts both allocations (remaining 0, then a donor adds 3 units): as its
    # events confirm them, they are no longer subtracted; 3 units are free again.
    handler = next(
        with_movements(s).handler
        for s in library_events.subscriptions
        if s.durable == RESOURCE_DURABLE
    )
    assert handler is not None
    state = {
        "resource_id": res.resource_id,
        "charity_id": res.charity_id,
        "kind": "service",
        "service_codes": ["care"],
        "regions": [COUNTY],
        "target_categories": ["tekun"],
        "unit": "人次",
        "valid_from": "2026-01-01",
        "valid_until": "2026-12-31",
    }
    moves = [
        ("updated", 1, "offered", 2, allocated[0]["allocation_id"]),
        ("exhausted", 0, "exhausted", 3, allocated[1]["allocation_id"]),
        ("updated", 3, "offered", 4, None),
    ]
    for verb, remaining, status, version, allocation_id in moves:
        data = {**state, "remaining": remaining, "status": status, "version": version}
        if allocation_id:
            data["movement"] = {"allocation_id": allocation_id, "reason": "allocated", "delta": -1}
        event = new_event(service="providers", entity="resource", verb=verb, data=data)
        async with matching.runtime.unit_of_work() as uow:
            await handler(uow, event)
            await uow.commit()
    async with matching.runtime.db.session() as session:
        states = (await session.execute(select(col(ResourceAllocation.state)))).scalars().all()
    assert sorted(states) == ["confirmed", "confirmed"]
    again = await matching.run()
    assert [m["need_id"] for m in again["matches"]] == [tekun[2].need_id]


async def cancel_need(matching: Matching, need_id: str) -> None:
    """The needs service cancels `need_id`: matching handles `need.cancelled`."""
    cancelled = new_event(
        service="needs",
        entity="need",
        verb="cancelled",
        data={"need_id": need_id, "reason": "recipient moved away"},
    )
    async with matching.runtime.unit_of_work() as uow:
        await matching_events.on_need_cancelled(uow, cancelled)
        await uow.commit()


async def test_a_cancelled_need_ends_its_match_and_gives_the_units_back(
    matching: Matching,
) -> None:
    res = resource(targets=("tekun",), remaining=1)
    n = need(categories=("tekun",))
    await matching.add(res, n)
    (match,) = (await matching.run())["matches"]
    await cancel_need(matching, n.need_id)
    assert (await matching.need(n.need_id)).status == "cancelled"
    assert await matching.active_matches() == []
    (released,) = await matching.outbox("sa.matching.resource.released")
    (allocated,) = await matching.outbox("sa.matching.resource.allocated")
    assert released["allocation_id"] == allocated["allocation_id"] and released["quantity"] == 1
    assert allocated["match_id"] == match["id"]
    # A late need.opened does not bring it back.
    opened = new_event(
        service="needs",
        entity="need",
        verb="opened",
        data={
            "need_id": n.need_id,
            "recipient_ref": n.recipient_ref,
            "region_code": VILLAGE,
            "service_code": "care",
            "urgency": 2,
            "categories": ["tekun"],
            "opened_at": NOW.isoformat(),
        },
    )
    async with matching.runtime.unit_of_work() as uow:
        await matching_events.on_need_opened(uow, opened)
        await uow.commit()
    assert (await matching.need(n.need_id)).status == "cancelled"


# ------------------------------------------------------------------ walking-skeleton supply


async def test_registered_capacity_serves_only_until_the_first_contract_is_signed(
    matching: Matching,
) -> None:
    offer = organisation("org-reg")
    offer.service_regions = ["2201"]
    offer.capacities = {"care": 5}
    first = need()
    await matching.add(offer, first)
    (m,) = (await matching.run())["matches"]
    assert m["organisation_id"] == "org-reg" and m["basis"] == "registered_capacity"
    assert m["contract_id"] is None
    assert m["explanation"]["text"].startswith("registered capacity (walking skeleton")

    await matching.add(organisation("org-c"), contract("org-c", capacity={"care": 1}))
    later = [need(), need()]
    await matching.add(*later)
    result = await matching.run()
    # Once a contract exists, only contracts supply: one place, the other need waits.
    assert [x["organisation_id"] for x in result["matches"]] == ["org-c"]
    (left,) = result["unmatched"]
    assert left["reason_code"] == "capacity_exhausted"


# ------------------------------------------------------------ concurrency and micro-batches


async def test_a_stale_plan_is_rechecked_in_sql_and_never_over_allocates(
    matching: Matching,
) -> None:
    """Two runs read the same supply; the second to write finds the room taken and leaves
    those needs for the next micro-batch instead of over-allocating."""
    rt = matching.runtime
    city = contract("org-city", regions=("2201",), capacity={"care": 3})
    res = resource(regions=("2201",), targets=("dibao",), remaining=2)
    ours = [need() for _ in range(4)]
    theirs = [need(region="220104001001") for _ in range(4)]
    await matching.add(organisation("org-city"), city, res, *ours, *theirs)

    async def planned(scope: str, run_id: str) -> Any:
        async with rt.db.session() as session:
            snap = await snapshot(session, scopes=[scope], now=NOW, environment="test")
        planned_, _ = plan(
            snap,
            allocate(snap.needs, snap.supply.organisations, snap.supply.resources),
            run_id=run_id,
        )
        async with rt.unit_of_work() as uow:
            await uow.session.execute(
                RUN.insert().values(
                    id=run_id,
                    requested_by="test",
                    region_scope=scope,
                    matched=0,
                    unmatched=0,
                    started_at=NOW,
                    finished_at=NOW,
                )
            )
            await uow.commit()
        return planned_

    first = await planned(COUNTY, "run-1")
    second = await planned(OTHER, "run-2")
    assert len(first) == len(second) == 4  # each alone would take 3 + 2 of the 5 places
    for run_id, plan_ in (("run-1", first), ("run-2", second)):
        async with rt.unit_of_work() as uow:
            written = await write_assignments(uow, run_id=run_id, now=NOW, planned=plan_)
            await uow.commit()
        if run_id == "run-2":
            assert len(written.matches) == 1 and len(written.retried) == 3
    active = await matching.active_matches()
    assert sum(1 for m in active if m.contract_id == city.id) == 3
    assert sum(1 for m in active if m.resource_id == res.resource_id) == 2
    retried = [n for n in theirs if (await matching.need(n.need_id)).status == "open"]
    assert len(retried) == 3
    for n in retried:
        assert (await matching.need(n.need_id)).considered_at is None  # the micro-batch's


async def test_concurrent_runs_on_two_replicas_never_over_allocate(
    matching: Matching, database_url_factory: Callable[[str], str], nats_url: str
) -> None:
    """Two replicas of the service on one database, four runs at once over overlapping
    scopes: a city-wide contract and resource are never over-allocated (on PostgreSQL the
    province lock serialises them; on SQLite the write-time re-check catches the rest)."""
    city = contract("org-city", regions=("2201",), capacity={"care": 10})
    res = resource(regions=("2201",), targets=("dibao",), remaining=4)
    needs = [need() for _ in range(15)] + [need(region="220104001001") for _ in range(15)]
    await matching.add(organisation("org-city"), city, res, *needs)
    settings = MatchingSettings(
        nats_url=nats_url,
        database_url=matching.runtime.settings.database_url,
        start_event_workers=False,
        **FAST_EVENTS,
    )
    replica = _app(settings, matching.clock)
    async with replica.router.lifespan_context(replica):
        other = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=replica), base_url="http://replica"
        )
        async with other:
            calls = [
                matching.http.post(
                    "/allocations/run", json={"region_scope": COUNTY}, headers=OPERATOR
                ),
                other.post("/allocations/run", json={"region_scope": OTHER}, headers=OPERATOR),
                matching.http.post("/allocations/run", headers=OPERATOR),
                other.post("/allocations/run", json={"region_scope": "2201"}, headers=OPERATOR),
            ]
            responses = await asyncio.gather(*calls)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    # Whatever was retried is picked up by the next micro-batch.
    await runs.micro_batch(matching.runtime, now=NOW)
    active = await matching.active_matches()
    assert sum(1 for m in active if m.contract_id == city.id) == 10
    assert sum(1 for m in active if m.resource_id == res.resource_id) == 4
    assert len({m.need_id for m in active}) == len(active) == 14
    async with matching.runtime.db.session() as session:
        units = (
            await session.execute(
                select(func.sum(ResourceAllocation.quantity)).where(
                    col(ResourceAllocation.resource_id) == res.resource_id
                )
            )
        ).scalar_one()
    assert units == 4
    announced = await matching.outbox("sa.matching.need.matched")
    assert sorted(e["need_id"] for e in announced) == sorted(m.need_id for m in active)


@pytest.fixture
async def live_matching(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Matching]:
    platform = Platform(nats_url=nats_url, database_url=database_url_factory, services=["matching"])
    clock = FrozenClock(NOW)
    platform.apps["matching"].state.clock = clock
    platform.runtime("matching").clock = clock
    async with platform as p:
        yield Matching(p.apps["matching"], p["matching"], clock)


async def test_micro_batch_matches_a_newly_opened_need_without_a_manual_run(
    live_matching: Matching,
) -> None:
    m = live_matching
    c = contract("org-a", capacity={"care": 3})
    await m.add(organisation("org-a"), c)
    need_id = str(uuid.uuid4())
    opened = new_event(
        service="needs",
        entity="need",
        verb="opened",
        subject=need_id,
        data={
            "need_id": need_id,
            "recipient_ref": str(uuid.uuid4()),
            "region_code": VILLAGE,
            "service_code": "care",
            "urgency": 3,
            "categories": ["tekun"],
            "opened_at": NOW.isoformat(),
        },
    )
    ack = await m.runtime.bus.js.publish(
        opened.nats_subject, opened.body(), headers=opened.headers()
    )
    assert ack.stream == "NEEDS"

    async def matches() -> dict[str, Any]:
        r = await m.http.get(f"/matches?need_id={need_id}", headers=OPERATOR)
        return dict(r.json())

    found = await eventually(matches, until=lambda page: page["total"] == 1)
    (match,) = found["items"]
    assert match["contract_id"] == c.id and match["state"] == "active"
    async with m.runtime.db.session() as session:
        run = await session.get(AllocationRun, match["run_id"])
    assert run is not None and run.requested_by == "micro-batch"
    assert run.region_scope == COUNTY
    # Nothing new: the next micro-batch does nothing.
    assert await runs.micro_batch(m.runtime, now=NOW) is None


# ------------------------------------------------- waiting needs when supply appears


async def left_waiting(matching: Matching, *needs: NeedView) -> NeedView:
    """Add `needs`, run once with room for one fewer: the one left unmatched."""
    await matching.add(*needs)
    await matching.run()
    waiting = [n for n in needs if (await matching.need(n.need_id)).status == "open"]
    assert len(waiting) == 1
    assert (await matching.need(waiting[0].need_id)).considered_at is not None
    # Nothing new: the micro-batch has nothing to do, the need waits.
    assert await runs.micro_batch(matching.runtime, now=NOW) is None
    return waiting[0]


async def matched_by_micro_batch(matching: Matching, need_id: str, now: datetime = NOW) -> Match:
    report = await runs.micro_batch(matching.runtime, now=now)
    assert report is not None  # the county is due again without any new need there
    (match,) = [m for m in await matching.active_matches() if m.need_id == need_id]
    return match


async def test_a_signed_contract_serves_needs_already_waiting(matching: Matching) -> None:
    await matching.add(
        organisation("org-a"), organisation("org-b"), contract("org-a", capacity={"care": 1})
    )
    waiting = await left_waiting(matching, need(urgency=3), need(urgency=2))
    new = contract("org-b", capacity={"care": 2}, state="pending")
    await matching.add(new)
    r = await matching.http.post(
        f"/contracts/{new.id}/sign", headers=auth(Role.organisation, org_id="org-b")
    )
    assert r.status_code == 200, r.text
    match = await matched_by_micro_batch(matching, waiting.need_id)
    assert match.contract_id == new.id


async def test_a_cancelled_need_frees_its_unit_for_a_waiting_one(matching: Matching) -> None:
    c = contract("org-a", capacity={"care": 1})
    await matching.add(organisation("org-a"), c)
    first, second = need(urgency=4), need(urgency=1)
    waiting = await left_waiting(matching, first, second)
    assert waiting.need_id == second.need_id  # the more urgent one got the unit
    await cancel_need(matching, first.need_id)
    match = await matched_by_micro_batch(matching, second.need_id)
    assert match.contract_id == c.id


async def test_a_charity_offering_units_serves_needs_already_waiting(matching: Matching) -> None:
    await matching.add(organisation("org-a"), contract("org-a", capacity={"care": 1}))
    waiting = await left_waiting(
        matching, need(urgency=3, categories=("tekun",)), need(urgency=2, categories=("tekun",))
    )
    offered = new_event(
        service="providers",
        entity="resource",
        verb="offered",
        data={
            "resource_id": "res-1",
            "charity_id": "charity-1",
            "kind": "service",
            "service_codes": ["care"],
            "regions": [COUNTY],
            "target_categories": ["tekun"],
            "remaining": 1,
            "unit": "人次",
            "valid_from": "2026-01-01",
            "valid_until": "2026-12-31",
            "status": "offered",
            "version": 1,
        },
    )
    async with matching.runtime.unit_of_work() as uow:
        await library_events.on_resource(uow, offered)
        await uow.commit()
    match = await matched_by_micro_batch(matching, waiting.need_id)
    assert match.resource_id == "res-1"


async def test_needs_left_unmatched_are_due_again_when_monthly_capacity_starts_afresh(
    matching: Matching,
) -> None:
    await matching.add(organisation("org-a"), contract("org-a", capacity={"care": 1}))
    waiting = await left_waiting(matching, need(urgency=3), need(urgency=2))
    # 23:59 on 30 November in China: still November's capacity, nothing to do.
    assert (
        await runs.micro_batch(matching.runtime, now=datetime(2026, 11, 30, 15, 59, tzinfo=UTC))
        is None
    )
    # 00:00 on 1 December in China (16:00 UTC): December's capacity serves the one waiting.
    match = await matched_by_micro_batch(
        matching, waiting.need_id, now=datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    )
    assert match.period == "2026-12"


# ------------------------------------------------------ satisfaction from evaluations


def evaluation_event(org_id: str, satisfaction: float | None, published: datetime) -> Any:
    return new_event(
        service="credit",
        entity="evaluation",
        verb="recorded",
        data={
            "evaluation_id": str(uuid.uuid4()),
            "contract_id": str(uuid.uuid4()),
            "organisation_id": org_id,
            "region_code": COUNTY,
            "period": "2026-H2",
            "purchaser_score": 80.0,
            "satisfaction_score": None if satisfaction is None else satisfaction * 100,
            "satisfaction": satisfaction,
            "organisation_satisfaction": satisfaction,
            "third_party_score": None,
            "responses": 12,
            "weights": {},
            "total": 82.0,
            "pass_mark": 60.0,
            "result": "good",
            "published_at": published.isoformat(),
        },
    )


async def record(matching: Matching, event: Any) -> None:
    async with matching.runtime.unit_of_work() as uow:
        await library_events.on_evaluation_recorded(uow, event)
        await uow.commit()


async def org_view(matching: Matching, org_id: str) -> OrganisationView:
    async with matching.runtime.db.session() as session:
        view = await session.get(OrganisationView, org_id)
    assert view is not None
    return view


async def test_published_evaluations_set_the_satisfaction_the_engine_weighs(
    matching: Matching,
) -> None:
    await matching.add(organisation("org-a", satisfaction=0.5), contract("org-a"))
    await record(matching, evaluation_event("org-a", 0.92, NOW - timedelta(days=1)))
    assert (await org_view(matching, "org-a")).satisfaction == 0.92
    # An older evaluation arriving late changes nothing; one without responses keeps it.
    await record(matching, evaluation_event("org-a", 0.10, NOW - timedelta(days=30)))
    await record(matching, evaluation_event("org-a", None, NOW))
    view = await org_view(matching, "org-a")
    assert view.satisfaction == 0.92 and view.satisfaction_as_of is not None
    n = need()
    await matching.add(n)
    await matching.run()
    explanation = await matching.explain(n.need_id)
    assert "0.92" in json.dumps(explanation)  # the provider's satisfaction, as weighed


async def test_an_evaluation_with_a_bad_satisfaction_is_refused(matching: Matching) -> None:
    from libs.common.events import PermanentError

    with pytest.raises(PermanentError, match="outside 0–1"):
        await record(matching, evaluation_event("org-a", 1.5, NOW))
    bad = evaluation_event("org-a", 0.8, NOW)
    bad.data["published_at"] = "yesterday"
    with pytest.raises(PermanentError, match="published_at"):
        await record(matching, bad)
