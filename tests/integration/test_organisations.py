"""The social-forces library (社会力量库) in the providers service, in-process over HTTP on a
real database and the session's real nats-server: registration with staff and evidence,
maintenance (PATCH, the `updated` event, If-Match), staff and the dispatched-worker rule,
status only through credit's decisions, credit scores with the stale guard, and search
(region coverage, capability and capacity, status, grade, sorting, pagination, the caller's
region) run in SQL on the index tables."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlmodel import col, select

from libs.common.auth import Role
from libs.common.events import new_event
from services.providers import rules
from services.providers.models import (
    Organisation,
    OrganisationCapability,
    OrganisationServiceRegion,
    OrganisationStaff,
)
from tests import factories
from tests.support.platform import Platform, auth, eventually

OPERATOR = auth(Role.operator)
CITY_OPERATOR = auth(Role.operator, region="2201")  # 长春市
OTHER_CITY_OPERATOR = auth(Role.operator, region="2202")  # 吉林市
PURCHASER = auth(Role.purchaser, region="220102")
JILIN_DISPATCH_CLAUSE = "吉民发〔2018〕21号 §三(三)"
REGISTERED = "sa.providers.organisation.registered"
UPDATED = "sa.providers.organisation.updated"
QUALIFIED = {
    "procurement_law_compliance": True,
    "independent_civil_liability": True,
    "facilities_staff_expertise": True,
    "governance_finance_assets": True,
}


@pytest.fixture
async def providers(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    async with Platform(
        nats_url=nats_url, database_url=database_url_factory, services=["providers"]
    ) as p:
        yield p


def org_token(org_id: str, region: str = "") -> dict[str, str]:
    return auth(Role.organisation, region=region, org_id=org_id)


async def register(p: Platform, headers: dict[str, str] = OPERATOR, **overrides: Any) -> Any:
    r = await p["providers"].post(
        "/organisations", json=factories.organisation(**overrides), headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()


async def get_org(p: Platform, org_id: str, headers: dict[str, str] = OPERATOR) -> Any:
    r = await p["providers"].get(f"/organisations/{org_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def stream_messages(p: Platform, subject: str) -> list[bytes]:
    """Bodies of every message on `subject` in the PROVIDERS stream, in order."""
    js = p.runtime("providers").bus.js
    info = await js.stream_info("PROVIDERS")
    out = []
    for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
        msg = await js.get_msg("PROVIDERS", seq)
        if msg.subject == subject:
            out.append(msg.data or b"")
    return out


async def published(p: Platform, subject: str, count: int) -> list[dict[str, Any]]:
    """Wait until the relay has published `count` events on `subject`; their payloads."""
    bodies = await eventually(
        lambda: stream_messages(p, subject), until=lambda found: len(found) >= count
    )
    return [json.loads(b) for b in bodies]


async def credit_event(p: Platform, entity: str, verb: str, data: dict[str, Any]) -> None:
    """Publish an event as the credit service would (the providers' consumers take it)."""
    event = new_event(service="credit", entity=entity, verb=verb, data=data)
    await p.runtime("providers").bus.js.publish(
        event.nats_subject, event.body(), headers=event.headers()
    )


async def decide(p: Platform, org_id: str, verb: str, version: int) -> None:
    await credit_event(
        p,
        "organisation",
        verb,
        {"organisation_id": org_id, "decision_version": version, "summary": f"{verb} v{version}"},
    )


async def score(p: Platform, org_id: str, value: float | None, grade: str | None, v: int) -> None:
    await credit_event(
        p,
        "score",
        "changed",
        {"organisation_id": org_id, "score": value, "grade": grade, "version": v},
    )


async def wait_status(p: Platform, org_id: str, status: str) -> Any:
    r = await eventually(
        lambda: p["providers"].get(f"/organisations/{org_id}", headers=OPERATOR),
        until=lambda resp: resp.json()["status"] == status,
    )
    return r.json()


async def index_rows(p: Platform, org_id: str) -> tuple[set[str], dict[str, int]]:
    async with p.runtime("providers").db.session() as session:
        regions = (
            await session.execute(
                select(OrganisationServiceRegion.code).where(
                    col(OrganisationServiceRegion.organisation_id) == org_id
                )
            )
        ).scalars()
        caps = (
            await session.execute(
                select(OrganisationCapability).where(
                    col(OrganisationCapability.organisation_id) == org_id
                )
            )
        ).scalars()
        return set(regions), {c.code: c.monthly_capacity for c in caps}


# --------------------------------------------------------------------------- registration


async def test_registration_with_staff_and_evidence(providers: Platform) -> None:
    body = await register(
        providers,
        registration_authority="长春市南关区民政局",
        service_regions=["220102", "220104003"],
        services=[
            {"code": "care", "monthly_capacity": 40},
            {"code": "counselling", "monthly_capacity": 12},
        ],
        qualifications=QUALIFIED,
        evidence={
            "independent_civil_liability": "民政登记证书 长民社证字第0123号",
            "governance_finance_assets": "2025年度审计报告 审字〔2026〕17号",
        },
        staff=[
            {
                "name": "王社工",
                "qualification_level": "social_worker",
                "education": "bachelor",
                "dispatched": True,
            },
            {"name": "李护理", "education": "below_college"},
            {"name": "赵派遣", "education": "college", "dispatched": True},
        ],
    )
    org_id = body["id"]
    assert body["status"] == "pending" and body["version"] == 1
    assert body["registration_authority"] == "长春市南关区民政局"
    assert body["evidence"]["independent_civil_liability"].startswith("民政登记证书")
    assert body["credit_score"] is None and body["credit_grade"] is None
    staff = {s["name"]: s for s in body["staff"]}
    assert set(staff) == {"王社工", "李护理", "赵派遣"}
    assert (
        staff["王社工"]["preferred"] is True and "社会工作师" in staff["王社工"]["preferred_reason"]
    )
    assert staff["李护理"]["preferred"] is False and staff["李护理"]["dispatched"] is False
    assert staff["赵派遣"]["preferred"] is False
    assert JILIN_DISPATCH_CLAUSE in staff["赵派遣"]["preferred_reason"]
    assert all(s["active"] and s["organisation_id"] == org_id for s in body["staff"])

    # The search index holds one row per service region and per capability.
    assert await index_rows(providers, org_id) == (
        {"220102", "220104003"},
        {"care": 40, "counselling": 12},
    )
    got = await providers["providers"].get(f"/organisations/{org_id}", headers=OPERATOR)
    assert got.headers["etag"] == '"1"'
    assert got.json()["evidence"] == body["evidence"]

    # The event keeps the fields credit and matching read, adds the new ones, and never
    # carries a worker's name.
    (raw,) = await eventually(
        lambda: stream_messages(providers, REGISTERED), until=lambda found: len(found) == 1
    )
    event = json.loads(raw)
    assert event["organisation_id"] == org_id
    assert event["uscc"] == body["uscc"] and event["kind"] == "social_organisation"
    assert event["qualifications"] == QUALIFIED
    assert event["service_regions"] == ["220102", "220104003"]
    assert event["services"] == [
        {"code": "care", "monthly_capacity": 40},
        {"code": "counselling", "monthly_capacity": 12},
    ]
    assert event["pack"] == "jilin@2026.1" and event["region_code"] == "220102"
    assert event["registration_authority"] == "长春市南关区民政局"
    assert event["evidence"] == body["evidence"] and event["version"] == 1
    for name in staff:
        assert name.encode() not in raw
        assert json.dumps(name).encode() not in raw


async def test_dispatched_worker_below_college_refuses_the_registration(
    providers: Platform,
) -> None:
    r = await providers["providers"].post(
        "/organisations",
        json=factories.organisation(
            staff=[
                {"name": "甲", "education": "bachelor", "dispatched": True},
                {"name": "乙", "education": "below_college", "dispatched": True},
            ]
        ),
        headers=OPERATOR,
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("rule-violation")
    assert problem["rules"] == [JILIN_DISPATCH_CLAUSE]
    assert [e["field"] for e in problem["errors"]] == ["body.staff.1.education"]
    listing = (await providers["providers"].get("/organisations", headers=OPERATOR)).json()
    assert listing["total"] == 0
    async with providers.runtime("providers").db.session() as session:
        assert (await session.execute(select(OrganisationStaff))).first() is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"qualifications": {**QUALIFIED, "good_vibes": True}}, "body.qualifications.good_vibes"),
        ({"evidence": {"unknown_condition": "doc 1"}}, "body.evidence.unknown_condition"),
        ({"evidence": {"independent_civil_liability": "   "}}, "body.evidence"),
        (
            {"services": [{"code": "care", "monthly_capacity": 1}] * 2},
            "body.services.1.code",
        ),
        ({"service_regions": ["2201", "2201"]}, "body.service_regions.1"),
        ({"uscc": "91220102MA0000000X"}, "body.uscc"),
        ({"status": "admitted"}, "body.status"),
    ],
)
async def test_invalid_registrations_name_the_field_and_write_nothing(
    providers: Platform, overrides: dict[str, Any], field: str
) -> None:
    r = await providers["providers"].post(
        "/organisations", json=factories.organisation(**overrides), headers=OPERATOR
    )
    assert r.status_code == 422, r.text
    fields = [e["field"] for e in r.json()["errors"]]
    assert any(f.startswith(field) for f in fields), fields
    listing = (await providers["providers"].get("/organisations", headers=OPERATOR)).json()
    assert listing["total"] == 0


