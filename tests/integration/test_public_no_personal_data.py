"""No public endpoint and no event carries a recipient's personal data (a scan).

All four services run in one process on real databases and the session's real nats-server.
Recipients are registered in the needs service with known names, ID numbers, phones,
addresses and a guardian; their needs are served under a contract won in matching (the
delivery notes and the acceptance notes name them, as a careless caseworker might), credit
evaluates the contract with their survey answers (which quote them) and blacklists an
organisation over a complaint that names them. Then every public endpoint — every GET route
of every app without an auth dependency, discovered from the apps' routes — is called, in
list and feed form, and every message of every stream is read: none may contain any of
those values. Public endpoints may not even contain the masked ID number or the
pseudonymous recipient refs; events carry the refs (that is what they are for) and nothing
more. The flow runs once per test (endpoints, events), each on its own databases.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from libs.common.auth import Role
from libs.common.clock import FrozenClock
from libs.common.masking import mask_phone
from libs.common.ratelimit import TokenBucketLimiter
from libs.common.validators import mask_resident_id
from services.matching.statistics.jobs import run_daily
from tests import factories
from tests.integration.test_ocds import NOW, PREFIX, Purchases
from tests.support.platform import Platform, auth, eventually

REGION = "220102"
PURCHASER = auth(Role.purchaser, region=REGION)
OPERATOR = auth(Role.operator, region="22")
EVALUATOR = auth(Role.evaluator, region="22")

RECIPIENTS: list[dict[str, Any]] = [
    {
        "id_number": factories.resident_id(year=1941),
        "name": "欧阳秀英",
        "region_code": "220102001001",
        "categories": ["tekun"],
        "phone": "13904315827",
        "address": "长春市南关区幸福街道和平路88号3单元502室",
    },
    {
        "id_number": factories.resident_id(year=2015),
        "name": "司马小龙",
        "region_code": "220102001002",
        "categories": ["child_in_difficulty"],
        "phone": "13604317319",
        "address": "长春市南关区永吉街道民康路17号2栋101室",
        "guardian": {
            "name": "司马建华",
            "relation": "父亲",
            "phone": "15804316604",
            "consent": True,
        },
    },
]


def personal_values() -> list[str]:
    """Every direct identifier registered, and the masked forms of the ID and phones."""
    values: list[str] = []
    for r in RECIPIENTS:
        values += [r["id_number"], r["name"], r["phone"], r["address"]]
        values += [mask_resident_id(r["id_number"]), mask_phone(r["phone"])]
        values.append(r["id_number"][6:14] + r["id_number"][14:])  # birth date and tail
        if "guardian" in r:
            values += [r["guardian"]["name"], r["guardian"]["phone"]]
    return values


def leaks(text: str, values: list[str]) -> list[str]:
    return [v for v in values if v in text]


def public_operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of every operation without an auth dependency: those the
    OpenAPI document lists without a security requirement (the bearer dependency of
    `current_principal` is what puts one there)."""
    spec = app.openapi()
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if not op.get("security")
    ]


@pytest.fixture
async def p(
    nats_url: str, database_url_factory: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Platform]:
    monkeypatch.setenv("SA_MATCHING_OCDS_PREFIX", PREFIX)
    platform = Platform(nats_url=nats_url, database_url=database_url_factory)
    clock = FrozenClock(NOW)
    for app in platform.apps.values():
        app.state.clock = clock
        app.state.runtime.clock = clock
        # Polling public routes in a loop is not what the public bucket is sized for.
        app.state.rate_limiter = TokenBucketLimiter(rate=1000, burst=1000)
    async with platform:
        yield platform


async def register_organisation(p: Platform, name: str) -> str:
    body = factories.organisation(name=name, region_code=REGION)
    r = await p["providers"].post("/organisations", json=body, headers=OPERATOR)
    assert r.status_code == 201, r.text
    org_id = str(r.json()["id"])

    async def eligible() -> Any:
        r = await p["matching"].get(f"/organisations/{org_id}/eligibility", headers=OPERATOR)
        return r.json() if r.status_code == 200 else {}

    await eventually(eligible, until=lambda b: b.get("eligible") is True, within=30)
    return org_id


async def all_messages(p: Platform) -> list[tuple[str, str]]:
    """(stream, text) of every message on every stream: subject, headers and body."""
    js = p.runtime("matching").bus.js
    out = []
    for info in await js.streams_info():
        stream = info.config.name
        for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
            try:
                msg = await js.get_msg(stream, seq)
            except Exception:  # a deleted message (none expected); nothing to read
                continue
            body = (msg.data or b"").decode("utf-8", errors="replace")
            headers = json.dumps(dict(msg.headers or {}), ensure_ascii=False)
            out.append((stream, f"{msg.subject}\n{headers}\n{body}"))
    return out


