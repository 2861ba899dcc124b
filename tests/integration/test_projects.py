"""Purchasing projects (项目库) and fund ledgers in the providers service, in-process over HTTP on
a real database and the session's real nats-server.

Show items: negative-list and off-catalogue items refused with the clause; term limits at the
boundaries; the 2 % cap exactly at the limit and one yuan over (ledger unchanged); 50
concurrent approvals against one ledger never exceed the cap (run this module again with
DATABASE_URL=postgresql://… for PostgreSQL); publishing emits the event that opens a tender;
matching's events drive tendered → awarded → in service → closed; cancelling releases the
reservation; region scope.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from libs.common.auth import Principal, Role
from libs.common.errors import RuleViolation
from libs.common.events import Event, new_event
from services.providers.projects import service
from tests.support.platform import Platform, auth, eventually

COUNTY = "220102"  # 长春市南关区 (Jilin: 2 % cap)
OTHER_COUNTY = "220104"  # 长春市朝阳区
ZJ_COUNTY = "330102"  # 杭州市上城区 (Zhejiang: no cap)
PURCHASER = auth(Role.purchaser, region=COUNTY)
OTHER = auth(Role.purchaser, region=OTHER_COUNTY)
OPERATOR = auth(Role.operator, region="22")
ZJ_PURCHASER = auth(Role.purchaser, region=ZJ_COUNTY)

CAP = "吉民发〔2020〕44号 §五"
TERM = "吉民发〔2020〕44号 §四(三)2"
STABLE = "吉民发〔2020〕44号 §四(三)3"
MARKET_DURABLE = "providers-projects-market"


def project_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "region_code": COUNTY,
        "department": "长春市南关区民政局",
        "title": "南关区特困人员照料护理服务",
        "service_codes": ["care", "counselling"],
        "quantity": 120,
        "unit": "人·月",
        "quality_standards": "每周上门不少于两次；服务对象满意度不低于90%",
        "qualification_requirements": ["project_specific_conditions"],
        "specific_conditions": "具有两名以上持证社会工作者",
        "budget_fen": 100_000,
        "fund_source": "special_funds",
        "period_start": "2027-01-01",
        "period_end": "2027-12-31",
        "purchasing_method": "open_tender",
    }
    body.update(overrides)
    return body


@pytest.fixture
async def providers(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    # Event workers off: tests publish the outbox themselves and read the stream.
    platform = Platform(
        nats_url=nats_url,
        database_url=database_url_factory,
        services=["providers"],
        start_event_workers=False,
    )
    async with platform as p:
        yield p


@pytest.fixture
async def live(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    # Relay and consumers running: matching's events reach the projects consumer.
    platform = Platform(
        nats_url=nats_url, database_url=database_url_factory, services=["providers"]
    )
    async with platform as p:
        yield p


async def record_funds(
    p: Platform,
    amount_fen: int,
    *,
    region: str = COUNTY,
    year: int = 2027,
    source: str = "central",
    document: str = "财社〔2027〕1号",
    headers: dict[str, str] = PURCHASER,
) -> Any:
    r = await p["providers"].post(
        "/funds/allocations",
        json={
            "region_code": region,
            "year": year,
            "source": source,
            "amount_fen": amount_fen,
            "document": document,
        },
        headers=headers,
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


async def ledger(p: Platform, region: str = COUNTY, year: int = 2027) -> Any:
    r = await p["providers"].get(f"/funds/{region}/{year}", headers=PURCHASER)
    assert r.status_code == 200, r.text
    return r.json()


async def create(p: Platform, headers: dict[str, str] = PURCHASER, **overrides: Any) -> Any:
    r = await p["providers"].post("/projects", json=project_body(**overrides), headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def act(
    p: Platform, project_id: str, action: str, headers: dict[str, str] = PURCHASER, **kw: Any
) -> Any:
    return await p["providers"].post(f"/projects/{project_id}/{action}", headers=headers, **kw)


async def get(p: Platform, project_id: str, headers: dict[str, str] = PURCHASER) -> Any:
    r = await p["providers"].get(f"/projects/{project_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def published(p: Platform, subject: str | None = None) -> list[dict[str, Any]]:
    """Publish the whole outbox; the data of every PROVIDERS message (on `subject`)."""
    runtime = p.runtime("providers")
    while await runtime.relay.publish_pending():
        pass
    info = await runtime.bus.js.stream_info("PROVIDERS")
    out = []
    for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
        msg = await runtime.bus.js.get_msg("PROVIDERS", seq)
        if subject is None or msg.subject == subject:
            out.append(json.loads(msg.data or b"{}"))
    return out


def problem_of(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    return body


# --------------------------------------------------------------------------- catalogue rules


async def test_negative_list_item_is_refused_with_the_clause_in_rules(providers: Platform) -> None:
    r = await providers["providers"].post(
        "/projects",
        json=project_body(service_codes=["care", "goods_and_works"]),
        headers=PURCHASER,
    )
    problem = problem_of(r, 422)
    assert problem["type"].endswith("/rule-violation")
    assert problem["rules"] == ["吉民发〔2020〕44号 §三(二)3"]
    assert [e["field"] for e in problem["errors"]] == ["body.service_codes.1"]
    assert "货物和工程" in problem["errors"][0]["reason"]
    listing = (await providers["providers"].get("/projects", headers=PURCHASER)).json()
    assert listing["total"] == 0  # bad input changes nothing


async def test_off_catalogue_item_is_refused_citing_the_catalogue(providers: Platform) -> None:
    r = await providers["providers"].post(
        "/projects", json=project_body(service_codes=["pet_grooming"]), headers=PURCHASER
    )
    problem = problem_of(r, 422)
    assert problem["rules"] == ["吉民发〔2020〕44号 §附件"]  # 吉林省政府购买社会救助服务清单
    assert problem["errors"][0]["field"] == "body.service_codes.0"
    # Hainan's catalogue lacks needs assessment, which Jilin's has.
    hainan = auth(Role.purchaser, region="460106")
    r = await providers["providers"].post(
        "/projects",
        json=project_body(
            region_code="460106", service_codes=["needs_assessment"], fund_source="working_funds"
        ),
        headers=hainan,
    )
    assert problem_of(r, 422)["rules"] == ["海南省贯彻实施意见 §二(二)"]


async def test_term_limits_at_the_boundaries_over_http(providers: Platform) -> None:
    ok = await create(providers, period_start="2027-01-01", period_end="2027-12-31")
    assert ok["state"] == "draft"
    r = await providers["providers"].post(
        "/projects",
        json=project_body(period_start="2027-01-01", period_end="2028-01-01"),
        headers=PURCHASER,
    )
    problem = problem_of(r, 422)
    assert problem["rules"] == [TERM, STABLE]
    assert problem["errors"][0]["field"] == "body.period_end"
    stable = await create(
        providers,
        period_start="2027-01-01",
        period_end="2029-12-31",
        stable_recurring=True,
        budget_secured=True,
    )
    assert stable["period_end"] == "2029-12-31"
    r = await providers["providers"].post(
        "/projects",
        json=project_body(
            period_start="2027-01-01",
            period_end="2030-01-01",
            stable_recurring=True,
            budget_secured=True,
        ),
        headers=PURCHASER,
    )
    assert problem_of(r, 422)["rules"] == [STABLE]


async def test_money_is_integer_fen_and_anything_inexact_is_refused(providers: Platform) -> None:
    for bad in (1000.5, 100000.0, "100000", 0, -100):
        r = await providers["providers"].post(
            "/projects", json=project_body(budget_fen=bad), headers=PURCHASER
        )
        problem = problem_of(r, 422)
        assert [e["field"] for e in problem["errors"]] == ["body.budget_fen"], bad
    r = await providers["providers"].post(
        "/funds/allocations",
        json={
            "region_code": COUNTY,
            "year": 2027,
            "source": "central",
            "amount_fen": 12.34,
            "document": "x",
        },
        headers=PURCHASER,
    )
    assert [e["field"] for e in problem_of(r, 422)["errors"]] == ["body.amount_fen"]


# --------------------------------------------------------------------------- funds


async def test_allocations_are_idempotent_on_document_region_year_and_source(
    providers: Platform,
) -> None:
    first = await record_funds(providers, 10_000_049, document="吉财社〔2027〕8号")
    assert first["replayed"] is False
    assert first["ledger"]["base_fen"] == 10_000_049
    assert first["ledger"]["cap_fen"] == 200_000  # floor(200,000.98)
    assert first["ledger"]["cap_ratio"] == "0.02" and first["ledger"]["cap_rule"] == CAP
    r = await providers["providers"].post(
        "/funds/allocations",
        json={
            "region_code": COUNTY,
            "year": 2027,
            "source": "central",
            "amount_fen": 10_000_049,
            "document": "吉财社〔2027〕8号",
        },
        headers=PURCHASER,
    )
    assert r.status_code == 200, r.text
    again = r.json()
    assert again["replayed"] is True
    assert again["allocation"]["id"] == first["allocation"]["id"]
    assert again["ledger"]["base_fen"] == 10_000_049  # not counted twice
    # Same key, another amount: a conflict, not a silent second transfer.
    r = await providers["providers"].post(
        "/funds/allocations",
        json={
            "region_code": COUNTY,
            "year": 2027,
            "source": "central",
            "amount_fen": 1,
            "document": "吉财社〔2027〕8号",
        },
        headers=PURCHASER,
    )
    assert problem_of(r, 409)["existing_id"] == first["allocation"]["id"]
    # Provincial funds under the same document number are another transfer.
    provincial = await record_funds(
        providers, 5_000_000, source="provincial", document="吉财社〔2027〕8号"
    )
    assert provincial["replayed"] is False
    detail = await ledger(providers)
    assert detail["base_fen"] == 15_000_049 and detail["cap_fen"] == 300_000
    assert [a["source"] for a in detail["allocations"]] == ["central", "provincial"]
    events = await published(providers, "sa.providers.fund.recorded")
    assert [(e["source"], e["amount_fen"], e["base_fen"], e["cap_fen"]) for e in events] == [
        ("central", 10_000_049, 10_000_049, 200_000),
        ("provincial", 5_000_000, 15_000_049, 300_000),
    ]
    listing = (await providers["providers"].get("/funds?year=2027", headers=OPERATOR)).json()
    assert [(x["region_code"], x["year"]) for x in listing["items"]] == [(COUNTY, 2027)]
    # Outside the caller's region: absent.
    r = await providers["providers"].get(f"/funds/{COUNTY}/2027", headers=OTHER)
    assert r.status_code == 404
    assert (await providers["providers"].get("/funds", headers=OTHER)).json()["total"] == 0
    r = await providers["providers"].post(
        "/funds/allocations",
        json={
            "region_code": COUNTY,
            "year": 2027,
            "source": "central",
            "amount_fen": 1,
            "document": "y",
        },
        headers=OTHER,
    )
    assert r.status_code == 404


async def test_concurrent_repeats_of_one_allocation_count_once(providers: Platform) -> None:
    body = {
        "region_code": COUNTY,
        "year": 2027,
        "source": "central",
        "amount_fen": 3_000_000,
        "document": "财社〔2027〕99号",
    }
    other = {**body, "document": "财社〔2027〕100号", "amount_fen": 2_000_000}
    responses = await asyncio.gather(
        *(
            providers["providers"].post("/funds/allocations", json=b, headers=PURCHASER)
            for b in [body] * 8 + [other] * 2
        )
    )
    assert sorted(r.status_code for r in responses) == [200] * 8 + [201] * 2
    detail = await ledger(providers)
    assert detail["base_fen"] == 5_000_000 and detail["cap_fen"] == 100_000
    assert len(detail["allocations"]) == 2
    assert len(await published(providers, "sa.providers.fund.recorded")) == 2


# --------------------------------------------------------------------------- the 2 % cap


async def test_cap_exactly_at_the_limit_is_approved_and_one_yuan_over_is_refused(
    providers: Platform,
) -> None:
    await record_funds(providers, 10_000_000)  # 100,000 yuan of special funds → cap 2,000 yuan
    a = await create(providers, budget_fen=150_000)
    assert (await act(providers, a["id"], "approve")).status_code == 200
    before = await ledger(providers)
    assert (before["cap_fen"], before["reserved_fen"], before["available_fen"]) == (
        200_000,
        150_000,
        50_000,
    )

    over = await create(providers, budget_fen=50_100)  # one yuan more than remains
    r = await act(providers, over["id"], "approve")
    problem = problem_of(r, 422)
    assert problem["rules"] == [CAP]
    assert (problem["cap_fen"], problem["reserved_fen"], problem["requested_fen"]) == (
        200_000,
        150_000,
        50_100,
    )
    assert problem["available_fen"] == 50_000
    assert problem["errors"][0]["field"] == "project.budget_fen"
    after = await ledger(providers)
    assert after == before  # ledger unchanged, version included
    refused = await get(providers, over["id"])
    assert (refused["state"], refused["version"]) == ("draft", 1)
    history = (
        await providers["providers"].get(f"/projects/{over['id']}/history", headers=PURCHASER)
    ).json()
    assert [(h["from_state"], h["to_state"]) for h in history] == [("new", "draft")]

    exact = await create(providers, budget_fen=50_000)  # exactly what remains
    r = await act(providers, exact["id"], "approve")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved" and r.json()["approved_by"] == "test-purchaser"
    full = await ledger(providers)
    assert (full["reserved_fen"], full["available_fen"]) == (200_000, 0)
    approved = await published(providers, "sa.providers.project.approved")
    assert [(e["project_id"], e["budget_fen"], e["ledger_reserved_fen"]) for e in approved] == [
        (a["id"], 150_000, 150_000),
        (exact["id"], 50_000, 200_000),
    ]


async def test_no_funds_recorded_refuses_approval_with_a_clear_reason(
    providers: Platform,
) -> None:
    draft = await create(providers)
    problem = problem_of(await act(providers, draft["id"], "approve"), 422)
    assert problem["rules"] == [CAP]
    assert (
        "no central or provincial special social-assistance funds"
        in (problem["errors"][0]["reason"])
    )
    assert (await get(providers, draft["id"]))["state"] == "draft"
    r = await providers["providers"].get(f"/funds/{COUNTY}/2027", headers=PURCHASER)
    assert r.status_code == 404  # and no ledger appeared


async def test_a_province_without_a_cap_only_tracks(providers: Platform) -> None:
    # Zhejiang's pack sets no budget cap: approval needs no funds, the ledger tracks it.
    draft = await create(
        providers,
        headers=ZJ_PURCHASER,
        region_code=ZJ_COUNTY,
        department="杭州市上城区民政局",
        service_codes=["care"],
        qualification_requirements=[],
        budget_fen=9_000_000,
    )
    r = await act(providers, draft["id"], "approve", headers=ZJ_PURCHASER)
    assert r.status_code == 200, r.text
    assert r.json()["pack"].startswith("zhejiang@")
    r = await providers["providers"].get(f"/funds/{ZJ_COUNTY}/2027", headers=ZJ_PURCHASER)
    track = r.json()
    assert (track["cap_fen"], track["available_fen"], track["cap_rule"]) == (None, None, None)
    assert track["reserved_fen"] == 9_000_000
    await record_funds(providers, 1_000, region=ZJ_COUNTY, headers=ZJ_PURCHASER)
    r = await providers["providers"].get(f"/funds/{ZJ_COUNTY}/2027", headers=ZJ_PURCHASER)
    assert (r.json()["base_fen"], r.json()["cap_fen"], r.json()["reserved_fen"]) == (
        1_000,
        None,
        9_000_000,
    )


# --------------------------------------------------------------------------- concurrency

CONCURRENT = 50
FITS = 20
BUDGET = 100_000  # 1,000 yuan each


async def _drafts(p: Platform, n: int) -> list[str]:
    await record_funds(p, BUDGET * FITS * 50)  # cap = 2 % = exactly FITS budgets
    assert (await ledger(p))["cap_fen"] == BUDGET * FITS
    return [(await create(p, budget_fen=BUDGET, title=f"项目{i:02d}"))["id"] for i in range(n)]


async def _check_outcome(p: Platform, approved: list[str], refused: list[str]) -> None:
    assert len(approved) == FITS and len(refused) == CONCURRENT - FITS
    final = await ledger(p)
    assert final["reserved_fen"] == BUDGET * len(approved) == final["cap_fen"]
    assert final["available_fen"] == 0
    listing = (
        await p["providers"].get("/projects?state=approved&limit=500", headers=PURCHASER)
    ).json()
    assert sorted(x["id"] for x in listing["items"]) == sorted(approved)
    assert (await p["providers"].get("/projects?state=draft", headers=PURCHASER)).json()[
        "total"
    ] == len(refused)
    events = await published(p, "sa.providers.project.approved")
    assert sorted(e["project_id"] for e in events) == sorted(approved)
    # Each approval saw the ledger as its own UPDATE left it: all distinct, up to the cap.
    assert sorted(e["ledger_reserved_fen"] for e in events) == [
        BUDGET * k for k in range(1, FITS + 1)
    ]


async def test_fifty_concurrent_approvals_over_http_never_exceed_the_cap(
    providers: Platform,
) -> None:
    ids = await _drafts(providers, CONCURRENT)
    responses = await asyncio.gather(*(act(providers, i, "approve") for i in ids))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 422}, statuses
    for r in responses:
        if r.status_code == 422:
            assert r.json()["rules"] == [CAP]
    approved = [i for i, r in zip(ids, responses, strict=True) if r.status_code == 200]
    refused = [i for i, r in zip(ids, responses, strict=True) if r.status_code == 422]
    await _check_outcome(providers, approved, refused)


async def test_fifty_concurrent_approvals_in_separate_sessions_never_exceed_the_cap(
    providers: Platform,
) -> None:
    ids = await _drafts(providers, CONCURRENT)
    runtime = providers.runtime("providers")
    actor = Principal(subject="test-purchaser", role=Role.purchaser, region=COUNTY)

    async def approve(project_id: str) -> bool:
        async with runtime.unit_of_work() as uow:
            try:
                await service.approve_project(
                    uow=uow, project_id=project_id, actor=actor, if_match=None
                )
            except RuleViolation as exc:
                assert exc.extra["rules"] == [CAP]
                return False
        return True

    outcomes = await asyncio.gather(*(approve(i) for i in ids))
    approved = [i for i, ok in zip(ids, outcomes, strict=True) if ok]
    refused = [i for i, ok in zip(ids, outcomes, strict=True) if not ok]
    await _check_outcome(providers, approved, refused)


# --------------------------------------------------------------------------- lifecycle


async def test_publish_emits_the_event_that_opens_a_tender(providers: Platform) -> None:
    await record_funds(providers, 10_000_000)
    draft = await create(providers)
    approved = (await act(providers, draft["id"], "approve")).json()
    r = await act(providers, draft["id"], "publish", headers={**PURCHASER, "If-Match": '"2"'})
    assert r.status_code == 200, r.text
    project = r.json()
    assert project["state"] == "published" and project["version"] == approved["version"] + 1
    assert r.headers["ETag"] == f'"{project["version"]}"'
    [event] = await published(providers, "sa.providers.project.published")
    assert event == {
        "project_id": draft["id"],
        "region_code": COUNTY,
        "department": "长春市南关区民政局",
        "title": "南关区特困人员照料护理服务",
        "service_codes": ["care", "counselling"],
        "quantity": 120,
        "unit": "人·月",
        "quality_standards": "每周上门不少于两次；服务对象满意度不低于90%",
        "qualification_requirements": ["project_specific_conditions"],
        "specific_conditions": "具有两名以上持证社会工作者",
        "budget_fen": 100_000,
        "budget_year": 2027,
        "fund_source": "special_funds",
        "period_start": "2027-01-01",
        "period_end": "2027-12-31",
        "stable_recurring": False,
        "budget_secured": False,
        "purchasing_method": "open_tender",
        "pack": project["pack"],
        "published_at": event["published_at"],
        "version": project["version"],
    }
    assert project["pack"].startswith("jilin@") and event["published_at"]
    history = (
        await providers["providers"].get(f"/projects/{draft['id']}/history", headers=PURCHASER)
    ).json()
    assert [(h["from_state"], h["to_state"], h["actor"]) for h in history] == [
        ("new", "draft", "test-purchaser"),
        ("draft", "approved", "test-purchaser"),
        ("approved", "published", "test-purchaser"),
    ]


async def test_transitions_outside_the_state_machine_and_stale_versions(
    providers: Platform,
) -> None:
    await record_funds(providers, 10_000_000)
    draft = await create(providers)
    problem = problem_of(await act(providers, draft["id"], "publish"), 409)
    assert problem["project_state"] == "draft"
    # PATCH a draft with If-Match; a stale version is 412 and changes nothing.
    r = await providers["providers"].patch(
        f"/projects/{draft['id']}",
        json={"quantity": 150, "budget_fen": 120_000},
        headers={**PURCHASER, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["quantity"], r.json()["budget_fen"], r.json()["version"]) == (150, 120_000, 2)
    r = await providers["providers"].patch(
        f"/projects/{draft['id']}", json={"quantity": 1}, headers={**PURCHASER, "If-Match": '"1"'}
    )
    stale = problem_of(r, 412)
    assert (stale["current_version"], stale["project_state"]) == (2, "draft")
    assert (await get(providers, draft["id"]))["quantity"] == 150
    # A change that breaks a rule is refused with its clause.
    r = await providers["providers"].patch(
        f"/projects/{draft['id']}", json={"service_codes": ["financing"]}, headers=PURCHASER
    )
    assert problem_of(r, 422)["rules"] == ["吉民发〔2020〕44号 §三(二)4"]
    r = await providers["providers"].patch(
        f"/projects/{draft['id']}", json={"title": None}, headers=PURCHASER
    )
    assert problem_of(r, 422)["errors"][0]["field"] == "body.title"
    problem = problem_of(
        await act(providers, draft["id"], "approve", headers={**PURCHASER, "If-Match": '"1"'}), 412
    )
    assert problem["current_version"] == 2
    assert (await ledger(providers))["reserved_fen"] == 0
    r = await act(providers, draft["id"], "approve", headers={**PURCHASER, "If-Match": '"2"'})
    assert r.status_code == 200, r.text
    problem = problem_of(await act(providers, draft["id"], "approve"), 409)
    assert problem["project_state"] == "approved"
    r = await providers["providers"].patch(
        f"/projects/{draft['id']}", json={"quantity": 3}, headers=PURCHASER
    )
    assert problem_of(r, 409)["project_state"] == "approved"
    assert (await ledger(providers))["reserved_fen"] == 120_000


async def test_cancel_releases_the_reservation(providers: Platform) -> None:
    await record_funds(providers, 10_000_000)
    draft = await create(providers, budget_fen=200_000)  # the whole cap
    await act(providers, draft["id"], "approve")
    await act(providers, draft["id"], "publish")
    assert (await ledger(providers))["available_fen"] == 0
    r = await act(providers, draft["id"], "cancel", json={})
    assert problem_of(r, 422)["errors"][0]["field"] == "body.reason"
    r = await act(providers, draft["id"], "cancel", json={"reason": "   "})
    assert r.status_code == 422
    r = await act(providers, draft["id"], "cancel", json={"reason": "需求调整，改为明年实施"})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["state_reason"]) == ("cancelled", "需求调整，改为明年实施")
    after = await ledger(providers)
    assert (after["reserved_fen"], after["available_fen"]) == (0, 200_000)
    [event] = await published(providers, "sa.providers.project.cancelled")
    assert (event["project_id"], event["from_state"], event["released_fen"]) == (
        draft["id"],
        "published",
        200_000,
    )
    problem = problem_of(await act(providers, draft["id"], "cancel", json={"reason": "x"}), 409)
    assert problem["project_state"] == "cancelled"
    assert (await ledger(providers))["reserved_fen"] == 0  # released once only
    # The released budget is available again.
    again = await create(providers, budget_fen=200_000)
    assert (await act(providers, again["id"], "approve")).status_code == 200
    # A draft cancels without touching the ledger.
    other = await create(providers, budget_fen=1_000)
    r = await act(providers, other["id"], "cancel", json={"reason": "重复立项"})
    assert r.status_code == 200
    assert (await ledger(providers))["reserved_fen"] == 200_000


async def test_region_scope_reads_as_absent(providers: Platform) -> None:
    await record_funds(providers, 10_000_000)
    mine = await create(providers)
    for path in (f"/projects/{mine['id']}", f"/projects/{mine['id']}/history"):
        assert (await providers["providers"].get(path, headers=OTHER)).status_code == 404
    for action in ("approve", "publish"):
        assert (await act(providers, mine["id"], action, headers=OTHER)).status_code == 404
    r = await act(providers, mine["id"], "cancel", headers=OTHER, json={"reason": "x"})
    assert r.status_code == 404
    r = await providers["providers"].patch(
        f"/projects/{mine['id']}", json={"quantity": 1}, headers=OTHER
    )
    assert r.status_code == 404
    assert (await providers["providers"].get("/projects", headers=OTHER)).json()["total"] == 0
    r = await providers["providers"].post("/projects", json=project_body(), headers=OTHER)
    assert r.status_code == 404  # cannot create in another county
    assert (await get(providers, mine["id"]))["state"] == "draft"
    # The province operator sees it; an organisation may not use these routes at all.
    assert (await get(providers, mine["id"], headers=OPERATOR))["id"] == mine["id"]
    r = await providers["providers"].get(
        "/projects", headers=auth(Role.organisation, region=COUNTY, org_id="org-1")
    )
    assert r.status_code == 403


async def test_list_filters_and_sort(providers: Platform) -> None:
    await record_funds(providers, 100_000_000)
    small = await create(providers, budget_fen=10_000, service_codes=["care"])
    big = await create(
        providers,
        budget_fen=90_000,
        service_codes=["community_care"],
        fund_source="working_funds",
    )
    mid = await create(providers, budget_fen=50_000, budget_year=2028, service_codes=["care"])
    await act(providers, big["id"], "approve")
    client = providers["providers"]

    async def ids(query: str) -> list[str]:
        r = await client.get(f"/projects?{query}", headers=OPERATOR)
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()["items"]]

    assert await ids("sort=budget") == [small["id"], mid["id"], big["id"]]
    assert await ids("sort=-budget") == [big["id"], mid["id"], small["id"]]
    assert await ids("") == [mid["id"], big["id"], small["id"]]  # newest first
    assert await ids("state=approved") == [big["id"]]
    assert await ids("year=2028") == [mid["id"]]
    assert await ids("service=care&sort=budget") == [small["id"], mid["id"]]
    assert await ids("service=community_care") == [big["id"]]
    assert await ids("service=communityxcare") == []  # `_` is not a wildcard
    assert await ids("fund_source=working_funds") == [big["id"]]
    assert await ids(f"region={OTHER_COUNTY}") == []
    assert await ids("region=2201&sort=budget&limit=1&offset=1") == [mid["id"]]
    r = await client.get("/projects?sort=secret", headers=OPERATOR)
    assert problem_of(r, 422)["errors"][0]["field"] == "query.sort"


# --------------------------------------------------------------------------- matching events


async def _market(p: Platform, verb: str, **data: Any) -> Event:
    entity, action = verb.split(".")
    event = new_event(service="matching", entity=entity, verb=action, data=data)
    bus = p.runtime("providers").bus
    await bus.js.publish(event.nats_subject, event.body(), headers=event.headers())
    return event


async def _state_is(p: Platform, project_id: str, state: str) -> Any:
    return await eventually(lambda: get(p, project_id), until=lambda x: x["state"] == state)


async def test_matching_events_drive_tendered_awarded_in_service_closed(live: Platform) -> None:
    await record_funds(live, 10_000_000)
    draft = await create(live)
    pid = draft["id"]
    await act(live, pid, "approve")
    await act(live, pid, "publish")

    # A tender opens, fails (废标) and the project is open for another tender.
    await _market(live, "tender.published", project_id=pid, tender_id="T1")
    assert (await _state_is(live, pid, "tendered"))["tender_id"] == "T1"
    await _market(live, "tender.failed", project_id=pid, tender_id="T1", reason="有效投标不足三家")
    reopened = await _state_is(live, pid, "published")
    assert reopened["tender_id"] is None and "有效投标不足三家" in reopened["state_reason"]
    await _market(live, "tender.published", project_id=pid, tender_id="T2")
    assert (await _state_is(live, pid, "tendered"))["tender_id"] == "T2"
    # A late failure of the old tender does not reopen the project.
    await _market(live, "tender.failed", project_id=pid, tender_id="T1", reason="late")
    await _market(live, "award.made", project_id=pid, tender_id="T2")
    await _state_is(live, pid, "awarded")
    # Awarded: too late to cancel here; the contract ends through matching.
    r = await act(live, pid, "cancel", json={"reason": "x"})
    assert problem_of(r, 409)["project_state"] == "awarded"
    await _market(live, "contract.signed", project_id=pid, contract_id="C1", tender_id="T2")
    signed = await _state_is(live, pid, "in_service")
    assert signed["contract_id"] == "C1"
    # A repeated award (another event id) after signature is late: ignored.
    await _market(live, "award.made", project_id=pid, tender_id="T2")
    await _market(
        live, "contract.terminated", project_id=pid, contract_id="C1", reason="承接主体转包服务"
    )
    closed = await _state_is(live, pid, "closed")
    assert "承接主体转包服务" in closed["state_reason"]
    # Funds stay spent after closing.
    assert (await ledger(live))["reserved_fen"] == 100_000

    history = (await live["providers"].get(f"/projects/{pid}/history", headers=PURCHASER)).json()
    assert [(h["from_state"], h["to_state"]) for h in history] == [
        ("new", "draft"),
        ("draft", "approved"),
        ("approved", "published"),
        ("published", "tendered"),
        ("tendered", "published"),
        ("published", "tendered"),
        ("tendered", "awarded"),
        ("awarded", "in_service"),
        ("in_service", "closed"),
    ]
    assert history[3]["actor"] == "event:sa.matching.tender.published"
    assert history[-1]["actor"] == "event:sa.matching.contract.terminated"

    # An event about a project this library does not know is dead-lettered, not retried.
    worker = next(w for w in live.runtime("providers").workers if w.durable == MARKET_DURABLE)
    await _market(live, "award.made", project_id="no-such-project", tender_id="T9")

    async def dead_letters() -> int:
        return int(worker.dead_lettered_total)

    await eventually(dead_letters, until=lambda n: n == 1)
    assert (await get(live, pid))["version"] == closed["version"]


async def test_a_tender_failing_after_award_puts_the_project_back_on_the_market(
    live: Platform,
) -> None:
    """Every ranked bidder refused to sign: matching fails the awarded tender."""
    await record_funds(live, 10_000_000)
    pid = (await create(live))["id"]
    await act(live, pid, "approve")
    await act(live, pid, "publish")
    await _market(live, "tender.published", project_id=pid, tender_id="T1")
    await _market(live, "award.made", project_id=pid, tender_id="T1")
    await _state_is(live, pid, "awarded")
    await _market(live, "tender.failed", project_id=pid, tender_id="T1", reason="全部拒绝签约")
    reopened = await _state_is(live, pid, "published")
    assert reopened["tender_id"] is None and "全部拒绝签约" in reopened["state_reason"]


async def test_contract_completed_closes_and_events_for_drafts_are_ignored(
    live: Platform,
) -> None:
    await record_funds(live, 10_000_000)
    pid = (await create(live))["id"]
    # Not on the market yet: ignored (logged), not an error.
    await _market(live, "tender.published", project_id=pid, tender_id="T1")
    await act(live, pid, "approve")
    await act(live, pid, "publish")
    await _market(live, "tender.published", project_id=pid, tender_id="T2")
    assert (await _state_is(live, pid, "tendered"))["tender_id"] == "T2"
    await _market(live, "award.made", project_id=pid, tender_id="T2")
    await _market(live, "contract.signed", project_id=pid, contract_id="C2")
    await _market(live, "contract.completed", project_id=pid, contract_id="C2")
    closed = await _state_is(live, pid, "closed")
    assert closed["state_reason"] is None and closed["contract_id"] == "C2"
    worker = next(w for w in live.runtime("providers").workers if w.durable == MARKET_DURABLE)
    assert worker.dead_lettered_total == 0
