"""Panels, scoring (综合评分法), results and awards in the matching service, in-process over
HTTP on a real database and the session's real nats-server.

Tenders, opened bids, experts and organisations are seeded as rows of matching's own tables
(a tender in state `evaluating` with its bids opened is where evaluation starts); everything
after that goes through the HTTP API and the event workers. The clock is the app's
(`app.state.clock`): no test sleeps for a deadline.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import col, select

from libs.common.auth import Role
from libs.common.clock import FrozenClock
from libs.common.events import new_event
from services.matching.evaluation import rules
from services.matching.library.models import ExpertView, ProjectView
from services.matching.market.models import Award, Bid, Panel, Tender
from services.matching.models import OrganisationView
from tests import factories
from tests.support.platform import Platform, auth, eventually, token

REGION = "220102"  # 长春市南关区
PURCHASER = auth(Role.purchaser, region=REGION)
OTHER_COUNTY = auth(Role.purchaser, region="220104")
OPERATOR = auth(Role.operator)
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in China
TODAY = date(2026, 11, 23)

CRITERIA = [
    {"code": "service_plan", "name": "服务方案", "weight": "0.40"},
    {"code": "staffing", "name": "人员配备", "weight": "0.20"},
    {"code": "past_performance", "name": "以往业绩", "weight": "0.10"},
]


def expert_auth(expert_id: str) -> dict[str, str]:
    """An expert acts as themselves: the token's subject is the library expert id."""
    return {"Authorization": f"Bearer {token(Role.expert, subject=expert_id)}"}


def org_auth(org_id: str) -> dict[str, str]:
    return auth(Role.organisation, org_id=org_id)


@dataclass
class Market:
    platform: Platform
    clock: FrozenClock
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def http(self) -> Any:
        return self.platform["matching"]

    @property
    def runtime(self) -> Any:
        return self.platform.runtime("matching")

    async def add(self, *rows: Any) -> None:
        async with self.runtime.db.write_session() as session:
            session.add_all(rows)
            await session.commit()

    async def org(
        self, name: str, *, credit: float | None = 80.0, status: str = "admitted"
    ) -> OrganisationView:
        view = OrganisationView(
            organisation_id=str(uuid.uuid4()),
            registered=True,
            service_regions=["2201"],
            capacities={"care": 50},
            status=status,
            status_version=1,
            uscc=factories.credit_code(),
            name=name,
            kind="social_organisation",
            credit_score=credit,
            satisfaction=0.9,
            updated_at=NOW,
        )
        await self.add(view)
        return view

    async def expert(
        self,
        name: str,
        *,
        fields: Sequence[str] = ("care",),
        affiliations: Sequence[dict[str, Any]] = (),
        available: bool = True,
        region_code: str = "220102",
    ) -> str:
        expert_id = str(uuid.uuid4())
        await self.add(
            ExpertView(
                expert_id=expert_id,
                name=name,
                region_code=region_code,
                fields=list(fields),
                available=available,
                status="active",
                affiliations=list(affiliations),
                version=1,
                updated_at=NOW,
            )
        )
        return expert_id

    async def tender(self, **overrides: Any) -> Tender:
        project_id = str(uuid.uuid4())
        values: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "project_id": project_id,
            "method": "open_tender",
            "state": "evaluating",
            "region_code": REGION,
            "title": "南关区特困人员照料护理服务",
            "service_codes": ["care"],
            "budget_fen": 1_200_000_00,
            "pack": "jilin@test",
            "criteria": CRITERIA,
            "price_weight": Decimal("0.30"),
            "qualification_requirements": [],
            "high_value": False,
            "panel_size": 5,
            "published_at": NOW - timedelta(days=30),
            "bid_deadline": NOW - timedelta(days=1),
            "created_by": "test-purchaser",
            "created_at": NOW - timedelta(days=31),
            "updated_at": NOW - timedelta(days=1),
        }
        values.update(overrides)
        tender = Tender(**values)
        project = ProjectView(
            project_id=tender.project_id,
            region_code=REGION,
            department="南关区民政局",
            title=tender.title,
            service_codes=list(tender.service_codes),
            quantity=1200,
            unit="人次",
            budget_fen=tender.budget_fen,
            purchasing_method=tender.method,
            period_start=date(2027, 1, 1),
            period_end=date(2027, 12, 31),
            qualification_requirements=[],
            pack="jilin",
            payload={},
            version=1,
            updated_at=NOW,
        )
        await self.add(tender, project)
        return tender

    async def bid(
        self, tender: Tender, org: OrganisationView, price_fen: int, *, state: str = "valid"
    ) -> str:
        bid = Bid(
            id=str(uuid.uuid4()),
            tender_id=tender.id,
            organisation_id=org.organisation_id,
            state=state,
            sealed="(opened)",
            price_fen=price_fen,
            content={"plan": f"服务方案 of {org.name}", "staff": 12},
            invalid_reason="missing qualification evidence" if state == "invalid" else None,
            submitted_at=NOW - timedelta(days=5),
            updated_at=NOW - timedelta(days=1),
            opened_at=NOW - timedelta(days=1),
        )
        await self.add(bid)
        return bid.id

    async def row(self, model: Any, key: str) -> Any:
        async with self.runtime.db.session() as session:
            return await session.get(model, key)

    async def events(self, subject: str) -> list[dict[str, Any]]:
        """Bodies of the MATCHING stream's messages on `subject`, in order."""
        js = self.runtime.bus.js
        info = await js.stream_info("MATCHING")
        out = []
        for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
            msg = await js.get_msg("MATCHING", seq)
            if msg.subject == subject:
                out.append(json.loads(msg.data or b"{}"))
        return out

    async def published(self, subject: str, *, count: int = 1) -> list[dict[str, Any]]:
        async def probe() -> list[dict[str, Any]]:
            return await self.events(subject)

        return await eventually(probe, until=lambda found: len(found) >= count)