# --------------------------------------------------------------------------- maintenance


async def test_patch_rewrites_the_index_bumps_the_version_and_announces_it(
    providers: Platform,
) -> None:
    org = await register(providers, service_regions=["220102"])
    org_id = org["id"]
    r = await providers["providers"].patch(
        f"/organisations/{org_id}",
        json={
            "services": [
                {"code": "counselling", "monthly_capacity": 8},
                {"code": "care", "monthly_capacity": 3},
            ],
            "service_regions": ["2202", "220104"],
            "evidence": {"facilities_staff_expertise": "场地租赁合同 2026-001"},
            "name": org["name"],  # unchanged: not listed as changed
        },
        headers=CITY_OPERATOR,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == 2 and r.headers["etag"] == '"2"'
    assert body["service_regions"] == ["2202", "220104"]
    assert body["status"] == "pending"
    assert await index_rows(providers, org_id) == (
        {"2202", "220104"},
        {"counselling": 8, "care": 3},
    )

    async def ids(**params: Any) -> set[str]:
        page = await providers["providers"].get("/organisations", params=params, headers=OPERATOR)
        assert page.status_code == 200, page.text
        return {o["id"] for o in page.json()["items"]}

    assert await ids(region="220202", service="counselling") == {org_id}  # new region + item
    assert await ids(region="220102", service="care") == {org_id}  # registered there still
    assert await ids(region="220103") == set()  # 2201 is no longer served as a whole
    assert await ids(service="care", min_capacity=10) == set()  # old capacity 10 is gone

    (updated,) = await published(providers, UPDATED, 1)
    assert updated["organisation_id"] == org_id and updated["version"] == 2
    assert updated["changed"] == ["evidence", "service_regions", "services"]
    assert updated["service_regions"] == ["2202", "220104"]
    assert updated["services"] == [
        {"code": "counselling", "monthly_capacity": 8},
        {"code": "care", "monthly_capacity": 3},
    ]
    assert updated["uscc"] == org["uscc"] and updated["qualifications"] == org["qualifications"]

    # The organisation itself may maintain its entry; If-Match guards against lost updates.
    own = org_token(org_id)
    stale = await providers["providers"].patch(
        f"/organisations/{org_id}",
        json={"name": "长春市新名称社会工作服务中心"},
        headers={**own, "If-Match": '"1"'},
    )
    assert stale.status_code == 412, stale.text
    assert stale.json()["current_version"] == 2
    garbled = await providers["providers"].patch(
        f"/organisations/{org_id}", json={"name": "无效条件"}, headers={**own, "If-Match": "v2"}
    )
    assert garbled.status_code == 422
    assert [e["field"] for e in garbled.json()["errors"]] == ["header.If-Match"]
    fresh = await providers["providers"].patch(
        f"/organisations/{org_id}",
        json={"name": "长春市新名称社会工作服务中心", "registration_authority": "长春市民政局"},
        headers={**own, "If-Match": '"2"'},
    )
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["version"] == 3 and fresh.json()["name"] == "长春市新名称社会工作服务中心"
    # The same values again change nothing and announce nothing.
    same = await providers["providers"].patch(
        f"/organisations/{org_id}", json={"name": "长春市新名称社会工作服务中心"}, headers=own
    )
    assert same.status_code == 200 and same.json()["version"] == 3
    events = await published(providers, UPDATED, 2)
    assert [e["version"] for e in events] == [2, 3]
    assert events[1]["changed"] == ["name", "registration_authority"]


async def test_patch_is_for_the_organisation_and_operators_of_its_region(
    providers: Platform,
) -> None:
    org_id = (await register(providers))["id"]
    other_id = (await register(providers))["id"]
    body = {"name": "改名社会工作服务中心"}
    url = f"/organisations/{org_id}"
    assert (
        await providers["providers"].patch(url, json=body, headers=PURCHASER)
    ).status_code == 403
    for headers in (OTHER_CITY_OPERATOR, org_token(other_id)):
        r = await providers["providers"].patch(url, json=body, headers=headers)
        assert r.status_code == 404, r.text
    assert (await get_org(providers, org_id))["version"] == 1
    missing = await providers["providers"].patch("/organisations/nope", json=body, headers=OPERATOR)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"services": [{"code": "tea_ceremony", "monthly_capacity": 1}]}, "body.services.0.code"),
        ({"service_regions": ["33"]}, "body.service_regions.0"),
        ({"service_regions": None}, "body"),
        ({}, "body"),
        ({"qualifications": {"made_up": True}}, "body.qualifications.made_up"),
        ({"kind": "enterprise"}, "body.kind"),
        ({"region_code": "220202"}, "body.region_code"),
    ],
)
async def test_invalid_patch_changes_nothing(
    providers: Platform, body: dict[str, Any], field: str
) -> None:
    org_id = (await register(providers))["id"]
    r = await providers["providers"].patch(f"/organisations/{org_id}", json=body, headers=OPERATOR)
    assert r.status_code == 422, r.text
    assert any(e["field"].startswith(field) for e in r.json()["errors"]), r.json()
    after = await get_org(providers, org_id)
    assert after["version"] == 1 and after["services"] == factories.organisation()["services"]
    assert await index_rows(providers, org_id) == ({"2201"}, {"care": 10})


