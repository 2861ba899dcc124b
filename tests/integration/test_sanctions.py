"""Violations, sanctions, the public dishonesty list, appeals and credit repair in the credit
service, in-process on a real database and the session's real nats-server, with a frozen
clock stepped over windows and periods instead of sleeping.

Shown here: the due-process window (decision refused before `response_due`, allowed after
it or after a response; working days across National Day); each decision's status, version
and event; a ban lifted exactly on its end date (listed and banned the day before, gone and
admissible on the end date, before and after the expiry job); repair refused before the
minimum publication period and granted after; an appeal decided by the same operator
refused; the public list never showing personal data; the joint-punishment notice.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from libs.common.auth import Role
from libs.common.clock import FrozenClock
from libs.common.events import new_event
from libs.common.policy import pack_for_region
from services.credit import service as credit_service
from services.credit.models import BlacklistEntry, OrganisationRecord, Sanction
from services.credit.sanctions.jobs import expire_listings, run_periods
from tests import factories
from tests.support.platform import Platform, eventually, token

COUNTY = "220102"  # 长春市南关区, Jilin (joint punishment on)
OTHER_COUNTY = "220104"
ZHEJIANG_COUNTY = "330102"


def headers(
    role: Role, region: str = "", org_id: str | None = None, subject: str | None = None
) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, region, org_id, subject=subject)}"}


OPERATOR = headers(Role.operator, "22", subject="operator-li")
OTHER_OPERATOR = headers(Role.operator, "22", subject="operator-zhao")
PURCHASER = headers(Role.purchaser, COUNTY, subject="purchaser-nanguan")
OTHER_PURCHASER = headers(Role.purchaser, OTHER_COUNTY, subject="purchaser-chaoyang")


def china(y: int, m: int, d: int, hour: int = 10) -> datetime:
    """That day at `hour` o'clock in China, as an aware UTC instant."""
    return datetime(y, m, d, hour, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture
async def credit(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    # Event workers off: no job runs behind the test's back, and the test publishes the
    # outbox itself to read what was emitted.
    platform = Platform(
        nats_url=nats_url,
        database_url=database_url_factory,
        services=["credit"],
        start_event_workers=False,
    )
    async with platform as p:
        freeze(p, china(2026, 11, 23))
        yield p


def freeze(p: Platform, now: datetime) -> FrozenClock:
    clock = FrozenClock(now)
    p.apps["credit"].state.clock = clock
    p.runtime("credit").clock = clock
    return clock


def clock_of(p: Platform) -> FrozenClock:
    clock: FrozenClock = p.apps["credit"].state.clock
    return clock


async def seed_org(
    p: Platform, *, region: str = COUNTY, uscc: str | None = None, name: str | None = None
) -> OrganisationRecord:
    """An organisation as credit learns it from `organisation.registered`, admitted by the
    same use case the consumer runs."""
    pack = pack_for_region(region)
    record = OrganisationRecord(
        organisation_id=str(uuid.uuid4()),
        uscc=uscc or factories.credit_code(),
        name=name or "长春市南关区阳光社会工作服务中心",
        kind="social_organisation",
        region_code=region,
        pack=pack.province,
        qualifications={c.code: True for c in pack.admission_conditions},
        updated_at=datetime.now(UTC),
    )
    runtime = p.runtime("credit")
    async with runtime.unit_of_work() as uow:
        review = await credit_service.admit_new_organisation(
            uow=uow, record=record, today=date(2026, 11, 23)
        )
        await uow.commit()
    assert review.outcome == "admitted", review.reasons
    return record


def org_headers(record: OrganisationRecord) -> dict[str, str]:
    return headers(Role.organisation, org_id=record.organisation_id, subject="org-user")


def violation_body(record: OrganisationRecord, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "organisation_id": record.organisation_id,
        "kind": "falsification",
        "severity": "serious",
        "description": "服务记录造假：虚报上门照料次数",
        "evidence": [{"kind": "audit", "reference": "审计报告 2026-118", "note": "抽查 20 户"}],
    }
    body.update(overrides)
    return body


async def record_violation(
    p: Platform, record: OrganisationRecord, by: dict[str, str] = PURCHASER, **overrides: Any
) -> dict[str, Any]:
    r = await p["credit"].post("/violations", json=violation_body(record, **overrides), headers=by)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def respond(p: Platform, record: OrganisationRecord, violation_id: str) -> None:
    r = await p["credit"].post(
        f"/violations/{violation_id}/response",
        json={"response": "我们已核查并纠正了记录，情况说明见附件。"},
        headers=org_headers(record),
    )
    assert r.status_code == 200, r.text


async def decide(
    p: Platform, violation_id: str, by: dict[str, str] = OPERATOR, **body: Any
) -> dict[str, Any]:
    r = await p["credit"].post(f"/violations/{violation_id}/decision", json=body, headers=by)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def sanctioned(
    p: Platform, record: OrganisationRecord, *, severity: str = "serious", **decision: Any
) -> dict[str, Any]:
    """Record a violation, let the organisation respond, decide."""
    v = await record_violation(p, record, severity=severity)
    await respond(p, record, v["id"])
    return await decide(p, v["id"], **decision)


async def status_of(p: Platform, organisation_id: str) -> tuple[str, int]:
    async with p.runtime("credit").db.session() as session:
        record = await session.get(OrganisationRecord, organisation_id)
        assert record is not None
        return record.status, record.decision_version


async def published(p: Platform, prefix: str = "sa.credit.") -> list[tuple[str, dict[str, Any]]]:
    """Publish the whole outbox, then every CREDIT message (subject, data) under `prefix`."""
    runtime = p.runtime("credit")
    while await runtime.relay.publish_pending():
        pass
    info = await runtime.bus.js.stream_info("CREDIT")
    out = []
    for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
        msg = await runtime.bus.js.get_msg("CREDIT", seq)
        if (msg.subject or "").startswith(prefix):
            out.append((msg.subject or "", json.loads(msg.data or b"{}")))
    return out


async def public_list(p: Platform, **params: Any) -> dict[str, Any]:
    r = await p["credit"].get("/public/dishonesty-list", params=params)  # no login
    assert r.status_code == 200, r.text
    return dict(r.json())


async def admission_outcome(
    p: Platform, uscc: str, today: date | None = None
) -> tuple[str, list[Any]]:
    """Admission of a new organisation with this credit code, reviewed on `today` (by
    default the day the credit runtime's clock says, as the event handler reviews it)."""
    pack = pack_for_region(COUNTY)
    record = OrganisationRecord(
        organisation_id=str(uuid.uuid4()),
        uscc=uscc,
        name="同一信用代码的新登记",
        kind="social_organisation",
        region_code=COUNTY,
        pack=pack.province,
        qualifications={c.code: True for c in pack.admission_conditions},
        updated_at=datetime.now(UTC),
    )
    async with p.runtime("credit").unit_of_work() as uow:
        review = await credit_service.admit_new_organisation(uow=uow, record=record, today=today)
        await uow.commit()
    return review.outcome, review.reasons


# ------------------------------------------------------------------------------ due process


async def test_due_process_window_decision_refused_before_response_due_allowed_after(
    credit: Platform,
) -> None:
    """Due-process window enforced, counted in working days across National Day."""
    clock = freeze(credit, china(2026, 9, 30))  # Wednesday before the 10-01..07 holiday
    org = await seed_org(credit)
    v = await record_violation(credit, org)
    # 10 working days: 10-08, 10-09, 10-10 (调休上班), 10-12 … 10-16, 10-19, 10-20.
    assert v["response_due"] == "2026-10-20"
    assert v["state"] == "notified" and v["response_open"] and not v["decision_open"]
    assert any("response_window_working_days = 10" in rule for rule in v["rules"])

    for day in (date(2026, 10, 8), date(2026, 10, 20)):  # inside the window, due day included
        clock.set(china(day.year, day.month, day.day, 17))
        r = await credit["credit"].post(
            f"/violations/{v['id']}/decision",
            json={"sanction": "warning", "reason": "服务记录造假，予以警告"},
            headers=OPERATOR,
        )
        assert r.status_code == 409, r.text
        problem = r.json()
        assert problem["response_due"] == "2026-10-20"
        assert "陈述申辩" in problem["detail"]
        assert problem["rules"][0].startswith("sanctions.response_window_working_days = 10")
        assert "吉民发〔2020〕44号 §四(四)4" in problem["rules"]
    assert (await status_of(credit, org.organisation_id)) == ("admitted", 1)  # nothing changed

    clock.set(china(2026, 10, 21, 9))  # the first day after the window
    decided = await decide(credit, v["id"], sanction="warning", reason="服务记录造假，予以警告")
    assert decided["violation"]["state"] == "decided"
    sanction = decided["sanction"]
    assert sanction["kind"] == "warning" and sanction["legal_basis"] == [
        "吉民发〔2020〕44号 §四(四)4"
    ]
    assert sanction["starts_on"] == "2026-10-21"
    # A warning changes no status, so no version either.
    assert (await status_of(credit, org.organisation_id)) == ("admitted", 1)
    again = await credit["credit"].post(
        f"/violations/{v['id']}/decision",
        json={"sanction": "exit", "reason": "再次作出退出决定"},
        headers=OPERATOR,
    )
    assert again.status_code == 409

    events = await published(credit)
    recorded = [d for s, d in events if s == "sa.credit.violation.recorded"]
    assert recorded == [
        {
            "violation_id": v["id"],
            "organisation_id": org.organisation_id,
            "contract_id": None,
            "kind": "falsification",
            "severity": "serious",
            "response_due": "2026-10-20",
            "notified_at": recorded[0]["notified_at"],
        }
    ]
    warned = [d for s, d in events if s == "sa.credit.organisation.warned"]
    assert len(warned) == 1 and warned[0]["decision_version"] == 1
    assert warned[0]["reason"] == "服务记录造假，予以警告"
    assert warned[0]["sanction_id"] == sanction["id"]


async def test_after_a_response_the_decision_may_come_at_once_and_late_responses_are_refused(
    credit: Platform,
) -> None:
    clock = clock_of(credit)
    org = await seed_org(credit)
    other = await seed_org(credit)
    v = await record_violation(credit, org)
    assert v["response_due"] == "2026-12-07"
    # Another organisation cannot even see it.
    r = await credit["credit"].post(
        f"/violations/{v['id']}/response",
        json={"response": "不是我们的违规记录。"},
        headers=org_headers(other),
    )
    assert r.status_code == 404
    await respond(credit, org, v["id"])
    seen = (await credit["credit"].get(f"/violations/{v['id']}", headers=org_headers(org))).json()
    assert seen["state"] == "responded" and seen["decision_open"] and not seen["response_open"]
    r = await credit["credit"].post(
        f"/violations/{v['id']}/response",
        json={"response": "补充说明第二次。"},
        headers=org_headers(org),
    )
    assert r.status_code == 409  # one response
    decided = await decide(
        credit,
        v["id"],
        sanction="rectification",
        reason="限期整改服务记录",
        deadline="2027-01-15",
    )
    assert decided["sanction"]["deadline"] == "2027-01-15"

    late = await record_violation(credit, org, kind="breach_of_contract", severity="minor")
    clock.set(china(2026, 12, 8))  # the day after its due date (12-07)
    r = await credit["credit"].post(
        f"/violations/{late['id']}/response",
        json={"response": "迟到的陈述申辩。"},
        headers=org_headers(org),
    )
    assert r.status_code == 409, r.text
    assert r.json()["response_due"] == "2026-12-07"
    assert r.json()["rules"][0].startswith("sanctions.response_window_working_days")
    events = [s for s, _ in await published(credit)]
    assert events.count("sa.credit.violation.responded") == 1
    assert "sa.credit.organisation.rectification_ordered" in events


async def test_region_scope_and_roles(credit: Platform) -> None:
    org = await seed_org(credit)
    r = await credit["credit"].post(
        "/violations", json=violation_body(org), headers=OTHER_PURCHASER
    )
    assert r.status_code == 404  # another county's organisation does not exist for it
    v = await record_violation(credit, org)
    assert (
        await credit["credit"].get(f"/violations/{v['id']}", headers=OTHER_PURCHASER)
    ).status_code == 404
    listing = (await credit["credit"].get("/violations", headers=OTHER_PURCHASER)).json()
    assert listing["total"] == 0
    mine = (await credit["credit"].get("/violations", headers=PURCHASER)).json()
    assert [x["id"] for x in mine["items"]] == [v["id"]]
    # Purchasers report; only operators decide.
    r = await credit["credit"].post(
        f"/violations/{v['id']}/decision",
        json={"sanction": "warning", "reason": "采购方不能作出处理决定"},
        headers=PURCHASER,
    )
    assert r.status_code == 403
    # Bad input names the field and changes nothing.
    r = await credit["credit"].post(
        f"/violations/{v['id']}/decision",
        json={"sanction": "rectification", "reason": "缺少整改期限"},
        headers=OPERATOR,
    )
    assert r.status_code == 422
    r = await credit["credit"].post(
        "/violations", json=violation_body(org, evidence=[]), headers=PURCHASER
    )
    assert r.status_code == 422
    assert "body.evidence" in [e["field"] for e in r.json()["errors"]]
    assert (await credit["credit"].get("/violations", headers=PURCHASER)).json()["total"] == 1


async def test_filters_and_sort_with_a_stable_tie_breaker(credit: Platform) -> None:
    org = await seed_org(credit)
    ids = [
        (await record_violation(credit, org, kind=kind, severity="minor"))["id"]
        for kind in ("subcontracting", "failure_to_deliver", "subcontracting")
    ]
    page = (
        await credit["credit"].get(
            "/violations",
            params={"kind": "subcontracting", "sort": "recorded_at", "limit": 1},
            headers=OPERATOR,
        )
    ).json()
    assert page["total"] == 2
    # Same frozen instant: the id decides the order.
    assert page["items"][0]["id"] == min(ids[0], ids[2])
    bad = await credit["credit"].get("/violations", params={"sort": "name"}, headers=OPERATOR)
    assert bad.status_code == 422


# ------------------------------------------------------------------------------ sanctions


async def test_suspension_and_exit_set_status_bump_the_version_and_suspension_ends_by_itself(
    credit: Platform,
) -> None:
    clock = clock_of(credit)
    org = await seed_org(credit)
    decided = await sanctioned(
        credit, org, severity="general", sanction="suspension", months=2, reason="服务不达标"
    )
    assert decided["sanction"]["ends_on"] == "2027-01-23"
    assert (await status_of(credit, org.organisation_id)) == ("suspended", 2)
    # A lighter sanction under a heavier one would not take effect.
    v = await record_violation(credit, org, severity="minor")
    await respond(credit, org, v["id"])

    clock.set(china(2027, 1, 22, 23))  # the last suspended day, late evening
    assert await run_periods(credit.runtime("credit")) == 0
    assert (await status_of(credit, org.organisation_id)) == ("suspended", 2)
    clock.set(china(2027, 1, 23, 0))  # midnight in China on the end date
    assert await run_periods(credit.runtime("credit")) == 1
    assert await run_periods(credit.runtime("credit")) == 0  # once only
    assert (await status_of(credit, org.organisation_id)) == ("admitted", 3)

    decided = await decide(credit, v["id"], sanction="exit", reason="整改后仍不能履约，退出")
    assert decided["sanction"]["ends_on"] is None
    assert (await status_of(credit, org.organisation_id)) == ("exited", 4)
    verbs = [
        (s.rsplit(".", 1)[1], d["decision_version"])
        for s, d in await published(credit, "sa.credit.organisation.")
        if s != "sa.credit.organisation.admitted"
    ]
    assert verbs == [("suspended", 2), ("reinstated", 3), ("exited", 4)]
    completed = [d for s, d in await published(credit, "sa.credit.sanction.completed")]
    assert [d["kind"] for d in completed] == ["suspension"]


async def test_decisions_and_upheld_appeals_move_the_score_with_their_reason(
    credit: Platform,
) -> None:
    org = await seed_org(credit)
    before = (await credit["credit"].get(f"/scores/{org.organisation_id}", headers=OPERATOR)).json()
    assert before["provisional"] and before["history"] == []
    base = before["current"]["score"]
    decided = await sanctioned(credit, org, sanction="exit", reason="转包服务，情节严重")
    detail = (await credit["credit"].get(f"/scores/{org.organisation_id}", headers=OPERATOR)).json()
    [change] = detail["history"]
    assert (change["cause"], change["cause_id"]) == ("violation", decided["violation"]["id"])
    assert "转包服务" in change["reason"] and change["new_score"] < base
    filed = await credit["credit"].post(
        f"/sanctions/{decided['sanction']['id']}/appeals",
        json={"grounds": "转包系误认：合作方为本机构分支，有登记证明。"},
        headers=org_headers(org),
    )
    assert filed.status_code == 201, filed.text
    upheld = await credit["credit"].post(
        f"/appeals/{filed.json()['id']}/decision",
        json={"outcome": "upheld", "reason": "证据不足"},
        headers=headers(Role.operator, subject="operator-wang"),
    )
    assert upheld.status_code == 200, upheld.text
    history = (
        await credit["credit"].get(f"/scores/{org.organisation_id}", headers=OPERATOR)
    ).json()["history"]
    assert [c["cause"] for c in history] == ["violation", "appeal"]
    assert history[1]["new_score"] == base  # an overturned sanction deducts nothing
    changed = [d for _, d in await published(credit, "sa.credit.score.changed")]
    assert [d["cause"] for d in changed] == ["violation", "appeal"]


async def test_a_suspension_under_a_ban_is_refused(credit: Platform) -> None:
    org = await seed_org(credit)
    await sanctioned(credit, org, sanction="blacklist", reason="弄虚作假，情节严重")
    v = await record_violation(credit, org, severity="minor")
    await respond(credit, org, v["id"])
    r = await credit["credit"].post(
        f"/violations/{v['id']}/decision",
        json={"sanction": "suspension", "months": 3, "reason": "暂停承接资格"},
        headers=OPERATOR,
    )
    assert r.status_code == 409 and r.json()["organisation_status"] == "blacklisted"
    assert (await status_of(credit, org.organisation_id)) == ("blacklisted", 2)


async def test_ban_expiry_exactly_at_the_end_date(credit: Platform) -> None:
    """ends_on is the first free day: listed and banned through the day before, lifted on it
    (public list, admission, status), before and after the expiry job."""
    clock = clock_of(credit)
    org = await seed_org(credit)
    decided = await sanctioned(credit, org, sanction="blacklist", reason="弄虚作假，情节严重")
    entry = decided["blacklist_entry"]
    assert (entry["starts_on"], entry["ban_until"], entry["last_day"]) == (
        "2026-11-23",
        "2029-11-23",  # serious: 36 months (政府采购法 第七十七条: 1–3 years)
        "2029-11-22",
    )
    assert (await status_of(credit, org.organisation_id)) == ("blacklisted", 2)

    clock.set(china(2029, 11, 22, 23))  # the last banned day, 23:00 in China
    listed = await public_list(credit)
    assert [e["uscc"] for e in listed["items"]] == [org.uscc]
    assert listed["items"][0]["last_day"] == "2029-11-22"
    outcome, reasons = await admission_outcome(credit, org.uscc)  # the runtime's day
    assert outcome == "rejected"
    assert [r["condition"] for r in reasons if not r["met"]] == ["not_banned"]
    assert await expire_listings(credit.runtime("credit")) == 0

    clock.set(china(2029, 11, 23, 0))  # midnight: the end date has begun
    # Gone from the public list before the job has run…
    assert (await public_list(credit))["total"] == 0
    # …and the same credit code may be admitted again.
    outcome, _ = await admission_outcome(credit, org.uscc)
    assert outcome == "admitted"
    assert await expire_listings(credit.runtime("credit")) == 1
    assert await expire_listings(credit.runtime("credit")) == 0
    assert (await status_of(credit, org.organisation_id)) == ("admitted", 3)
    async with credit.runtime("credit").db.session() as session:
        row = await session.get(BlacklistEntry, entry["id"])
        assert row is not None and row.state == "expired"
        assert row.lifted_on == date(2029, 11, 23)
    events = await published(credit)
    expired = [d for s, d in events if s == "sa.credit.blacklist.expired"]
    assert len(expired) == 1 and expired[0]["ends_on"] == "2029-11-23"
    reinstated = [d for s, d in events if s == "sa.credit.organisation.reinstated"]
    assert [d["decision_version"] for d in reinstated] == [3]
    assert reinstated[0]["cause"] == "blacklist_expired"


async def test_a_ban_ending_under_an_exit_leaves_the_organisation_exited(
    credit: Platform,
) -> None:
    """Back to admitted only if no other sanction is in force."""
    clock = clock_of(credit)
    org = await seed_org(credit)
    await sanctioned(credit, org, sanction="exit", reason="不能按合同提供服务，退出")
    decided = await sanctioned(
        credit, org, severity="minor", sanction="blacklist", reason="退出后仍弄虚作假"
    )
    assert decided["blacklist_entry"]["ban_until"] == "2027-11-23"
    assert (await status_of(credit, org.organisation_id)) == ("blacklisted", 3)
    clock.set(china(2027, 11, 23, 0))
    assert await expire_listings(credit.runtime("credit")) == 1
    assert (await status_of(credit, org.organisation_id)) == ("exited", 4)
    verbs = [
        (s.rsplit(".", 1)[1], d["decision_version"])
        for s, d in await published(credit, "sa.credit.organisation.")
    ]
    assert verbs[-3:] == [("exited", 2), ("blacklisted", 3), ("exited", 4)]
    assert (await public_list(credit))["total"] == 0


async def test_joint_punishment_notice_only_where_the_pack_says(credit: Platform) -> None:
    jilin = await seed_org(credit)
    zhejiang = await seed_org(credit, region=ZHEJIANG_COUNTY, name="杭州市上城区某社会工作服务社")
    await sanctioned(credit, jilin, severity="general", sanction="blacklist", reason="违背合同")
    zj_operator = headers(Role.operator, "33", subject="operator-zj")
    v = await record_violation(credit, zhejiang, by=zj_operator, severity="general")
    await respond(credit, zhejiang, v["id"])
    await decide(credit, v["id"], by=zj_operator, sanction="blacklist", reason="违背合同")
    notices = [d for _, d in await published(credit, "sa.credit.joint_punishment.notified")]
    assert len(notices) == 1  # Jilin's pack names joint punishment; Zhejiang's does not
    notice = notices[0]
    assert notice["uscc"] == jilin.uscc and notice["name"] == jilin.name
    assert notice["violation"] == "弄虚作假"
    assert notice["legal_basis"] == [
        "吉民发〔2020〕44号 §四(四)4",
        "中华人民共和国政府采购法 第七十七条",
    ]
    assert notice["sanction"].startswith("列入失信名单")
    assert notice["period"] == {
        "starts_on": "2026-11-23",
        "ends_on": "2028-11-23",
        "last_day": "2028-11-22",
    }
    assert notice["deciding_authority"] == "吉林省民政厅"


async def test_public_list_never_contains_personal_data(credit: Platform) -> None:
    org = await seed_org(credit)
    person, id_number, phone = "王小明", factories.resident_id(), "13912345678"
    v = await record_violation(
        credit,
        org,
        description=f"护理员{person}（身份证 {id_number}，电话 {phone}）伪造服务签字",
        evidence=[{"kind": "statement", "reference": f"{person} 笔录", "note": phone}],
    )
    await respond(credit, org, v["id"])
    await decide(credit, v["id"], sanction="blacklist", reason=f"{person}伪造签字，情节严重")
    # Officials see the reason; the public does not.
    internal = await credit["credit"].get("/blacklist", headers=OPERATOR)
    assert person in internal.text
    assert (await credit["credit"].get("/blacklist")).status_code == 401

    r = await credit["credit"].get("/public/dishonesty-list")
    assert r.status_code == 200, r.text
    for secret in (person, id_number, phone, "伪造", "operator-li", org.organisation_id):
        assert secret not in r.text
    body = r.json()
    assert body["total"] == 1
    assert set(body["items"][0]) == {
        "entry_id",
        "name",
        "uscc",
        "violation_kind",
        "violation",
        "legal_basis",
        "sanction",
        "starts_on",
        "ends_on",
        "last_day",
        "deciding_authority",
    }
    item = body["items"][0]
    assert (item["name"], item["uscc"], item["violation"]) == (org.name, org.uscc, "弄虚作假")
    by_code = await public_list(credit, uscc=org.uscc)
    assert by_code["total"] == 1
    assert (await public_list(credit, uscc=factories.credit_code()))["total"] == 0


async def test_direct_ban_from_another_authority_and_no_second_ban_in_force(
    credit: Platform,
) -> None:
    org = await seed_org(credit)
    body = {
        "organisation_id": org.organisation_id,
        "severity": "minor",
        "reason": "财政部门处罚决定书 吉财采处〔2026〕5号",
        "violation_kind": "falsification",
        "deciding_authority": "吉林省财政厅",
    }
    r = await credit["credit"].post("/blacklist", json=body, headers=OPERATOR)
    assert r.status_code == 201, r.text
    assert r.json()["ban_until"] == "2027-11-23"
    assert "中华人民共和国政府采购法 第七十七条" in r.json()["legal_basis"]
    again = await credit["credit"].post("/blacklist", json=body, headers=OPERATOR)
    assert again.status_code == 409
    listed = (await public_list(credit))["items"]
    assert [e["deciding_authority"] for e in listed] == ["吉林省财政厅"]


# ------------------------------------------------------------------------------ appeals


async def test_appeal_decided_by_the_same_operator_is_refused_another_may_uphold_it(
    credit: Platform,
) -> None:
    clock = clock_of(credit)
    org = await seed_org(credit)
    decided = await sanctioned(credit, org, sanction="blacklist", reason="弄虚作假，情节严重")
    sanction_id = decided["sanction"]["id"]
    assert decided["sanction"]["appeal_due"] == "2026-12-14"  # 15 working days
    clock.set(china(2026, 12, 14, 20))  # the last day of the window
    r = await credit["credit"].post(
        f"/sanctions/{sanction_id}/appeals",
        json={"grounds": "证据不足：签字系本人补签，有监控为证。"},
        headers=org_headers(org),
    )
    assert r.status_code == 201, r.text
    appeal_id = r.json()["id"]

    same = await credit["credit"].post(
        f"/appeals/{appeal_id}/decision",
        json={"outcome": "dismissed", "reason": "维持原决定"},
        headers=OPERATOR,  # operator-li decided the sanction
    )
    assert same.status_code == 403, same.text
    assert "回避" in same.json()["detail"]
    assert (await credit["credit"].get(f"/appeals/{appeal_id}", headers=OPERATOR)).json()[
        "state"
    ] == "filed"

    upheld = await credit["credit"].post(
        f"/appeals/{appeal_id}/decision",
        json={"outcome": "upheld", "reason": "证据不足，撤销原决定"},
        headers=OTHER_OPERATOR,
    )
    assert upheld.status_code == 200, upheld.text
    assert upheld.json()["decided_by"] == "operator-zhao"
    assert (await status_of(credit, org.organisation_id)) == ("admitted", 3)
    assert (await public_list(credit))["total"] == 0
    sanction = (await credit["credit"].get(f"/sanctions/{sanction_id}", headers=OPERATOR)).json()
    assert sanction["state"] == "overturned"
    history = (
        await credit["credit"].get(
            f"/organisations/{org.organisation_id}/credit-history", headers=org_headers(org)
        )
    ).json()
    assert history["blacklist"][0]["state"] == "overturned"
    steps = [s["step"] for s in history["timeline"]]
    assert steps == [
        "violation.recorded",
        "violation.responded",
        "sanction.decided",
        "blacklist.listed",
        "appeal.filed",
        "appeal.decided",
        "blacklist.overturned",
    ]
    events = [s for s, _ in await published(credit)]
    assert "sa.credit.blacklist.overturned" in events
    assert "sa.credit.sanction.overturned" in events
    assert events[-1] == "sa.credit.appeal.decided"
    assert "sa.credit.organisation.reinstated" in events


async def test_appeal_after_the_window_is_refused_citing_it(credit: Platform) -> None:
    clock = clock_of(credit)
    org = await seed_org(credit)
    decided = await sanctioned(credit, org, sanction="warning", reason="予以书面警告")
    clock.set(china(2026, 12, 15, 9))  # the day after the 15th working day
    r = await credit["credit"].post(
        f"/sanctions/{decided['sanction']['id']}/appeals",
        json={"grounds": "逾期的申诉理由陈述。"},
        headers=org_headers(org),
    )
    assert r.status_code == 409, r.text
    assert r.json()["appeal_due"] == "2026-12-14"
    assert r.json()["rules"][0].startswith("sanctions.appeal_window_working_days = 15")


# ------------------------------------------------------------------------------ repair


async def test_repair_refused_before_the_minimum_period_and_granted_after(
    credit: Platform,
) -> None:
    clock = clock_of(credit)
    org = await seed_org(credit)
    decided = await sanctioned(
        credit, org, severity="general", sanction="blacklist", reason="违背合同约定"
    )
    entry = decided["blacklist_entry"]
    assert entry["repair_earliest"] == "2027-02-23"  # general: 3 months published at least
    repair = {
        "correction": "已退回违规资金并完成整改，整改报告经购买主体确认。",
        "evidence": [{"kind": "report", "reference": "整改报告 2027-01"}],
        "pledge": "本机构郑重承诺今后诚信履约，接受社会监督。",
    }
    clock.set(china(2027, 2, 22, 23))
    early = await credit["credit"].post(
        f"/blacklist/{entry['id']}/repairs", json=repair, headers=org_headers(org)
    )
    assert early.status_code == 409, early.text
    assert early.json()["earliest"] == "2027-02-23"
    assert early.json()["rules"][0].startswith("sanctions.min_publication_months[general] = 3")

    clock.set(china(2027, 2, 23, 8))
    r = await credit["credit"].post(
        f"/blacklist/{entry['id']}/repairs", json=repair, headers=org_headers(org)
    )
    assert r.status_code == 201, r.text
    repair_id = r.json()["id"]
    dup = await credit["credit"].post(
        f"/blacklist/{entry['id']}/repairs", json=repair, headers=org_headers(org)
    )
    assert dup.status_code == 409
    assert (await public_list(credit))["total"] == 1  # listed until approval

    clock.set(china(2027, 3, 1))
    r = await credit["credit"].post(
        f"/repairs/{repair_id}/decision",
        json={"outcome": "approved", "reason": "整改到位，承诺已公示"},
        headers=OTHER_OPERATOR,
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved"
    assert (await public_list(credit))["total"] == 0
    assert (await status_of(credit, org.organisation_id)) == ("admitted", 3)
    history = (
        await credit["credit"].get(
            f"/organisations/{org.organisation_id}/credit-history", headers=OPERATOR
        )
    ).json()
    listing = history["blacklist"][0]
    assert (listing["state"], listing["lifted_on"]) == ("repaired", "2027-03-01")
    assert history["sanctions"][0]["state"] == "lifted"
    assert [x["state"] for x in history["repairs"]] == ["approved"]
    assert [s["step"] for s in history["timeline"]][-3:] == [
        "repair.filed",
        "repair.decided",
        "blacklist.repaired",
    ]
    events = [s for s, _ in await published(credit)]
    assert "sa.credit.blacklist.repaired" in events
    assert events.count("sa.credit.organisation.reinstated") == 1
    # And the ban no longer bars the credit code.
    outcome, _ = await admission_outcome(credit, org.uscc, date(2027, 3, 1))
    assert outcome == "admitted"


# ------------------------------------------------------------------------------ concurrency


async def test_two_operators_deciding_at_once_decide_once(credit: Platform) -> None:
    org = await seed_org(credit)
    v = await record_violation(credit, org)
    await respond(credit, org, v["id"])

    async def attempt(by: dict[str, str]) -> int:
        r = await credit["credit"].post(
            f"/violations/{v['id']}/decision",
            json={"sanction": "suspension", "months": 1, "reason": "暂停承接"},
            headers=by,
        )
        return r.status_code

    codes = await asyncio.gather(attempt(OPERATOR), attempt(OTHER_OPERATOR))
    assert sorted(codes) == [200, 409]
    assert (await status_of(credit, org.organisation_id)) == ("suspended", 2)
    async with credit.runtime("credit").db.session() as session:
        rows = (await session.execute(select(Sanction))).scalars().all()
    assert len(rows) == 1


# ------------------------------------------------------------------------------ events in


@pytest.fixture
async def credit_live(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    async with Platform(
        nats_url=nats_url, database_url=database_url_factory, services=["credit"]
    ) as p:
        yield p


async def test_a_refusal_to_sign_from_matching_becomes_a_violation_once(
    credit_live: Platform,
) -> None:
    org = await seed_org(credit_live)
    event = new_event(
        service="matching",
        entity="contract",
        verb="refused",
        subject="contract-1",
        data={
            "contract_id": "contract-1",
            "organisation_id": org.organisation_id,
            "reason": "价格变化，不再签约",
        },
    )
    js = credit_live.runtime("credit").bus.js
    for _ in range(2):  # a redelivered copy with the same id is ignored
        await js.publish(event.nats_subject, event.body(), headers=event.headers())

    async def listing() -> dict[str, Any]:
        r = await credit_live["credit"].get(
            "/violations", params={"organisation_id": org.organisation_id}, headers=OPERATOR
        )
        return dict(r.json())

    page = await eventually(listing, until=lambda body: body["total"] >= 1)
    await asyncio.sleep(0.3)
    page = await listing()
    assert page["total"] == 1
    v = page["items"][0]
    assert (v["kind"], v["severity"], v["state"], v["contract_id"]) == (
        "refusing_to_sign",
        "general",
        "notified",
        "contract-1",
    )
    assert v["recorded_by"] == "system:matching-contract-refused"
    assert date.fromisoformat(v["response_due"]) > date.fromisoformat(v["recorded_at"][:10])
