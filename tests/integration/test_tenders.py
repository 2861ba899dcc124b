"""Tenders and sealed bids in the matching service, in-process over HTTP on a real database
and the session's real nats-server. The library projections are fed by publishing the
providers' and credit's events to NATS, as those services would; "now" is a test clock on
the app (`app.state.clock`), so deadlines pass without sleeping."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from libs.common.auth import Role
from libs.common.crypto import DecryptionError, generate_key
from libs.common.events import new_event
from services.matching.library.models import ExpertView, ProjectView, ResourceView
from services.matching.market.models import Bid
from services.matching.models import OrganisationView
from services.matching.settings import MatchingSettings
from services.matching.tenders import rules
from services.matching.tenders import service as tenders_service
from tests import factories
from tests.support.platform import Platform, auth, eventually

REGION = "220102"  # 长春市南关区
PURCHASER = auth(Role.purchaser, region=REGION)
OPERATOR = auth(Role.operator, region="22")
OTHER_COUNTY = auth(Role.purchaser, region="220104")
QUALIFICATION = "independent_civil_liability"
BUDGET = 50_000_000  # 50万元
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in China
CRITERIA = [
    {"code": "service_plan", "name": "服务方案", "weight": "0.4"},
    {"code": "staffing", "name": "人员配备", "weight": "0.3"},
]


class Clock:
    """The matching app's "now", moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