# --------------------------------------------------------------------------- status via credit


async def test_status_changes_only_through_credit_decisions(providers: Platform) -> None:
    org_id = (await register(providers))["id"]
    marker_id = (await register(providers))["id"]
    own = org_token(org_id)

    # No route lets anyone — least of all the organisation itself — set the status.
    for headers in (own, OPERATOR):
        r = await providers["providers"].patch(
            f"/organisations/{org_id}", json={"status": "admitted"}, headers=headers
        )
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == ["body.status"]
        r = await providers["providers"].patch(
            f"/organisations/{org_id}",
            json={"status": "admitted", "name": "顺带改状态社会工作服务中心"},
            headers=headers,
        )
        assert r.status_code == 422, r.text
    for method, path in (
        ("PUT", f"/organisations/{org_id}"),
        ("POST", f"/organisations/{org_id}/status"),
        ("PATCH", f"/organisations/{org_id}/status"),
        ("POST", f"/organisations/{org_id}/admit"),
    ):
        r = await providers["providers"].request(
            method, path, json={"status": "admitted"}, headers=own
        )
        assert r.status_code in (404, 405), (method, path, r.status_code)
    unchanged = await get_org(providers, org_id)
    assert unchanged["status"] == "pending" and unchanged["version"] == 1
    assert unchanged["name"] == factories.organisation()["name"]

    # Credit's decisions do change it, in decision order.
    await decide(providers, org_id, "admitted", 1)
    assert (await wait_status(providers, org_id, "admitted"))["status_reason"] == "admitted v1"
    await decide(providers, org_id, "suspended", 3)
    await wait_status(providers, org_id, "suspended")
    # A decision older than the one applied arrives late: ignored. The marker decision is
    # published after it on the same consumer, so once it shows the stale one was handled.
    await decide(providers, org_id, "reinstated", 2)
    await decide(providers, marker_id, "rejected", 1)
    await wait_status(providers, marker_id, "rejected")
    after = await get_org(providers, org_id)
    assert after["status"] == "suspended" and after["status_reason"] == "suspended v3"
    assert after["version"] == 1  # credit's decisions are not library edits
    await decide(providers, org_id, "reinstated", 4)
    await wait_status(providers, org_id, "admitted")


