"""Temporary takeover (临时接管预案, 吉民发〔2018〕21号 §二(六)) end to end, over NATS: the needs
and matching services in one process with their event workers on, credit's decisions
published on the CREDIT stream as credit publishes them.

Needs are opened at the needs service and matched by matching's micro-batch to the better
organisation A. Credit suspends A; matching's contracts pause A's contract
(`contract.paused`), the takeover re-allocates every need A served within that one event
(`need.reassigned`), and the needs service follows. When capacity is short the needs left
over are reported to the purchaser at once (`takeover.unplaced`, `GET /needs?status=unplaced`)
and placed by the next run once capacity exists.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from libs.common.auth import Role
from libs.common.clock import china_day as china_today
from libs.common.events import new_event
from services.matching.contracts.models import Contract
from services.matching.models import Match, OrganisationView
from tests import factories
from tests.support.platform import Platform, auth, eventually

COUNTY = "220102"
OPERATOR = auth(Role.operator)
PURCHASER = auth(Role.purchaser, region=COUNTY)
TAKEOVER_CLAUSES = ["吉民发〔2018〕21号 §二(六)", "吉民发〔2020〕44号 §四(四)3"]


@pytest.fixture
async def platform(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    async with Platform(
        nats_url=nats_url, database_url=database_url_factory, services=["needs", "matching"]
    ) as p:
        yield p


def contract(org_id: str, *, regions: list[str], care: int) -> Contract:
    today = china_today(datetime.now(UTC))
    now = datetime.now(UTC)
    return Contract(
        id=str(uuid.uuid4()),
        tender_id=str(uuid.uuid4()),
        award_id=str(uuid.uuid4()),
        project_id=str(uuid.uuid4()),
        organisation_id=org_id,
        region_code=COUNTY,
        service_codes=["care"],
        regions=regions,
        monthly_capacity={"care": care},
        original_value_fen=2_000_000,
        value_fen=2_000_000,
        settlement="按月结算",
        obligations=["no_subcontracting"],
        period_start=today - timedelta(days=30),
        period_end=today + timedelta(days=300),
        state="active",
        version=2,
        created_at=now,
        updated_at=now,
        signed_at=now,
    )


async def seed_market(p: Platform, *, b_capacity: int) -> tuple[str, str, Contract, Contract]:
    """Organisations A (county, high credit) and B (the city, lower credit), each under an
    active contract for care, both admitted."""
    a, b = f"org-a-{uuid.uuid4().hex[:8]}", f"org-b-{uuid.uuid4().hex[:8]}"
    ca = contract(a, regions=[COUNTY], care=10)
    cb = contract(b, regions=["2201"], care=b_capacity)
    now = datetime.now(UTC)
    async with p.runtime("matching").db.write_session() as session:
        for org, credit in ((a, 95.0), (b, 70.0)):
            session.add(
                OrganisationView(
                    organisation_id=org,
                    registered=True,
                    status="admitted",
                    status_version=1,
                    credit_score=credit,
                    satisfaction=0.8,
                    updated_at=now,
                )
            )
        session.add_all([ca, cb])
        await session.commit()
    return a, b, ca, cb


async def open_needs(p: Platform, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        r = await p["needs"].post("/recipients", json=factories.recipient(), headers=PURCHASER)
        assert r.status_code == 201, r.text
        r = await p["needs"].post(
            "/needs",
            json={"recipient_ref": r.json()["ref"], "service_code": "care", "urgency": 3},
            headers=PURCHASER,
        )
        assert r.status_code == 201, r.text
        ids.append(str(r.json()["id"]))
    return ids


async def needs_view(p: Platform, need_ids: list[str]) -> list[dict[str, Any]]:
    out = []
    for need_id in need_ids:
        r = await p["needs"].get(f"/needs/{need_id}", headers=PURCHASER)
        assert r.status_code == 200, r.text
        out.append(dict(r.json()))
    return out


async def stream(p: Platform, subject: str) -> list[dict[str, Any]]:
    js = p.runtime("matching").bus.js
    info = await js.stream_info("MATCHING")
    found = []
    for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
        msg = await js.get_msg("MATCHING", seq)
        if msg.subject == subject:
            found.append(json.loads(msg.data or b"{}"))
    return found


async def suspend(p: Platform, organisation_id: str, verb: str = "suspended") -> None:
    """Credit's decision as credit publishes it (CloudEvents on the CREDIT stream)."""
    event = new_event(
        service="credit",
        entity="organisation",
        verb=verb,
        subject=organisation_id,
        data={
            "organisation_id": organisation_id,
            "decision_version": 2,
            "reason": "服务质量严重投诉，暂停承接",
        },
    )
    js = p.runtime("matching").bus.js
    ack = await js.publish(event.nats_subject, event.body(), headers=event.headers())
    assert ack.stream == "CREDIT"


async def matched_to(p: Platform, need_ids: list[str], org: str) -> None:
    await eventually(
        lambda: needs_view(p, need_ids),
        until=lambda views: all(
            v["status"] == "matched" and v["matched_organisation_id"] == org for v in views
        ),
        within=30,
    )


