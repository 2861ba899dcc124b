"""Single-window intake (一门受理) in the needs service, in-process on a real database and the
session's real nats-server: working-day due dates across holidays, the one-time notice
(一次性告知), region scope, the overdue scan emitting once across concurrent scans, and no
applicant name in events or in the database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from libs.common.auth import Principal, Role
from libs.common.crypto import DecryptionError
from libs.common.errors import InvalidInput
from libs.common.policy import pack_for_region
from services.needs.intake import service as intake_service
from services.needs.intake.jobs import overdue_job, scan_overdue
from services.needs.intake.models import Intake
from services.needs.intake.schemas import IntakeCreate
from tests import factories
from tests.support.platform import Platform, auth

OPERATOR = auth(Role.operator)
PURCHASER = auth(Role.purchaser, region="220102")  # 长春市南关区 county bureau
OTHER_COUNTY = auth(Role.purchaser, region="220104")  # 长春市朝阳区
WINDOW = "220102001"  # a township window in 南关区
OTHER_WINDOW = "220104001"

OVERDUE_SUBJECT = "sa.needs.intake.overdue"
RECEIVED_SUBJECT = "sa.needs.intake.received"


def intake_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "region_code": WINDOW,
        "channel": "window",
        "received_on": "2026-09-30",
        "requested": ["care"],
        "required_documents": ["id_card", "household_register"],
        "provided_documents": ["id_card", "household_register"],
    }
    body.update(overrides)
    return body


@pytest.fixture
async def needs(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    # Event workers off: the tests publish the outbox themselves, so every event is in the
    # stream when they look, and no periodic scan runs behind their back.
    platform = Platform(
        nats_url=nats_url,
        database_url=database_url_factory,
        services=["needs"],
        start_event_workers=False,
    )
    async with platform as p:
        yield p


async def receive(p: Platform, headers: dict[str, str] = PURCHASER, **overrides: Any) -> Any:
    r = await p["needs"].post("/intakes", json=intake_body(**overrides), headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


async def published(p: Platform, subject: str | None = None) -> list[tuple[str, Any, bytes]]:
    """Publish the whole outbox, then every message of the NEEDS stream (subject, headers,
    body), optionally only those on `subject`."""
    runtime = p.runtime("needs")
    while await runtime.relay.publish_pending():
        pass
    async with runtime.db.session() as session:
        assert await runtime.tables.pending_count(session) == 0
    info = await runtime.bus.js.stream_info("NEEDS")
    out = []
    for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
        msg = await runtime.bus.js.get_msg("NEEDS", seq)
        if subject is None or msg.subject == subject:
            out.append((msg.subject or "", msg.headers, msg.data or b""))
    return out


def data_of(messages: list[tuple[str, Any, bytes]]) -> list[dict[str, Any]]:
    return [json.loads(body) for _, _, body in messages]


# --------------------------------------------------------------------------- due dates


@pytest.mark.parametrize(
    ("received_on", "due_on"),
    [
        # Wed 09-30 does not count; 10-01..07 National Day off; Thu 10-08 → 1, Fri 10-09 → 2,
        # Sat 10-10 (调休上班) → 3.
        ("2026-09-30", "2026-10-10"),
        # Fri 10-09 does not count; Sat 10-10 (调休) → 1, Sun off, Mon 10-12 → 2, Tue → 3.
        ("2026-10-09", "2026-10-13"),
    ],
)
async def test_due_date_counts_prc_working_days_across_national_day(
    needs: Platform, received_on: str, due_on: str
) -> None:
    assert pack_for_region(WINDOW).time_limits.intake_working_days == 3  # the Jilin pack
    body = await receive(needs, received_on=received_on)
    assert body["received_on"] == received_on
    assert body["due_on"] == due_on
    assert body["received_by"] == "test-purchaser"  # 首问负责: the official who took it
    assert body["status"] == "received" and body["version"] == 1
    got = (await needs["needs"].get(f"/intakes/{body['id']}", headers=PURCHASER)).json()
    assert got["due_on"] == due_on
    received = data_of(await published(needs, RECEIVED_SUBJECT))
    assert received == [
        {
            "intake_id": body["id"],
            "region_code": WINDOW,
            "channel": "window",
            "received_on": received_on,
            "due_on": due_on,
            "missing_documents": 0,
        }
    ]


async def test_a_year_the_calendar_does_not_know_is_422_never_a_guess(needs: Platform) -> None:
    # chinese-calendar 1.11 knows 2004–2026: a 2003 receipt has no official calendar.
    r = await needs["needs"].post(
        "/intakes", json=intake_body(received_on="2003-06-02"), headers=PURCHASER
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert "2003" in problem["detail"] and "working-day calendar" in problem["detail"]
    assert problem["calendar_year"] == 2003
    assert [e["field"] for e in problem["errors"]] == ["body.received_on"]
    listing = (await needs["needs"].get("/intakes", headers=PURCHASER)).json()
    assert listing["total"] == 0  # nothing recorded with a guessed date
    assert await published(needs) == []  # and nothing announced

    # A count that runs into a year the calendar lacks (received 12-30, day 2 is 2027-01-01)
    # is refused the same way; "today" is moved to the end of 2026 for the check.
    runtime = needs.runtime("needs")
    actor = Principal(subject="test-purchaser", role=Role.purchaser, region="220102")
    data = IntakeCreate(
        region_code=WINDOW, channel="online", received_on=date(2026, 12, 30), requested=["care"]
    )
    with pytest.raises(InvalidInput) as caught:
        async with runtime.unit_of_work() as uow:
            await intake_service.receive_intake(
                uow=uow,
                data=data,
                actor=actor,
                cipher=needs.apps["needs"].state.personal_data.cipher,
                today=date(2026, 12, 31),
            )
    assert caught.value.extra["calendar_year"] == 2027
    assert caught.value.errors[0].field == "body.received_on"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"received_on": "2099-01-05"}, "body.received_on"),  # not received yet
        ({"region_code": "220102"}, "body.region_code"),  # a county is not a window
        ({"channel": "phone"}, "body.channel"),
        ({"requested": []}, "body.requested"),
        ({"required_documents": ["id_card", "id_card"]}, "body.required_documents"),
        ({"applicant_recipient_ref": "no-such-recipient"}, "body.applicant_recipient_ref"),
    ],
)
async def test_invalid_intakes_are_refused_naming_the_field(
    needs: Platform, override: dict[str, Any], field: str
) -> None:
    r = await needs["needs"].post("/intakes", json=intake_body(**override), headers=PURCHASER)
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


# --------------------------------------------------------------------------- one-time notice


async def test_one_time_notice_lists_every_missing_document_in_order(needs: Platform) -> None:
    required = ["id_card", "household_register", "income_proof", "medical_record", "photo"]
    body = await receive(
        needs, required_documents=required, provided_documents=["photo", "id_card"]
    )
    assert body["missing_documents"] == ["household_register", "income_proof", "medical_record"]
    notice = body["notice"]
    assert "一次性告知" in notice and "共3项" in notice
    positions = [notice.index(f"{i}. {doc}") for i, doc in enumerate(body["missing_documents"], 1)]
    assert positions == sorted(positions)  # all listed at once, in the required order
    assert "photo" not in notice and "id_card" not in notice
    assert "2026-10-10" in notice  # the window's time limit
    received = data_of(await published(needs, RECEIVED_SUBJECT))
    assert received[0]["missing_documents"] == 3

    intake = f"/intakes/{body['id']}"
    r = await needs["needs"].post(
        f"{intake}/documents", json={"documents": ["income_proof"]}, headers=PURCHASER
    )
    assert r.status_code == 200, r.text
    assert r.json()["missing_documents"] == ["household_register", "medical_record"]
    assert "共2项" in r.json()["notice"] and "income_proof" not in r.json()["notice"]
    assert r.json()["provided_documents"] == ["photo", "id_card", "income_proof"]
    assert r.json()["version"] == 2

    early = await needs["needs"].post(f"{intake}/complete", headers=PURCHASER)
    assert early.status_code == 409  # cannot close while the notice is still open
    assert early.json()["missing_documents"] == ["household_register", "medical_record"]

    again = await needs["needs"].post(
        f"{intake}/documents", json={"documents": ["income_proof"]}, headers=PURCHASER
    )
    assert again.json()["version"] == 2  # nothing new brought, nothing changed

    r = await needs["needs"].post(
        f"{intake}/documents",
        json={"documents": ["medical_record", "household_register"]},
        headers=PURCHASER,
    )
    assert r.json()["missing_documents"] == []
    assert r.json()["notice"].startswith("材料齐全")

    routed = await needs["needs"].post(
        f"{intake}/route", json={"routed_to": "县民政局社会救助股"}, headers=PURCHASER
    )
    assert routed.status_code == 200, routed.text
    assert routed.json()["status"] == "routed"
    assert routed.json()["routed_to"] == "县民政局社会救助股"
    assert routed.json()["received_by"] == "test-purchaser"  # first contact stays answerable

    done = await needs["needs"].post(f"{intake}/complete", headers=PURCHASER)
    assert done.status_code == 200 and done.json()["status"] == "completed"
    late = await needs["needs"].post(
        f"{intake}/documents", json={"documents": ["photo2"]}, headers=PURCHASER
    )
    assert late.status_code == 409  # a closed intake no longer changes
    assert late.json()["status"] == 409 and late.json()["intake_status"] == "completed"
    got = (await needs["needs"].get(intake, headers=PURCHASER)).json()
    assert got["status"] == "completed" and got["missing_documents"] == []


# --------------------------------------------------------------------------- region scope


async def test_region_scope_hides_other_counties_intakes(needs: Platform) -> None:
    mine = await receive(needs)
    theirs = await receive(needs, headers=OPERATOR, region_code=OTHER_WINDOW)
    client = needs["needs"]
    assert (await client.get(f"/intakes/{mine['id']}", headers=PURCHASER)).status_code == 200
    assert (await client.get(f"/intakes/{theirs['id']}", headers=PURCHASER)).status_code == 404
    assert (await client.get(f"/intakes/{theirs['id']}", headers=OTHER_COUNTY)).status_code == 200
    for action, payload in (
        ("documents", {"documents": ["x"]}),
        ("route", {"routed_to": "dept"}),
        ("complete", None),
        ("reject", {"reason": "不属于本窗口受理范围"}),
    ):
        r = await client.post(f"/intakes/{theirs['id']}/{action}", json=payload, headers=PURCHASER)
        assert r.status_code == 404, (action, r.text)
    create = await client.post(
        "/intakes", json=intake_body(region_code=OTHER_WINDOW), headers=PURCHASER
    )
    assert create.status_code == 404  # may not record at another county's window

    def ids(listing: Any) -> set[str]:
        return {i["id"] for i in listing.json()["items"]}

    assert ids(await client.get("/intakes", headers=PURCHASER)) == {mine["id"]}
    assert ids(await client.get("/intakes", params={"region": "22"}, headers=PURCHASER)) == {
        mine["id"]
    }
    outside = await client.get("/intakes", params={"region": "220104"}, headers=PURCHASER)
    assert outside.json()["total"] == 0
    assert ids(await client.get("/intakes", headers=OPERATOR)) == {mine["id"], theirs["id"]}
    ministry = await client.get("/intakes", headers=auth(Role.ministry))
    assert ministry.status_code == 403


# --------------------------------------------------------------------------- overdue scan


async def test_overdue_scan_emits_once_per_intake_even_when_scans_run_concurrently(
    needs: Platform,
) -> None:
    client = needs["needs"]
    # The scan's "today" is 2026-10-13.
    late_3 = await receive(needs, received_on="2026-09-30")  # due 10-10: 3 days late
    late_1 = await receive(needs, received_on="2026-10-08")  # due 10-12: 1 day late
    due_today = await receive(needs, received_on="2026-10-09")  # due 10-13: still in time
    completed = await receive(needs, received_on="2026-09-30")
    rejected = await receive(needs, received_on="2026-09-30")
    assert (await client.post(f"/intakes/{completed['id']}/complete", headers=PURCHASER)).is_success
    r = await client.post(
        f"/intakes/{rejected['id']}/reject", json={"reason": "申请人撤回"}, headers=PURCHASER
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    runtime = needs.runtime("needs")
    today = date(2026, 10, 13)

    counts = await asyncio.gather(
        scan_overdue(runtime, today=today), scan_overdue(runtime, today=today)
    )
    assert sum(counts) == 2
    assert await scan_overdue(runtime, today=today) == 0  # already notified

    overdue = {d["intake_id"]: d for d in data_of(await published(needs, OVERDUE_SUBJECT))}
    assert len(data_of(await published(needs, OVERDUE_SUBJECT))) == 2  # no duplicates
    assert set(overdue) == {late_3["id"], late_1["id"]}
    assert overdue[late_3["id"]] == {
        "intake_id": late_3["id"],
        "region_code": WINDOW,
        "channel": "window",
        "due_on": "2026-10-10",
        "missing_documents": 0,
        "days_overdue": 3,
    }
    assert overdue[late_1["id"]]["days_overdue"] == 1
    for quiet in (due_today, completed, rejected):
        assert quiet["id"] not in overdue

    for intake, notified in ((late_3, True), (late_1, True), (due_today, False)):
        got = (await client.get(f"/intakes/{intake['id']}", headers=PURCHASER)).json()
        assert (got["overdue_notified_at"] is not None) is notified

    # Days later the one still open is overdue too, and only it is notified now.
    assert await scan_overdue(runtime, today=date(2026, 10, 20)) == 1
    later = data_of(await published(needs, OVERDUE_SUBJECT))
    assert sorted(d["intake_id"] for d in later) == sorted(
        [late_3["id"], late_1["id"], due_today["id"]]
    )
    # The list filter uses the real today, long after all these due dates.
    listing = (await client.get("/intakes", params={"overdue": "true"}, headers=PURCHASER)).json()
    assert {i["id"] for i in listing["items"]} == {late_3["id"], late_1["id"], due_today["id"]}
    assert all(i["overdue"] for i in listing["items"])


async def test_replicas_that_saw_the_same_candidates_notify_each_intake_once(
    needs: Platform,
) -> None:
    # Two replicas read the candidates before either marks anything: the conditional UPDATE
    # alone must stop the second from notifying again.
    ids = {(await receive(needs, received_on="2026-09-30"))["id"] for _ in range(3)}
    runtime = needs.runtime("needs")
    today = date(2026, 10, 20)
    first = await intake_service.overdue_candidates(db=runtime.db, today=today)
    second = await intake_service.overdue_candidates(db=runtime.db, today=today)
    assert set(first) == set(second) == ids
    results = []
    for intake_id in [*first, *second]:
        async with runtime.unit_of_work() as uow:
            results.append(
                await intake_service.mark_overdue(uow=uow, intake_id=intake_id, today=today)
            )
    assert results == [True] * 3 + [False] * 3
    assert len(await published(needs, OVERDUE_SUBJECT)) == 3


async def test_overdue_job_is_a_periodic_job_running_the_scan(needs: Platform) -> None:
    await receive(needs, received_on="2026-09-30")
    assert overdue_job.name == "intake-overdue" and overdue_job.interval_seconds == 60
    await overdue_job.run(needs.runtime("needs"))  # today in China: long after 2026-10-10
    assert len(await published(needs, OVERDUE_SUBJECT)) == 1


# --------------------------------------------------------------------------- personal data


async def test_events_and_database_carry_no_applicant_name(needs: Platform) -> None:
    name = "欧阳秀英"
    rec = factories.recipient()
    r = await needs["needs"].post("/recipients", json=rec, headers=PURCHASER)
    assert r.status_code == 201, r.text
    body = await receive(
        needs,
        applicant_name=name,
        applicant_recipient_ref=r.json()["ref"],
        channel="grid_worker",
        required_documents=["id_card", "income_proof"],
        provided_documents=[],
    )
    assert body["applicant_name_masked"] == "欧***"
    assert body["applicant_recipient_ref"] == r.json()["ref"]
    assert name not in json.dumps(body, ensure_ascii=False)
    runtime = needs.runtime("needs")
    assert await scan_overdue(runtime, today=date(2026, 10, 20)) == 1

    messages = await published(needs)
    intake_messages = [m for m in messages if m[0].startswith("sa.needs.intake.")]
    assert {m[0] for m in intake_messages} == {RECEIVED_SUBJECT, OVERDUE_SUBJECT}
    for subject, headers, raw in intake_messages:
        assert name.encode() not in raw and name not in repr(headers), subject
        assert rec["id_number"].encode() not in raw
        data = json.loads(raw)
        assert "applicant_name" not in data and "applicant_recipient_ref" not in data
        assert set(data) <= {
            "intake_id",
            "region_code",
            "channel",
            "received_on",
            "due_on",
            "missing_documents",
            "days_overdue",
        }

    # Sealed at rest: neither the database file nor any row holds the name in clear.
    db = runtime.db
    if db.is_sqlite:
        path = Path(db.engine.url.database or "")
        stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    else:
        stored = b""
        async with db.session() as s:
            for row in (await s.execute(Intake.__table__.select())).all():  # type: ignore[attr-defined]
                stored += repr(tuple(row)).encode()
    assert name.encode() not in stored
    async with db.session() as s:
        row = await s.get(Intake, body["id"])
    assert row is not None and row.applicant_name_enc is not None
    cipher = needs.apps["needs"].state.personal_data.cipher
    assert intake_service.open_applicant_name(cipher, row.id, row.applicant_name_enc) == name
    # Bound to its intake: the same token does not open under another intake's context.
    with pytest.raises(DecryptionError):
        intake_service.open_applicant_name(cipher, "another-intake", row.applicant_name_enc)