async def test_score_changed_sets_score_and_grade_and_ignores_stale_scores(
    providers: Platform,
) -> None:
    org_id = (await register(providers))["id"]
    marker_id = (await register(providers))["id"]
    await score(providers, org_id, 72.5, "B", 1)
    got = await eventually(
        lambda: get_org(providers, org_id), until=lambda o: o["credit_grade"] == "B"
    )
    assert got["credit_score"] == 72.5
    await score(providers, org_id, 91, "A", 3)
    await eventually(lambda: get_org(providers, org_id), until=lambda o: o["credit_grade"] == "A")
    await score(providers, org_id, 40, "D", 2)  # late: older than the score applied
    await score(providers, marker_id, 60, "C", 1)
    await eventually(
        lambda: get_org(providers, marker_id), until=lambda o: o["credit_grade"] == "C"
    )
    after = await get_org(providers, org_id)
    assert (after["credit_score"], after["credit_grade"]) == (91, "A")
    async with providers.runtime("providers").db.session() as session:
        row = await session.get(Organisation, org_id)
        assert row is not None and row.score_version == 3
    # A newer score may withdraw the grade altogether.
    await score(providers, org_id, None, None, 4)
    await eventually(lambda: get_org(providers, org_id), until=lambda o: o["credit_grade"] is None)