async def wait_shown(p: Platform, service: str, path: str, n: int) -> None:
    """Until the public feed at `path` holds at least `n` records."""

    async def shown() -> int:
        r = await p[service].get(path, params={"since": ""})
        return len(r.json()["items"]) if r.status_code == 200 else -1

    await eventually(shown, until=lambda c: c >= n, within=30)


@dataclass
class Flow:
    refs: list[str]
    won: dict[str, Any]


async def drive(p: Platform) -> Flow:
    """Recipients registered and served, evaluated, complained about; a ban; statistics."""
    # -- recipients and their needs (needs service)
    refs, need_ids = [], []
    for body in RECIPIENTS:
        r = await p["needs"].post("/recipients", json=body, headers=PURCHASER)
        assert r.status_code == 201, r.text
        ref = str(r.json()["ref"])
        r = await p["needs"].post(
            "/needs",
            json={"recipient_ref": ref, "service_code": "care", "urgency": 3},
            headers=PURCHASER,
        )
        assert r.status_code == 201, r.text
        refs.append(ref)
        need_ids.append(str(r.json()["id"]))
    first, second = RECIPIENTS

    # -- the market: registered organisations, a tender won, the recipients served
    orgs = [await register_organisation(p, f"长春市南关区{x}社会工作服务中心") for x in "甲乙丙"]
    purchases = Purchases(p, p.apps["matching"].state.clock)
    won = await purchases.awarded(
        organisations=orgs,
        served=refs,
        note=f"为{first['name']}上门照料，地址{first['address']}",
        summary={"satisfaction": 0.96, "note": f"{first['name']}（{first['phone']}）表示满意"},
    )
    winner = won["accepted"]["organisation_id"]
    await purchases.cancelled()

    # -- credit: the contract evaluated with the recipients' answers
    clock = p.apps["credit"].state.clock
    clock.set(NOW + timedelta(days=25))  # February: January can be evaluated
    http = p["credit"]

    async def evaluation_opened() -> Any:
        r = await http.post(
            "/evaluations",
            json={"contract_id": won["contract_id"], "period": "2027-01"},
            headers=PURCHASER,
        )
        return r

    opened = await eventually(evaluation_opened, until=lambda r: r.status_code == 201, within=30)
    evaluation_id = opened.json()["id"]
    r = await http.put(
        f"/evaluations/{evaluation_id}/purchaser-score", json={"score": 88}, headers=PURCHASER
    )
    assert r.status_code == 200, r.text
    r = await http.put(
        f"/evaluations/{evaluation_id}/third-party-score", json={"score": 82}, headers=EVALUATOR
    )
    assert r.status_code == 200, r.text
    for ref, person in zip(refs, RECIPIENTS, strict=True):

        async def answered(ref: str = ref, person: dict[str, Any] = person) -> Any:
            return await http.post(
                f"/evaluations/{evaluation_id}/survey-responses",
                json={
                    "recipient_ref": ref,
                    "satisfaction": 5,
                    "answers": {"comment": f"{person['name']}说服务很好，电话{person['phone']}"},
                    "channel": "visit",
                },
                headers=PURCHASER,
            )

        r = await eventually(answered, until=lambda r: r.status_code == 201, within=30)
    r = await http.post(f"/evaluations/{evaluation_id}/publish", headers=PURCHASER)
    assert r.status_code == 200, r.text

    # -- credit: a ban over a complaint that names a recipient
    async def known_to_credit() -> int:
        return (await http.get(f"/admissions/{orgs[2]}", headers=OPERATOR)).status_code

    await eventually(known_to_credit, until=lambda s: s == 200)
    # Due process counts working days, known through 2026 only: the ban is decided then.
    clock.set(NOW - timedelta(days=40))
    complaint = f"虚报为{second['name']}（监护人{second['guardian']['name']}）提供的服务"
    r = await http.post(
        "/violations",
        json={
            "organisation_id": orgs[2],
            "kind": "falsification",
            "severity": "serious",
            "description": complaint,
            "evidence": [
                {"kind": "complaint", "reference": "投诉 2027-3", "note": f"来电 {second['phone']}"}
            ],
        },
        headers=PURCHASER,
    )
    assert r.status_code == 201, r.text
    violation_id = r.json()["id"]
    r = await http.post(
        f"/violations/{violation_id}/response",
        json={"response": "我们已核查并纠正了记录。"},
        headers=auth(Role.organisation, org_id=orgs[2]),
    )
    assert r.status_code == 200, r.text
    r = await http.post(
        f"/violations/{violation_id}/decision",
        json={"sanction": "blacklist", "reason": "弄虚作假，情节严重"},
        headers=OPERATOR,
    )
    assert r.status_code == 200, r.text

    # -- statistics of the days so far
    await run_daily(p.runtime("matching"), now=NOW + timedelta(days=2))

    # -- wait until every public list shows what the flow produced
    for service, path, n in (
        ("matching", "/public/acceptances", 1),
        ("matching", "/public/contracts", 1),
        ("matching", "/public/results", 1),
        ("matching", "/public/tenders", 2),
        ("credit", "/public/dishonesty-list", 1),
        ("credit", "/public/evaluations", 1),
    ):
        await wait_shown(p, service, path, n)
    assert winner in (await p["matching"].get("/public/contracts")).text
    return Flow(refs, won)


