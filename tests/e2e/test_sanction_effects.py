"""Each sanction's effect end to end over NATS: providers, matching and credit in one process
with their event workers on, real databases and the session's real nats-server.

An organisation registered in providers is admitted by credit; credit then suspends it,
reinstates it when the suspension ends, exits it, blacklists it, and lifts the ban on appeal;
providers' library status (GET /organisations/{id}) and matching's eligibility
(GET /organisations/{id}/eligibility) follow every step, by `decision_version`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from libs.common.auth import Role
from libs.common.clock import FrozenClock
from services.credit.sanctions.jobs import run_periods
from tests import factories
from tests.support.platform import Platform, eventually, token

COUNTY = "220102"


def headers(
    role: Role, region: str = "", org_id: str | None = None, subject: str | None = None
) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, region, org_id, subject=subject)}"}


OPERATOR = headers(Role.operator, subject="operator-li")
OTHER_OPERATOR = headers(Role.operator, subject="operator-zhao")
PURCHASER = headers(Role.purchaser, COUNTY, subject="purchaser-nanguan")


@pytest.fixture
async def platform(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    async with Platform(
        nats_url=nats_url,
        database_url=database_url_factory,
        services=("providers", "matching", "credit"),
    ) as p:
        clock = FrozenClock(datetime(2026, 11, 23, 2, tzinfo=UTC))  # 10:00 in China
        p.apps["credit"].state.clock = clock
        p.runtime("credit").clock = clock
        yield p


async def register_admitted(p: Platform) -> str:
    r = await p["providers"].post("/organisations", json=factories.organisation(), headers=OPERATOR)
    assert r.status_code == 201, r.text
    org_id = str(r.json()["id"])
    await follows(p, org_id, "admitted", eligible=True)
    return org_id


async def follows(p: Platform, org_id: str, status: str, *, eligible: bool) -> None:
    """Providers' status and matching's eligibility both reach `status` / `eligible`."""

    async def library() -> httpx.Response:
        return await p["providers"].get(f"/organisations/{org_id}", headers=OPERATOR)

    async def market() -> httpx.Response:
        return await p["matching"].get(f"/organisations/{org_id}/eligibility", headers=OPERATOR)

    await eventually(library, until=lambda r: r.status_code == 200 and r.json()["status"] == status)
    got = await eventually(
        market, until=lambda r: r.status_code == 200 and r.json()["status"] == status
    )
    assert got.json()["eligible"] is eligible, got.json()


async def answered(p: Platform, org_id: str) -> str:
    """A violation under due process: recorded by the purchaser, answered by the
    organisation (陈述申辩), so an operator may decide at once."""
    org = headers(Role.organisation, org_id=org_id, subject="org-user")
    r = await p["credit"].post(
        "/violations",
        json={
            "organisation_id": org_id,
            "kind": "failure_to_deliver",
            "severity": "serious",
            "description": "连续两个月未按合同提供上门照料服务",
            "evidence": [{"kind": "inspection", "reference": "督查记录 2026-11-02"}],
        },
        headers=PURCHASER,
    )
    assert r.status_code == 201, r.text
    violation_id = str(r.json()["id"])
    r = await p["credit"].post(
        f"/violations/{violation_id}/response",
        json={"response": "人员流失导致断档，已招聘补充。"},
        headers=org,
    )
    assert r.status_code == 200, r.text
    return violation_id


async def decide(p: Platform, violation_id: str, **decision: Any) -> dict[str, Any]:
    r = await p["credit"].post(
        f"/violations/{violation_id}/decision", json=decision, headers=OPERATOR
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_suspension_then_reinstatement_when_it_ends_then_exit(platform: Platform) -> None:
    org_id = await register_admitted(platform)
    # Recorded now: a response window counted from late December would reach 2027, which
    # the working-day calendar does not know yet (refused, never guessed).
    first, second, third = [await answered(platform, org_id) for _ in range(3)]

    await decide(platform, first, sanction="suspension", months=1, reason="暂停承接资格一个月")
    await follows(platform, org_id, "suspended", eligible=False)
    library = (await platform["providers"].get(f"/organisations/{org_id}", headers=OPERATOR)).json()
    assert "暂停承接资格一个月" in library["status_reason"]

    # A warning changes no status anywhere.
    await decide(platform, second, sanction="warning", reason="书面警告一次")

    clock: FrozenClock = platform.apps["credit"].state.clock
    clock.advance(timedelta(days=31))  # 2026-12-24: the end date of the suspension
    assert await run_periods(platform.runtime("credit")) == 1
    await follows(platform, org_id, "admitted", eligible=True)

    await decide(platform, third, sanction="exit", reason="不能按合同提供服务，退出")
    await follows(platform, org_id, "exited", eligible=False)


async def test_blacklist_then_appeal_upheld_reinstates(platform: Platform) -> None:
    org_id = await register_admitted(platform)
    other_id = await register_admitted(platform)

    violation_id = await answered(platform, org_id)
    result = await decide(platform, violation_id, sanction="blacklist", reason="弄虚作假，情节严重")
    await follows(platform, org_id, "blacklisted", eligible=False)
    await follows(platform, other_id, "admitted", eligible=True)  # nobody else touched

    org = headers(Role.organisation, org_id=org_id, subject="org-user")
    r = await platform["credit"].post(
        f"/sanctions/{result['sanction']['id']}/appeals",
        json={"grounds": "证据系误录，已提交原始签收单。"},
        headers=org,
    )
    assert r.status_code == 201, r.text
    r = await platform["credit"].post(
        f"/appeals/{r.json()['id']}/decision",
        json={"outcome": "upheld", "reason": "原始签收单证明服务已提供"},
        headers=OTHER_OPERATOR,
    )
    assert r.status_code == 200, r.text
    await follows(platform, org_id, "admitted", eligible=True)
    public = (await platform["credit"].get("/public/dishonesty-list")).json()
    assert public["total"] == 0
