"""Admission overrides (四眼), contract facts from matching, evaluations with recipients'
surveys, and credit scores with history — over HTTP, real NATS and a real database.

Matching's and providers' events are fed by publishing them to NATS as those services would;
what credit emits is read back from its outbox (the events it commits with its state).

Show items:
- override needs a second operator (the proposer is refused; a second confirms; the
  `admitted` event and providers' status follow);
- survey answers from non-served recipients are refused, duplicates are refused (also when
  sent at once);
- weights applied (the exact total from the pack's weights);
- unqualified → rectification ordered; repeated → violation recorded under due process;
- score history explains every change (reason, cause, parts adding up to the score).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from libs.common.auth import Role
from libs.common.clock import FrozenClock
from libs.common.events import new_event
from libs.common.policy import load_pack
from services.credit.models import (
    BlacklistEntry,
    ContractRecord,
    Evaluation,
    OrganisationRecord,
    Sanction,
    ServedRecipient,
    SurveyResponse,
    Violation,
    event_tables,
)
from services.credit.performance import rules
from services.credit.performance.service import _Pending, _write_batch
from tests import factories
from tests.support.platform import Platform, auth, eventually, token

REGION = "220102"
START = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in China, a Monday

OPERATOR_A = {"Authorization": f"Bearer {token(Role.operator, '22', subject='operator-a')}"}
OPERATOR_B = {"Authorization": f"Bearer {token(Role.operator, '22', subject='operator-b')}"}
PURCHASER = auth(Role.purchaser, region=REGION)
OTHER_PURCHASER = auth(Role.purchaser, region="220104")
EVALUATOR = auth(Role.evaluator, region="22")


@pytest.fixture
async def credit(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    async with Platform(
        nats_url=nats_url, database_url=database_url_factory, services=("credit",)
    ) as p:
        p.apps["credit"].state.clock = FrozenClock(START)
        yield p


def clock(p: Platform) -> FrozenClock:
    found: FrozenClock = p.apps["credit"].state.clock
    return found


async def publish(p: Platform, service: str, entity: str, verb: str, **data: Any) -> str:
    event = new_event(service=service, entity=entity, verb=verb, data=data)
    js = p.runtime("credit").bus.js
    await js.publish(event.nats_subject, event.body(), headers=event.headers())
    return event.id


async def outbox(p: Platform, subject: str) -> list[dict[str, Any]]:
    """What credit has emitted on `subject`, oldest first."""
    table = event_tables.outbox
    async with p.runtime("credit").db.session() as session:
        rows = (
            await session.execute(
                select(table.c.body).where(table.c.nats_subject == subject).order_by(table.c.seq)
            )
        ).all()
    return [json.loads(r[0]) for r in rows]


async def row(p: Platform, model: Any, key: Any) -> Any:
    async with p.runtime("credit").db.session() as session:
        return await session.get(model, key)


async def count(p: Platform, model: Any, *where: Any) -> int:
    async with p.runtime("credit").db.session() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(model).where(*where))
            ).scalar_one()
        )


async def registered(p: Platform, *, qualified: bool = True) -> str:
    """An organisation registered with providers (its event) and reviewed by credit."""
    org_id = str(uuid.uuid4())
    body = factories.organisation()
    body["qualifications"]["independent_civil_liability"] = qualified
    await publish(
        p,
        "providers",
        "organisation",
        "registered",
        organisation_id=org_id,
        uscc=body["uscc"],
        name=body["name"],
        kind=body["kind"],
        region_code=REGION,
        pack="jilin",
        qualifications=body["qualifications"],
    )
    await eventually(
        lambda: p["credit"].get(f"/admissions/{org_id}", headers=OPERATOR_A),
        until=lambda r: r.status_code == 200,
    )
    return org_id


async def contract(p: Platform, org_id: str, served: list[str]) -> str:
    """A contract signed in matching, and deliveries confirmed to `served` recipients."""
    contract_id = str(uuid.uuid4())
    await publish(
        p,
        "matching",
        "contract",
        "signed",
        contract_id=contract_id,
        award_id=str(uuid.uuid4()),
        tender_id=str(uuid.uuid4()),
        project_id=str(uuid.uuid4()),
        organisation_id=org_id,
        region_code=REGION,
        version=1,
        period_start="2026-01-01",
        period_end="2026-12-31",
    )
    for ref in served:
        await deliver(p, contract_id, org_id, ref)
    await eventually(
        lambda: count(p, ServedRecipient, ServedRecipient.contract_id == contract_id),
        until=lambda n: n == len(served),
    )
    return contract_id


async def deliver(
    p: Platform, contract_id: str, org_id: str, ref: str, *, day: str = "2026-05-04"
) -> None:
    await publish(
        p,
        "matching",
        "service",
        "delivered",
        delivery_id=str(uuid.uuid4()),
        match_id=str(uuid.uuid4()),
        need_id=str(uuid.uuid4()),
        recipient_ref=ref,
        organisation_id=org_id,
        contract_id=contract_id,
        units=1,
        delivered_on=day,
        confirmed_by="recipient",
        confirmed_at=f"{day}T09:00:00+08:00",
    )


async def open_evaluation(p: Platform, contract_id: str, period: str) -> str:
    r = await p["credit"].post(
        "/evaluations", json={"contract_id": contract_id, "period": period}, headers=PURCHASER
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def answer(p: Platform, evaluation_id: str, ref: str, level: int) -> Any:
    return await p["credit"].post(
        f"/evaluations/{evaluation_id}/survey-responses",
        json={
            "recipient_ref": ref,
            "satisfaction": level,
            "answers": {"q1": level},
            "channel": "visit",
        },
        headers=PURCHASER,
    )


async def evaluate(
    p: Platform, evaluation_id: str, *, purchaser: float, third: float, levels: dict[str, int]
) -> dict[str, Any]:
    r = await p["credit"].put(
        f"/evaluations/{evaluation_id}/purchaser-score",
        json={"score": purchaser},
        headers=PURCHASER,
    )
    assert r.status_code == 200, r.text
    r = await p["credit"].put(
        f"/evaluations/{evaluation_id}/third-party-score", json={"score": third}, headers=EVALUATOR
    )
    assert r.status_code == 200, r.text
    for ref, level in levels.items():
        r = await answer(p, evaluation_id, ref, level)
        assert r.status_code == 201, r.text
    r = await p["credit"].post(f"/evaluations/{evaluation_id}/publish", headers=PURCHASER)
    assert r.status_code == 200, r.text
    return dict(r.json())


# ------------------------------------------------------------------------------ overrides


async def test_override_needs_a_second_operator_and_providers_status_follows(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> None:
    async with Platform(
        nats_url=nats_url, database_url=database_url_factory, services=("providers", "credit")
    ) as p:
        # Credit's automatic review reads the system clock; the override's review must come
        # after it, so this test's clock is moved to "now" before each step.
        frozen = FrozenClock(datetime.now(UTC))
        p.apps["credit"].state.clock = frozen
        quals = factories.organisation()["qualifications"]
        quals["independent_civil_liability"] = False
        r = await p["providers"].post(
            "/organisations",
            json=factories.organisation(qualifications=quals),
            headers=OPERATOR_A,
        )
        assert r.status_code == 201, r.text
        org_id = r.json()["id"]
        await eventually(
            lambda: p["providers"].get(f"/organisations/{org_id}", headers=OPERATOR_A),
            until=lambda resp: resp.json()["status"] == "rejected",
        )

        # A reason is required, and it must say something (≥ 20 characters).
        r = await p["credit"].post(
            f"/admissions/{org_id}/overrides",
            json={"outcome": "admitted", "reason": "looks fine"},
            headers=OPERATOR_A,
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"].endswith("reason")
        # Only operators propose.
        r = await p["credit"].post(
            f"/admissions/{org_id}/overrides",
            json={"outcome": "admitted", "reason": "x" * 30},
            headers=PURCHASER,
        )
        assert r.status_code == 403

        reason = "法人证书已补交，经核验独立承担民事责任的能力已具备（核验记录 2026-117 号）"
        r = await p["credit"].post(
            f"/admissions/{org_id}/overrides",
            json={"outcome": "admitted", "reason": reason},
            headers=OPERATOR_A,
        )
        assert r.status_code == 201, r.text
        proposed = r.json()
        assert proposed["state"] == "proposed"
        assert proposed["proposed_by"] == "operator-a" and proposed["reason"] == reason
        override_id = proposed["id"]
        # Proposed only: nothing changed yet, nothing announced.
        assert (await row(p, OrganisationRecord, org_id)).status == "rejected"
        assert await outbox(p, "sa.credit.organisation.admitted") == []
        # A second proposal while one waits is refused.
        r = await p["credit"].post(
            f"/admissions/{org_id}/overrides",
            json={"outcome": "admitted", "reason": reason},
            headers=OPERATOR_B,
        )
        assert r.status_code == 409

        # The same operator cannot be the second pair of eyes.
        r = await p["credit"].post(f"/overrides/{override_id}/confirm", headers=OPERATOR_A)
        assert r.status_code == 403, r.text
        assert r.json()["proposed_by"] == "operator-a"
        assert (await row(p, OrganisationRecord, org_id)).status == "rejected"

        frozen.set(datetime.now(UTC))
        r = await p["credit"].post(
            f"/overrides/{override_id}/confirm",
            json={"note": "核验记录已复核"},
            headers=OPERATOR_B,
        )
        assert r.status_code == 200, r.text
        confirmed = r.json()
        assert confirmed["state"] == "confirmed"
        assert confirmed["confirmed_by"] == "operator-b"
        assert confirmed["status"] == "admitted"
        record = await row(p, OrganisationRecord, org_id)
        assert (record.status, record.decision_version) == ("admitted", 2)

        # The event is the automatic review's, with the override among its reasons.
        [event] = await outbox(p, "sa.credit.organisation.admitted")
        assert event["organisation_id"] == org_id
        assert event["decision_version"] == 2
        assert event["outcome"] == "admitted"
        assert event["review_id"] == confirmed["decision_review_id"]
        override_reason = [x for x in event["reasons"] if x["condition"] == "override"]
        assert override_reason == [
            {
                "condition": "override",
                "met": True,
                "rule": override_reason[0]["rule"],
                "description": reason,
                "override_id": override_id,
                "outcome": "admitted",
                "proposed_by": "operator-a",
                "confirmed_by": "operator-b",
            }
        ]
        # The unmet condition stays on record: the override admits despite it.
        unmet = [x for x in event["reasons"] if not x["met"]]
        assert [x["condition"] for x in unmet] == ["independent_civil_liability"]
        assert "operator-a" in event["summary"] and "operator-b" in event["summary"]

        # Providers set the status from that event.
        await eventually(
            lambda: p["providers"].get(f"/organisations/{org_id}", headers=OPERATOR_A),
            until=lambda resp: resp.json()["status"] == "admitted",
        )
        review = (await p["credit"].get(f"/admissions/{org_id}", headers=OPERATOR_A)).json()
        assert review["outcome"] == "admitted" and review["decided_by"] == "operator-b"

        # Decided once: a second decision is refused.
        r = await p["credit"].post(f"/overrides/{override_id}/reject", headers=OPERATOR_B)
        assert r.status_code == 409

        # Another override back to rejected, rejected by a second operator: nothing changes.
        r = await p["credit"].post(
            f"/admissions/{org_id}/overrides",
            json={"outcome": "rejected", "reason": "复查：法人证书复印件与原件不一致，待核实"},
            headers=OPERATOR_B,
        )
        assert r.status_code == 201, r.text
        second = r.json()["id"]
        r = await p["credit"].post(
            f"/overrides/{second}/reject", json={"note": "原件已核实一致"}, headers=OPERATOR_A
        )
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "rejected" and r.json()["confirmed_by"] == "operator-a"
        assert (await row(p, OrganisationRecord, org_id)).decision_version == 2
        # Only the automatic review's rejection (version 1) was ever announced.
        rejected = await outbox(p, "sa.credit.organisation.rejected")
        assert [e["decision_version"] for e in rejected] == [1]

        # The audit trail: both overrides with who, when and why.
        listed = (
            await p["credit"].get(f"/admissions/{org_id}/overrides", headers=OPERATOR_A)
        ).json()
        assert listed["total"] == 2
        assert {(o["state"], o["proposed_by"], o["confirmed_by"]) for o in listed["items"]} == {
            ("confirmed", "operator-a", "operator-b"),
            ("rejected", "operator-b", "operator-a"),
        }
        # Outside the operator's region it does not exist.
        elsewhere = {"Authorization": f"Bearer {token(Role.operator, '33', subject='op-zj')}"}
        r = await p["credit"].post(f"/overrides/{second}/confirm", headers=elsewhere)
        assert r.status_code == 404


async def test_override_cannot_admit_an_organisation_under_a_ban(credit: Platform) -> None:
    p = credit
    clock(p).set(datetime.now(UTC))
    org_id = await registered(p, qualified=False)
    record = await row(p, OrganisationRecord, org_id)
    today = datetime.now(UTC).date()
    async with p.runtime("credit").db.session() as session:
        session.add(
            BlacklistEntry(
                id=str(uuid.uuid4()),
                organisation_id=org_id,
                uscc=record.uscc,
                name=record.name,
                severity="general",
                reason="弄虚作假",
                legal_basis=["吉民发〔2020〕44号 §四(四)4", "中华人民共和国政府采购法 第七十七条"],
                starts_on=today - timedelta(days=30),
                ends_on=today + timedelta(days=700),
                decided_by="operator-x",
                created_at=datetime.now(UTC),
            )
        )
        await session.commit()
    r = await p["credit"].post(
        f"/admissions/{org_id}/overrides",
        json={
            "outcome": "admitted",
            "reason": "整改已完成，申请恢复准入资格并由第二名操作员重新审核",
        },
        headers=OPERATOR_A,
    )
    assert r.status_code == 422, r.text
    problem = r.json()
    assert "中华人民共和国政府采购法 第七十七条" in problem["rules"]
    assert problem["errors"][0]["field"] == "body.outcome"
    assert await count(p, Sanction) == 0


# ------------------------------------------------------------------------------ contract facts


async def test_contract_facts_from_matching_keep_the_newest_version(credit: Platform) -> None:
    p = credit
    org_id = await registered(p)
    contract_id = await contract(p, org_id, ["r-1"])
    common = {
        "contract_id": contract_id,
        "award_id": "a",
        "tender_id": "t",
        "project_id": "proj",
        "organisation_id": org_id,
        "region_code": REGION,
    }
    await publish(p, "matching", "contract", "paused", version=2, reason="suspended", **common)
    await eventually(
        lambda: row(p, ContractRecord, contract_id), until=lambda c: c.state == "paused"
    )
    # A late copy of an older state (a new event id, so the inbox does not stop it).
    await publish(p, "matching", "contract", "signed", version=1, **common)
    await publish(p, "matching", "contract", "resumed", version=3, **common)
    record = await eventually(
        lambda: row(p, ContractRecord, contract_id), until=lambda c: c.version == 3
    )
    assert record.state == "active"
    assert record.period_end == date(2026, 12, 31)  # kept from `signed`

    # Deliveries add up per recipient; an acceptance adds the recipients it invited.
    await deliver(p, contract_id, org_id, "r-1", day="2026-05-11")
    await publish(
        p,
        "matching",
        "acceptance",
        "published",
        acceptance_id="acc",
        contract_id=contract_id,
        organisation_id=org_id,
        period="2026-Q2",
        invited_recipients=["r-1", "r-9"],
        result="qualified",
        summary={},
    )
    await eventually(
        lambda: count(p, ServedRecipient, ServedRecipient.contract_id == contract_id),
        until=lambda n: n == 2,
    )
    served = await eventually(
        lambda: row(p, ServedRecipient, (contract_id, "r-1")), until=lambda s: s.deliveries == 2
    )
    assert (served.first_served_on, served.last_served_on) == (date(2026, 5, 4), date(2026, 5, 11))
    assert served.on_time == 2  # confirmed the same day
    invited = await row(p, ServedRecipient, (contract_id, "r-9"))
    assert invited.deliveries == 0


# ------------------------------------------------------------------------------ surveys


async def test_survey_answers_only_from_served_recipients_and_once_each(credit: Platform) -> None:
    p = credit
    org_id = await registered(p)
    contract_id = await contract(p, org_id, ["r-1", "r-2", "r-3"])
    evaluation_id = await open_evaluation(p, contract_id, "2026-Q2")

    # Not served under this contract: refused, naming the field, and nothing is stored.
    r = await answer(p, evaluation_id, "r-stranger", 5)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["errors"] == [
        {
            "field": "body.recipient_ref",
            "reason": f"recipient r-stranger was not served under contract {contract_id}",
        }
    ]
    assert problem["rules"] == ["吉民发〔2020〕44号 §四(五)1"]
    # Served under another contract of the same organisation is not enough either.
    other = await contract(p, org_id, ["r-other"])
    assert other != contract_id
    r = await answer(p, evaluation_id, "r-other", 5)
    assert r.status_code == 422

    r = await answer(p, evaluation_id, "r-1", 4)
    assert r.status_code == 201, r.text
    assert r.json()["recorded_by"] == "test-purchaser"
    r = await answer(p, evaluation_id, "r-1", 5)
    assert r.status_code == 409, r.text
    assert r.json()["errors"][0]["field"] == "body.recipient_ref"

    # Five copies of one answer at once: exactly one is taken.
    results = await asyncio.gather(*(answer(p, evaluation_id, "r-2", 3) for _ in range(5)))
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409, 409]
    assert await count(p, SurveyResponse, SurveyResponse.evaluation_id == evaluation_id) == 2
    assert (await row(p, Evaluation, evaluation_id)).responses == 2

    # Two evaluations of one period cannot both open, even at once.
    results = await asyncio.gather(
        *(
            p["credit"].post(
                "/evaluations",
                json={"contract_id": contract_id, "period": "2026-Q3"},
                headers=PURCHASER,
            )
            for _ in range(3)
        )
    )
    assert sorted(r.status_code for r in results) == [201, 409, 409]
    # Another county's purchaser does not see the contract at all.
    r = await p["credit"].post(
        "/evaluations",
        json={"contract_id": contract_id, "period": "2026-Q4"},
        headers=OTHER_PURCHASER,
    )
    assert r.status_code == 404


# ------------------------------------------------------------------------------ weights


async def test_weights_applied_published_and_public_without_recipients(credit: Platform) -> None:
    p = credit
    org_id = await registered(p)
    contract_id = await contract(p, org_id, ["r-1", "r-2", "r-3"])
    evaluation_id = await open_evaluation(p, contract_id, "2026-Q2")

    # Each part by its own role, and not before all three exist.
    r = await p["credit"].put(
        f"/evaluations/{evaluation_id}/purchaser-score", json={"score": 80}, headers=EVALUATOR
    )
    assert r.status_code == 403
    r = await p["credit"].post(f"/evaluations/{evaluation_id}/publish", headers=PURCHASER)
    assert r.status_code == 409
    assert r.json()["missing"] == [
        "purchaser_score",
        "third_party_score",
        "survey_responses (0 of 3)",
    ]

    clock(p).advance(days=1)
    published = await evaluate(
        p, evaluation_id, purchaser=80, third=70, levels={"r-1": 5, "r-2": 4, "r-3": 4}
    )
    # 0.30 × 80 + 0.40 × 86.67 + 0.30 × 70 = 79.668 → 79.67 (Jilin's weights).
    assert published["satisfaction_score"] == 86.67
    assert published["total"] == 79.67
    assert published["result"] == "qualified"
    assert published["weights"]["recipients"] == "0.40"
    assert published["weights"]["rule"] == "吉民发〔2020〕44号 §四(五)1"
    assert published["rectification_ordered"] is False and published["violation_id"] is None

    [event] = await outbox(p, "sa.credit.evaluation.recorded")
    assert event["evaluation_id"] == evaluation_id
    assert event["organisation_id"] == org_id and event["contract_id"] == contract_id
    assert (event["purchaser_score"], event["satisfaction_score"], event["third_party_score"]) == (
        80.0,
        86.67,
        70.0,
    )
    assert event["satisfaction"] == 0.8667
    assert event["total"] == 79.67 and event["result"] == "qualified"
    assert event["weights"]["purchaser"] == "0.30"
    assert "r-1" not in json.dumps(event)

    # Final once published: no more answers, no score changes.
    r = await p["credit"].put(
        f"/evaluations/{evaluation_id}/purchaser-score", json={"score": 10}, headers=PURCHASER
    )
    assert r.status_code == 409

    # Public without login, and no recipient reference anywhere in it.
    r = await p["credit"].get("/public/evaluations", params={"organisation_id": org_id})
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 1
    item = r.json()["items"][0]
    assert item["total"] == 79.67 and item["organisation_name"]
    text = r.text
    assert "r-1" not in text and "recipient_ref" not in text and "test-purchaser" not in text
    # Officials list it; another county does not see it.
    listed = await p["credit"].get("/evaluations", params={"state": "published"}, headers=PURCHASER)
    assert [e["id"] for e in listed.json()["items"]] == [evaluation_id]
    r = await p["credit"].get(f"/evaluations/{evaluation_id}", headers=OTHER_PURCHASER)
    assert r.status_code == 404


# ------------------------------------------------------------------------------ unqualified


async def test_unqualified_orders_rectification_and_repeated_records_a_violation(
    credit: Platform,
) -> None:
    p = credit
    org_id = await registered(p)
    contract_id = await contract(p, org_id, ["r-1", "r-2", "r-3"])
    low = {"r-1": 2, "r-2": 2, "r-3": 3}  # satisfaction 46.67

    first = await open_evaluation(p, contract_id, "2026-Q1")
    clock(p).advance(days=2)
    done = await evaluate(p, first, purchaser=50, third=55, levels=low)
    # 0.3 × 50 + 0.4 × 46.67 + 0.3 × 55 = 15 + 18.668 + 16.5 = 50.168 → 50.17
    assert (done["total"], done["result"]) == (50.17, "unqualified")
    assert done["rectification_ordered"] is True and done["violation_id"] is None
    [order] = await outbox(p, "sa.credit.organisation.rectification_ordered")
    assert order["organisation_id"] == org_id and order["evaluation_id"] == first
    assert order["sanction"] == "rectification"
    assert order["decision_version"] == 1  # the status does not change
    assert order["legal_basis"][0] == "吉民发〔2018〕21号 §四(四)"
    assert await outbox(p, "sa.credit.violation.recorded") == []

    second = await open_evaluation(p, contract_id, "2026-Q2")
    clock(p).advance(days=90)
    done = await evaluate(p, second, purchaser=55, third=50, levels=low)
    assert done["result"] == "unqualified"
    violation_id = done["violation_id"]
    assert violation_id
    violation = await row(p, Violation, violation_id)
    assert (violation.kind, violation.severity, violation.state) == (
        "repeated_unqualified",
        "general",
        "notified",
    )
    assert [e["reference"] for e in violation.evidence] == [first, second]
    # 10 working days after 2026-09-01 (Tuesday), counted from the next day: 2026-09-15.
    assert violation.response_due == date(2026, 9, 15)
    [recorded] = await outbox(p, "sa.credit.violation.recorded")
    assert recorded["violation_id"] == violation_id
    assert recorded["kind"] == "repeated_unqualified"
    assert len(await outbox(p, "sa.credit.organisation.rectification_ordered")) == 2

    # The run starts again: a third unqualified result records no new violation.
    third = await open_evaluation(p, contract_id, "2026-Q3")
    clock(p).advance(days=30)
    done = await evaluate(p, third, purchaser=40, third=40, levels=low)
    assert done["result"] == "unqualified" and done["violation_id"] is None
    assert await count(p, Violation) == 1


# ------------------------------------------------------------------------------ score history


async def test_score_history_explains_every_change(credit: Platform) -> None:
    p = credit
    org_id = await registered(p)
    contract_id = await contract(p, org_id, ["r-1", "r-2", "r-3"])

    # Before any change: the pack's base, provisional, no history.
    r = await p["credit"].get(f"/scores/{org_id}", headers=OPERATOR_A)
    assert r.status_code == 200, r.text
    assert r.json()["provisional"] is True
    assert (r.json()["current"]["score"], r.json()["current"]["grade"]) == (70.0, "C")

    good = await open_evaluation(p, contract_id, "2026-Q1")
    clock(p).advance(days=1)
    await evaluate(p, good, purchaser=95, third=90, levels={"r-1": 5, "r-2": 5, "r-3": 5})
    bad = await open_evaluation(p, contract_id, "2026-Q2")
    clock(p).advance(days=60)
    await evaluate(p, bad, purchaser=40, third=50, levels={"r-1": 2, "r-2": 2, "r-3": 2})

    # A violation decided by the sanctions flow (rows as it writes them), then a full
    # recompute a year later: the deduction and the older evaluations' fading both show.
    now = clock(p)()
    async with p.runtime("credit").db.session() as session:
        violation = Violation(
            id=str(uuid.uuid4()),
            organisation_id=org_id,
            contract_id=contract_id,
            kind="breach_of_contract",
            severity="general",
            description="未按合同约定频次提供服务",
            evidence=[],
            state="decided",
            recorded_by="operator-a",
            recorded_at=now,
            notified_at=now,
            response_due=now.date(),
        )
        session.add(violation)
        await session.flush()
        session.add(
            Sanction(
                id=str(uuid.uuid4()),
                violation_id=violation.id,
                organisation_id=org_id,
                kind="warning",
                reason="警告",
                legal_basis=["吉民发〔2020〕44号 §四(四)4"],
                starts_on=now.date(),
                state="in_force",
                decided_by="operator-b",
                deciding_authority="吉林省民政厅",
                decided_at=now,
                decision_version=1,
            )
        )
        await session.commit()
    r = await p["credit"].post("/scores/recompute", headers=OPERATOR_A)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["organisations"], report["changed"], report["evaluations"]) == (1, 1, 2)
    assert report["log"] and report["log"][-1].startswith("done in")
    clock(p).advance(days=365)
    r = await p["credit"].post("/scores/recompute", json={"region": "2201"}, headers=OPERATOR_A)
    assert r.json()["changed"] == 1
    # Nothing new: a recompute changes nothing and records nothing.
    r = await p["credit"].post("/scores/recompute", headers=OPERATOR_A)
    assert (r.json()["changed"], r.json()["unchanged"]) == (0, 1)

    detail = (await p["credit"].get(f"/scores/{org_id}", headers=OPERATOR_A)).json()
    assert detail["provisional"] is False
    history = detail["history"]
    assert [c["cause"] for c in history] == ["evaluation", "evaluation", "recompute", "recompute"]
    assert [c["cause_id"] for c in history[:2]] == [good, bad]
    assert [c["version"] for c in history] == [1, 2, 3, 4]
    previous: float | None = None
    for change in history:
        # Every change: a reason saying what moved, and parts that add up to the new score.
        assert change["reason"]
        assert change["old_score"] == previous
        terms = change["parts"]["terms"]
        assert round(sum(terms.values()), 2) == change["new_score"]
        previous = change["new_score"]
    assert history[0]["reason"].startswith(f"evaluation 2026-Q1 of contract {contract_id}")
    assert history[2]["parts"]["terms"]["violations"] == -8.0
    assert history[2]["parts"]["violations"][0]["violation_id"] == violation.id
    assert "violations +0.00 → -8.00" in history[2]["reason"]
    assert history[3]["parts"]["evaluations"]["newest"][0]["age_months"] == 12
    assert detail["current"]["score"] == history[-1]["new_score"]
    assert detail["current"]["version"] == 4

    # Each change was announced with its version, for providers and matching.
    announced = await outbox(p, "sa.credit.score.changed")
    assert [(e["version"], e["score"], e["grade"]) for e in announced] == [
        (c["version"], c["new_score"], c["new_grade"]) for c in history
    ]
    assert all(e["organisation_id"] == org_id and e["reason"] for e in announced)

    listed = (await p["credit"].get("/scores", params={"region": "22"}, headers=PURCHASER)).json()
    assert [s["organisation_id"] for s in listed["items"]] == [org_id]
    assert (await p["credit"].get(f"/scores/{org_id}", headers=OTHER_PURCHASER)).status_code == 404
    own = auth(Role.organisation, region="22", org_id=org_id)
    assert (await p["credit"].get(f"/scores/{org_id}", headers=own)).status_code == 200


async def test_full_recompute_skips_a_score_changed_since_its_scan(credit: Platform) -> None:
    """A batch computed from an older picture never overwrites a newer score: the batch
    re-reads each version under the records' locks and skips any that moved."""

    p = credit
    org_id = await registered(p)
    contract_id = await contract(p, org_id, ["r-1"])
    evaluation_id = await open_evaluation(p, contract_id, "2026-Q2")
    await evaluate(p, evaluation_id, purchaser=90, third=90, levels={"r-1": 5})
    detail = (await p["credit"].get(f"/scores/{org_id}", headers=OPERATOR_A)).json()
    assert detail["current"]["version"] == 1

    # A scan that began before that publication saw no score (version 0) and the base.
    stale = rules.compute_score(load_pack("jilin"), today=START.date(), evaluations=[])
    runtime = p.runtime("credit")
    changed, unchanged, skipped = await _write_batch(
        runtime.unit_of_work, [_Pending(org_id, 0, stale)], now=START, reason="stale scan"
    )
    assert (changed, unchanged, skipped) == (0, 0, 1)
    after = (await p["credit"].get(f"/scores/{org_id}", headers=OPERATOR_A)).json()
    assert after["current"] == detail["current"]
    assert len(await outbox(p, "sa.credit.score.changed")) == 1