# --------------------------------------------------------------------------- staff


async def test_staff_are_kept_by_the_organisation_and_dispatch_needs_a_diploma(
    providers: Platform,
) -> None:
    org_id = (await register(providers))["id"]
    other_id = (await register(providers))["id"]
    own = org_token(org_id)
    base = f"/organisations/{org_id}/staff"

    r = await providers["providers"].post(
        base, json={"name": "刘派遣", "education": "below_college", "dispatched": True}, headers=own
    )
    assert r.status_code == 422, r.text
    assert r.json()["rules"] == [JILIN_DISPATCH_CLAUSE]
    assert [e["field"] for e in r.json()["errors"]] == ["body.education"]

    r = await providers["providers"].post(
        base,
        json={"name": "陈社工", "education": "college", "qualification_level": "none"},
        headers=own,
    )
    assert r.status_code == 201, r.text
    chen = r.json()
    assert chen["preferred"] is False and chen["dispatched"] is False
    r = await providers["providers"].post(
        base,
        json={"name": "周护理", "education": "below_college", "social_work_education": False},
        headers=CITY_OPERATOR,
    )
    assert r.status_code == 201, r.text
    zhou = r.json()

    # Dispatching someone below college level is refused on change too, and changes nothing.
    r = await providers["providers"].patch(
        f"{base}/{zhou['id']}", json={"dispatched": True}, headers=own
    )
    assert r.status_code == 422 and r.json()["rules"] == [JILIN_DISPATCH_CLAUSE]
    # A qualification makes the worker preferred; dispatching a college graduate is fine.
    r = await providers["providers"].patch(
        f"{base}/{chen['id']}",
        json={"qualification_level": "assistant_social_worker", "dispatched": True},
        headers=own,
    )
    assert r.status_code == 200, r.text
    assert r.json()["preferred"] is True and "助理社会工作师" in r.json()["preferred_reason"]
    # Deactivate (idempotent), then the lists.
    for _ in range(2):
        r = await providers["providers"].delete(f"{base}/{zhou['id']}", headers=own)
        assert r.status_code == 200 and r.json()["active"] is False
    listing = (await providers["providers"].get(base, headers=own)).json()
    assert listing["total"] == 2
    by_name = {s["name"]: s for s in listing["items"]}
    assert by_name["周护理"]["dispatched"] is False and by_name["周护理"]["active"] is False
    assert by_name["陈社工"]["dispatched"] is True
    active = await providers["providers"].get(base, params={"active": "true"}, headers=PURCHASER)
    assert [s["name"] for s in active.json()["items"]] == ["陈社工"]
    dispatched = await providers["providers"].get(
        base, params={"dispatched": "true"}, headers=OPERATOR
    )
    assert [s["name"] for s in dispatched.json()["items"]] == ["陈社工"]
    # Reactivating checks the rule like any change.
    r = await providers["providers"].patch(
        f"{base}/{zhou['id']}", json={"active": True, "dispatched": True}, headers=own
    )
    assert r.status_code == 422

    # Another organisation learns nothing; an expert may not read staff at all.
    other = org_token(other_id)
    assert (await providers["providers"].get(base, headers=other)).status_code == 404
    r = await providers["providers"].post(
        base, json={"name": "冒名", "education": "bachelor"}, headers=other
    )
    assert r.status_code == 404
    r = await providers["providers"].patch(
        f"{base}/{chen['id']}", json={"name": "x"}, headers=other
    )
    assert r.status_code == 404
    assert (await providers["providers"].get(base, headers=auth(Role.expert))).status_code == 403
    # A staff member of one organisation is not reachable under another's path.
    r = await providers["providers"].delete(
        f"/organisations/{other_id}/staff/{chen['id']}", headers=OPERATOR
    )
    assert r.status_code == 404
    assert (await providers["providers"].get(base, headers=own)).json()["total"] == 2