async def test_no_public_endpoint_returns_a_recipients_personal_data(p: Platform) -> None:
    flow = await drive(p)
    refs, won, first = flow.refs, flow.won, RECIPIENTS[0]
    values = personal_values()
    path_values = {"ocid": f"{PREFIX}-{won['tender'].id}"}
    called: list[str] = []
    for name, app in p.apps.items():
        for method, template, op in public_operations(app):
            assert method == "GET", f"{name} {method} {template}: unauthenticated write"
            params = op.get("parameters", [])
            in_path = {x["name"] for x in params if x["in"] == "path"}
            unknown = in_path - set(path_values)
            assert not unknown, f"{name} {template}: give the scan a value for {unknown}"
            path = template.format(**{k: path_values[k] for k in in_path})
            query_names = {x["name"] for x in params if x["in"] == "query"}
            forms: list[dict[str, Any]] = [{}]
            if "since" in query_names:
                forms.append({"since": ""})
            if "limit" in query_names:
                forms = [{**f, "limit": 500} for f in forms]
            for query in forms:
                r = await p[name].get(path, params=query)
                assert r.status_code == 200, (name, path, r.status_code, r.text[:300])
                found = leaks(r.text, values + refs)
                assert not found, f"{name} GET {path} {query} returns {found}"
                called.append(f"{name} {path}")
    for expected in (
        "matching /public/tenders",
        "matching /public/results",
        "matching /public/contracts",
        "matching /public/acceptances",
        f"matching /ocds/records/{PREFIX}-{won['tender'].id}",
        "matching /ocds/releases",
        "credit /public/dishonesty-list",
        "credit /public/evaluations",
    ):
        assert expected in called, f"the scan did not reach {expected}"
    # The scan is not vacuous: what the public sees does come from this flow.
    acceptance = (await p["matching"].get("/public/acceptances")).json()["items"][0]
    assert acceptance["recipients_invited"] == 2 and acceptance["sessions_delivered"] == 4
    assert acceptance["findings"] == {"satisfaction": 0.96}
    listing = (await p["credit"].get("/public/dishonesty-list")).json()["items"][0]
    assert listing["name"] == "长春市南关区丙社会工作服务中心"
    # Sanity of the scan itself: the values are really in the needs service (sealed there).
    r = await p["needs"].get(f"/recipients/{refs[0]}", headers=PURCHASER)
    assert r.status_code == 200 and mask_resident_id(first["id_number"]) in r.text


async def test_no_event_carries_a_recipients_personal_data(p: Platform) -> None:
    """Also fails while `sa.matching.acceptance.published` carries the acceptance's free-text
    summary, which may name the people served (services/matching/contracts/events.py)."""
    refs = (await drive(p)).refs
    values = personal_values()
    messages = await all_messages(p)
    streams = {s for s, _ in messages}
    assert {"NEEDS", "PROVIDERS", "MATCHING", "CREDIT"} <= streams
    leaked = [
        f"{stream} {text.split(chr(10), 1)[0]}: {found}"
        for stream, text in messages
        if (found := leaks(text, values))
    ]
    assert not leaked, "events carry personal data:\n" + "\n".join(leaked)
    # Events do carry the pseudonymous refs (needs, deliveries, acceptance).
    assert all(any(ref in text for _, text in messages) for ref in refs)
    subjects = {text.split("\n", 1)[0] for _, text in messages}
    for subject in (
        "sa.needs.need.opened",
        "sa.matching.service.delivered",
        "sa.matching.acceptance.published",
        "sa.credit.evaluation.recorded",
        "sa.credit.organisation.blacklisted",
        "sa.matching.statistics.daily",
    ):
        assert subject in subjects, f"the flow produced no {subject}"