@pytest.fixture
async def market(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Market]:
    platform = Platform(nats_url=nats_url, database_url=database_url_factory, services=["matching"])
    clock = FrozenClock(NOW)
    platform.apps["matching"].state.clock = clock
    async with platform as p:
        yield Market(p, clock)


async def draw(market: Market, tender_id: str, headers: dict[str, str] = PURCHASER) -> Any:
    r = await market.http.post(f"/tenders/{tender_id}/panel", headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def score_all(
    market: Market, tender_id: str, members: Sequence[str], marks: dict[str, int]
) -> None:
    """Every member scores every bid in `marks` with that mark on every criterion."""
    for expert_id in members:
        for bid_id, mark in marks.items():
            r = await market.http.post(
                f"/tenders/{tender_id}/scores",
                json={"bid_id": bid_id, "scores": {c["code"]: mark for c in CRITERIA}},
                headers=expert_auth(expert_id),
            )
            assert r.status_code == 201, r.text


@dataclass
class Evaluated:
    tender: Tender
    orgs: list[OrganisationView]
    bids: list[str]
    members: list[str]
    results: dict[str, Any]


async def evaluated_market(
    market: Market,
    *,
    method: str = "open_tender",
    panel_size: int = 5,
    bidders: int = 3,
    **tender: Any,
) -> Evaluated:
    """Valid bids ranked best → worst (a, b, c …), evaluated, the award offered to a."""
    t = await market.tender(method=method, panel_size=panel_size, **tender)
    orgs = [await market.org(f"机构{x}", credit=70.0) for x in "abcde"[:bidders]]
    bids = [await market.bid(t, org, 1_000_000_00) for org in orgs]
    for i in range(panel_size):
        await market.expert(f"专家{i}")
    panel = await draw(market, t.id)
    members = [m["expert_id"] for m in panel["members"]]
    await score_all(market, t.id, members, {b: 90 - 10 * i for i, b in enumerate(bids)})
    r = await market.http.post(f"/tenders/{t.id}/evaluate", headers=PURCHASER)
    assert r.status_code == 200, r.text
    results = r.json()
    assert [x["bid_id"] for x in results["results"]] == bids
    assert results["award"]["state"] == "offered" and results["award"]["bid_id"] == bids[0]
    return Evaluated(t, orgs, bids, members, results)


async def handled(market: Market, event_id: str, consumer: str) -> None:
    """Wait until `consumer` has recorded the event in its inbox (its effect committed)."""
    inbox = market.runtime.tables.inbox

    async def probe() -> bool:
        async with market.runtime.db.session() as session:
            row = await session.execute(
                select(inbox.c.event_id).where(
                    inbox.c.consumer == consumer, inbox.c.event_id == event_id
                )
            )
            return row.first() is not None

    await eventually(probe, until=bool)


# ------------------------------------------------------------------------------------ panels


def years_ago(years: int, days: int = 0) -> str:
    return (TODAY.replace(year=TODAY.year - years) - timedelta(days=days)).isoformat()


async def test_recusal_excludes_conflicted_experts_and_the_draw_replays_from_seed_and_candidates(
    market: Market,
) -> None:
    t = await market.tender()
    orgs = [await market.org(f"机构{x}") for x in "abc"]
    for org, price in zip(orgs, (90_000_000, 100_000_000, 110_000_000), strict=True):
        await market.bid(t, org, price)
    bidder = orgs[0]
    # Employed by a bidder until two years ago: inside the three years → recused.
    recent = await market.expert(
        "近期任职",
        affiliations=[
            {
                "organisation_uscc": bidder.uscc,
                "organisation_id": bidder.organisation_id,
                "kind": "employment",
                "started_on": "2019-03-01",
                "ended_on": years_ago(2),
            }
        ],
    )
    # Director of another bidder, named by credit code only, still in office → recused.
    director = await market.expert(
        "现任理事",
        fields=("evaluation",),
        affiliations=[
            {
                "organisation_uscc": orgs[1].uscc,
                "organisation_id": None,
                "kind": "directorship",
                "started_on": "2022-01-01",
                "ended_on": None,
            }
        ],
    )
    # Left the bidder three years and one day ago → eligible.
    cleared = await market.expert(
        "离职已满三年",
        affiliations=[
            {
                "organisation_uscc": bidder.uscc,
                "organisation_id": bidder.organisation_id,
                "kind": "employment",
                "started_on": "2015-03-01",
                "ended_on": years_ago(3, days=1),
            }
        ],
    )
    free = [await market.expert(f"专家{i}") for i in range(4)]
    # Never candidates: unavailable, outside the tender's fields, another province.
    away = await market.expert("休假", available=False)
    lawyer = await market.expert("律师", fields=("law",))
    elsewhere = await market.expert("浙江专家", region_code="330102")

    panel = await draw(market, t.id)

    eligible = sorted([recent, director, cleared, *free])
    assert panel["candidates"] == eligible
    assert {away, lawyer, elsewhere}.isdisjoint(panel["candidates"])
    members = [m["expert_id"] for m in panel["members"]]
    # Two of seven recused: the five others fill the panel, the cleared expert among them.
    assert sorted(members) == sorted([cleared, *free])
    assert panel["size"] == 5 and panel["draw_date"] == TODAY.isoformat()
    assert "中华人民共和国政府采购法实施条例 第九条" in panel["rules"]
    assert "财政部令第87号 第四十七条" in panel["rules"]
    names = {m["expert_id"]: m["name"] for m in panel["members"]}
    assert names[cleared] == "离职已满三年"

    # The exclusions are exactly the recused experts the draw reached before the seats were
    # filled, with the tie that obliged recusal.
    order = rules.draw_order(panel["seed"], panel["candidates"])
    last_seat = max(order.index(m) for m in members)
    reached = [e for e in order[:last_seat] if e in (recent, director)]
    assert [e["expert_id"] for e in panel["excluded"]] == reached
    ties = {e["expert_id"]: e for e in panel["excluded"]}
    if recent in ties:
        assert ties[recent]["reason"] == "recused"
        assert ties[recent]["organisation_id"] == bidder.organisation_id
        assert ties[recent]["kind"] == "employment"
    if director in ties:
        assert ties[director]["organisation_uscc"] == orgs[1].uscc
        assert ties[director]["kind"] == "directorship"

    # An auditor's re-run from the stored seed and candidates gives the same members.
    async with market.runtime.db.session() as session:
        row = (await session.execute(select(Panel).where(Panel.tender_id == t.id))).scalar_one()
    redrawn = rules.draw_panel(
        seed=row.seed,
        candidate_ids=row.candidates,
        size=row.size,
        conflicts={
            recent: [
                rules.Affiliation(
                    bidder.uscc,
                    bidder.organisation_id,
                    "employment",
                    date(2019, 3, 1),
                    date.fromisoformat(years_ago(2)),
                )
            ],
            director: [rules.Affiliation(orgs[1].uscc, None, "directorship", date(2022, 1, 1))],
        },
        item_experts=set(row.candidates) - {director},
    )
    assert redrawn.members == row.members
    replayed = rules.replay_draw(
        seed=row.seed,
        candidate_ids=row.candidates,
        size=row.size,
        excluded={str(e["expert_id"]) for e in row.excluded},
    )
    assert replayed == row.members
    audit = (await market.http.get(f"/tenders/{t.id}/panel/audit", headers=PURCHASER)).json()
    assert audit["reproduced"] is True and audit["replayed_members"] == row.members

    # One draw per tender; another county sees no tender at all.
    again = await market.http.post(f"/tenders/{t.id}/panel", headers=PURCHASER)
    assert again.status_code == 409
    hidden = await market.http.get(f"/tenders/{t.id}/panel", headers=OTHER_COUNTY)
    assert hidden.status_code == 404


async def test_too_few_eligible_experts_is_409_naming_needed_and_found(market: Market) -> None:
    t = await market.tender()
    org = await market.org("机构")
    await market.bid(t, org, 90_000_000)
    for i in range(3):
        await market.expert(f"专家{i}")
    await market.expert(
        "任职投标人",
        affiliations=[
            {
                "organisation_uscc": org.uscc,
                "organisation_id": org.organisation_id,
                "kind": "employment",
                "started_on": "2020-01-01",
                "ended_on": None,
            }
        ],
    )
    r = await market.http.post(f"/tenders/{t.id}/panel", headers=PURCHASER)
    assert r.status_code == 409, r.text
    body = r.json()
    assert (body["needed"], body["found"], body["eligible"], body["recused"]) == (5, 3, 4, 1)
    assert "needs 5" in body["detail"] and "leaving 3" in body["detail"]
    async with market.runtime.db.session() as session:
        assert (await session.execute(select(Panel))).first() is None  # nothing written


async def test_high_value_tender_with_a_panel_of_five_is_refused_with_the_clause(
    market: Market,
) -> None:
    t = await market.tender(budget_fen=10_000_000_00, panel_size=5)  # 1000万元
    for i in range(7):
        await market.expert(f"专家{i}")
    r = await market.http.post(f"/tenders/{t.id}/panel", headers=PURCHASER)
    assert r.status_code == 422, r.text
    assert "at least 7" in r.json()["detail"]
    assert "财政部令第87号 第四十七条" in r.json()["rules"]
    seven = await market.tender(budget_fen=10_000_000_00, panel_size=7)
    panel = await draw(market, seven.id)
    assert len(panel["members"]) == 7


async def test_negotiation_panel_of_three_and_a_tender_still_bidding_is_refused(
    market: Market,
) -> None:
    negotiation = await market.tender(method="competitive_negotiation", panel_size=3)
    for i in range(3):
        await market.expert(f"专家{i}", fields=("care", "evaluation"))
    panel = await draw(market, negotiation.id)
    assert len(panel["members"]) == 3
    assert "中华人民共和国政府采购法 第三十八条(一)" in panel["rules"]
    bidding = await market.tender(state="bidding", bid_deadline=NOW + timedelta(days=3))
    r = await market.http.post(f"/tenders/{bidding.id}/panel", headers=PURCHASER)
    assert r.status_code == 409 and "evaluating" in r.json()["detail"]


# ------------------------------------------------------------------------ scoring and results


async def test_a_cheap_weak_bid_loses_and_results_publish_every_score_and_the_panel(
    market: Market,
) -> None:
    t = await market.tender()
    cheap_org = await market.org("低价机构", credit=60.0)
    good_org = await market.org("优质机构", credit=85.0)
    mid_org = await market.org("中等机构", credit=75.0)
    bad_org = await market.org("无效机构")
    cheap = await market.bid(t, cheap_org, 60_000_000)
    good = await market.bid(t, good_org, 100_000_000)
    mid = await market.bid(t, mid_org, 80_000_000)
    void = await market.bid(t, bad_org, 50_000_000, state="invalid")
    experts = [await market.expert(f"专家{i}") for i in range(5)]
    outsider = await market.expert("非评审专家", fields=("law",))
    panel = await draw(market, t.id)
    members = [m["expert_id"] for m in panel["members"]]
    assert sorted(members) == sorted(experts)

    # Panel members read the opened bids with the bidders' past performance.
    seen = await market.http.get(f"/tenders/{t.id}/panel/bids", headers=expert_auth(members[0]))
    assert seen.status_code == 200, seen.text
    by_bid = {b["bid_id"]: b for b in seen.json()["items"]}
    assert by_bid[good]["credit_score"] == 85.0 and by_bid[good]["satisfaction"] == 0.9
    assert by_bid[void]["state"] == "invalid" and by_bid[good]["price_fen"] == 100_000_000
    assert [c["code"] for c in seen.json()["criteria"]] == [c["code"] for c in CRITERIA]
    not_member = await market.http.get(f"/tenders/{t.id}/panel/bids", headers=expert_auth(outsider))
    assert not_member.status_code == 403

    # Sheets: outsiders, invalid bids, incomplete or out-of-range scores are refused.
    sheet = {"bid_id": good, "scores": {"service_plan": 90, "staffing": 90, "past_performance": 90}}
    r = await market.http.post(f"/tenders/{t.id}/scores", json=sheet, headers=expert_auth(outsider))
    assert r.status_code == 403
    r = await market.http.post(
        f"/tenders/{t.id}/scores",
        json={**sheet, "bid_id": void},
        headers=expert_auth(members[0]),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.bid_id"
    r = await market.http.post(
        f"/tenders/{t.id}/scores",
        json={"bid_id": good, "scores": {"service_plan": 90, "staffing": 101}},
        headers=expert_auth(members[0]),
    )
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert "body.scores.staffing" in fields

    # Nothing is evaluated while a sheet is missing; 409 lists what is missing.
    marks = {
        # cheap: weak plan and staff; good: strong; mid: in between.
        cheap: {"service_plan": 55, "staffing": 60, "past_performance": 60},
        good: {"service_plan": 92, "staffing": 90, "past_performance": 88},
        mid: {"service_plan": 75, "staffing": 75, "past_performance": 70},
    }
    for expert_id in members:
        for bid_id, scores in marks.items():
            if (expert_id, bid_id) == (members[-1], mid):
                continue
            r = await market.http.post(
                f"/tenders/{t.id}/scores",
                json={"bid_id": bid_id, "scores": scores},
                headers=expert_auth(expert_id),
            )
            assert r.status_code == 201, r.text
    r = await market.http.post(f"/tenders/{t.id}/evaluate", headers=PURCHASER)
    assert r.status_code == 409
    assert r.json()["missing"] == [
        {"expert_id": members[-1], "expert_name": panel["members"][-1]["name"], "bid_id": mid}
    ]
    # A second sheet for the same bid is 409; the member corrects it with PUT instead.
    dup = await market.http.post(
        f"/tenders/{t.id}/scores",
        json={"bid_id": good, "scores": marks[good]},
        headers=expert_auth(members[0]),
    )
    assert dup.status_code == 409
    fixed = await market.http.put(
        f"/tenders/{t.id}/scores/{good}",
        json={"scores": {"service_plan": 92, "staffing": 90, "past_performance": "88.5"}},
        headers=expert_auth(members[0]),
    )
    assert fixed.status_code == 200 and fixed.json()["scores"]["past_performance"] == "88.5"
    r = await market.http.post(
        f"/tenders/{t.id}/scores",
        json={"bid_id": mid, "scores": marks[mid]},
        headers=expert_auth(members[-1]),
    )
    assert r.status_code == 201

    r = await market.http.post(f"/tenders/{t.id}/evaluate", headers=PURCHASER)
    assert r.status_code == 200, r.text
    notice = r.json()
    ranking = [x["bid_id"] for x in notice["results"]]
    # The cheapest valid bid takes the whole price weight and still comes last.
    assert ranking == [good, mid, cheap]
    rows = {x["bid_id"]: x for x in notice["results"]}
    assert rows[cheap]["price_score"] == "30.0000"
    assert rows[good]["price_score"] == "18.0000"  # 60/100 × 100 × 0.30
    assert rows[mid]["price_score"] == "22.5000"  # 60/80 × 100 × 0.30
    # Past performance: four members gave 88, one 88.5 → mean 88.1.
    assert rows[good]["criteria"]["past_performance"] == {
        "name": "以往业绩",
        "weight": "0.10",
        "mean": "88.1000",
        "weighted": "8.8100",
    }
    assert rows[good]["quality_score"] == "63.6100"  # 36.8 + 18 + 8.81
    assert rows[good]["total"] == "81.6100"
    assert rows[cheap]["quality_score"] == "40.0000" and rows[cheap]["total"] == "70.0000"
    assert [x["rank"] for x in notice["results"]] == [1, 2, 3]
    assert rows[good]["organisation_name"] == "优质机构" and rows[good]["price_fen"] == 100_000_000
    assert notice["invalid"] == [
        {
            "bid_id": void,
            "organisation_id": bad_org.organisation_id,
            "organisation_name": "无效机构",
            "reason": "missing qualification evidence",
        }
    ]
    assert sorted(notice["panel"]) == sorted(m["name"] for m in panel["members"])
    assert notice["award"]["bid_id"] == good and notice["award"]["state"] == "offered"
    assert notice["state"] == "evaluating"  # until the award is accepted
    assert "财库〔2014〕214号 第二十四条" in notice["rules"]

    # The same notice for anyone signed in; sheets are final now; no second evaluation.
    public = await market.http.get(
        f"/tenders/{t.id}/results", headers=org_auth(cheap_org.organisation_id)
    )
    assert public.status_code == 200 and public.json()["results"] == notice["results"]
    late = await market.http.put(
        f"/tenders/{t.id}/scores/{good}",
        json={"scores": marks[good]},
        headers=expert_auth(members[0]),
    )
    assert late.status_code == 409
    again = await market.http.post(f"/tenders/{t.id}/evaluate", headers=PURCHASER)
    assert again.status_code == 409

    # The results event: every bidder's per-criterion and price scores and the panel's names;
    # no bid content, no contact data.
    [event] = await market.published("sa.matching.tender.evaluated")
    assert [x["bid_id"] for x in event["results"]] == ranking
    assert {x["bid_id"]: x["criteria"] for x in event["results"]} == {
        b: rows[b]["criteria"] for b in ranking
    }
    assert {x["bid_id"]: x["price_score"] for x in event["results"]} == {
        b: rows[b]["price_score"] for b in ranking
    }
    assert sorted(event["panel"]) == sorted(m["name"] for m in panel["members"])
    assert event["invalid"][0]["bid_id"] == void
    text = json.dumps(event, ensure_ascii=False)
    assert "服务方案 of" not in text and "content" not in text
    [offer] = await market.published("sa.matching.award.offered")
    assert (offer["bid_id"], offer["rank"], offer["state"]) == (good, 1, "offered")


async def test_evaluation_needs_a_panel_and_other_counties_see_nothing(market: Market) -> None:
    t = await market.tender()
    r = await market.http.post(f"/tenders/{t.id}/evaluate", headers=PURCHASER)
    assert r.status_code == 409 and "panel" in r.json()["detail"]
    hidden = await market.http.post(f"/tenders/{t.id}/evaluate", headers=OTHER_COUNTY)
    assert hidden.status_code == 404
    not_yet = await market.http.get(f"/tenders/{t.id}/results", headers=OPERATOR)
    assert not_yet.status_code == 409


async def test_price_weight_outside_the_band_is_refused_at_evaluation(market: Market) -> None:
    # A tender that somehow carries 35 % price weight (the tenders package refuses it when
    # set): evaluation re-checks and cites the band.
    t = await market.tender(
        price_weight=Decimal("0.35"),
        criteria=[{"code": "service_plan", "name": "服务方案", "weight": "0.65"}],
    )
    org = await market.org("机构")
    bid = await market.bid(t, org, 90_000_000)
    for i in range(5):
        await market.expert(f"专家{i}")
    panel = await draw(market, t.id)
    for m in panel["members"]:
        r = await market.http.post(
            f"/tenders/{t.id}/scores",
            json={"bid_id": bid, "scores": {"service_plan": 80}},
            headers=expert_auth(m["expert_id"]),
        )
        assert r.status_code == 201
    r = await market.http.post(f"/tenders/{t.id}/evaluate", headers=PURCHASER)
    assert r.status_code == 422, r.text
    assert "outside the band" in r.json()["detail"]
    assert "财库〔2014〕214号 第二十四条" in r.json()["rules"]


# ------------------------------------------------------------------------------------ awards


async def test_next_ranked_is_offered_when_the_winner_refuses_and_acceptance_awards(
    market: Market,
) -> None:
    ev = await evaluated_market(market)
    first = ev.results["award"]
    a, b, _c = ev.orgs
    # Only the organisation offered the award may answer it.
    wrong = await market.http.post(
        f"/awards/{first['id']}/accept", headers=org_auth(b.organisation_id)
    )
    assert wrong.status_code == 404
    r = await market.http.post(
        f"/awards/{first['id']}/refuse",
        json={"reason": "人员无法到位"},
        headers=org_auth(a.organisation_id),
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["award"]["state"] == "refused" and out["award"]["reason"] == "人员无法到位"
    second = out["next_award"]
    assert (second["bid_id"], second["rank"], second["state"]) == (ev.bids[1], 2, "offered")
    assert out["tender_state"] == "evaluating"
    again = await market.http.post(
        f"/awards/{first['id']}/accept", headers=org_auth(a.organisation_id)
    )
    assert again.status_code == 409  # a refused award stays refused

    r = await market.http.post(
        f"/awards/{second['id']}/accept", headers=org_auth(b.organisation_id)
    )
    assert r.status_code == 200, r.text
    assert r.json()["award"]["state"] == "accepted" and r.json()["tender_state"] == "awarded"
    assert (await market.row(Tender, ev.tender.id)).state == "awarded"
    results = (await market.http.get(f"/tenders/{ev.tender.id}/results", headers=OPERATOR)).json()
    assert results["award"]["id"] == second["id"] and results["state"] == "awarded"
    history = (await market.http.get(f"/tenders/{ev.tender.id}/awards", headers=PURCHASER)).json()
    assert [(x["rank"], x["state"]) for x in history["items"]] == [(1, "refused"), (2, "accepted")]

    # Contracts start from the accepted award: everything a contract needs is in the event.
    [made] = await market.published("sa.matching.award.made")
    [accepted] = await market.published("sa.matching.award.accepted")
    for event in (made, accepted):
        assert event["award_id"] == second["id"] and event["bid_id"] == ev.bids[1]
        assert event["tender_id"] == ev.tender.id and event["project_id"] == ev.tender.project_id
        assert event["organisation_id"] == b.organisation_id and event["rank"] == 2
        assert event["price_fen"] == 1_000_000_00 and event["service_codes"] == ["care"]
        assert event["region_code"] == REGION and event["period_end"] == "2027-12-31"
    [refused] = await market.published("sa.matching.award.refused")
    assert refused["award_id"] == first["id"] and refused["reason"] == "人员无法到位"


async def test_next_ranked_is_offered_when_credit_suspends_the_winner(market: Market) -> None:
    ev = await evaluated_market(market)
    first = ev.results["award"]
    a = ev.orgs[0]
    # Credit suspends the organisation holding the offer (sa.credit.organisation.suspended).
    event = new_event(
        service="credit",
        entity="organisation",
        verb="suspended",
        subject=a.organisation_id,
        data={"organisation_id": a.organisation_id, "decision_version": 2, "reason": "违约"},
    )
    await market.runtime.bus.js.publish(event.nats_subject, event.body(), headers=event.headers())

    async def awards() -> list[Any]:
        r = await market.http.get(f"/tenders/{ev.tender.id}/awards", headers=PURCHASER)
        return list(r.json()["items"])

    history = await eventually(awards, until=lambda items: len(items) == 2)
    assert history[0]["id"] == first["id"] and history[0]["state"] == "excluded"
    assert "suspended" in history[0]["reason"]
    assert (history[1]["bid_id"], history[1]["rank"], history[1]["state"]) == (
        ev.bids[1],
        2,
        "offered",
    )
    [excluded] = await market.published("sa.matching.award.excluded")
    assert excluded["award_id"] == first["id"]

    # A decision about the new holder older than the one matching applied (version 1, a
    # late event) changes nothing: the offer stands.
    holder = ev.orgs[1].organisation_id
    stale = new_event(
        service="credit",
        entity="organisation",
        verb="suspended",
        subject=holder,
        data={"organisation_id": holder, "decision_version": 1},
    )
    await market.runtime.bus.js.publish(stale.nats_subject, stale.body(), headers=stale.headers())
    await handled(market, stale.id, "matching-award-standing")
    assert (await market.row(Award, history[1]["id"])).state == "offered"
    done = await market.http.post(f"/awards/{history[1]['id']}/accept", headers=org_auth(holder))
    assert done.status_code == 200, done.text
    assert len(await awards()) == 2


async def test_next_ranked_is_offered_when_the_winner_refuses_to_sign_the_contract(
    market: Market,
) -> None:
    ev = await evaluated_market(market)
    a, b, _c = ev.orgs
    first = ev.results["award"]
    r = await market.http.post(f"/awards/{first['id']}/accept", headers=org_auth(a.organisation_id))
    assert r.status_code == 200 and r.json()["tender_state"] == "awarded"
    # The contracts package: the organisation will not sign (拒签); it marks the award refused
    # and announces `sa.matching.contract.refused`.
    async with market.runtime.db.write_session() as session:
        award = await session.get(Award, first["id"])
        assert award is not None
        award.state, award.reason = "refused", "refused to sign the contract: 价格有误"
        await session.commit()
    refused = new_event(
        service="matching",
        entity="contract",
        verb="refused",
        subject="contract-1",
        data={
            "contract_id": "contract-1",
            "award_id": first["id"],
            "tender_id": ev.tender.id,
            "project_id": ev.tender.project_id,
            "organisation_id": a.organisation_id,
            "region_code": REGION,
            "version": 2,
            "reason": "价格有误",
        },
    )
    js = market.runtime.bus.js
    await js.publish(refused.nats_subject, refused.body(), headers=refused.headers())
    await handled(market, refused.id, "matching-award-contract-refused")
    history = (await market.http.get(f"/tenders/{ev.tender.id}/awards", headers=PURCHASER)).json()
    assert [(x["rank"], x["state"]) for x in history["items"]] == [(1, "refused"), (2, "offered")]
    tender = await market.row(Tender, ev.tender.id)
    assert tender.state == "evaluating" and "refused to sign" in tender.state_reason
    # A replay changes nothing; the runner-up accepts and the tender is awarded again.
    await js.publish(refused.nats_subject, refused.body(), headers=refused.headers())
    second = history["items"][1]
    r = await market.http.post(
        f"/awards/{second['id']}/accept", headers=org_auth(b.organisation_id)
    )
    assert r.status_code == 200 and r.json()["tender_state"] == "awarded"
    made = await market.published("sa.matching.award.made", count=2)
    assert [m["award_id"] for m in made] == [first["id"], second["id"]]


async def test_purchaser_exclusion_then_refusals_leave_nobody_and_the_tender_fails(
    market: Market,
) -> None:
    ev = await evaluated_market(market)
    a, b, c = ev.orgs
    first = ev.results["award"]
    forbidden = await market.http.post(
        f"/awards/{first['id']}/exclude", json={"reason": "虚假材料"}, headers=OTHER_COUNTY
    )
    assert forbidden.status_code == 404
    r = await market.http.post(
        f"/awards/{first['id']}/exclude",
        json={"reason": "提供虚假材料谋取中标"},
        headers=PURCHASER,
    )
    assert r.status_code == 200, r.text
    second = r.json()["next_award"]
    assert second["organisation_id"] == b.organisation_id
    r = await market.http.post(
        f"/awards/{second['id']}/refuse",
        json={"reason": "放弃"},
        headers=org_auth(b.organisation_id),
    )
    assert r.status_code == 200, r.text
    third = r.json()["next_award"]
    assert third["organisation_id"] == c.organisation_id and third["rank"] == 3
    r = await market.http.post(
        f"/awards/{third['id']}/refuse",
        json={"reason": "放弃"},
        headers=org_auth(c.organisation_id),
    )
    assert r.status_code == 200
    out = r.json()
    assert out["next_award"] is None and out["tender_state"] == "failed"
    assert "no ranked bidder is left" in out["tender_state_reason"]
    tender = await market.row(Tender, ev.tender.id)
    assert tender.state == "failed" and tender.version == ev.tender.version + 1
    [failed] = await market.published("sa.matching.tender.failed")
    assert failed["tender_id"] == ev.tender.id and failed["project_id"] == ev.tender.project_id
    assert failed["after_failure"] == ["competitive_negotiation", "competitive_consultation"]
    assert a.organisation_id not in {second["organisation_id"], third["organisation_id"]}


async def test_a_barred_runner_up_is_skipped_when_the_offer_passes(market: Market) -> None:
    ev = await evaluated_market(market)
    a, b, c = ev.orgs
    async with market.runtime.db.write_session() as session:
        view = await session.get(OrganisationView, b.organisation_id)
        assert view is not None
        view.status, view.status_version = "blacklisted", 3
        await session.commit()
    r = await market.http.post(
        f"/awards/{ev.results['award']['id']}/refuse",
        json={"reason": "放弃"},
        headers=org_auth(a.organisation_id),
    )
    assert r.json()["next_award"]["organisation_id"] == c.organisation_id
    history = (await market.http.get(f"/tenders/{ev.tender.id}/awards", headers=PURCHASER)).json()
    skipped = [x for x in history["items"] if x["organisation_id"] == b.organisation_id]
    assert skipped[0]["state"] == "excluded" and "blacklisted" in skipped[0]["reason"]


async def test_single_source_award_waits_until_the_publicity_period_has_passed(
    market: Market,
) -> None:
    until = TODAY + timedelta(days=2)
    ev = await evaluated_market(
        market,
        method="single_source",
        panel_size=3,
        bidders=1,
        single_source_justification="只能从唯一供应商处采购的罕见病对象跟踪服务",
        publicity_until=until,
    )
    award = ev.results["award"]
    holder = org_auth(ev.orgs[0].organisation_id)
    market.clock.set(datetime(2026, 11, 25, 15, 0, tzinfo=UTC))  # 23:00 on the last day
    r = await market.http.post(f"/awards/{award['id']}/accept", headers=holder)
    assert r.status_code == 422, r.text
    assert "中华人民共和国政府采购法实施条例 第三十八条" in r.json()["rules"]
    assert (await market.row(Award, award["id"])).state == "offered"
    market.clock.set(datetime(2026, 11, 25, 16, 0, tzinfo=UTC))  # 00:00 the day after
    r = await market.http.post(f"/awards/{award['id']}/accept", headers=holder)
    assert r.status_code == 200, r.text
    assert r.json()["tender_state"] == "awarded"


# --------------------------------------------------------------------- through the tenders API


async def publish(market: Market, service: str, entity: str, verb: str, **data: Any) -> str:
    """Publish another service's event as it would, for matching's projections."""
    event = new_event(service=service, entity=entity, verb=verb, data=data)
    await market.runtime.bus.js.publish(event.nats_subject, event.body(), headers=event.headers())
    return event.id


async def admitted_organisation(market: Market, name: str) -> str:
    org_id = str(uuid.uuid4())
    offer = factories.organisation(
        name=name, service_regions=["2201"], services=[{"code": "care", "monthly_capacity": 20}]
    )
    await publish(
        market,
        "providers",
        "organisation",
        "registered",
        organisation_id=org_id,
        version=1,
        **offer,
    )
    await publish(
        market, "credit", "organisation", "admitted", organisation_id=org_id, decision_version=1
    )
    await eventually(
        lambda: market.row(OrganisationView, org_id),
        until=lambda v: v is not None and v.registered and v.status == "admitted",
    )
    return org_id


async def test_end_to_end_from_a_published_project_through_opening_to_an_accepted_award(
    market: Market,
) -> None:
    """The tenders API opens the tender and its bids; evaluation takes it from there."""
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in China
    market.clock.set(start)
    project_id = str(uuid.uuid4())
    await publish(
        market,
        "providers",
        "project",
        "published",
        project_id=project_id,
        region_code=REGION,
        department="长春市南关区民政局",
        title="南关区特困人员照料护理服务",
        service_codes=["care"],
        quantity=1200,
        unit="hours",
        quality_standards="按服务规范",
        qualification_requirements=[],
        specific_conditions=None,
        budget_fen=50_000_000,
        fund_source="special_funds",
        period_start="2026-05-01",
        period_end="2027-04-30",
        purchasing_method="open_tender",
        pack="jilin@2026.1",
        version=1,
    )
    await eventually(lambda: market.row(ProjectView, project_id), until=lambda v: v is not None)
    orgs = [await admitted_organisation(market, f"机构{x}") for x in "abc"]
    experts = [str(uuid.uuid4()) for _ in range(5)]
    for i, expert_id in enumerate(experts):
        await publish(
            market,
            "providers",
            "expert",
            "registered",
            expert_id=expert_id,
            name=f"专家{i}",
            region_code="220102",
            fields=["care", "evaluation"],
            available=True,
            unavailable_until=None,
            status="active",
            title=None,
            version=1,
            affiliations=[],
        )

    async def experts_seen() -> int:
        async with market.runtime.db.session() as session:
            rows = await session.execute(
                select(ExpertView.expert_id).where(col(ExpertView.expert_id).in_(experts))
            )
            return len(rows.all())

    await eventually(experts_seen, until=lambda n: n == len(experts))

    r = await market.http.post(
        "/tenders",
        json={
            "project_id": project_id,
            "method": "open_tender",
            "criteria": CRITERIA,
            "price_weight": "0.30",
            "bid_deadline": (start + timedelta(days=20)).isoformat(),
        },
        headers=PURCHASER,
    )
    assert r.status_code == 201, r.text
    tender_id = r.json()["id"]
    r = await market.http.post(f"/tenders/{tender_id}/publish", headers=PURCHASER)
    assert r.status_code == 200, r.text
    prices = {orgs[0]: 30_000_000, orgs[1]: 45_000_000, orgs[2]: 40_000_000}
    for org_id, price in prices.items():
        r = await market.http.post(
            f"/tenders/{tender_id}/bids",
            json={"price_fen": price, "content": {"plan": f"plan of {org_id}"}},
            headers=auth(Role.organisation, region="22", org_id=org_id),
        )
        assert r.status_code == 201, r.text
    # Before the deadline there is nothing to draw for and nothing for a panel to read.
    early = await market.http.post(f"/tenders/{tender_id}/panel", headers=PURCHASER)
    assert early.status_code == 409
    market.clock.set(start + timedelta(days=20))
    r = await market.http.post(f"/tenders/{tender_id}/open", headers=PURCHASER)
    assert r.status_code == 200 and r.json()["tender"]["state"] == "evaluating", r.text

    panel = await draw(market, tender_id)
    assert sorted(m["expert_id"] for m in panel["members"]) == sorted(experts)
    bids = (
        await market.http.get(f"/tenders/{tender_id}/panel/bids", headers=expert_auth(experts[0]))
    ).json()["items"]
    by_org = {b["organisation_id"]: b["bid_id"] for b in bids}
    assert {b["price_fen"] for b in bids} == set(prices.values())
    # The cheapest (a) offers the weakest plan; b, the dearest, the best.
    await score_all(
        market, tender_id, experts, {by_org[orgs[0]]: 50, by_org[orgs[1]]: 95, by_org[orgs[2]]: 80}
    )
    r = await market.http.post(f"/tenders/{tender_id}/evaluate", headers=PURCHASER)
    assert r.status_code == 200, r.text
    notice = r.json()
    assert [x["organisation_id"] for x in notice["results"]] == [orgs[1], orgs[2], orgs[0]]
    assert notice["results"][2]["price_score"] == "30.0000"
    award = notice["award"]
    r = await market.http.post(
        f"/awards/{award['id']}/accept",
        headers=auth(Role.organisation, region="22", org_id=orgs[1]),
    )
    assert r.status_code == 200, r.text
    tender = (await market.http.get(f"/tenders/{tender_id}", headers=PURCHASER)).json()
    assert tender["state"] == "awarded"
    [made] = await market.published("sa.matching.award.made")
    assert made["project_id"] == project_id and made["price_fen"] == 45_000_000
    assert made["period_start"] == "2026-05-01" and made["quantity"] == 1200
