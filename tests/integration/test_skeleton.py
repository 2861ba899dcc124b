"""The walking skeleton through all four services, in one process, over real NATS and
real databases: registration → admission → blacklist → need → allocation → matched."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from libs.common.auth import Role
from libs.common.telemetry import MESSAGING_CONSUMER_GROUP_NAME
from tests import factories
from tests.support.platform import Platform, auth, eventually

OPERATOR = auth(Role.operator)
PURCHASER = auth(Role.purchaser, region="220102")


@pytest.fixture
async def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def platform(
    nats_url: str, database_url_factory: Callable[[str], str], spans: InMemorySpanExporter
) -> AsyncIterator[Platform]:
    async with Platform(
        nats_url=nats_url,
        database_url=database_url_factory,
        span_processors=[SimpleSpanProcessor(spans)],
    ) as p:
        yield p


async def register_admitted(platform: Platform, **overrides: Any) -> str:
    r = await platform["providers"].post(
        "/organisations", json=factories.organisation(**overrides), headers=OPERATOR
    )
    assert r.status_code == 201, r.text
    org_id = str(r.json()["id"])
    assert r.json()["status"] == "pending"
    await eventually(
        lambda: platform["providers"].get(f"/organisations/{org_id}", headers=OPERATOR),
        until=lambda resp: resp.json()["status"] == "admitted",
    )
    return org_id


async def test_need_matched_to_admitted_organisation_and_blacklisted_gets_nothing(
    platform: Platform,
) -> None:
    good = await register_admitted(platform)
    bad = await register_admitted(platform, services=[{"code": "care", "monthly_capacity": 100}])

    admission = (await platform["credit"].get(f"/admissions/{good}", headers=OPERATOR)).json()
    assert admission["outcome"] == "admitted"
    assert all(reason["met"] and reason["rule"] for reason in admission["reasons"])

    r = await platform["credit"].post(
        "/blacklist",
        json={"organisation_id": bad, "severity": "serious", "reason": "falsified service records"},
        headers=OPERATOR,
    )
    assert r.status_code == 201, r.text
    assert "第七十七条" in " ".join(r.json()["legal_basis"])
    await eventually(
        lambda: platform["providers"].get(f"/organisations/{bad}", headers=OPERATOR),
        until=lambda resp: resp.json()["status"] == "blacklisted",
    )
    await eventually(
        lambda: platform["matching"].get(f"/organisations/{bad}/eligibility", headers=OPERATOR),
        until=lambda resp: resp.status_code == 200 and resp.json()["eligible"] is False,
    )
    await eventually(
        lambda: platform["matching"].get(f"/organisations/{good}/eligibility", headers=OPERATOR),
        until=lambda resp: resp.status_code == 200 and resp.json()["eligible"] is True,
    )

    need_ids = []
    for _ in range(3):
        r = await platform["needs"].post(
            "/recipients", json=factories.recipient(), headers=PURCHASER
        )
        assert r.status_code == 201, r.text
        ref = r.json()["ref"]
        r = await platform["needs"].post(
            "/needs",
            json={"recipient_ref": ref, "service_code": "care", "urgency": 3},
            headers=PURCHASER,
        )
        assert r.status_code == 201, r.text
        need_ids.append(r.json()["id"])

    async def allocate() -> dict[str, Any]:
        await platform["matching"].post("/allocations/run", headers=OPERATOR)
        resp = await platform["matching"].get("/matches", headers=OPERATOR)
        return dict(resp.json())

    matches = await eventually(allocate, until=lambda page: page["total"] == 3)
    # The blacklisted organisation had more capacity, yet received nothing.
    assert {m["organisation_id"] for m in matches["items"]} == {good}
    bad_matches = (
        await platform["matching"].get(f"/matches?organisation_id={bad}", headers=OPERATOR)
    ).json()
    assert bad_matches["total"] == 0
    for need_id in need_ids:
        need = await eventually(
            lambda need_id=need_id: platform["needs"].get(f"/needs/{need_id}", headers=PURCHASER),
            until=lambda resp: resp.json()["status"] == "matched",
        )
        assert need.json()["matched_organisation_id"] == good


async def test_missing_evidence_is_rejected_with_the_clause(platform: Platform) -> None:
    quals = factories.organisation()["qualifications"]
    quals["independent_civil_liability"] = False
    r = await platform["providers"].post(
        "/organisations", json=factories.organisation(qualifications=quals), headers=OPERATOR
    )
    org_id = r.json()["id"]
    org = await eventually(
        lambda: platform["providers"].get(f"/organisations/{org_id}", headers=OPERATOR),
        until=lambda resp: resp.json()["status"] != "pending",
    )
    assert org.json()["status"] == "rejected"
    review = (await platform["credit"].get(f"/admissions/{org_id}", headers=OPERATOR)).json()
    unmet = [x for x in review["reasons"] if not x["met"]]
    assert [x["condition"] for x in unmet] == ["independent_civil_liability"]
    assert unmet[0]["rule"] == "吉民发〔2020〕44号 §二(二)2"
    eligibility = await eventually(
        lambda: platform["matching"].get(f"/organisations/{org_id}/eligibility", headers=OPERATOR),
        until=lambda resp: resp.status_code == 200 and resp.json()["status"] == "rejected",
    )
    assert eligibility.json()["eligible"] is False


async def test_class_one_public_institution_refused_with_clause(platform: Platform) -> None:
    r = await platform["providers"].post(
        "/organisations",
        json=factories.organisation(kind="public_institution_class_i"),
        headers=OPERATOR,
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["errors"][0]["field"] == "body.kind"
    assert body["rules"], body
    listing = (await platform["providers"].get("/organisations", headers=OPERATOR)).json()
    assert listing["total"] == 0  # nothing was written


async def test_invalid_id_names_the_field_and_never_echoes_the_number(platform: Platform) -> None:
    body = factories.recipient()
    broken = body["id_number"][:-1] + ("0" if body["id_number"][-1] != "0" else "1")
    r = await platform["needs"].post(
        "/recipients", json={**body, "id_number": broken}, headers=PURCHASER
    )
    assert r.status_code == 422
    problem = r.json()
    assert problem["errors"][0]["field"] == "body.id_number"
    assert broken not in r.text


async def test_duplicate_recipient_is_409_with_existing_ref(platform: Platform) -> None:
    body = factories.recipient()
    first = await platform["needs"].post("/recipients", json=body, headers=PURCHASER)
    assert first.status_code == 201
    again = await platform["needs"].post(
        "/recipients", json={**body, "id_number": body["id_number"].lower()}, headers=PURCHASER
    )
    assert again.status_code == 409
    assert again.json()["existing_ref"] == first.json()["ref"]
    assert (
        first.json()["id_number_masked"]
        == body["id_number"][:6] + "********" + body["id_number"][-4:]
    )


async def test_events_carry_no_personal_data(platform: Platform) -> None:
    body = factories.recipient(name="李四光")
    ref = (await platform["needs"].post("/recipients", json=body, headers=PURCHASER)).json()["ref"]
    r = await platform["needs"].post(
        "/needs",
        json={"recipient_ref": ref, "service_code": "care", "urgency": 2},
        headers=PURCHASER,
    )
    assert r.status_code == 201
    bus = platform.runtime("needs").bus
    await eventually(
        lambda: bus.js.stream_info("NEEDS"), until=lambda info: info.state.messages >= 1
    )
    msg = await bus.js.get_msg("NEEDS", 1)
    raw = (msg.data or b"").decode() + str(msg.headers)
    assert ref in raw
    assert body["id_number"] not in raw and "李四光" not in raw


async def test_one_trace_spans_http_in_needs_the_event_and_the_handler_in_matching(
    platform: Platform, spans: InMemorySpanExporter
) -> None:
    ref = (
        await platform["needs"].post("/recipients", json=factories.recipient(), headers=PURCHASER)
    ).json()["ref"]
    spans.clear()
    r = await platform["needs"].post(
        "/needs",
        json={"recipient_ref": ref, "service_code": "care", "urgency": 4},
        headers=PURCHASER,
    )
    assert r.status_code == 201

    def consumer_spans() -> list[Any]:
        return [
            s
            for s in spans.get_finished_spans()
            if s.kind == SpanKind.CONSUMER
            and s.name == "sa.needs.need.opened process"
            # The allocation's consumer (statistics consume the same event too).
            and (s.attributes or {}).get(MESSAGING_CONSUMER_GROUP_NAME) == "matching-needs"
        ]

    async def probe() -> list[Any]:
        return consumer_spans()

    consumed = (await eventually(probe, until=lambda found: len(found) == 1))[0]
    finished = spans.get_finished_spans()
    server = [
        s
        for s in finished
        if s.kind == SpanKind.SERVER
        and s.resource.attributes["service.name"] == "needs"
        and s.attributes.get("http.route") == "/needs"
    ]
    producer = [
        s
        for s in finished
        if s.kind == SpanKind.PRODUCER and s.name == "sa.needs.need.opened publish"
    ]
    assert len(server) == 1 and len(producer) == 1
    trace_id = server[0].context.trace_id
    assert producer[0].context.trace_id == trace_id
    assert consumed.context.trace_id == trace_id
    assert consumed.parent.span_id == producer[0].context.span_id
    assert consumed.resource.attributes["service.name"] == "matching"
    assert producer[0].resource.attributes["service.name"] == "needs"
    # The producer span descends from the request (through the handler's own spans).
    by_id = {s.context.span_id: s for s in finished}
    node = producer[0]
    while node.parent is not None and node.parent.span_id in by_id:
        node = by_id[node.parent.span_id]
    assert node.context.span_id == server[0].context.span_id