async def market(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    platform = Platform(nats_url=nats_url, database_url=database_url_factory, services=["matching"])
    async with platform as p:
        p.apps["matching"].state.clock = Clock(START)
        yield p


def clock(p: Platform) -> Clock:
    found: Clock = p.apps["matching"].state.clock
    return found


def org_auth(org_id: str) -> dict[str, str]:
    return auth(Role.organisation, region="22", org_id=org_id)


# -- feeding the projections ------------------------------------------------------------------


async def publish(p: Platform, service: str, entity: str, verb: str, **data: Any) -> None:
    event = new_event(service=service, entity=entity, verb=verb, data=data)
    js = p.runtime("matching").bus.js
    await js.publish(event.nats_subject, event.body(), headers=event.headers())


async def view_of(p: Platform, table: Any, key: str) -> Any:
    async with p.runtime("matching").db.session() as session:
        return await session.get(table, key)


async def organisation(
    p: Platform,
    *,
    regions: list[str] | None = None,
    services: dict[str, int] | None = None,
    qualified: bool = True,
    status: str = "admitted",
) -> str:
    """An organisation registered with providers and decided by credit."""
    org_id = str(uuid.uuid4())
    offer = factories.organisation(
        service_regions=regions or ["2201"],
        services=[
            {"code": c, "monthly_capacity": n}
            for c, n in (services or {"care": 10, "counselling": 5}).items()
        ],
        qualifications={QUALIFICATION: qualified},
    )
    await publish(
        p, "providers", "organisation", "registered", organisation_id=org_id, version=1, **offer
    )
    await publish(p, "credit", "organisation", status, organisation_id=org_id, decision_version=1)
    await eventually(
        lambda: view_of(p, OrganisationView, org_id),
        until=lambda v: v is not None and v.registered and v.status == status,
    )
    return org_id


async def set_status(p: Platform, org_id: str, verb: str, version: int) -> None:
    await publish(
        p, "credit", "organisation", verb, organisation_id=org_id, decision_version=version
    )
    await eventually(
        lambda: view_of(p, OrganisationView, org_id),
        until=lambda v: v.status_version == version,
    )


def project_payload(project_id: str, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "project_id": project_id,
        "region_code": REGION,
        "department": "长春市南关区民政局",
        "title": "南关区特困人员照料护理服务",
        "service_codes": ["care", "counselling"],
        "quantity": 1200,
        "unit": "hours",
        "quality_standards": "按服务规范",
        "qualification_requirements": [QUALIFICATION],
        "specific_conditions": None,
        "budget_fen": BUDGET,
        "fund_source": "special_funds",
        "period_start": "2026-05-01",
        "period_end": "2027-04-30",
        "purchasing_method": "open_tender",
        "pack": "jilin@2026.1",
        "version": 1,
    }
    data.update(changes)
    return data


async def project(p: Platform, **changes: Any) -> str:
    project_id = str(changes.pop("project_id", uuid.uuid4()))
    data = project_payload(project_id, **changes)
    await publish(p, "providers", "project", "published", **data)
    await eventually(
        lambda: view_of(p, ProjectView, project_id),
        until=lambda v: v is not None and v.version == data["version"],
    )
    return project_id


# -- the market over HTTP ---------------------------------------------------------------------


def tender_body(project_id: str, now: datetime = START, **changes: Any) -> dict[str, Any]:
    """An open tender of the project, its deadline exactly 20 days after `now`."""
    body: dict[str, Any] = {
        "project_id": project_id,
        "method": "open_tender",
        "criteria": CRITERIA,
        "price_weight": "0.3",
        "bid_deadline": (now + timedelta(days=20)).isoformat(),
    }
    body.update(changes)
    return body


async def open_tender(p: Platform, project_id: str, **changes: Any) -> dict[str, Any]:
    """Create and publish a tender; returns the published notice."""
    body = tender_body(project_id, clock(p).now, **changes)
    r = await p["matching"].post("/tenders", json=body, headers=PURCHASER)
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "draft"
    r = await p["matching"].post(f"/tenders/{r.json()['id']}/publish", headers=PURCHASER)
    assert r.status_code == 200, r.text
    notice: dict[str, Any] = r.json()
    assert notice["state"] == "bidding" and notice["bidding_open"] is True
    return notice


async def bid(p: Platform, tender_id: str, org_id: str, price: int, **content: Any) -> Any:
    return await p["matching"].post(
        f"/tenders/{tender_id}/bids",
        json={"price_fen": price, "content": content or {"plan": f"plan of {org_id}"}},
        headers=org_auth(org_id),
    )


async def matching_events(p: Platform, subject: str) -> list[dict[str, Any]]:
    """Data of every event on `subject` in the MATCHING stream, in order."""
    js = p.runtime("matching").bus.js
    try:
        info = await js.stream_info("MATCHING")
    except Exception:
        return []
    out = []
    for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
        msg = await js.get_msg("MATCHING", seq)
        if msg.subject == subject:
            out.append(json.loads(msg.data or b"{}"))
    return out


async def events_until(p: Platform, subject: str, count: int = 1) -> list[dict[str, Any]]:
    return await eventually(
        lambda: matching_events(p, subject), until=lambda found: len(found) >= count
    )


# -- tests ------------------------------------------------------------------------------------


async def test_sealed_bids_are_unreadable_before_the_deadline_and_opened_after(
    market: Platform,
) -> None:
    orgs = [await organisation(market) for _ in range(3)]
    project_id = await project(market)
    notice = await open_tender(market, project_id)
    tender_id = notice["id"]
    published = (await events_until(market, "sa.matching.tender.published"))[0]
    assert published["tender_id"] == tender_id and published["budget_fen"] == BUDGET
    assert published["method"] == "open_tender" and published["region_code"] == REGION

    prices = [41_000_000, 38_500_000, 45_000_000]
    bids = []
    for org_id, price in zip(orgs, prices, strict=True):
        r = await bid(market, tender_id, org_id, price, plan=f"secret plan {price}")
        assert r.status_code == 201, r.text
        assert r.json()["price_fen"] == price  # the bidder sees what it sealed
        bids.append(r.json()["id"])

    # The bidder reads its own bid; nobody else reads any bid, or even its price.
    mine = await market["matching"].get(
        f"/tenders/{tender_id}/bids/mine", headers=org_auth(orgs[0])
    )
    assert mine.status_code == 200 and mine.json()["price_fen"] == prices[0]
    assert mine.json()["content"] == {"plan": f"secret plan {prices[0]}"}
    for headers in (PURCHASER, OPERATOR, org_auth(orgs[1])):
        one = await market["matching"].get(f"/tenders/{tender_id}/bids/{bids[0]}", headers=headers)
        assert one.status_code == 403, one.text
        assert str(prices[0]) not in one.text
        listing = await market["matching"].get(f"/tenders/{tender_id}/bids", headers=headers)
        assert listing.json() == {"tender_id": tender_id, "opened": False, "count": 3, "items": []}
    for headers in (PURCHASER, OPERATOR):
        nobody = await market["matching"].get(f"/tenders/{tender_id}/bids/mine", headers=headers)
        assert nobody.status_code == 403
    # At rest the price and content exist only inside the sealed token.
    async with market.runtime("matching").db.session() as session:
        rows = (await session.execute(select(Bid).where(Bid.tender_id == tender_id))).scalars()
        for row in rows.all():
            assert row.price_fen is None and row.content is None
            assert row.sealed.startswith("v1.") and "secret" not in row.sealed
    # Events say who bid, never the price or the content.
    submitted = await events_until(market, "sa.matching.bid.submitted", 3)
    assert {e["bid_id"] for e in submitted} == set(bids)
    for e in submitted:
        assert set(e) == {"tender_id", "bid_id", "organisation_id", "submitted_at", "version"}

    early = await market["matching"].post(f"/tenders/{tender_id}/open", headers=PURCHASER)
    assert early.status_code == 409

    clock(market).advance(days=20)
    opened = await market["matching"].post(f"/tenders/{tender_id}/open", headers=PURCHASER)
    assert opened.status_code == 200, opened.text
    assert opened.json()["tender"]["state"] == "evaluating"
    assert (opened.json()["valid"], opened.json()["invalid"]) == (3, 0)
    listing = (await market["matching"].get(f"/tenders/{tender_id}/bids", headers=PURCHASER)).json()
    assert listing["opened"] is True
    assert sorted(b["price_fen"] for b in listing["items"]) == sorted(prices)
    assert all(b["state"] == "valid" and b["content"] for b in listing["items"])
    # Prices are read out to bidders too (唱标); the offers' content stays with the panel.
    seen = (
        await market["matching"].get(f"/tenders/{tender_id}/bids", headers=org_auth(orgs[1]))
    ).json()
    assert sorted(b["price_fen"] for b in seen["items"]) == sorted(prices)
    assert all(b["content"] is None for b in seen["items"])
    one = await market["matching"].get(f"/tenders/{tender_id}/bids/{bids[0]}", headers=PURCHASER)
    assert one.status_code == 200 and one.json()["price_fen"] == prices[0]
    evaluating = (await events_until(market, "sa.matching.tender.evaluating"))[0]
    assert evaluating["valid_bids"] == 3 and evaluating["panel_size"] == 5
    # Too late to bid, replace or withdraw now.
    late = await bid(market, tender_id, orgs[0], 1)
    assert late.status_code == 409


async def test_ineligible_bidders_are_refused_naming_the_field_and_clause(
    market: Platform,
) -> None:
    good = [await organisation(market) for _ in range(3)]
    suspended = await organisation(market)
    await set_status(market, suspended, "suspended", 2)
    elsewhere = await organisation(market, regions=["220104"])
    unqualified = await organisation(market, qualified=False)
    no_counselling = await organisation(market, services={"care": 10})
    pending = await organisation(market, status="rejected")
    project_id = await project(market)
    tender_id = (await open_tender(market, project_id))["id"]

    async def refused(org_id: str, price: int = 40_000_000) -> dict[str, Any]:
        r = await bid(market, tender_id, org_id, price)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        body: dict[str, Any] = r.json()
        return body

    body = await refused(suspended)
    assert [e["field"] for e in body["errors"]] == ["organisation.status"]
    assert "suspended" in body["errors"][0]["reason"]
    assert body["rules"] == ["吉民发〔2020〕44号 §四(四)4"]
    body = await refused(elsewhere)
    assert [e["field"] for e in body["errors"]] == ["organisation.service_regions"]
    body = await refused(unqualified)
    assert [e["field"] for e in body["errors"]] == [f"organisation.qualifications.{QUALIFICATION}"]
    assert body["rules"] == ["吉民发〔2020〕44号 §二(二)2"]
    body = await refused(no_counselling)
    assert [e["field"] for e in body["errors"]] == ["organisation.capacities"]
    body = await refused(pending)
    assert [e["field"] for e in body["errors"]] == ["organisation.status"]
    body = await refused(good[0], price=BUDGET + 1)
    assert [e["field"] for e in body["errors"]] == ["body.price_fen"]
    # Only organisations bid, and only for themselves.
    r = await market["matching"].post(
        f"/tenders/{tender_id}/bids", json={"price_fen": 1}, headers=PURCHASER
    )
    assert r.status_code == 403
    listing = (await market["matching"].get(f"/tenders/{tender_id}/bids", headers=PURCHASER)).json()
    assert listing["count"] == 0  # refusals changed nothing


async def test_invited_tender_draws_three_reproducibly_and_refuses_the_uninvited(
    market: Platform,
) -> None:
    qualified = sorted([await organisation(market) for _ in range(5)])
    await organisation(market, regions=["220104"])  # not a candidate: wrong region
    project_id = await project(market, purchasing_method="invited_tender")
    notice = await open_tender(market, project_id, method="invited_tender")
    tender_id = notice["id"]
    assert notice["invitation_candidates"] == qualified
    assert len(notice["invited"]) == 3 and len(set(notice["invited"])) == 3
    # An auditor re-runs the draw from what the notice records.
    assert (
        rules.draw(notice["invitation_candidates"], 3, notice["invitation_seed"])
        == (notice["invited"])
    )
    invited = notice["invited"]
    outsider = next(o for o in qualified if o not in invited)
    # A bidder learns only whether it is invited, not who else is.
    seen = await market["matching"].get(f"/tenders/{tender_id}", headers=org_auth(invited[0]))
    assert seen.json()["invited"] == [invited[0]]
    assert seen.json()["invitation_seed"] is None and seen.json()["invitation_candidates"] == []
    r = await bid(market, tender_id, outsider, 40_000_000)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "organisation_id"
    assert r.json()["rules"] == ["财政部令第87号 第十四条"]
    for org_id in invited:
        assert (await bid(market, tender_id, org_id, 40_000_000)).status_code == 201
    # Too few qualified organisations to draw three: refused with the clause.
    for _ in range(2):
        await organisation(market, regions=["2202"])  # 吉林市: only two serve there
    other = await project(market, region_code="220203", purchasing_method="invited_tender")
    body = tender_body(
        other,
        method="invited_tender",
        bid_deadline=(clock(market).now + timedelta(days=20)).isoformat(),
    )
    county = auth(Role.purchaser, region="2202")
    r = await market["matching"].post("/tenders", json=body, headers=county)
    assert r.status_code == 201, r.text
    r = await market["matching"].post(f"/tenders/{r.json()['id']}/publish", headers=county)
    assert r.status_code == 422
    assert r.json()["rules"] == ["财政部令第87号 第十四条"]


async def test_one_bid_per_organisation_replace_and_withdraw_before_the_deadline_only(
    market: Platform,
) -> None:
    org_id = await organisation(market)
    project_id = await project(market)
    tender_id = (await open_tender(market, project_id))["id"]
    headers = org_auth(org_id)
    first = await bid(market, tender_id, org_id, 40_000_000)
    assert first.status_code == 201
    again = await bid(market, tender_id, org_id, 39_000_000)
    assert again.status_code == 409
    replaced = await market["matching"].put(
        f"/tenders/{tender_id}/bids/mine",
        json={"price_fen": 37_000_000, "content": {"plan": "better"}},
        headers=headers,
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["id"] == first.json()["id"]
    assert replaced.json()["version"] == 2
    mine = (await market["matching"].get(f"/tenders/{tender_id}/bids/mine", headers=headers)).json()
    assert (mine["price_fen"], mine["content"]) == (37_000_000, {"plan": "better"})
    over = await market["matching"].put(
        f"/tenders/{tender_id}/bids/mine", json={"price_fen": BUDGET + 1}, headers=headers
    )
    assert over.status_code == 422  # a replacement is checked like a bid
    withdrawn = await market["matching"].delete(f"/tenders/{tender_id}/bids/mine", headers=headers)
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
    count = (await market["matching"].get(f"/tenders/{tender_id}/bids", headers=PURCHASER)).json()
    assert count["count"] == 0
    twice = await market["matching"].delete(f"/tenders/{tender_id}/bids/mine", headers=headers)
    assert twice.status_code == 404
    assert (await bid(market, tender_id, org_id, 36_000_000)).status_code == 201  # bid again
    await events_until(market, "sa.matching.bid.withdrawn")
    await events_until(market, "sa.matching.bid.replaced")

    clock(market).advance(days=20)  # exactly the deadline: the window is closed
    late_put = await market["matching"].put(
        f"/tenders/{tender_id}/bids/mine", json={"price_fen": 1}, headers=headers
    )
    late_delete = await market["matching"].delete(
        f"/tenders/{tender_id}/bids/mine", headers=headers
    )
    assert (late_put.status_code, late_delete.status_code) == (409, 409)
    assert late_put.json()["errors"][0]["field"] == "tender.bid_deadline"
    mine = (await market["matching"].get(f"/tenders/{tender_id}/bids/mine", headers=headers)).json()
    assert mine["price_fen"] == 36_000_000 and mine["state"] == "submitted"


async def test_fewer_than_three_valid_bids_fail_then_negotiation_on_the_same_project(
    market: Platform,
) -> None:
    orgs = [await organisation(market) for _ in range(3)]
    project_id = await project(market)
    tender_id = (await open_tender(market, project_id))["id"]
    for org_id in orgs:
        assert (await bid(market, tender_id, org_id, 40_000_000)).status_code == 201
    # A second tender of the project while one is under way: refused.
    busy = await market["matching"].post(
        "/tenders", json=tender_body(project_id), headers=PURCHASER
    )
    assert busy.status_code == 409
    # Suspended after bidding: its bid is invalid at opening, with the reason.
    await set_status(market, orgs[2], "suspended", 2)
    clock(market).advance(days=21)
    runtime = market.runtime("matching")
    assert await tenders_service.open_due_tenders(runtime, now=clock(market).now) == 1
    notice = (await market["matching"].get(f"/tenders/{tender_id}", headers=PURCHASER)).json()
    assert notice["state"] == "failed" and notice["ocds_status"] == "unsuccessful"
    assert "中华人民共和国政府采购法 第三十六条(一)" in notice["state_reason"]
    opened = (await market["matching"].get(f"/tenders/{tender_id}/bids", headers=PURCHASER)).json()
    invalid = [b for b in opened["items"] if b["state"] == "invalid"]
    assert [b["organisation_id"] for b in invalid] == [orgs[2]]
    assert "suspended" in invalid[0]["invalid_reason"]
    failed = (await events_until(market, "sa.matching.tender.failed"))[0]
    assert failed["rule"] == "中华人民共和国政府采购法 第三十六条(一)"
    assert failed["valid_bids"] == 2 and failed["project_id"] == project_id
    assert failed["after_failure"] == ["competitive_negotiation", "competitive_consultation"]
    again = await market["matching"].post(f"/tenders/{tender_id}/open", headers=PURCHASER)
    assert again.status_code == 409

    # After the failure: not by single source, but by competitive negotiation.
    single = tender_body(
        project_id,
        method="single_source",
        bid_deadline=(clock(market).now + timedelta(days=3)).isoformat(),
        single_source={"organisation_id": orgs[0], "justification": "唯一供应商，已公示理由"},
    )
    r = await market["matching"].post("/tenders", json=single, headers=PURCHASER)
    assert r.status_code == 422
    assert r.json()["rules"] == ["中华人民共和国政府采购法 第三十七条"]
    fourth = await organisation(market)
    notice = await open_tender(
        market,
        project_id,
        method="competitive_negotiation",
        bid_deadline=(clock(market).now + timedelta(days=3)).isoformat(),
    )
    assert notice["previous_tender_id"] == tender_id
    assert tender_id in notice["method_reason"]
    assert notice["panel_size"] == 3
    # The suspended organisation is not a candidate; three of the others are invited.
    assert notice["invitation_candidates"] == sorted([orgs[0], orgs[1], fourth])
    assert sorted(notice["invited"]) == sorted([orgs[0], orgs[1], fourth])
    for org_id in notice["invited"]:
        assert (await bid(market, notice["id"], org_id, 39_000_000)).status_code == 201
    clock(market).advance(days=3)
    r = await market["matching"].post(f"/tenders/{notice['id']}/open", headers=OPERATOR)
    assert r.status_code == 200 and r.json()["tender"]["state"] == "evaluating"


async def test_tender_setup_refusals_cite_the_clause_and_change_nothing(market: Platform) -> None:
    project_id = await project(market)
    post = market["matching"].post
    deadline = START + timedelta(days=20)

    r = await post("/tenders", json=tender_body(project_id, price_weight="0.05"), headers=PURCHASER)
    assert r.status_code == 422
    assert "财库〔2014〕214号 第二十四条" in r.json()["rules"]
    assert "body.price_weight" in [e["field"] for e in r.json()["errors"]]
    r = await post(
        "/tenders",
        json=tender_body(project_id, criteria=CRITERIA[:1], price_weight="0.3"),
        headers=PURCHASER,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.criteria"
    short = (deadline - timedelta(seconds=1)).isoformat()
    r = await post("/tenders", json=tender_body(project_id, bid_deadline=short), headers=PURCHASER)
    assert r.status_code == 422
    assert r.json()["rules"] == ["中华人民共和国政府采购法 第三十五条"]
    r = await post(
        "/tenders", json=tender_body(project_id, method="invited_tender"), headers=PURCHASER
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.method_reason"
    r = await post("/tenders", json=tender_body(project_id), headers=OTHER_COUNTY)
    assert r.status_code == 404  # another county's project does not exist for this caller
    r = await post("/tenders", json=tender_body(project_id), headers=org_auth("org-x"))
    assert r.status_code == 403
    r = await post("/tenders", json=tender_body("no-such-project"), headers=PURCHASER)
    assert r.status_code == 404
    listing = (await market["matching"].get("/tenders", headers=PURCHASER)).json()
    assert listing["total"] == 0

    # Exactly 20 days is lawful; publishing a day later makes the same deadline too short.
    r = await post("/tenders", json=tender_body(project_id), headers=PURCHASER)
    assert r.status_code == 201, r.text
    draft = r.json()
    assert (draft["panel_size"], draft["high_value"]) == (5, False)
    assert [c["weight"] for c in draft["criteria"]] == ["0.4", "0.3"]
    hidden = await market["matching"].get(f"/tenders/{draft['id']}", headers=org_auth("org-x"))
    assert hidden.status_code == 404  # drafts are not public
    clock(market).advance(days=1)
    r = await post(f"/tenders/{draft['id']}/publish", headers=PURCHASER)
    assert r.status_code == 422 and r.json()["rules"] == ["中华人民共和国政府采购法 第三十五条"]
    assert await matching_events(market, "sa.matching.tender.published") == []


async def test_listing_filters_sorts_and_scopes_tenders(market: Platform) -> None:
    await organisation(market)
    ids = []
    for _ in range(3):
        project_id = await project(market)
        body = tender_body(project_id, clock(market).now + timedelta(days=1))
        r = await market["matching"].post("/tenders", json=body, headers=PURCHASER)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        clock(market).advance(minutes=1)
    r = await market["matching"].post(f"/tenders/{ids[0]}/publish", headers=PURCHASER)
    assert r.status_code == 200, r.text
    get = market["matching"].get
    page = (await get("/tenders", params={"limit": 2}, headers=PURCHASER)).json()
    assert page["total"] == 3 and len(page["items"]) == 2
    oldest = (await get("/tenders", params={"sort": "created_at"}, headers=PURCHASER)).json()
    assert [t["id"] for t in oldest["items"]] == ids
    drafts = (await get("/tenders", params={"state": "draft"}, headers=PURCHASER)).json()
    assert {t["id"] for t in drafts["items"]} == set(ids[1:])
    public = (await get("/tenders", headers=org_auth("org-x"))).json()
    assert [t["id"] for t in public["items"]] == [ids[0]]
    assert (await get("/tenders", headers=OTHER_COUNTY)).json()["total"] == 0
    assert (await get(f"/tenders/{ids[0]}", headers=OTHER_COUNTY)).status_code == 404
    bad = await get("/tenders", params={"sort": "price"}, headers=PURCHASER)
    assert bad.status_code == 422


async def test_single_source_publicity_counts_working_days_across_national_day(
    market: Platform,
) -> None:
    clock(market).now = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)  # Wed 10:00 in China
    org_id = await organisation(market)
    project_id = await project(market, purchasing_method="single_source")
    body = tender_body(
        project_id,
        method="single_source",
        bid_deadline=(clock(market).now + timedelta(days=5)).isoformat(),
        single_source={"organisation_id": org_id, "justification": "只能从唯一供应商处采购"},
    )
    r = await market["matching"].post("/tenders", json=body, headers=PURCHASER)
    assert r.status_code == 201, r.text
    r = await market["matching"].post(f"/tenders/{r.json()['id']}/publish", headers=PURCHASER)
    assert r.status_code == 200, r.text
    notice = r.json()
    assert notice["publicity_until"] == "2026-10-13"
    assert notice["invited"] == [org_id]
    assert notice["single_source_justification"] == "只能从唯一供应商处采购"
    assert (await bid(market, notice["id"], org_id, 40_000_000)).status_code == 201
    clock(market).advance(days=5)
    r = await market["matching"].post(f"/tenders/{notice['id']}/open", headers=PURCHASER)
    assert r.status_code == 200 and r.json()["tender"]["state"] == "evaluating"  # one is enough


async def test_cancelling_a_tender_and_a_cancelled_project(market: Platform) -> None:
    project_id = await project(market)
    tender_id = (await open_tender(market, project_id))["id"]
    r = await market["matching"].post(
        f"/tenders/{tender_id}/cancel", json={"reason": "需求变更"}, headers=PURCHASER
    )
    assert r.status_code == 200 and r.json()["state"] == "cancelled"
    again = await market["matching"].post(
        f"/tenders/{tender_id}/cancel", json={"reason": "twice"}, headers=PURCHASER
    )
    assert again.status_code == 409
    cancelled = (await events_until(market, "sa.matching.tender.cancelled"))[0]
    assert cancelled["reason"] == "需求变更" and cancelled["from_state"] == "bidding"

    # The project is cancelled by providers: its open tender goes with it.
    second = (await open_tender(market, project_id))["id"]
    await publish(
        market, "providers", "project", "cancelled",
        project_id=project_id, region_code=REGION, reason="预算调整", version=2,
    )  # fmt: skip
    await eventually(
        lambda: market["matching"].get(f"/tenders/{second}", headers=PURCHASER),
        until=lambda resp: resp.json()["state"] == "cancelled",
    )
    events = await events_until(market, "sa.matching.tender.cancelled", 2)
    assert events[1]["tender_id"] == second and "预算调整" in events[1]["reason"]
    r = await market["matching"].post("/tenders", json=tender_body(project_id), headers=PURCHASER)
    assert r.status_code == 409  # a cancelled project takes no tender


async def test_projections_ignore_stale_versions(market: Platform) -> None:
    # Projects: a late older publication changes nothing; a cancellation that overtakes the
    # publication leaves a tombstone the publication cannot reopen.
    project_id = await project(market, title="v2 title", version=2)
    await publish(
        market, "providers", "project", "published", **project_payload(project_id, title="v1")
    )
    overtaken = str(uuid.uuid4())
    await publish(
        market, "providers", "project", "cancelled",
        project_id=overtaken, region_code=REGION, reason="x", version=2,
    )  # fmt: skip
    await eventually(lambda: view_of(market, ProjectView, overtaken), until=lambda v: v is not None)
    await publish(market, "providers", "project", "published", **project_payload(overtaken))

    # Experts, resources, organisations' offers and credit scores: newer first, then older.
    expert = {
        "expert_id": "e-1",
        "name": "张伟",
        "region_code": REGION,
        "fields": ["care"],
        "available": True,
        "unavailable_until": None,
        "status": "active",
        "title": "高级社会工作师",
        "affiliations": [
            {
                "affiliation_id": "a-1",
                "organisation_uscc": factories.credit_code(),
                "organisation_id": None,
                "kind": "employment",
                "started_on": "2024-01-01",
                "ended_on": None,
            }
        ],
    }
    await publish(market, "providers", "expert", "updated", **{**expert, "version": 3})
    await publish(
        market, "providers", "expert", "registered", **{**expert, "fields": ["x"], "version": 1}
    )
    resource = {
        "resource_id": "r-1",
        "charity_id": "c-1",
        "kind": "services",
        "title": "助老服务",
        "service_codes": ["care"],
        "regions": ["2201"],
        "target_categories": ["tekun"],
        "quantity": 100,
        "remaining": 40,
        "unit": "hours",
        "valid_from": "2026-01-01",
        "valid_until": "2026-12-31",
        "status": "offered",
        "version": 3,
    }
    await publish(
        market,
        "providers",
        "resource",
        "exhausted",
        **{**resource, "remaining": 0, "status": "exhausted", "version": 4},
    )
    await publish(market, "providers", "resource", "offered", **resource)
    org_id = await organisation(market)
    offer = factories.organisation(
        service_regions=["220102"], services=[{"code": "care", "monthly_capacity": 3}]
    )
    await publish(
        market, "providers", "organisation", "updated", organisation_id=org_id, version=3, **offer
    )
    stale = factories.organisation(service_regions=["99"], services=[])
    await publish(
        market, "providers", "organisation", "updated", organisation_id=org_id, version=2, **stale
    )
    await publish(
        market, "credit", "score", "changed",
        organisation_id=org_id, score=88.5, grade="A", version=5,
    )  # fmt: skip
    await publish(
        market, "credit", "score", "changed",
        organisation_id=org_id, score=10, grade="D", version=4,
    )  # fmt: skip

    # A marker after the stale events on each consumer: once it is applied, so are they.
    await project(market, project_id="marker")
    await publish(
        market, "providers", "expert", "registered", **{**expert, "expert_id": "m", "version": 1}
    )
    await publish(market, "providers", "resource", "offered", **{**resource, "resource_id": "m"})
    await publish(
        market, "providers", "organisation", "updated",
        organisation_id="m", version=1, **factories.organisation(),
    )  # fmt: skip
    await publish(
        market, "credit", "score", "changed", organisation_id="m2", score=1, grade="D", version=1
    )
    markers: list[tuple[Any, str]] = [
        (ExpertView, "m"),
        (ResourceView, "m"),
        (OrganisationView, "m"),
        (OrganisationView, "m2"),
    ]
    for table, key in markers:

        async def marker(table: Any = table, key: str = key) -> Any:
            return await view_of(market, table, key)

        await eventually(marker, until=lambda v: v is not None)

    kept = await view_of(market, ProjectView, project_id)
    assert (kept.title, kept.version, kept.state) == ("v2 title", 2, "published")
    tomb = await view_of(market, ProjectView, overtaken)
    assert (tomb.state, tomb.version) == ("cancelled", 2)
    assert (await view_of(market, ExpertView, "e-1")).fields == ["care"]
    res = await view_of(market, ResourceView, "r-1")
    assert (res.status, res.remaining, res.version) == ("exhausted", 0, 4)
    org = await view_of(market, OrganisationView, org_id)
    assert (org.service_regions, org.capacities) == (["220102"], {"care": 3})
    assert (org.credit_score, org.credit_grade, org.score_version) == (88.5, "A", 5)
    assert org.uscc == offer["uscc"] and org.qualifications[QUALIFICATION] is True


def test_a_sealed_bid_opens_only_on_its_own_tender_and_bidder() -> None:
    seal = tenders_service.bid_seal(MatchingSettings(environment="test").data_keys)
    token = seal.seal("t-1", "org-a", 123, {"plan": "p"})
    assert seal.open("t-1", "org-a", token) == (123, {"plan": "p"})
    for tender_id, org_id in (("t-1", "org-b"), ("t-2", "org-a")):
        with pytest.raises(DecryptionError):
            seal.open(tender_id, org_id, token)  # copied onto another bid: it will not open


def test_matching_refuses_development_data_keys_in_production() -> None:
    pg, secret = "postgresql://db/matching", "a-real-secret-from-the-store"
    nats = {"nats_user": "matching", "nats_password": "p" * 32}
    with pytest.raises(ValueError, match="data_keys"):
        MatchingSettings(environment="production", database_url=pg, jwt_secret=secret, **nats)
    keys = f"prod1:{generate_key()}"
    settings = MatchingSettings(
        environment="production", database_url=pg, jwt_secret=secret, data_keys=keys, **nats
    )
    assert settings.data_keys == keys