# --------------------------------------------------------------------------- search

# name, registered in, service regions, services, kind
LIBRARY: dict[str, tuple[str, str, list[str], dict[str, int], str]] = {
    "A": ("01 南关社会工作服务中心", "220102", ["220102"], {"care": 10}, "social_organisation"),
    "B": (
        "02 朝阳社会工作服务中心",
        "220104",
        ["2201"],
        {"care": 50, "counselling": 5},
        "social_organisation",
    ),
    "C": (
        "03 昌邑心理服务中心",
        "220202",
        ["220102003"],
        {"counselling": 20},
        "social_organisation",
    ),
    "D": ("04 吉林市照护服务中心", "220202", ["2202"], {"care": 30}, "social_organisation"),
    "E": ("05 延吉康复有限公司", "222401", ["2224"], {"rehabilitation": 7}, "enterprise"),
    "F": ("06 昌邑照护50%服务社", "220202", ["220104"], {"care": 15}, "social_organisation"),
    "G": ("07 延吉全省照护服务中心", "222401", ["22"], {"care": 5}, "social_organisation"),
}


@pytest.fixture
async def library(providers: Platform) -> dict[str, str]:
    """Seven organisations (label → id), registered A to G, with statuses and scores."""
    ids: dict[str, str] = {}
    for label, (name, region, served, services, kind) in LIBRARY.items():
        body = await register(
            providers,
            name=name,
            region_code=region,
            service_regions=served,
            services=[{"code": c, "monthly_capacity": n} for c, n in services.items()],
            kind=kind,
        )
        ids[label] = body["id"]
    for label, verb in (("A", "admitted"), ("B", "admitted"), ("C", "suspended")):
        await decide(providers, ids[label], verb, 1)
    await decide(providers, ids["D"], "blacklisted", 1)
    for label, value, grade in (("A", 90.0, "A"), ("B", 75.0, "B"), ("C", 88.0, "A")):
        await score(providers, ids[label], value, grade, 1)
    await wait_status(providers, ids["D"], "blacklisted")
    await eventually(lambda: get_org(providers, ids["C"]), until=lambda o: o["credit_grade"] == "A")
    return ids


