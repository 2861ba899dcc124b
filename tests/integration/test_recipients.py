"""Recipients' protected data in the needs service: masking by role, audited reveals,
append-only audit, guardians of minors, change history, region scope, and no ID number
anywhere it should not be."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from libs.common.auth import Role
from libs.common.natsserver import NatsServer
from services.needs.app import create_app
from services.needs.settings import NeedsSettings
from tests import factories
from tests.support.platform import Platform, auth

OPERATOR = auth(Role.operator)
PURCHASER = auth(Role.purchaser, region="220102")


@pytest.fixture
async def needs(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    async with Platform(
        nats_url=nats_url, database_url=database_url_factory, services=["needs"]
    ) as p:
        yield p


async def register(p: Platform, **overrides: Any) -> dict[str, Any]:
    body = factories.recipient(**overrides)
    r = await p["needs"].post("/recipients", json=body, headers=PURCHASER)
    assert r.status_code == 201, r.text
    return {**r.json(), "_body": body}


async def test_responses_are_masked_for_every_role(needs: Platform) -> None:
    rec = await register(needs, phone="13812345678")
    r = await needs["needs"].get(f"/recipients/{rec['ref']}", headers=PURCHASER)
    body = r.json()
    id_number = rec["_body"]["id_number"]
    assert body["id_number_masked"] == id_number[:6] + "*" * 8 + id_number[-4:]
    assert body["name_masked"] == "张*"
    assert body["phone_masked"] == "138****5678"
    assert id_number not in r.text and "13812345678" not in r.text


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.purchaser, 200),
        (Role.operator, 200),
        (Role.ministry, 403),
        (Role.expert, 403),
        (Role.evaluator, 403),
    ],
)
async def test_unmasked_data_only_for_case_worker_roles(
    needs: Platform, role: Role, expected: int
) -> None:
    rec = await register(needs, phone="13812345678")
    headers = auth(role, region="220102")
    r = await needs["needs"].get(
        f"/recipients/{rec['ref']}/personal-data",
        params={"purpose": "home visit to assess care needs"},
        headers=headers,
    )
    assert r.status_code == expected, r.text
    if expected == 200:
        assert r.json()["id_number"] == rec["_body"]["id_number"]
        assert r.json()["name"] == "张三" and r.json()["phone"] == "13812345678"


async def test_each_unmasked_read_is_audited_and_the_audit_is_append_only(
    needs: Platform,
) -> None:
    rec = await register(needs)
    for purpose in ("home visit planning", "verify identity at the window"):
        r = await needs["needs"].get(
            f"/recipients/{rec['ref']}/personal-data",
            params={"purpose": purpose},
            headers=PURCHASER,
        )
        assert r.status_code == 200
    missing_purpose = await needs["needs"].get(
        f"/recipients/{rec['ref']}/personal-data", headers=PURCHASER
    )
    assert missing_purpose.status_code == 422
    assert missing_purpose.json()["errors"][0]["field"] == "query.purpose"
    log = (
        await needs["needs"].get(
            "/audit/personal-data", params={"recipient_ref": rec["ref"]}, headers=OPERATOR
        )
    ).json()
    assert log["total"] == 2
    assert {a["purpose"] for a in log["items"]} == {
        "home visit planning",
        "verify identity at the window",
    }
    assert all(a["accessed_by"] == "test-purchaser" for a in log["items"])
    db = needs.runtime("needs").db
    for statement in (
        "UPDATE personal_data_access SET purpose = 'x'",
        "DELETE FROM personal_data_access",
    ):
        with pytest.raises(Exception, match="append-only"):
            async with db.write_session() as session:
                await session.execute(text(statement))
                await session.commit()
    log_again = (await needs["needs"].get("/audit/personal-data", headers=OPERATOR)).json()
    assert log_again["total"] == 2


def child_id(years: int) -> str:
    today = date.today()
    return factories.resident_id(year=today.year - years)


async def test_minor_needs_a_guardian_with_consent(needs: Platform) -> None:
    child = factories.recipient(id_number=child_id(10), categories=["child_in_difficulty"])
    r = await needs["needs"].post("/recipients", json=child, headers=PURCHASER)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["body.guardian"]
    no_consent = {**child, "guardian": {"name": "张父", "relation": "父亲", "consent": False}}
    r = await needs["needs"].post("/recipients", json=no_consent, headers=PURCHASER)
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["body.guardian.consent"]
    listing = (await needs["needs"].get("/recipients", headers=PURCHASER)).json()
    assert listing["total"] == 0  # refused registrations wrote nothing
    ok = {**child, "guardian": {"name": "张父", "relation": "父亲", "consent": True}}
    r = await needs["needs"].post("/recipients", json=ok, headers=PURCHASER)
    assert r.status_code == 201 and r.json()["has_guardian"] is True
    adult = await needs["needs"].post(
        "/recipients", json=factories.recipient(id_number=child_id(40)), headers=PURCHASER
    )
    assert adult.status_code == 201


async def test_changes_are_kept_as_history(needs: Platform) -> None:
    rec = await register(needs, phone="13812345678")
    ref = rec["ref"]
    r = await needs["needs"].patch(
        f"/recipients/{ref}",
        json={"phone": "13900000000", "categories": ["tekun", "medical_aid"], "household_size": 2},
        headers=PURCHASER,
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["phone_masked"] == "139****0000"
    same = await needs["needs"].patch(
        f"/recipients/{ref}", json={"household_size": 2}, headers=PURCHASER
    )
    assert same.json()["version"] == 2  # nothing changed, nothing recorded
    history = (await needs["needs"].get(f"/recipients/{ref}/history", headers=PURCHASER)).json()
    by_field = {h["field_name"]: h for h in history}
    assert set(by_field) == {"phone", "categories", "household_size"}
    assert by_field["categories"]["old_value"] == "tekun"
    assert by_field["categories"]["new_value"] == "tekun,medical_aid"
    assert by_field["phone"]["old_value"] == by_field["phone"]["new_value"] == "(sealed)"
    assert all(h["changed_by"] == "test-purchaser" and h["version"] == 2 for h in history)
    moved_out = await needs["needs"].patch(
        f"/recipients/{ref}", json={"region_code": "330106001001"}, headers=PURCHASER
    )
    assert moved_out.status_code == 404  # may not move someone beyond one's own region


async def test_no_id_number_in_database_logs_or_events(
    needs: Platform, caplog: pytest.LogCaptureFixture, database_url_factory: Callable[[str], str]
) -> None:
    caplog.set_level(logging.DEBUG)
    ids = []
    for _ in range(3):
        rec = await register(needs, phone="13812345678", address="长春市南关区幸福街1号")
        ids.append(rec["_body"]["id_number"])
        await needs["needs"].post(
            "/needs",
            json={"recipient_ref": rec["ref"], "service_code": "care", "urgency": 2},
            headers=PURCHASER,
        )
        await needs["needs"].patch(
            f"/recipients/{rec['ref']}", json={"phone": "13900000000"}, headers=PURCHASER
        )
    bad = factories.recipient()
    bad["id_number"] = bad["id_number"][:-1] + ("1" if bad["id_number"][-1] == "0" else "0")
    await needs["needs"].post("/recipients", json=bad, headers=PURCHASER)
    ids.append(bad["id_number"])
    runtime = needs.runtime("needs")
    while await runtime.relay.publish_pending():
        pass
    # Events: every message in the NEEDS stream.
    info = await runtime.bus.js.stream_info("NEEDS")
    raw = b""
    for seq in range(1, info.state.last_seq + 1):
        msg = await runtime.bus.js.get_msg("NEEDS", seq)
        raw += (msg.data or b"") + repr(msg.headers).encode()
    # Database: every byte of the file (SQLite) or every text value of every table.
    db = runtime.db
    if db.is_sqlite:
        path = Path(db.engine.url.database or "")
        stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    else:
        stored = b""
        async with db.session() as s:
            for table in runtime.metadata.sorted_tables:
                for row in (await s.execute(table.select())).all():
                    stored += repr(tuple(row)).encode()
    logs = caplog.text.encode()
    for id_number in ids:
        for where, blob in (("events", raw), ("database", stored), ("logs", logs)):
            assert id_number.encode() not in blob, f"ID number found in {where}"
            assert id_number[:17].encode() not in blob, f"ID number body found in {where}"
    assert "张三".encode() not in raw and "张三".encode() not in stored
    assert b"13812345678" not in stored and "幸福街".encode() not in stored


# --------------------------------------------------------------------------- region scope

REGIONS = ["220102001001", "220102002003", "220104001001", "220202001001", "330106001001"]
SCOPES = ["", "22", "2201", "220102", "220104", "2202", "220202", "33", "330106", "46", "220102001"]


@pytest.fixture
def needs_client(
    nats_server: NatsServer, database_url_factory: Callable[[str], str]
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings_ = NeedsSettings(
        nats_url=nats_server.url, database_url=database_url_factory("scope"), environment="test"
    )
    with TestClient(create_app(settings_)) as client:
        refs = {}
        for region in REGIONS:
            categories = ["tekun"]
            r = client.post(
                "/recipients",
                json=factories.recipient(region_code=region, categories=categories),
                headers=OPERATOR,
            )
            assert r.status_code == 201, r.text
            refs[r.json()["ref"]] = region
        yield client, refs


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    role=st.sampled_from([Role.purchaser, Role.operator]),
    scope=st.sampled_from(SCOPES) | st.from_regex(r"\A[0-9]{2,6}\Z"),
    pick=st.integers(min_value=0, max_value=len(REGIONS) - 1),
)
def test_region_scope_hides_recipients_outside_it(
    needs_client: tuple[TestClient, dict[str, str]], role: Role, scope: str, pick: int
) -> None:
    client, refs = needs_client
    ref, region = list(refs.items())[pick]
    headers = auth(role, region=scope)
    r = client.get(f"/recipients/{ref}", headers=headers)
    inside = region.startswith(scope)
    assert r.status_code == (200 if inside else 404), (scope, region, r.text)
    if not inside:
        # Indistinguishable from asking for a recipient who does not exist.
        ghost = "00000000-0000-4000-8000-000000000000"
        absent = client.get(f"/recipients/{ghost}", headers=headers)
        assert r.text == absent.text.replace(ghost, ref)
        reveal = client.get(
            f"/recipients/{ref}/personal-data", params={"purpose": "probing"}, headers=headers
        )
        assert reveal.status_code == 404
    listed = client.get("/recipients", params={"limit": 500}, headers=headers).json()
    assert {item["ref"] for item in listed["items"]} == {
        r_ for r_, reg in refs.items() if reg.startswith(scope)
    }


async def test_consent_given_and_withdrawn_are_both_kept(needs: Platform) -> None:
    rec = await register(
        needs, consents=[{"purpose": "share needs with service providers", "basis": "consent"}]
    )
    ref = rec["ref"]
    r = await needs["needs"].post(
        f"/recipients/{ref}/consents",
        json={"purpose": "share needs with service providers", "given": False},
        headers=PURCHASER,
    )
    assert r.status_code == 201, r.text
    history = (await needs["needs"].get(f"/recipients/{ref}/consents", headers=PURCHASER)).json()
    assert [(c["purpose"], c["given"]) for c in history] == [
        ("share needs with service providers", True),
        ("share needs with service providers", False),
    ]
    outside = await needs["needs"].get(
        f"/recipients/{ref}/consents", headers=auth(Role.purchaser, region="330106")
    )
    assert outside.status_code == 404


async def test_recipient_refs_are_random_and_say_nothing_of_when(needs: Platform) -> None:
    """A recipient's pseudonymous reference travels in every event about them: it is a
    random UUIDv4, not a time-ordered id like the records' (libs.common.ids)."""
    refs = [uuid.UUID((await register(needs))["ref"]) for _ in range(3)]
    assert {r.version for r in refs} == {4}


async def test_duplicate_registration_leaves_one_record(needs: Platform) -> None:
    body = factories.recipient()
    first = await needs["needs"].post("/recipients", json=body, headers=PURCHASER)
    for variant in (body["id_number"].lower(), " " + body["id_number"] + " "):
        again = await needs["needs"].post(
            "/recipients", json={**body, "id_number": variant, "name": "别名"}, headers=PURCHASER
        )
        assert again.status_code == 409
        assert again.json()["existing_ref"] == first.json()["ref"]
    listing = (await needs["needs"].get("/recipients", headers=PURCHASER)).json()
    assert listing["total"] == 1
