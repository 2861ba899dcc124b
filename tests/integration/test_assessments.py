"""Assessments open need items, store the self-care tier of 特困人员, schedule the
reassessment; needs move through their lifecycle from the API and from matching's events;
caseload reports staffing by each province's rule."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from libs.common.auth import Role
from libs.common.events import new_event
from tests import factories
from tests.support.platform import Platform, auth, eventually

PURCHASER = auth(Role.purchaser, region="220102")
OPERATOR = auth(Role.operator)
ALL_CAN = dict.fromkeys(
    ("eating", "dressing", "bed_transfer", "toileting", "indoor_walking", "bathing"), True
)


@pytest.fixture
async def needs(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    async with Platform(
        nats_url=nats_url, database_url=database_url_factory, services=["needs"]
    ) as p:
        yield p


async def recipient(p: Platform, headers: dict[str, str] = PURCHASER, **kw: Any) -> str:
    r = await p["needs"].post("/recipients", json=factories.recipient(**kw), headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["ref"])


async def assess(p: Platform, ref: str, headers: dict[str, str] = PURCHASER, **kw: Any) -> Any:
    body = {"recipient_ref": ref, "kind": "intake", "assessor_name": "王评估", **kw}
    return await p["needs"].post("/assessments", json=body, headers=headers)


@pytest.mark.parametrize(
    ("unmet", "tier"),
    [
        (0, "self_care"),
        (1, "partly_lost"),
        (3, "partly_lost"),
        (4, "fully_lost"),
        (6, "fully_lost"),
    ],
)
async def test_self_care_tier_stored_on_recipient(needs: Platform, unmet: int, tier: str) -> None:
    ref = await recipient(needs)
    answers = {a: i >= unmet for i, a in enumerate(ALL_CAN)}
    r = await assess(needs, ref, self_care=answers)
    assert r.status_code == 201, r.text
    assert r.json()["self_care_tier"] == tier
    person = (await needs["needs"].get(f"/recipients/{ref}", headers=PURCHASER)).json()
    assert person["self_care_tier"] == tier


async def test_tekun_assessment_requires_the_self_care_part(needs: Platform) -> None:
    ref = await recipient(needs)
    r = await assess(needs, ref, needs=[{"service_code": "care", "urgency": 3}])
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.self_care"
    incomplete = await assess(needs, ref, self_care={"eating": True})
    assert incomplete.status_code == 422 and "bathing" in incomplete.json()["errors"][0]["reason"]
    listing = (await needs["needs"].get("/needs", headers=PURCHASER)).json()
    assert listing["total"] == 0  # nothing opened by a refused assessment


async def test_assessment_opens_one_need_per_service_and_schedules_reassessment(
    needs: Platform,
) -> None:
    ref = await recipient(needs)
    r = await assess(
        needs,
        ref,
        assessed_on="2026-03-15",
        self_care=ALL_CAN,
        needs=[
            {
                "service_code": "care",
                "urgency": 3,
                "quantity": 20,
                "unit": "hours",
                "period_months": 6,
            },
            {"service_code": "counselling", "urgency": 2, "quantity": 4, "unit": "sessions"},
        ],
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert len(body["need_ids"]) == 2
    assert body["reassessment_due_on"] == "2027-03-15"  # Jilin: 特困 yearly (pack setting)
    opened = (await needs["needs"].get("/needs", headers=PURCHASER)).json()["items"]
    assert {n["service_code"] for n in opened} == {"care", "counselling"}
    care = next(n for n in opened if n["service_code"] == "care")
    assert (care["quantity"], care["unit"], care["period_months"]) == (20, "hours", 6)
    # Each need was announced with the pseudonymous reference only.
    runtime = needs.runtime("needs")
    await runtime.relay.publish_pending()
    msg = await runtime.bus.js.get_msg("NEEDS", 1)
    assert b'"recipient_ref":"' + ref.encode() in (msg.data or b"")
    due = (
        await needs["needs"].get(
            "/assessments", params={"due_before": "2027-03-31"}, headers=PURCHASER
        )
    ).json()
    assert [a["id"] for a in due["items"]] == [body["id"]]


async def test_administrative_items_are_not_needs(needs: Platform) -> None:
    ref = await recipient(needs)
    r = await assess(
        needs, ref, self_care=ALL_CAN, needs=[{"service_code": "means_survey", "urgency": 2}]
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.needs.0.service_code"


async def test_need_lifecycle_from_matching_events_and_the_api(needs: Platform) -> None:
    ref = await recipient(needs)
    r = await assess(needs, ref, self_care=ALL_CAN, needs=[{"service_code": "care", "urgency": 4}])
    need_id = r.json()["need_ids"][0]
    bus = needs.runtime("needs").bus

    async def publish(verb: str, entity: str = "need", **data: Any) -> None:
        event = new_event(
            service="matching", entity=entity, verb=verb, data={"need_id": need_id, **data}
        )
        await bus.js.publish(event.nats_subject, event.body(), headers=event.headers())

    async def status() -> str:
        resp = await needs["needs"].get(f"/needs/{need_id}", headers=PURCHASER)
        return str(resp.json()["status"])

    await publish("matched", organisation_id="org-a", match_id="m1")
    await eventually(status, until=lambda s: s == "matched")
    await publish("delivered", entity="service", organisation_id="org-a")
    await eventually(status, until=lambda s: s == "in_service")
    await publish("matched", organisation_id="org-b", match_id="late")  # stale: ignored
    await publish("reassigned", organisation_id="org-c", match_id="m2")  # takeover
    need = await eventually(
        lambda: needs["needs"].get(f"/needs/{need_id}", headers=PURCHASER),
        until=lambda resp: resp.json()["matched_organisation_id"] == "org-c",
    )
    assert need.json()["status"] == "matched"
    cancelled = await needs["needs"].post(
        f"/needs/{need_id}/cancel", json={"reason": "moved to another province"}, headers=PURCHASER
    )
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await needs["needs"].post(
        f"/needs/{need_id}/cancel", json={"reason": "twice"}, headers=PURCHASER
    )
    assert again.status_code == 409


async def test_closure_cancels_live_needs_and_deactivates(needs: Platform) -> None:
    ref = await recipient(needs)
    await assess(needs, ref, self_care=ALL_CAN, needs=[{"service_code": "care", "urgency": 2}])
    r = await assess(needs, ref, kind="closure")
    assert r.status_code == 201, r.text
    assert r.json()["reassessment_due_on"] is None
    items = (await needs["needs"].get("/needs", headers=PURCHASER)).json()["items"]
    assert [n["status"] for n in items] == ["cancelled"]
    person = (await needs["needs"].get(f"/recipients/{ref}", headers=PURCHASER)).json()
    assert person["status"] == "inactive"


@pytest.mark.parametrize(
    ("region", "people", "required"),
    [
        ("330106001001", 3, 1),  # Zhejiang, < 500 → 1 purchased worker
        ("460105001001", 3, 3),  # Hainan "2+N": 2 + ceil(3 / 1500)
        ("220102001001", 3, None),  # Jilin sets no number
    ],
)
async def test_caseload_per_township_with_the_pack_staffing(
    needs: Platform, region: str, people: int, required: int | None
) -> None:
    for i in range(people):
        await recipient(
            needs,
            headers=OPERATOR,
            region_code=region,
            categories=["tekun", "dibao"] if i == 0 else ["dibao"],
        )
    report = (
        await needs["needs"].get("/caseload", params={"region": region[:6]}, headers=OPERATOR)
    ).json()
    assert len(report) == 1
    town = report[0]
    assert town["township"] == region[:9]
    assert town["recipients"] == people
    assert town["by_category"] == {"dibao": people, "tekun": 1}
    assert town["required_workers"] == required
    outside = await needs["needs"].get("/caseload", params={"region": "33"}, headers=PURCHASER)
    assert outside.status_code == 403


async def test_caseload_cli_report(needs: Platform) -> None:
    from typer.testing import CliRunner

    from services.needs.cli import app

    for _ in range(2):
        await recipient(needs, headers=OPERATOR, region_code="330106001001", categories=["dibao"])
    url = needs.runtime("needs").settings.database_url
    import asyncio

    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["caseload", "--region", "3301", "--database-url", url]
    )
    assert result.exit_code == 0, result.output
    assert "330106001" in result.output and "dibao 2" in result.output
    bad = await asyncio.to_thread(CliRunner().invoke, app, ["caseload", "--region", "x"])
    assert bad.exit_code != 0


async def test_concurrent_need_openings_share_transactions_and_fail_alone(needs: Platform) -> None:
    import asyncio

    refs = [await recipient(needs) for _ in range(5)]
    bodies = [
        {"recipient_ref": refs[i % 5], "service_code": "care", "urgency": 2} for i in range(60)
    ]
    bodies += [{"recipient_ref": "no-such-ref", "service_code": "care", "urgency": 2}] * 10
    bodies += [{"recipient_ref": refs[0], "service_code": "means_survey", "urgency": 2}] * 10
    responses = await asyncio.gather(
        *(needs["needs"].post("/needs", json=b, headers=PURCHASER) for b in bodies)
    )
    codes = [r.status_code for r in responses]
    assert codes.count(201) == 60 and codes.count(422) == 20
    group = needs.runtime("needs").group
    assert group.operations == 60
    assert group.batches < 60  # they really shared transactions
    listing = (await needs["needs"].get("/needs", params={"limit": 500}, headers=PURCHASER)).json()
    assert listing["total"] == 60
    assert {r.json()["id"] for r in responses if r.status_code == 201} == {
        n["id"] for n in listing["items"]
    }
    runtime = needs.runtime("needs")
    while await runtime.relay.publish_pending():
        pass
    info = await runtime.bus.js.stream_info("NEEDS")
    assert info.state.messages == 60  # one event per need opened, none for the refused


async def test_each_need_opened_event_carries_its_own_requests_trace(needs: Platform) -> None:
    """Concurrent openings share group-commit transactions, not traces."""
    import asyncio
    import json

    from sqlalchemy import select

    ref = await recipient(needs)

    def traceparent(i: int) -> str:
        return f"00-{i + 1:032x}-{i + 1:016x}-01"

    responses = await asyncio.gather(
        *(
            needs["needs"].post(
                "/needs",
                json={"recipient_ref": ref, "service_code": "care", "urgency": 2},
                headers={**PURCHASER, "traceparent": traceparent(i)},
            )
            for i in range(20)
        )
    )
    assert [r.status_code for r in responses] == [201] * 20
    runtime = needs.runtime("needs")
    assert runtime.group.batches < 20  # they really shared transactions
    outbox = runtime.tables.outbox
    async with runtime.db.session() as session:
        rows = (await session.execute(select(outbox.c.headers, outbox.c.body))).all()
    trace_of_need = {
        json.loads(body)["need_id"]: json.loads(headers)["traceparent"].split("-")[1]
        for headers, body in rows
    }
    for i, response in enumerate(responses):
        assert trace_of_need[response.json()["id"]] == f"{i + 1:032x}"


async def test_a_takeover_onto_a_charity_resource_keeps_the_need_matched(needs: Platform) -> None:
    from services.needs import events as needs_events

    ref = await recipient(needs)
    r = await needs["needs"].post(
        "/needs",
        json={"recipient_ref": ref, "service_code": "care", "urgency": 3},
        headers=PURCHASER,
    )
    assert r.status_code == 201, r.text
    need_id = r.json()["id"]

    async def apply(verb: str, **data: Any) -> dict[str, Any]:
        event = new_event(
            service="matching", entity="need", verb=verb, data={"need_id": need_id, **data}
        )
        async with needs.runtime("needs").unit_of_work() as uow:
            await needs_events.on_need_moved(uow, event)
            await uow.commit()
        got = await needs["needs"].get(f"/needs/{need_id}", headers=PURCHASER)
        return dict(got.json())

    matched = await apply("matched", match_id="m-1", organisation_id="org-a")
    assert (matched["status"], matched["matched_organisation_id"]) == ("matched", "org-a")
    # The organisation is barred; a charity resource takes the need over.
    moved = await apply("reassigned", match_id="m-2", organisation_id=None, to_resource_id="res-1")
    assert (moved["status"], moved["matched_organisation_id"]) == ("matched", None)
    # Later nobody can take it: back to the pool.
    unplaced = await apply("reassigned", match_id=None, organisation_id=None)
    assert unplaced["status"] == "open"