async def search(
    p: Platform, ids: dict[str, str], headers: dict[str, str] = OPERATOR, **params: Any
) -> tuple[list[str], int]:
    """Labels of one page of `GET /organisations` in order, and the total."""
    r = await p["providers"].get("/organisations", params=params, headers=headers)
    assert r.status_code == 200, r.text
    label = {v: k for k, v in ids.items()}
    body = r.json()
    return [label[o["id"]] for o in body["items"]], body["total"]


async def labels(p: Platform, ids: dict[str, str], **params: Any) -> set[str]:
    found, total = await search(p, ids, **params)
    assert total == len(found)
    return set(found)


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        # A village in 南关区: organisations whose service region covers it (220102, 2201,
        # 220102003, 22) — none is registered there.
        ("220102003001", {"A", "B", "C", "G"}),
        # The city of 长春: registered inside (A, B), serving inside (C at a township, F at a
        # county), or serving an area containing it (G, the whole province).
        ("2201", {"A", "B", "C", "F", "G"}),
        ("220104", {"B", "F", "G"}),
        ("2202", {"C", "D", "F", "G"}),
        ("222401", {"E", "G"}),
        ("22", {"A", "B", "C", "D", "E", "F", "G"}),
        ("2203", {"G"}),
    ],
)
async def test_search_by_region(
    providers: Platform, library: dict[str, str], region: str, expected: set[str]
) -> None:
    assert await labels(providers, library, region=region) == expected


async def test_search_by_service_capacity_status_grade_kind_and_name(
    providers: Platform, library: dict[str, str]
) -> None:
    p, ids = providers, library
    assert await labels(p, ids, service="care") == {"A", "B", "D", "F", "G"}
    # min_capacity is inclusive: F offers exactly 15.
    assert await labels(p, ids, service="care", min_capacity=15) == {"B", "D", "F"}
    assert await labels(p, ids, service="care", min_capacity=16) == {"B", "D"}
    assert await labels(p, ids, service="counselling", region="220102") == {"B", "C"}
    assert await labels(p, ids, status="admitted") == {"A", "B"}
    assert await labels(p, ids, status=["admitted", "suspended"]) == {"A", "B", "C"}
    assert await labels(p, ids, status="pending") == {"E", "F", "G"}
    assert await labels(p, ids, grade="A") == {"A", "C"}
    assert await labels(p, ids, grade=["A", "B"], region="220104") == {"B"}
    assert await labels(p, ids, kind="enterprise") == {"E"}
    assert await labels(p, ids, q="延吉") == {"E", "G"}
    # q is a literal substring: % and _ are not wildcards.
    assert await labels(p, ids, q="50%") == {"F"}
    assert await labels(p, ids, q="%") == {"F"}
    assert await labels(p, ids, q="_") == set()
    assert await labels(p, ids, service="care", status="admitted", region="2201") == {"A", "B"}


