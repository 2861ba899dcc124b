"""Contracts (合同), amendments, credit decisions, service delivery (服务记录) and acceptance
(履约验收) in the matching service, in-process over HTTP on a real database and the session's
real nats-server.

The market before the contract (a project, its tender, the winning bid and the accepted
award) and the matches of the allocation engine are seeded as rows of matching's own tables;
everything from the contract on goes through the HTTP API and the event workers. Credit's
decisions are published on the CREDIT stream as credit publishes them. The clock is the
app's (`app.state.clock`): no test sleeps.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import select

from libs.common.auth import Role
from libs.common.clock import FrozenClock
from libs.common.events import new_event
from services.matching import events as matching_events
from services.matching.contracts import service as contracts_service
from services.matching.contracts.models import Contract
from services.matching.library.models import ProjectView
from services.matching.market.models import Award, Bid, Tender
from services.matching.models import Match, OrganisationView
from tests import factories
from tests.support.platform import Platform, auth, eventually

REGION = "220102"  # 长春市南关区
PURCHASER = auth(Role.purchaser, region=REGION)
OTHER_COUNTY = auth(Role.purchaser, region="220104")
OPERATOR = auth(Role.operator, region="22")
NOW = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)  # 10:00 in China
PRICE = 1_000_000  # fen: 10,000 yuan

TERM = "吉民发〔2020〕44号 §四(三)2"
STABLE = "吉民发〔2020〕44号 §四(三)3"
LAW_49 = "中华人民共和国政府采购法 第四十九条"
NO_SUBCONTRACTING = "吉民发〔2020〕44号 §四(四)2"


def org_auth(org_id: str) -> dict[str, str]:
    return auth(Role.organisation, org_id=org_id)


@dataclass
class Deal:
    """An accepted award and everything behind it."""

    project_id: str
    tender_id: str
    bid_id: str
    award_id: str
    organisation_id: str


@dataclass
class Market:
    platform: Platform
    clock: FrozenClock

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

    async def deal(
        self,
        *,
        stable: bool = False,
        secured: bool = False,
        award_state: str = "accepted",
        project_end: date = date(2029, 12, 31),
        organisation_id: str | None = None,
    ) -> Deal:
        """A published project, its awarded tender, the opened winning bid, the award."""
        org = organisation_id or str(uuid.uuid4())
        project_id, tender_id = str(uuid.uuid4()), str(uuid.uuid4())
        bid_id, award_id = str(uuid.uuid4()), str(uuid.uuid4())
        payload = {"stable_recurring": stable, "budget_secured": secured}
        await self.add(
            ProjectView(
                project_id=project_id,
                region_code=REGION,
                department="长春市南关区民政局",
                title="南关区特困人员照料护理服务",
                service_codes=["care", "counselling"],
                quantity=1200,
                unit="人次",
                budget_fen=2 * PRICE,
                purchasing_method="open_tender",
                period_start=date(2027, 1, 1),
                period_end=project_end,
                qualification_requirements=[],
                pack="jilin",
                payload={"project_id": project_id, **payload},
                version=1,
                updated_at=NOW,
            ),
            Tender(
                id=tender_id,
                project_id=project_id,
                method="open_tender",
                state="awarded",
                region_code=REGION,
                title="南关区特困人员照料护理服务",
                service_codes=["care", "counselling"],
                budget_fen=2 * PRICE,
                pack="jilin@2026.1",
                criteria=[{"code": "service_plan", "name": "服务方案", "weight": "0.8"}],
                price_weight=Decimal("0.2"),
                qualification_requirements=[],
                panel_size=5,
                created_by="seed",
                created_at=NOW - timedelta(days=40),
                updated_at=NOW - timedelta(days=2),
            ),
        )
        await self.add(
            Bid(
                id=bid_id,
                tender_id=tender_id,
                organisation_id=org,
                state="valid",
                sealed="(opened)",
                price_fen=PRICE,
                content={"plan": "服务方案"},
                submitted_at=NOW - timedelta(days=20),
                updated_at=NOW - timedelta(days=20),
                opened_at=NOW - timedelta(days=10),
            )
        )
        await self.add(
            Award(
                id=award_id,
                tender_id=tender_id,
                bid_id=bid_id,
                organisation_id=org,
                rank=1,
                state=award_state,
                decided_by="seed",
                created_at=NOW - timedelta(days=3),
                updated_at=NOW - timedelta(days=2),
            )
        )
        return Deal(project_id, tender_id, bid_id, award_id, org)

    async def draw_up(self, deal: Deal, **overrides: Any) -> Any:
        body = {
            "award_id": deal.award_id,
            "regions": ["220102"],
            "monthly_capacity": {"care": 40, "counselling": 10},
            "settlement": "按月结算，次月10日前支付",
            "obligations": ["monthly_report"],
            "period_start": "2027-01-01",
            "period_end": "2027-12-31",
            **overrides,
        }
        return await self.http.post("/contracts", json=body, headers=PURCHASER)

    async def signed(self, deal: Deal, **overrides: Any) -> dict[str, Any]:
        r = await self.draw_up(deal, **overrides)
        assert r.status_code == 201, r.text
        r = await self.http.post(
            f"/contracts/{r.json()['id']}/sign", headers=org_auth(deal.organisation_id)
        )
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def match(
        self, contract: dict[str, Any], *, need_id: str | None = None, ref: str | None = None
    ) -> Match:
        match = Match(
            id=str(uuid.uuid4()),
            need_id=need_id or str(uuid.uuid4()),
            organisation_id=contract["organisation_id"],
            contract_id=contract["id"],
            recipient_ref=ref or str(uuid.uuid4()),
            region_code="220102001001",
            service_code="care",
            period="2027-01",
            score=1.0,
            explanation={"seeded": True},
            run_id=str(uuid.uuid4()),
            created_at=NOW,
        )
        await self.add(match)
        return match

    async def contract(self, contract_id: str) -> Contract:
        async with self.runtime.db.session() as session:
            row = await session.get(Contract, contract_id)
        assert row is not None
        return row

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

    async def credit_decides(
        self, verb: str, organisation_id: str, version: int, reason: str = "test"
    ) -> None:
        """Publish a credit decision as credit does (CloudEvents on the CREDIT stream)."""
        event = new_event(
            service="credit",
            entity="organisation",
            verb=verb,
            subject=organisation_id,
            data={
                "organisation_id": organisation_id,
                "decision_version": version,
                "reason": reason,
            },
        )
        ack = await self.runtime.bus.js.publish(
            event.nats_subject, event.body(), headers=event.headers()
        )
        assert ack.stream == "CREDIT"

    async def state_of(self, contract_id: str) -> str:
        r = await self.http.get(f"/contracts/{contract_id}", headers=PURCHASER)
        return str(r.json()["state"])


async def _market(platform: Platform) -> AsyncIterator[Market]:
    clock = FrozenClock(NOW)
    for app in platform.apps.values():
        app.state.clock = clock
    async with platform as p:
        yield Market(p, clock)


@pytest.fixture
async def market(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Market]:
    platform = Platform(nats_url=nats_url, database_url=database_url_factory, services=["matching"])
    async for m in _market(platform):
        yield m


# ----------------------------------------------------------------------------------- contracts


async def test_contract_from_an_accepted_award_is_signed_and_announced(market: Market) -> None:
    deal = await market.deal()
    r = await market.draw_up(deal)
    assert r.status_code == 201, r.text
    contract = r.json()
    # Items from the tender, price from the winning bid, subcontracting always forbidden.
    assert contract["service_codes"] == ["care", "counselling"]
    assert contract["value_fen"] == contract["original_value_fen"] == PRICE
    assert contract["obligations"] == ["no_subcontracting", "monthly_report"]
    assert contract["state"] == "pending" and contract["version"] == 1
    assert contract["organisation_id"] == deal.organisation_id
    assert contract["project_id"] == deal.project_id

    # One contract per award; another county's purchaser does not even see the award.
    again = await market.draw_up(deal)
    assert again.status_code == 409 and again.json()["existing_id"] == contract["id"]
    elsewhere = await market.http.post(
        "/contracts",
        json={
            "award_id": deal.award_id,
            "regions": ["220104"],
            "monthly_capacity": {"care": 1},
            "settlement": "月结",
            "period_start": "2027-01-01",
            "period_end": "2027-06-30",
        },
        headers=OTHER_COUNTY,
    )
    assert elsewhere.status_code == 404

    # A pending contract is between the parties: another organisation cannot see or sign it.
    stranger = org_auth(str(uuid.uuid4()))
    assert (
        await market.http.get(f"/contracts/{contract['id']}", headers=stranger)
    ).status_code == 404
    r = await market.http.post(f"/contracts/{contract['id']}/sign", headers=stranger)
    assert r.status_code == 404
    # The purchaser cannot sign for the organisation.
    r = await market.http.post(f"/contracts/{contract['id']}/sign", headers=PURCHASER)
    assert r.status_code == 403

    r = await market.http.post(
        f"/contracts/{contract['id']}/sign", headers=org_auth(deal.organisation_id)
    )
    assert r.status_code == 200, r.text
    signed = r.json()
    assert signed["state"] == "active" and signed["version"] == 2
    assert signed["signed_at"].startswith("2027-01-10")
    (event,) = await market.published("sa.matching.contract.signed")
    assert event == {
        "contract_id": contract["id"],
        "award_id": deal.award_id,
        "tender_id": deal.tender_id,
        "project_id": deal.project_id,
        "organisation_id": deal.organisation_id,
        "region_code": REGION,
        "version": 2,
        "regions": ["220102"],
        "service_codes": ["care", "counselling"],
        "monthly_capacity": {"care": 40, "counselling": 10},
        "value_fen": PRICE,
        "period_start": "2027-01-01",
        "period_end": "2027-12-31",
        "signed_at": event["signed_at"],
    }
    # Signed contracts are public (合同依法公告): another organisation may now read it.
    assert (
        await market.http.get(f"/contracts/{contract['id']}", headers=stranger)
    ).status_code == 200

    # Outside the state machine: 409, and nothing changes.
    r = await market.http.post(
        f"/contracts/{contract['id']}/sign", headers=org_auth(deal.organisation_id)
    )
    assert r.status_code == 409
    assert (await market.contract(contract["id"])).version == 2


async def test_only_an_accepted_award_gets_a_contract(market: Market) -> None:
    deal = await market.deal(award_state="offered")
    r = await market.draw_up(deal)
    assert r.status_code == 409 and r.json()["award_state"] == "offered"
    r = await market.http.post(
        "/contracts",
        json={
            "award_id": str(uuid.uuid4()),
            "regions": ["220102"],
            "monthly_capacity": {"care": 1},
            "settlement": "月结",
            "period_start": "2027-01-01",
            "period_end": "2027-06-30",
        },
        headers=PURCHASER,
    )
    assert r.status_code == 404


async def test_term_limits_cite_the_clause_and_stable_secured_projects_get_three_years(
    market: Market,
) -> None:
    ordinary = await market.deal()
    r = await market.draw_up(ordinary, period_end="2028-01-01")  # 12 months + 1 day
    assert r.status_code == 422
    problem = r.json()
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in problem["errors"]] == ["body.period_end"]
    assert TERM in problem["rules"] and STABLE in problem["rules"]
    # Bad input changes nothing.
    listing = (await market.http.get("/contracts", headers=PURCHASER)).json()
    assert listing["total"] == 0

    # Outside the project's period; items not in the tender; regions outside it.
    r = await market.draw_up(
        ordinary,
        period_start="2026-12-31",
        monthly_capacity={"rehabilitation": 3},
        regions=["220104"],
    )
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert {
        "body.period_start",
        "body.monthly_capacity.rehabilitation",
        "body.regions.0",
    } <= fields

    stable = await market.deal(stable=True, secured=True)
    r = await market.draw_up(stable, period_end="2029-12-31")  # 36 months exactly
    assert r.status_code == 201, r.text
    unsecured = await market.deal(stable=True, secured=False)
    r = await market.draw_up(unsecured, period_end="2029-12-31")
    assert r.status_code == 422 and "budget_secured" in r.json()["errors"][0]["reason"]
    r = await market.draw_up(await market.deal(stable=True, secured=True), period_end="2030-01-01")
    assert r.status_code == 422 and r.json()["rules"] == [STABLE]


async def test_refusing_to_sign_refuses_the_award_and_is_announced(market: Market) -> None:
    deal = await market.deal()
    contract = (await market.draw_up(deal)).json()
    r = await market.http.post(
        f"/contracts/{contract['id']}/refuse",
        json={"reason": "人员不足，无法履约"},
        headers=org_auth(deal.organisation_id),
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "refused"
    async with market.runtime.db.session() as session:
        award = await session.get(Award, deal.award_id)
    assert award is not None and award.state == "refused" and "人员不足" in (award.reason or "")
    (event,) = await market.published("sa.matching.contract.refused")
    assert event["organisation_id"] == deal.organisation_id
    assert event["award_id"] == deal.award_id and event["reason"] == "人员不足，无法履约"
    # A refused contract cannot be signed afterwards.
    r = await market.http.post(
        f"/contracts/{contract['id']}/sign", headers=org_auth(deal.organisation_id)
    )
    assert r.status_code == 409


async def test_signing_is_refused_while_credit_bars_the_organisation(market: Market) -> None:
    deal = await market.deal()
    await market.add(
        OrganisationView(
            organisation_id=deal.organisation_id,
            status="suspended",
            status_version=3,
            updated_at=NOW,
        )
    )
    contract = (await market.draw_up(deal)).json()
    r = await market.http.post(
        f"/contracts/{contract['id']}/sign", headers=org_auth(deal.organisation_id)
    )
    assert r.status_code == 409 and r.json()["organisation_status"] == "suspended"
    assert await market.state_of(contract["id"]) == "pending"


# ---------------------------------------------------------------------------------- amendments


async def test_amendments_up_to_exactly_ten_percent_and_not_one_fen_more(market: Market) -> None:
    deal = await market.deal()
    contract = await market.signed(deal)
    url = f"/contracts/{contract['id']}/amendments"

    r = await market.http.post(
        url,
        json={"delta_fen": 60_000, "capacity_changes": {"care": 5}, "reason": "增加服务对象"},
        headers=PURCHASER,
    )
    assert r.status_code == 201, r.text
    assert r.json()["contract"]["value_fen"] == PRICE + 60_000
    assert r.json()["contract"]["monthly_capacity"] == {"care": 45, "counselling": 10}
    assert r.json()["headroom_fen"] == 40_000

    # A reduction counts by its amount: 60,000 + 40,000 = exactly 10 %.
    market.clock.advance(minutes=5)
    r = await market.http.post(
        url, json={"delta_fen": -40_000, "reason": "减少心理疏导次数"}, headers=PURCHASER
    )
    assert r.status_code == 201, r.text
    assert r.json()["headroom_fen"] == 0 and r.json()["contract"]["value_fen"] == PRICE + 20_000

    r = await market.http.post(
        url, json={"delta_fen": 1, "reason": "再追加一分"}, headers=PURCHASER
    )
    assert r.status_code == 422
    assert r.json()["rules"] == [LAW_49]
    assert r.json()["errors"][0]["field"] == "body.delta_fen"
    after = await market.contract(contract["id"])
    assert after.value_fen == PRICE + 20_000 and after.version == 4  # signed 2, two amendments

    # Capacity-only amendments stay possible; capacity never goes below zero.
    r = await market.http.post(
        url,
        json={"capacity_changes": {"counselling": -11}, "reason": "调整容量"},
        headers=PURCHASER,
    )
    assert (
        r.status_code == 422
        and r.json()["errors"][0]["field"] == "body.capacity_changes.counselling"
    )
    r = await market.http.post(url, json={"reason": "空的变更"}, headers=PURCHASER)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.delta_fen"

    amended = await market.published("sa.matching.contract.amended", count=2)
    assert [e["delta_fen"] for e in amended] == [60_000, -40_000]
    assert amended[0]["monthly_capacity"] == {"care": 45, "counselling": 10}
    assert [e["version"] for e in amended] == [3, 4]
    listed = (await market.http.get(f"{url}", headers=PURCHASER)).json()
    assert [a["delta_fen"] for a in listed] == [60_000, -40_000]

    # Only while the contract is performed, and only by its region's purchaser.
    r = await market.http.post(
        url, json={"delta_fen": 1, "reason": "越权变更合同"}, headers=OTHER_COUNTY
    )
    assert r.status_code == 404
    pending = (await market.draw_up(await market.deal())).json()
    r = await market.http.post(
        f"/contracts/{pending['id']}/amendments",
        json={"delta_fen": 1, "reason": "未签订合同"},
        headers=PURCHASER,
    )
    assert r.status_code == 409


# --------------------------------------------------------------------- credit decisions, takeover


async def test_suspension_pauses_reinstatement_resumes_and_a_late_decision_changes_nothing(
    market: Market,
) -> None:
    deal = await market.deal()
    contract = await market.signed(deal)
    match = await market.match(contract)
    other = await market.signed(await market.deal())  # another organisation: untouched

    await market.credit_decides("suspended", deal.organisation_id, 5, reason="服务质量投诉核查")
    await eventually(lambda: market.state_of(contract["id"]), until=lambda state: state == "paused")
    paused = await market.contract(contract["id"])
    assert paused.version == 3 and "suspended" in (paused.state_reason or "")
    (event,) = await market.published("sa.matching.contract.paused")
    assert event["project_id"] == deal.project_id
    assert event["organisation_id"] == deal.organisation_id
    assert event["from_state"] == "active" and event["version"] == 3
    assert await market.state_of(other["id"]) == "active"

    # What the allocation engine takes over: the active matches under paused contracts.
    async with market.runtime.db.session() as session:
        affected = await contracts_service.affected_matches(session, deal.organisation_id)
    assert [m.id for m in affected] == [match.id]

    # No service is recorded under a paused contract.
    r = await market.http.post(
        f"/matches/{match.id}/deliveries",
        json={"delivered_on": "2027-01-09", "units": 1},
        headers=org_auth(deal.organisation_id),
    )
    assert r.status_code == 409

    await market.credit_decides("reinstated", deal.organisation_id, 6)
    await eventually(lambda: market.state_of(contract["id"]), until=lambda state: state == "active")
    (resumed,) = await market.published("sa.matching.contract.resumed")
    assert resumed["version"] == 4 and resumed["project_id"] == deal.project_id

    # A suspension older than the reinstatement, arriving late, changes nothing. The exit of
    # another organisation, published after it, marks when the consumer has passed it.
    other_deal_org = other["organisation_id"]
    await market.credit_decides("suspended", deal.organisation_id, 4)
    await market.credit_decides("exited", other_deal_org, 1)
    await eventually(
        lambda: market.state_of(other["id"]), until=lambda state: state == "terminated"
    )
    after = await market.contract(contract["id"])
    assert after.state == "active" and after.version == 4
    assert len(await market.events("sa.matching.contract.paused")) == 1
    async with market.runtime.db.session() as session:
        view = await session.get(OrganisationView, deal.organisation_id)
    assert view is not None and view.status == "admitted" and view.status_version == 6


async def test_exit_terminates_every_open_contract_with_the_decision_as_reason(
    market: Market,
) -> None:
    org = str(uuid.uuid4())
    active = await market.signed(await market.deal(organisation_id=org))
    paused = await market.signed(await market.deal(organisation_id=org))
    pending = (await market.draw_up(await market.deal(organisation_id=org))).json()
    refused_deal = await market.deal(organisation_id=org)
    refused = (await market.draw_up(refused_deal)).json()
    r = await market.http.post(
        f"/contracts/{refused['id']}/refuse", json={"reason": "不再承接"}, headers=org_auth(org)
    )
    assert r.status_code == 200
    match = await market.match(active)
    async with market.runtime.db.write_session() as session:
        row = await session.get(Contract, paused["id"])
        assert row is not None
        row.state = "paused"
        await session.commit()

    await market.credit_decides("exited", org, 9, reason="严重违约，退出承接")
    terminated = await market.published("sa.matching.contract.terminated", count=3)
    assert {e["contract_id"]: e["from_state"] for e in terminated} == {
        active["id"]: "active",
        paused["id"]: "paused",
        pending["id"]: "pending",
    }
    for e in terminated:
        assert e["organisation_id"] == org and e["project_id"]
        assert "严重违约" in e["reason"] and "exited" in e["reason"]
    for contract in (active, paused, pending):
        assert await market.state_of(contract["id"]) == "terminated"
    assert await market.state_of(refused["id"]) == "refused"  # final states stay
    async with market.runtime.db.session() as session:
        affected = await contracts_service.affected_matches(session, org)
    assert [m.id for m in affected] == [match.id]
    # A terminated contract cannot be resumed by a reinstatement, nor completed.
    await market.credit_decides("reinstated", org, 10)

    async def standing() -> int:
        async with market.runtime.db.session() as session:
            view = await session.get(OrganisationView, org)
        return view.status_version if view else 0

    await eventually(standing, until=lambda version: version == 10)
    assert await market.state_of(active["id"]) == "terminated"
    assert await market.events("sa.matching.contract.resumed") == []
    r = await market.http.post(f"/contracts/{active['id']}/complete", headers=PURCHASER)
    assert r.status_code == 409


async def test_the_purchaser_terminates_and_completes_within_the_state_machine(
    market: Market,
) -> None:
    deal = await market.deal()
    contract = await market.signed(deal)
    # Before the period is over and without an accepted period: not yet.
    r = await market.http.post(f"/contracts/{contract['id']}/complete", headers=PURCHASER)
    assert r.status_code == 409
    market.clock.set(datetime(2028, 1, 1, 2, 0, tzinfo=UTC))
    r = await market.http.post(f"/contracts/{contract['id']}/complete", headers=PURCHASER)
    assert r.status_code == 200 and r.json()["state"] == "completed"
    (done,) = await market.published("sa.matching.contract.completed")
    assert done["project_id"] == deal.project_id and done["from_state"] == "active"

    market.clock.set(NOW)
    other = await market.deal()
    second = await market.signed(other)
    r = await market.http.post(
        f"/contracts/{second['id']}/terminate", json={"reason": "服务严重不达标"}, headers=PURCHASER
    )
    assert r.status_code == 200 and r.json()["state"] == "terminated"
    (ended,) = await market.published("sa.matching.contract.terminated")
    assert ended["project_id"] == other.project_id and ended["reason"] == "服务严重不达标"
    r = await market.http.post(
        f"/contracts/{second['id']}/terminate", json={"reason": "again"}, headers=PURCHASER
    )
    assert r.status_code == 409


# ------------------------------------------------------------------------------------ delivery


async def test_only_the_organisation_holding_the_match_may_record_service(market: Market) -> None:
    deal = await market.deal()
    contract = await market.signed(deal)
    match = await market.match(contract)
    body = {"delivered_on": "2027-01-08", "units": 2, "worker": "李护理员"}

    intruder = str(uuid.uuid4())
    r = await market.http.post(
        f"/matches/{match.id}/deliveries", json=body, headers=org_auth(intruder)
    )
    assert r.status_code == 422
    assert r.json()["rules"] == [NO_SUBCONTRACTING]
    assert "转包" in r.json()["errors"][0]["reason"]

    holder = org_auth(deal.organisation_id)
    r = await market.http.post(f"/matches/{match.id}/deliveries", json=body, headers=holder)
    assert r.status_code == 201, r.text
    delivery = r.json()
    assert delivery["recipient_ref"] == match.recipient_ref
    assert delivery["contract_id"] == contract["id"] and delivery["confirmed_by"] is None

    # Not in the future, not outside the contract period.
    r = await market.http.post(
        f"/matches/{match.id}/deliveries",
        json={**body, "delivered_on": "2027-01-11"},
        headers=holder,
    )
    assert r.status_code == 422

    listing = (
        await market.http.get(f"/contracts/{contract['id']}/deliveries", headers=holder)
    ).json()
    assert listing["total"] == 1
    # Only the parties see service records.
    r = await market.http.get(f"/contracts/{contract['id']}/deliveries", headers=org_auth(intruder))
    assert r.status_code == 404


async def test_deliveries_are_paginated_and_filtered_by_confirmation(market: Market) -> None:
    deal = await market.deal()
    contract = await market.signed(deal)
    match = await market.match(contract)
    holder = org_auth(deal.organisation_id)
    ids = []
    for day in range(1, 6):
        r = await market.http.post(
            f"/matches/{match.id}/deliveries",
            json={"delivered_on": f"2027-01-0{day}", "units": 1},
            headers=holder,
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = await market.http.post(
        f"/deliveries/{ids[0]}/confirm", json={"by": "proxy"}, headers=PURCHASER
    )
    assert r.status_code == 200 and r.json()["confirmed_by"] == "proxy"

    url = f"/contracts/{contract['id']}/deliveries"
    first = (await market.http.get(f"{url}?limit=2&sort=delivered_on", headers=PURCHASER)).json()
    second = (
        await market.http.get(f"{url}?limit=2&offset=2&sort=delivered_on", headers=PURCHASER)
    ).json()
    assert first["total"] == 5
    assert [d["id"] for d in first["items"] + second["items"]] == ids[:4]
    confirmed = (await market.http.get(f"{url}?confirmed=true", headers=PURCHASER)).json()
    assert [d["id"] for d in confirmed["items"]] == [ids[0]]
    unconfirmed = (await market.http.get(f"{url}?confirmed=false", headers=PURCHASER)).json()
    assert unconfirmed["total"] == 4
    assert (await market.http.get(url, headers=OTHER_COUNTY)).status_code == 404


@pytest.fixture
async def needs_and_market(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Market]:
    platform = Platform(
        nats_url=nats_url, database_url=database_url_factory, services=["needs", "matching"]
    )
    async for m in _market(platform):
        yield m


async def test_a_confirmed_delivery_puts_the_need_in_service(needs_and_market: Market) -> None:
    market = needs_and_market
    needs = market.platform["needs"]
    r = await needs.post("/recipients", json=factories.recipient(), headers=PURCHASER)
    assert r.status_code == 201, r.text
    ref = r.json()["ref"]
    r = await needs.post(
        "/needs",
        json={"recipient_ref": ref, "service_code": "care", "urgency": 3},
        headers=PURCHASER,
    )
    assert r.status_code == 201, r.text
    need_id = r.json()["id"]

    deal = await market.deal()
    contract = await market.signed(deal)
    # The allocation engine's part, seeded: a match under the contract, announced.
    match = Match(
        id=str(uuid.uuid4()),
        need_id=need_id,
        organisation_id=deal.organisation_id,
        contract_id=contract["id"],
        recipient_ref=ref,
        region_code="220102001001",
        service_code="care",
        period="2027-01",
        score=1.0,
        explanation={"seeded": True},
        run_id=str(uuid.uuid4()),
        created_at=NOW,
    )
    async with market.runtime.unit_of_work() as uow:
        uow.session.add(match)
        uow.emit(matching_events.need_matched(match))
        await uow.commit()
    await eventually(
        lambda: needs.get(f"/needs/{need_id}", headers=PURCHASER),
        until=lambda resp: resp.json()["status"] == "matched",
    )

    r = await market.http.post(
        f"/matches/{match.id}/deliveries",
        json={"delivered_on": "2027-01-09", "units": 2, "worker": "王社工", "note": "上门照料"},
        headers=org_auth(deal.organisation_id),
    )
    assert r.status_code == 201, r.text
    delivery_id = r.json()["id"]
    # Unconfirmed service changes nothing downstream.
    assert await market.events("sa.matching.service.delivered") == []

    r = await market.http.post(
        f"/deliveries/{delivery_id}/confirm", json={"by": "recipient"}, headers=PURCHASER
    )
    assert r.status_code == 200, r.text
    (event,) = await market.published("sa.matching.service.delivered")
    assert event == {
        "delivery_id": delivery_id,
        "match_id": match.id,
        "need_id": need_id,
        "recipient_ref": ref,
        "organisation_id": deal.organisation_id,
        "contract_id": contract["id"],
        "units": 2,
        "delivered_on": "2027-01-09",
        "confirmed_by": "recipient",
        "confirmed_at": event["confirmed_at"],
    }
    need = await eventually(
        lambda: needs.get(f"/needs/{need_id}", headers=PURCHASER),
        until=lambda resp: resp.json()["status"] == "in_service",
    )
    assert need.json()["matched_organisation_id"] == deal.organisation_id
    # Confirming twice is a conflict; another county cannot confirm at all.
    r = await market.http.post(
        f"/deliveries/{delivery_id}/confirm", json={"by": "proxy"}, headers=PURCHASER
    )
    assert r.status_code == 409
    r = await market.http.post(
        f"/deliveries/{delivery_id}/confirm", json={"by": "proxy"}, headers=OTHER_COUNTY
    )
    assert r.status_code == 404


# ---------------------------------------------------------------------------------- acceptance


async def test_acceptance_invites_only_the_recipients_served_in_the_period(
    market: Market,
) -> None:
    deal = await market.deal()
    contract = await market.signed(deal)
    holder = org_auth(deal.organisation_id)
    served = await market.match(contract, ref="ref-served")
    unconfirmed = await market.match(contract, ref="ref-unconfirmed")
    later = await market.match(contract, ref="ref-april")
    await market.match(contract, ref="ref-never-served")

    async def deliver(match: Match, day: str, *, confirm: bool) -> None:
        r = await market.http.post(
            f"/matches/{match.id}/deliveries",
            json={"delivered_on": day, "units": 1},
            headers=holder,
        )
        assert r.status_code == 201, r.text
        if confirm:
            r = await market.http.post(
                f"/deliveries/{r.json()['id']}/confirm", json={"by": "recipient"}, headers=PURCHASER
            )
            assert r.status_code == 200, r.text

    await deliver(served, "2027-01-05", confirm=True)
    await deliver(served, "2027-01-06", confirm=True)  # twice: invited once
    await deliver(unconfirmed, "2027-01-07", confirm=False)
    market.clock.set(datetime(2027, 4, 3, 2, 0, tzinfo=UTC))
    await deliver(later, "2027-04-02", confirm=True)

    url = f"/contracts/{contract['id']}/acceptances"
    r = await market.http.post(url, json={"period": "2027-Q1"}, headers=PURCHASER)
    assert r.status_code == 201, r.text
    acceptance = r.json()
    assert acceptance["invited_recipients"] == ["ref-served"]
    assert acceptance["result"] is None
    (opened,) = await market.published("sa.matching.acceptance.opened")
    assert opened["invited_recipients"] == ["ref-served"]

    # One acceptance per period; not a period that has not begun; not another county's.
    r = await market.http.post(url, json={"period": "2027-Q1"}, headers=PURCHASER)
    assert r.status_code == 409 and r.json()["existing_id"] == acceptance["id"]
    r = await market.http.post(url, json={"period": "2027-05"}, headers=PURCHASER)
    assert r.status_code == 422
    r = await market.http.post(url, json={"period": "2027-Q1"}, headers=OTHER_COUNTY)
    assert r.status_code == 404

    result = {"result": "qualified", "summary": {"satisfaction": 0.93, "note": "服务规范"}}
    r = await market.http.post(
        f"/acceptances/{acceptance['id']}/result", json=result, headers=PURCHASER
    )
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "qualified"
    (published,) = await market.published("sa.matching.acceptance.published")
    assert published["contract_id"] == contract["id"]
    assert published["organisation_id"] == deal.organisation_id
    assert published["period"] == "2027-Q1" and published["result"] == "qualified"
    assert published["invited_recipients"] == ["ref-served"]
    assert published["summary"] == {"satisfaction": 0.93}  # figures only: free text stays home
    r = await market.http.post(
        f"/acceptances/{acceptance['id']}/result",
        json={"result": "unqualified", "summary": {}},
        headers=PURCHASER,
    )
    assert r.status_code == 409

    # A qualified acceptance allows completing before the period is over.
    r = await market.http.post(f"/contracts/{contract['id']}/complete", headers=PURCHASER)
    assert r.status_code == 200 and r.json()["state"] == "completed"
    assert "qualified acceptance" in r.json()["state_reason"]

    listed = (await market.http.get(url, headers=holder)).json()
    assert [a["period"] for a in listed] == ["2027-Q1"]


async def test_affected_matches_are_the_active_ones_under_paused_or_terminated_contracts(
    market: Market,
) -> None:
    """`affected_matches` ignores active contracts and matches no longer active."""
    deal = await market.deal()
    contract = await market.signed(deal)
    live = await market.match(contract)
    ended = await market.match(contract)
    async with market.runtime.db.write_session() as session:
        row = (await session.execute(select(Match).where(Match.id == ended.id))).scalar_one()
        row.state = "ended"
        await session.commit()
    async with market.runtime.db.session() as session:
        assert await contracts_service.affected_matches(session, deal.organisation_id) == []
    r = await market.http.post(
        f"/contracts/{contract['id']}/terminate", json={"reason": "提前终止"}, headers=PURCHASER
    )
    assert r.status_code == 200
    async with market.runtime.db.session() as session:
        affected = await contracts_service.affected_matches(session, deal.organisation_id)
    assert [m.id for m in affected] == [live.id]