@pytest.mark.parametrize("decision", ["suspended", "exited", "blacklisted"])
async def test_takeover_reallocates_every_need_of_a_suspended_organisation(
    platform: Platform, decision: str
) -> None:
    """Suspension pauses A's contracts, exit and blacklisting end them: either way every
    need A served moves to B within one allocation cycle."""
    a, b, ca, cb = await seed_market(platform, b_capacity=10)
    need_ids = await open_needs(platform, 4)
    # The micro-batch matches them as they arrive, no manual run: all to A (closer, better).
    await matched_to(platform, need_ids, a)

    await suspend(platform, a, decision)
    # One allocation cycle: the takeover runs in the handler of `contract.paused|terminated`.
    await matched_to(platform, need_ids, b)

    reassigned = await eventually(
        lambda: stream(platform, "sa.matching.need.reassigned"),
        until=lambda found: len(found) == 4,
    )
    assert sorted(e["need_id"] for e in reassigned) == sorted(need_ids)
    for e in reassigned:
        assert e["from_organisation_id"] == a and e["from_contract_id"] == ca.id
        assert e["organisation_id"] == e["to_organisation_id"] == b
        assert e["contract_id"] == cb.id and e["to_resource_id"] is None
        assert e["rules"] == TAKEOVER_CLAUSES
        assert ca.id in e["reason"]
    assert await stream(platform, "sa.matching.takeover.unplaced") == []

    # Matching keeps the history: A's matches replaced, B's active, each explained.
    async with platform.runtime("matching").db.session() as session:
        rows = (await session.execute(select(Match))).scalars().all()
    assert sorted(m.state for m in rows if m.organisation_id == a) == ["replaced"] * 4
    active = [m for m in rows if m.state == "active"]
    assert {m.organisation_id for m in active} == {b} and len(active) == 4
    by_need = {e["need_id"]: e["match_id"] for e in reassigned}
    assert {m.need_id: m.id for m in active} == by_need
    why = await platform["matching"].get(f"/needs/{need_ids[0]}/explanation", headers=PURCHASER)
    body = why.json()
    assert (
        body["organisation_id"] == b
        and body["explanation"]["takeover"]["from_organisation_id"] == a
    )
    assert body["explanation"]["takeover"]["rules"] == TAKEOVER_CLAUSES
    assert [h["state"] for h in body["history"]] == ["replaced"]


async def test_takeover_reports_the_needs_it_cannot_place_to_the_purchaser_at_once(
    platform: Platform,
) -> None:
    a, b, ca, cb = await seed_market(platform, b_capacity=1)
    need_ids = await open_needs(platform, 3)
    await matched_to(platform, need_ids, a)

    await suspend(platform, a)
    (report,) = await eventually(
        lambda: stream(platform, "sa.matching.takeover.unplaced"),
        until=lambda found: len(found) == 1,
        within=30,
    )
    assert report["organisation_id"] == a and report["contract_id"] == ca.id
    assert report["purchaser_region"] == COUNTY and report["rules"] == TAKEOVER_CLAUSES
    assert len(report["needs"]) == 2
    for n in report["needs"]:
        assert n["reason_code"] == "capacity_exhausted"
        assert f"organisation {b} (contract {cb.id}): 1/1 care matched this month" in n["reason"]
        assert set(n) == {
            "need_id",
            "recipient_ref",
            "region_code",
            "service_code",
            "reason_code",
            "reason",
        }
    unplaced = {n["need_id"] for n in report["needs"]}
    (placed,) = set(need_ids) - unplaced

    # Visible to the purchaser in matching, and the needs service has reopened them.
    listed = (await platform["matching"].get("/needs?status=unplaced", headers=PURCHASER)).json()
    assert {n["need_id"] for n in listed["items"]} == unplaced
    views = await eventually(
        lambda: needs_view(platform, need_ids),
        until=lambda vs: (
            {(v["id"], v["status"], v["matched_organisation_id"]) for v in vs}
            == {(placed, "matched", b), *((n, "open", None) for n in unplaced)}
        ),
    )
    assert len(views) == 3

    # Capacity appears (another contract in the county): the next run places them.
    c = f"org-c-{uuid.uuid4().hex[:8]}"
    async with platform.runtime("matching").db.write_session() as session:
        session.add(
            OrganisationView(
                organisation_id=c,
                registered=True,
                status="admitted",
                status_version=1,
                updated_at=datetime.now(UTC),
            )
        )
        session.add(contract(c, regions=[COUNTY], care=5))
        await session.commit()
    r = await platform["matching"].post("/allocations/run", headers=PURCHASER)
    assert r.status_code == 200 and r.json()["matched"] == 2, r.text
    await matched_to(platform, sorted(unplaced), c)
    left = (await platform["matching"].get("/needs?status=unplaced", headers=PURCHASER)).json()
    assert left["total"] == 0
