"""Daily per-region statistics in the matching service: facts from the four streams (needs,
matching, providers, credit) published as their producers publish them, a day computed after
it closes in China time, announced as `sa.matching.statistics.daily` and served by
GET /statistics; computed once however often the job runs, and again (with a higher
version) when a late fact changes a computed day. Real database, real nats-server.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from libs.common.auth import Role
from libs.common.clock import FrozenClock
from libs.common.events import new_event
from services.matching.statistics import rules
from services.matching.statistics.jobs import run_daily
from services.matching.statistics.models import (
    StatDay,
    StatEvaluation,
    StatLedger,
    StatNeed,
    StatOrganisation,
    StatProject,
)
from tests import factories
from tests.support.platform import Platform, auth, eventually

COUNTY, OTHER = "220102", "220104"
OPERATOR = auth(Role.operator, region="22")
MINISTRY = auth(Role.ministry)
DAY = date(2027, 1, 10)


def cn(y: int, m: int, d: int, hour: int, minute: int = 0) -> datetime:
    """A wall-clock time in China as an aware UTC instant."""
    return datetime(y, m, d, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture
async def matching(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    platform = Platform(nats_url=nats_url, database_url=database_url_factory, services=["matching"])
    # The job runs once at start: on New Year's Day, before any fact of the test.
    clock = FrozenClock(cn(2027, 1, 1, 0, 30))
    platform.apps["matching"].state.clock = clock
    platform.runtime("matching").clock = clock
    async with platform as p:
        await eventually(lambda: count(p, StatDay), until=lambda n: n == 1)  # 12-31, empty
        yield p


async def emit(
    p: Platform, service: str, entity: str, verb: str, at: datetime | None = None, **data: Any
) -> None:
    """Publish an event as its producer does; `at` is its CloudEvents time."""
    event = new_event(service=service, entity=entity, verb=verb, data=data)
    if at is not None:
        event = dataclasses.replace(event, time=at)
    ack = await p.runtime("matching").bus.js.publish(
        event.nats_subject, event.body(), headers=event.headers()
    )
    assert ack.stream == service.upper()


def need(need_id: str, region: str) -> dict[str, Any]:
    """The payload the needs service publishes (matching's own consumers read all of it)."""
    return {
        "need_id": need_id,
        "recipient_ref": str(uuid.uuid4()),
        "region_code": region,
        "service_code": "care",
        "urgency": 3,
        "categories": ["tekun"],
        "quantity": 4,
        "unit": "次",
        "period_months": 1,
    }


async def count(p: Platform, model: Any) -> int:
    async with p.runtime("matching").db.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def daily_events(p: Platform) -> list[dict[str, Any]]:
    js = p.runtime("matching").bus.js
    info = await js.stream_info("MATCHING")
    out = []
    for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
        msg = await js.get_msg("MATCHING", seq)
        if msg.subject == "sa.matching.statistics.daily":
            out.append(json.loads(msg.data or b"{}"))
    return out


async def stats(p: Platform, headers: dict[str, str], **params: Any) -> Any:
    return await p["matching"].get("/statistics", params=params, headers=headers)


async def feed_the_facts(p: Platform) -> None:
    # Needs (NEEDS) and their matches and first services (MATCHING).
    needs = [
        # id, region, opened, matched, served
        ("n1", "220102001001", cn(2027, 1, 10, 9), cn(2027, 1, 10, 11), cn(2027, 1, 10, 15)),
        ("n2", "220102002001", cn(2027, 1, 9, 10), cn(2027, 1, 10, 10), None),
        ("n3", "220104001001", cn(2027, 1, 10, 8), None, None),
        ("n4", "220102001001", cn(2027, 1, 10, 23, 30), None, None),  # the day's last hour
        ("n5", "220102001001", cn(2027, 1, 11, 0, 30), None, None),  # the next day
    ]
    for need_id, region, opened, matched, served in needs:
        await emit(p, "needs", "need", "opened", **need(need_id, region), opened_at=opened)
        if matched is not None:  # matched before opened arrives is fine too
            await emit(
                p,
                "matching",
                "need",
                "matched",
                need_id=need_id,
                region_code=region,
                matched_at=matched,
            )
        if served is not None:
            await emit(
                p,
                "matching",
                "service",
                "delivered",
                need_id=need_id,
                delivered_on=served.date().isoformat(),
                confirmed_at=served,
            )
    await emit(
        p,
        "needs",
        "need",
        "cancelled",
        **need("n3", OTHER + "001001"),
        cancelled_at=cn(2027, 1, 10, 17),
    )
    # Not announced by the needs service yet; counted once it is.
    await emit(
        p,
        "needs",
        "need",
        "fulfilled",
        **need("n1", COUNTY + "001001"),
        fulfilled_at=cn(2027, 1, 10, 18),
    )

    # Funds and projects (PROVIDERS): the newest ledger version wins over a late one.
    for version, cap in ((2, 30_000_000), (1, 20_000_000)):
        await emit(
            p,
            "providers",
            "fund",
            "recorded",
            region_code=COUNTY,
            year=2027,
            base_fen=cap * 50,
            cap_fen=cap,
            ledger_version=version,
        )
    projects = [
        ("p1", 6_000_000, cn(2027, 1, 5, 10)),
        ("p2", 3_000_000, cn(2027, 1, 10, 10)),
        ("p3", 1_000_000, cn(2027, 1, 2, 10)),  # cancelled on the day: released
        ("p4", 4_000_000, cn(2027, 1, 11, 10)),  # the next day
    ]
    for project_id, budget, approved in projects:
        await emit(
            p,
            "providers",
            "project",
            "approved",
            project_id=project_id,
            region_code=COUNTY,
            budget_year=2027,
            budget_fen=budget,
            approved_at=approved,
        )
    await emit(
        p,
        "providers",
        "project",
        "cancelled",
        at=cn(2027, 1, 10, 9),
        project_id="p3",
        region_code=COUNTY,
        budget_year=2027,
        released_fen=1_000_000,
        version=3,
    )

    # Evaluations (CREDIT).
    for ev_id, region, sat, published in (
        ("e1", COUNTY, 0.9, cn(2027, 1, 10, 12)),
        ("e2", OTHER, 0.7, cn(2027, 1, 10, 12)),
        ("e3", COUNTY, 0.5, cn(2027, 1, 9, 12)),
    ):
        await emit(
            p,
            "credit",
            "evaluation",
            "recorded",
            evaluation_id=ev_id,
            region_code=region,
            satisfaction=sat,
            published_at=published,
        )

    # Organisations: home region (PROVIDERS), status and grade (CREDIT), versions guarded.
    orgs = [("o1", COUNTY, "A"), ("o2", COUNTY, "B"), ("o3", OTHER, "A"), ("o4", COUNTY, "A")]
    for org_id, region, grade in orgs:
        # Serving another province: the allocation engine has nothing to give them here,
        # so it matches none of the test's needs behind the test's back.
        offer = factories.organisation(region_code=region, service_regions=["3301"])
        await emit(
            p, "providers", "organisation", "registered", organisation_id=org_id, version=1, **offer
        )
        await emit(
            p, "credit", "organisation", "admitted", organisation_id=org_id, decision_version=1
        )
        await emit(p, "credit", "score", "changed", organisation_id=org_id, grade=grade, version=2)
    await emit(p, "credit", "score", "changed", organisation_id="o4", grade="C", version=1)  # late
    await emit(p, "credit", "organisation", "suspended", organisation_id="o2", decision_version=2)
    await emit(p, "credit", "organisation", "warned", organisation_id="o1", decision_version=1)

    async def settled() -> list[int]:
        return [
            await count(p, StatNeed),
            await count(p, StatProject),
            await count(p, StatLedger),
            await count(p, StatEvaluation),
            await count(p, StatOrganisation),
        ]

    await eventually(settled, until=lambda c: c == [5, 4, 1, 3, 4])

    async def organisations() -> dict[str, tuple[str, str | None]]:
        async with p.runtime("matching").db.session() as session:
            rows = (await session.execute(select(StatOrganisation))).scalars().all()
            return {o.organisation_id: (o.status, o.grade) for o in rows}

    await eventually(
        organisations,
        until=lambda o: (
            o.get("o2", ("",))[0] == "suspended"
            and o.get("o4") == ("admitted", "A")
            and o.get("o1") == ("admitted", "A")
        ),
    )

    async def projects_done() -> Any:
        async with p.runtime("matching").db.session() as session:
            p3 = await session.get(StatProject, "p3")
            n1 = await session.get(StatNeed, "n1")
            return p3 is not None and p3.cancelled_at is not None and n1 and n1.fulfilled_at

    await eventually(projects_done, until=bool)


async def test_a_closed_day_is_computed_once_announced_and_served(matching: Platform) -> None:
    await feed_the_facts(matching)
    runtime = matching.runtime("matching")

    # Before the day has closed (plus its settling margin), it is not computed.
    # The days after the start-up run's (12-31) through 01-09.
    assert await run_daily(runtime, now=cn(2027, 1, 11, 0, 5)) == 9
    rows = (await stats(matching, OPERATOR, region=COUNTY, **{"from": "2027-01-10"})).json()
    assert rows["total"] == 0

    assert await run_daily(runtime, now=cn(2027, 1, 11, 0, 20)) == 1
    assert await run_daily(runtime, now=cn(2027, 1, 11, 0, 40)) == 0  # once
    r = await stats(matching, OPERATOR, region=COUNTY, **{"from": "2027-01-10", "to": "2027-01-10"})
    assert r.status_code == 200, r.text
    (county,) = r.json()["items"]
    assert county["day"] == "2027-01-10" and county["version"] == 1
    assert county["needs_opened"] == 2  # n1, n4 (n2 the day before, n5 the day after)
    assert county["needs_matched"] == 2 and county["needs_served"] == 1
    assert county["needs_fulfilled"] == 1 and county["needs_cancelled"] == 0
    assert county["median_minutes_to_match"] == 780.0  # 120 and 1,440 minutes
    assert county["budget_reserved_fen"] == 9_000_000  # p1 + p2; p3 released, p4 next day
    assert county["cap_fen"] == 30_000_000 and county["cap_used"] == 0.3  # ledger version 2
    assert county["evaluations"] == 1 and county["average_satisfaction"] == 0.9
    assert county["active_organisations"] == 2 and county["active_by_grade"] == {"A": 2}

    province = (await stats(matching, MINISTRY, region="22", **{"from": "2027-01-10"})).json()
    (p22,) = province["items"]
    assert p22["needs_opened"] == 3 and p22["needs_cancelled"] == 1
    assert p22["average_satisfaction"] == 0.8  # 0.9 and 0.7
    assert p22["active_by_grade"] == {"A": 3}
    # Every region of the day, each level: province, city, both counties.
    everything = (await stats(matching, MINISTRY, **{"from": "2027-01-10"})).json()
    assert [x["region_code"] for x in everything["items"]] == ["22", "2201", COUNTY, OTHER]

    # The day before: n2 opened, e3 published.
    before = (
        await stats(matching, OPERATOR, region=COUNTY, **{"from": "2027-01-09", "to": "2027-01-09"})
    ).json()
    assert before["items"][0]["needs_opened"] == 1
    assert before["items"][0]["average_satisfaction"] == 0.5

    # Announced: one event per region and day.
    events = await eventually(
        lambda: daily_events(matching), until=lambda e: any(x["day"] == "2027-01-10" for x in e)
    )
    of_day = [e for e in events if e["day"] == "2027-01-10"]
    assert sorted(e["region_code"] for e in of_day) == ["22", "2201", COUNTY, OTHER]
    announced = next(e for e in of_day if e["region_code"] == COUNTY)
    assert announced["level"] == "county" and announced["version"] == 1
    assert {k: announced[k] for k in county if k not in ("computed_at",)} == {
        k: county[k] for k in county if k not in ("computed_at",)
    }

    # A late fact of the computed day: it is computed again, announced with version 2.
    await emit(
        matching,
        "needs",
        "need",
        "opened",
        need_id="n6",
        region_code=COUNTY,
        opened_at=cn(2027, 1, 10, 6),
    )
    await eventually(lambda: count(matching, StatNeed), until=lambda n: n == 6)
    assert await run_daily(runtime, now=cn(2027, 1, 11, 9)) == 1
    again = (
        await stats(matching, OPERATOR, region=COUNTY, **{"from": "2027-01-10", "to": "2027-01-10"})
    ).json()
    assert again["items"][0]["needs_opened"] == 3 and again["items"][0]["version"] == 2
    events = await eventually(
        lambda: daily_events(matching),
        until=lambda e: any(x["day"] == "2027-01-10" and x["version"] == 2 for x in e),
    )
    assert len([e for e in events if e["day"] == "2027-01-10"]) == 8  # four regions, twice


async def test_statistics_are_scoped_to_the_callers_region(matching: Platform) -> None:
    await feed_the_facts(matching)
    assert await run_daily(matching.runtime("matching"), now=cn(2027, 1, 11, 1)) >= 1
    other = auth(Role.purchaser, region=OTHER)
    r = await stats(matching, other, region=COUNTY)
    assert r.status_code == 404  # another county's figures do not exist for this caller
    mine = (await stats(matching, other, **{"from": "2027-01-10"})).json()
    assert [x["region_code"] for x in mine["items"]] == [OTHER]
    assert (await matching["matching"].get("/statistics")).status_code == 401
    org = auth(Role.organisation, org_id="o1")
    assert (await stats(matching, org)).status_code == 403
    bad = await stats(matching, MINISTRY, **{"from": "2027-01-10", "to": "2027-01-01"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.from"
    assert (await stats(matching, MINISTRY, region="2201001")).status_code == 422


def test_the_aggregates_by_region_level_and_china_day() -> None:
    start, end = rules.day_bounds(DAY)
    assert start == datetime(2027, 1, 9, 16, tzinfo=UTC) and end - start == timedelta(days=1)
    assert rules.regions_of("220102001001") == ["22", "2201", "220102"]
    assert rules.regions_of("22") == ["22"] and rules.regions_of(None) == []
    assert rules.median([3.0, 1.0, 2.0]) == 2.0 and rules.median([]) is None
    out = rules.aggregate(
        DAY,
        needs=[
            rules.NeedFact("220102001001", start, start + timedelta(minutes=30), None, None, None),
            rules.NeedFact("220102001001", end, None, None, None, None),  # the next day
        ],
        projects=[rules.ProjectFact("220102", 100, start - timedelta(days=3), end, 100)],
        ledgers=[rules.LedgerFact("220102", None)],  # no cap in this pack
        evaluations=[],
        organisations=[rules.OrganisationFact("220102", "admitted", None)],
    )
    county = out["220102"]
    assert (county.needs_opened, county.needs_matched) == (1, 1)
    assert county.median_minutes_to_match == 30.0
    assert county.budget_reserved_fen == 100  # cancelled only at the day's end: still held
    assert county.cap_fen is None and county.cap_used is None
    assert county.average_satisfaction is None
    assert dict(county.active_by_grade) == {"ungraded": 1}
    assert set(out) == {"22", "2201", "220102"}