async def test_search_sorts_with_a_stable_tie_breaker_and_paginates(
    providers: Platform, library: dict[str, str]
) -> None:
    p, ids = providers, library
    assert (await search(p, ids))[0] == ["G", "F", "E", "D", "C", "B", "A"]  # -created_at
    assert (await search(p, ids, sort="created_at"))[0] == list("ABCDEFG")
    assert (await search(p, ids, sort="name"))[0] == list("ABCDEFG")
    assert (await search(p, ids, sort="-name"))[0] == list("GFEDCBA")
    # Scores first, highest first; organisations without a score last, by id.
    by_score, _ = await search(p, ids, sort="-credit_score")
    unscored = sorted("DEFG", key=lambda k: ids[k])
    assert by_score == ["A", "C", "B", *unscored]
    assert (await search(p, ids, sort="credit_score"))[0] == ["B", "C", "A", *unscored]
    assert (await search(p, ids, service="care", sort="-capacity"))[0] == list("BDFAG")
    r = await p["providers"].get("/organisations", params={"sort": "-capacity"}, headers=OPERATOR)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.sort"
    r = await p["providers"].get("/organisations", params={"min_capacity": 3}, headers=OPERATOR)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.min_capacity"
    for bad in ({"region": "220"}, {"status": "approved"}, {"sort": "uscc"}, {"limit": 0}):
        r = await p["providers"].get("/organisations", params=bad, headers=OPERATOR)
        assert r.status_code == 422, (bad, r.text)

    # Pages: the total counts every match; the pages partition them in order.
    assert await search(p, ids, region="2201", limit=2, offset=0) == (["G", "F"], 5)
    assert await search(p, ids, region="2201", limit=2, offset=2) == (["C", "B"], 5)
    assert await search(p, ids, region="2201", limit=2, offset=4) == (["A"], 5)
    assert await search(p, ids, region="2201", limit=2, offset=6) == ([], 5)
    assert await search(p, ids, service="care", sort="-capacity", limit=3, offset=3) == (
        ["A", "G"],
        5,
    )


async def test_search_and_reads_are_limited_to_the_callers_region(
    providers: Platform, library: dict[str, str]
) -> None:
    p, ids = providers, library
    county = auth(Role.purchaser, region="220104")
    assert set((await search(p, ids, headers=county))[0]) == {"B", "F", "G"}
    assert await search(p, ids, headers=county, region="2202") == (["G", "F"], 2)
    assert await search(p, ids, headers=county, region="222401") == (["G"], 1)
    for label in ("A", "D", "E"):
        r = await p["providers"].get(f"/organisations/{ids[label]}", headers=county)
        assert r.status_code == 404
    assert (
        await p["providers"].get(f"/organisations/{ids['F']}", headers=county)
    ).status_code == 200
    # An organisation sees those reaching its own region, and always itself.
    yanji = auth(Role.organisation, region="220202", org_id=ids["E"])
    assert set((await search(p, ids, headers=yanji))[0]) == {"C", "D", "E", "F", "G"}
    assert (
        await p["providers"].get(f"/organisations/{ids['E']}", headers=yanji)
    ).status_code == 200


async def test_search_matches_the_coverage_predicate(providers: Platform) -> None:
    """Random service areas: the SQL search returns exactly what `rules.reaches` says."""
    rng = random.Random(20261123)
    areas = [
        "22",
        "2201",
        "2202",
        "220102",
        "220104",
        "220202",
        "222401",
        "220102003",
        "220102004",
        "220102003001",
        "220202001",
    ]
    counties = ["220102", "220104", "220105", "220202", "220203", "222401", "220102003"]
    orgs: dict[str, tuple[str, list[str]]] = {}
    for _ in range(24):
        region = rng.choice(counties)
        served = rng.sample(areas, rng.randint(1, 3))
        body = await register(providers, region_code=region, service_regions=served)
        orgs[body["id"]] = (region, served)
    for scope in [*areas, "2203", "220105"]:
        expected = {i for i, (reg, served) in orgs.items() if rules.reaches(reg, served, scope)}
        r = await providers["providers"].get(
            "/organisations", params={"region": scope, "limit": 100}, headers=OPERATOR
        )
        found = {o["id"] for o in r.json()["items"]}
        assert found == expected, scope
        assert r.json()["total"] == len(expected)
