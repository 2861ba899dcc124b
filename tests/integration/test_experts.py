"""The expert library (专家库) of the providers service, in-process on a real database and the
session's real nats-server: registration with fields from the province catalogue, contact
details sealed at rest and masked in responses, region scope, affiliations for recusal (回避)
with their events and versions, list filters and pagination, and the link of affiliations to
organisations that join the library later."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from libs.common.auth import Role
from libs.common.crypto import DecryptionError
from libs.common.validators import CHINA_TZ
from services.providers import events as org_events
from services.providers.experts.models import Expert, ExpertAffiliation
from services.providers.experts.service import ExpertContactsCipher
from services.providers.models import Organisation
from tests import factories
from tests.support.platform import Platform, auth, eventually

OPERATOR = auth(Role.operator, region="220102")  # 长春市南关区
PROVINCE_OPERATOR = auth(Role.operator, region="22")
PURCHASER = auth(Role.purchaser, region="220102")
OTHER_COUNTY = auth(Role.purchaser, region="220104")  # 长春市朝阳区
OTHER_OPERATOR = auth(Role.operator, region="220104")
ORGANISATION = auth(Role.organisation, region="220102", org_id="org-1")

PHONE = "13812345678"
EMAIL = "zhang.wei@jlu.edu.cn"
REGISTERED = "sa.providers.expert.registered"
UPDATED = "sa.providers.expert.updated"
EVENT_KEYS = {
    "expert_id",
    "name",
    "region_code",
    "fields",
    "available",
    "unavailable_until",
    "status",
    "title",
    "version",
    "affiliations",
}


def expert_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "张伟",
        "region_code": "220102",
        "fields": ["care", "evaluation"],
        "title": "高级社会工作师",
        "contacts": {"phone": PHONE, "email": EMAIL},
    }
    body.update(overrides)
    return body


@pytest.fixture
async def providers(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    # Event workers off: the tests publish the outbox themselves and read the stream.
    platform = Platform(
        nats_url=nats_url,
        database_url=database_url_factory,
        services=["providers"],
        start_event_workers=False,
    )
    async with platform as p:
        yield p


async def register(
    p: Platform, headers: dict[str, str] = OPERATOR, **overrides: Any
) -> dict[str, Any]:
    r = await p["providers"].post("/experts", json=expert_body(**overrides), headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def affiliate(p: Platform, expert_id: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "organisation_uscc": factories.credit_code(),
        "kind": "employment",
        "started_on": "2019-03-01",
        **overrides,
    }
    r = await p["providers"].post(f"/experts/{expert_id}/affiliations", json=body, headers=OPERATOR)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def published(p: Platform, subject: str | None = None) -> list[tuple[str, bytes, bytes]]:
    """Publish the whole outbox, then every message of the PROVIDERS stream: subject, body,
    and the headers as bytes (to search them too), optionally only those on `subject`."""
    runtime = p.runtime("providers")
    while await runtime.relay.publish_pending():
        pass
    info = await runtime.bus.js.stream_info("PROVIDERS")
    out = []
    for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
        msg = await runtime.bus.js.get_msg("PROVIDERS", seq)
        if subject is None or msg.subject == subject:
            out.append((msg.subject or "", msg.data or b"", repr(msg.headers).encode()))
    return out


async def everything_published(p: Platform) -> bytes:
    return b"".join(body + headers for _, body, headers in await published(p))


async def expert_events(p: Platform, expert_id: str) -> list[dict[str, Any]]:
    """Data of every registered/updated event about `expert_id`, in stream order."""
    out = []
    for subject, body, _ in await published(p):
        if subject in (REGISTERED, UPDATED):
            data = json.loads(body)
            if data["expert_id"] == expert_id:
                out.append({"_subject": subject, **data})
    return out


async def pending_events(p: Platform) -> int:
    runtime = p.runtime("providers")
    async with runtime.db.session() as session:
        count: int = await runtime.tables.pending_count(session)
    return count


# --------------------------------------------------------------------------- registration


async def test_register_masks_contacts_in_every_response(providers: Platform) -> None:
    created = await register(providers)
    assert created["phone_masked"] == "138****5678"
    assert created["email_masked"] == "z***@jlu.edu.cn"
    assert created["fields"] == ["care", "evaluation"]
    assert created["version"] == 1 and created["status"] == "active"
    assert created["available"] is True and created["created_by"] == "test-operator"
    expert_id = created["id"]
    for headers in (OPERATOR, PURCHASER, PROVINCE_OPERATOR):
        r = await providers["providers"].get(f"/experts/{expert_id}", headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["phone_masked"] == "138****5678"
        assert PHONE not in r.text and EMAIL not in r.text and "zhang.wei" not in r.text
    listed = await providers["providers"].get("/experts", headers=PURCHASER)
    assert listed.json()["items"][0]["email_masked"] == "z***@jlu.edu.cn"
    assert PHONE not in listed.text and EMAIL not in listed.text


async def test_contacts_are_ciphertext_in_the_database_bound_to_expert_and_field(
    providers: Platform,
) -> None:
    created = await register(providers)
    other = await register(providers, name="李娜")
    runtime = providers.runtime("providers")
    async with runtime.db.session() as s:
        row = (
            await s.execute(
                text("SELECT phone_enc, email_enc FROM expert WHERE id = :id"),
                {"id": created["id"]},
            )
        ).one()
        assert await s.get(Expert, other["id"]) is not None
    phone_enc, email_enc = row
    assert phone_enc.startswith("v1.") and email_enc.startswith("v1.")
    for plain in (PHONE, PHONE[-4:], EMAIL, "zhang.wei", "jlu.edu.cn"):
        assert plain not in phone_enc and plain not in email_enc
    # Whole database: no plaintext contact anywhere (file bytes on SQLite, every value on PG).
    db = runtime.db
    if db.is_sqlite:
        path = Path(db.engine.url.database or "")
        stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    else:
        stored = b""
        async with db.session() as s:
            for table in runtime.metadata.sorted_tables:
                for r in (await s.execute(table.select())).all():
                    stored += repr(tuple(r)).encode()
    assert PHONE.encode() not in stored and EMAIL.encode() not in stored
    # The token opens only in its own context: its expert and its field.
    cipher = ExpertContactsCipher.from_data_keys(runtime.settings.data_keys)
    assert cipher.open(created["id"], "phone", phone_enc) == PHONE
    assert cipher.open(created["id"], "email", email_enc) == EMAIL
    with pytest.raises(DecryptionError):
        cipher.open(other["id"], "phone", phone_enc)
    with pytest.raises(DecryptionError):
        cipher.open(created["id"], "email", phone_enc)


async def test_registered_event_carries_public_state_and_no_contacts(providers: Platform) -> None:
    created = await register(providers, unavailable_until="2026-07-01")
    messages = await published(providers, REGISTERED)
    assert len(messages) == 1
    raw = messages[0][1] + messages[0][2]
    for secret in (PHONE, PHONE[-4:], EMAIL, "138****5678", "z***@"):
        assert secret.encode() not in raw
    (event,) = await expert_events(providers, created["id"])
    assert set(event) - {"_subject"} == EVENT_KEYS
    assert event == {
        "_subject": REGISTERED,
        "expert_id": created["id"],
        "name": "张伟",
        "region_code": "220102",
        "fields": ["care", "evaluation"],
        "available": True,
        "unavailable_until": "2026-07-01",
        "status": "active",
        "title": "高级社会工作师",
        "version": 1,
        "affiliations": [],
    }


async def test_unknown_field_is_422_naming_its_index_and_changes_nothing(
    providers: Platform,
) -> None:
    r = await providers["providers"].post(
        "/experts",
        json=expert_body(fields=["care", "astrology", "law", "rare_disease_followup"]),
        headers=OPERATOR,
    )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    fields = [e["field"] for e in r.json()["errors"]]
    # rare_disease_followup is a Zhejiang item, not in the Jilin catalogue.
    assert fields == ["body.fields.1", "body.fields.3"]
    assert PHONE not in r.text
    listed = await providers["providers"].get("/experts", headers=OPERATOR)
    assert listed.json()["total"] == 0
    assert await pending_events(providers) == 0


async def test_bad_contacts_are_422_without_echoing_them(providers: Platform) -> None:
    r = await providers["providers"].post(
        "/experts",
        json=expert_body(contacts={"phone": "call me 138", "email": "zhang.wei.at.jlu"}),
        headers=OPERATOR,
    )
    assert r.status_code == 422, r.text
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"body.contacts.phone", "body.contacts.email"}
    assert "zhang.wei.at.jlu" not in r.text and "call me" not in r.text


async def test_only_operators_write_and_organisations_cannot_read(providers: Platform) -> None:
    r = await providers["providers"].post("/experts", json=expert_body(), headers=PURCHASER)
    assert r.status_code == 403
    created = await register(providers)
    r = await providers["providers"].get(f"/experts/{created['id']}", headers=ORGANISATION)
    assert r.status_code == 403
    r = await providers["providers"].patch(
        f"/experts/{created['id']}", json={"title": "x"}, headers=PURCHASER
    )
    assert r.status_code == 403
    r = await providers["providers"].get("/experts")
    assert r.status_code == 401


# --------------------------------------------------------------------------- region scope


async def test_outside_the_callers_region_an_expert_reads_as_absent(providers: Platform) -> None:
    created = await register(providers)
    expert_id = created["id"]
    missing = await providers["providers"].get(f"/experts/{uuid.uuid4()}", headers=OTHER_COUNTY)
    calls = [
        ("GET", f"/experts/{expert_id}", OTHER_COUNTY, None),
        ("GET", f"/experts/{expert_id}/affiliations", OTHER_COUNTY, None),
        ("PATCH", f"/experts/{expert_id}", OTHER_OPERATOR, {"title": "教授"}),
        (
            "POST",
            f"/experts/{expert_id}/affiliations",
            OTHER_OPERATOR,
            {
                "organisation_uscc": factories.credit_code(),
                "kind": "employment",
                "started_on": "2020-01-01",
            },
        ),
    ]
    for method, url, headers, body in calls:
        r = await providers["providers"].request(method, url, json=body, headers=headers)
        assert r.status_code == 404, (method, url, r.text)
        assert r.json()["title"] == missing.json()["title"] == "Not found"
    listed = await providers["providers"].get("/experts", headers=OTHER_COUNTY)
    assert listed.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
    # Registering into another county is refused the same way, and nothing is written.
    r = await providers["providers"].post("/experts", json=expert_body(), headers=OTHER_OPERATOR)
    assert r.status_code == 404
    got = await providers["providers"].get(f"/experts/{expert_id}", headers=OPERATOR)
    assert got.json()["version"] == 1 and got.json()["title"] == "高级社会工作师"


# --------------------------------------------------------------------------- affiliations


async def test_affiliations_bump_the_version_and_their_events_carry_no_contacts(
    providers: Platform,
) -> None:
    created = await register(providers)
    expert_id = created["id"]
    # An organisation the library knows: its id is filled in.
    known_uscc = factories.credit_code()
    runtime = providers.runtime("providers")
    now = datetime.now(UTC)
    async with runtime.db.write_session() as s:
        s.add(
            Organisation(
                id="org-known",
                uscc=known_uscc,
                name="长春市南关区阳光社会工作服务中心",
                kind="social_organisation",
                region_code="220102",
                service_regions=["2201"],
                services=[],
                qualifications={},
                pack="jilin@2026.1",
                created_at=now,
                updated_at=now,
            )
        )
        await s.commit()
    employed = await affiliate(providers, expert_id, organisation_uscc=known_uscc)
    assert employed["organisation_id"] == "org-known"
    assert employed["recorded_by"] == "test-operator" and employed["ended_on"] is None
    unknown_uscc = factories.credit_code()
    director = await affiliate(
        providers,
        expert_id,
        organisation_uscc=unknown_uscc.lower(),  # normalised to capitals
        kind="directorship",
        started_on="2016-01-01",
        ended_on="2021-12-31",
    )
    assert director["organisation_uscc"] == unknown_uscc and director["organisation_id"] is None
    r = await providers["providers"].patch(
        f"/experts/{expert_id}/affiliations/{employed['id']}",
        json={"ended_on": "2025-06-30"},
        headers=OPERATOR,
    )
    assert r.status_code == 200, r.text
    assert r.json()["ended_on"] == "2025-06-30"
    got = (await providers["providers"].get(f"/experts/{expert_id}", headers=OPERATOR)).json()
    assert got["version"] == 4
    listed = await providers["providers"].get(
        f"/experts/{expert_id}/affiliations", headers=PURCHASER
    )
    assert [a["id"] for a in listed.json()["items"]] == [director["id"], employed["id"]]
    assert listed.json()["total"] == 2

    history = await expert_events(providers, expert_id)
    assert [(e["_subject"], e["version"]) for e in history] == [
        (REGISTERED, 1),
        (UPDATED, 2),
        (UPDATED, 3),
        (UPDATED, 4),
    ]
    assert history[1]["affiliations"] == [
        {
            "affiliation_id": employed["id"],
            "organisation_uscc": known_uscc,
            "organisation_id": "org-known",
            "kind": "employment",
            "started_on": "2019-03-01",
            "ended_on": None,
        }
    ]
    last = history[-1]["affiliations"]
    assert [(a["affiliation_id"], a["ended_on"]) for a in last] == [
        (director["id"], "2021-12-31"),
        (employed["id"], "2025-06-30"),
    ]
    for e in history:
        assert set(e) - {"_subject"} == EVENT_KEYS
    everything = await everything_published(providers)
    for secret in (PHONE, PHONE[-4:], EMAIL, "zhang.wei", "138****", "phone", "email"):
        assert secret.encode() not in everything


async def test_affiliation_input_errors_are_422_and_change_nothing(providers: Platform) -> None:
    created = await register(providers)
    expert_id = created["id"]
    bad_code = factories.credit_code()
    bad_code = bad_code[:-1] + ("1" if bad_code[-1] == "0" else "0")  # wrong check digit
    r = await providers["providers"].post(
        f"/experts/{expert_id}/affiliations",
        json={"organisation_uscc": bad_code, "kind": "employment", "started_on": "2020-01-01"},
        headers=OPERATOR,
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["body.organisation_uscc"]
    r = await providers["providers"].post(
        f"/experts/{expert_id}/affiliations",
        json={
            "organisation_uscc": factories.credit_code(),
            "kind": "employment",
            "started_on": "2020-01-02",
            "ended_on": "2020-01-01",
        },
        headers=OPERATOR,
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["body.ended_on"]
    r = await providers["providers"].post(
        f"/experts/{expert_id}/affiliations",
        json={
            "organisation_uscc": factories.credit_code(),
            "kind": "friendship",
            "started_on": "2020-01-01",
        },
        headers=OPERATOR,
    )
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["body.kind"]
    # Ending before the start, and ending somebody else's affiliation.
    tie = await affiliate(providers, expert_id, started_on="2020-05-01")
    r = await providers["providers"].patch(
        f"/experts/{expert_id}/affiliations/{tie['id']}",
        json={"ended_on": "2020-04-30"},
        headers=OPERATOR,
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "body.ended_on"
    other = await register(providers, name="李娜")
    r = await providers["providers"].patch(
        f"/experts/{other['id']}/affiliations/{tie['id']}",
        json={"ended_on": "2021-01-01"},
        headers=OPERATOR,
    )
    assert r.status_code == 404
    # The same tie twice is a conflict.
    r = await providers["providers"].post(
        f"/experts/{expert_id}/affiliations",
        json={
            "organisation_uscc": tie["organisation_uscc"],
            "kind": "employment",
            "started_on": "2020-05-01",
        },
        headers=OPERATOR,
    )
    assert r.status_code == 409 and r.json()["existing_id"] == tie["id"]
    # Only the one valid affiliation changed anything.
    got = (await providers["providers"].get(f"/experts/{expert_id}", headers=OPERATOR)).json()
    assert got["version"] == 2
    runtime = providers.runtime("providers")
    async with runtime.db.session() as s:
        rows = (await s.execute(text("SELECT ended_on FROM expert_affiliation"))).all()
    assert [r[0] for r in rows] == [None]


# --------------------------------------------------------------------------- updates


async def test_every_change_raises_the_version_and_no_change_does_not(
    providers: Platform,
) -> None:
    created = await register(providers)
    expert_id = created["id"]
    url = f"/experts/{expert_id}"

    async def patch(body: dict[str, Any]) -> dict[str, Any]:
        r = await providers["providers"].patch(url, json=body, headers=OPERATOR)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    v2 = await patch({"fields": ["counselling", "law"], "title": "教授"})
    assert v2["version"] == 2 and v2["fields"] == ["counselling", "law"] and v2["title"] == "教授"
    same = await patch({"fields": ["counselling", "law"], "title": "教授"})
    assert same["version"] == 2  # nothing changed
    v3 = await patch({"available": False, "unavailable_until": "2026-12-31"})
    assert v3["version"] == 3 and v3["available"] is False
    v4 = await patch({"contacts": {"phone": "13987654321"}})  # only the phone
    assert v4["version"] == 4
    assert v4["phone_masked"] == "139****4321" and v4["email_masked"] == "z***@jlu.edu.cn"
    same_phone = await patch({"contacts": {"phone": "13987654321"}})
    assert same_phone["version"] == 4
    v5 = await patch({"contacts": {"email": None}, "status": "retired"})
    assert v5["version"] == 5 and v5["email_masked"] is None and v5["status"] == "retired"

    history = await expert_events(providers, expert_id)
    assert [e["version"] for e in history] == [1, 2, 3, 4, 5]
    assert history[2]["unavailable_until"] == "2026-12-31" and history[2]["available"] is False
    assert history[-1]["status"] == "retired"
    everything = await everything_published(providers)
    # Neither the number, its masked form, nor any 7 of its digits in a row. (Not just the
    # last four: "4321" turns up in random event and trace ids one run in a dozen.)
    phone = b"13987654321"
    assert b"139****4321" not in everything
    assert not [phone[i : i + 7] for i in range(len(phone) - 6) if phone[i : i + 7] in everything]

    # Input errors change nothing.
    for body, field in [
        ({"fields": ["care", "knitting"]}, "body.fields.1"),
        ({"fields": None}, "body.fields"),
        ({"status": "deceased"}, "body.status"),
        ({"region_code": "220104"}, "body.region_code"),
        ({"contacts": {"email": "nope"}}, "body.contacts.email"),
    ]:
        r = await providers["providers"].patch(url, json=body, headers=OPERATOR)
        assert r.status_code == 422, (body, r.text)
        assert [e["field"] for e in r.json()["errors"]] == [field]
    got = (await providers["providers"].get(url, headers=OPERATOR)).json()
    assert got["version"] == 5 and got["fields"] == ["counselling", "law"]


# --------------------------------------------------------------------------- list


async def test_list_filters_sorting_and_pagination(providers: Platform) -> None:
    today = datetime.now(CHINA_TZ).date()
    chen = await register(providers, name="Chen", fields=["care", "law"])
    anna = await register(providers, name="Anna", region_code="220102001", fields=["law"])
    bei = await register(
        providers, name="Bei", fields=["counselling"], unavailable_until=today.isoformat()
    )
    dong = await register(
        providers,
        name="Dong",
        region_code="220104",
        fields=["care"],
        unavailable_until=(today - timedelta(days=1)).isoformat(),
        headers=PROVINCE_OPERATOR,
    )
    eva = await register(providers, name="Eva", fields=["finance"], available=False)
    fan = await register(providers, name="Fan", fields=["care"])
    r = await providers["providers"].patch(
        f"/experts/{fan['id']}", json={"status": "retired"}, headers=OPERATOR
    )
    assert r.status_code == 200

    async def names(headers: dict[str, str] = PROVINCE_OPERATOR, **params: Any) -> list[str]:
        r = await providers["providers"].get("/experts", params=params, headers=headers)
        assert r.status_code == 200, r.text
        return [e["name"] for e in r.json()["items"]]

    assert await names() == ["Anna", "Bei", "Chen", "Dong", "Eva", "Fan"]
    assert await names(sort="-name") == ["Fan", "Eva", "Dong", "Chen", "Bei", "Anna"]
    assert await names(sort="-created_at") == ["Fan", "Eva", "Dong", "Bei", "Anna", "Chen"]
    assert await names(field="care") == ["Chen", "Dong", "Fan"]
    assert await names(field="law") == ["Anna", "Chen"]
    assert await names(region="220102") == ["Anna", "Bei", "Chen", "Eva", "Fan"]
    assert await names(region="220102001") == ["Anna"]
    assert await names(region="220104") == ["Dong"]
    # Available today: active, switched on, and past any temporary absence (which includes
    # its last day).
    assert await names(available="true") == ["Anna", "Chen", "Dong"]
    assert await names(available="false") == ["Bei", "Eva", "Fan"]
    assert await names(status="retired") == ["Fan"]
    assert await names(field="care", available="true", region="2201") == ["Chen", "Dong"]
    # A county caller sees its own county only, whatever region it asks for.
    assert await names(PURCHASER) == ["Anna", "Bei", "Chen", "Eva", "Fan"]
    assert await names(PURCHASER, region="22") == ["Anna", "Bei", "Chen", "Eva", "Fan"]
    assert await names(PURCHASER, region="220104") == []
    # Pages: stable and complete.
    seen: list[str] = []
    for offset in range(0, 6, 4):
        r = await providers["providers"].get(
            "/experts", params={"limit": 4, "offset": offset}, headers=PROVINCE_OPERATOR
        )
        page = r.json()
        assert page["total"] == 6 and page["limit"] == 4 and page["offset"] == offset
        seen += [e["id"] for e in page["items"]]
    assert seen == [e["id"] for e in (anna, bei, chen, dong, eva, fan)]
    # A field changed by PATCH moves the expert between filters.
    r = await providers["providers"].patch(
        f"/experts/{eva['id']}", json={"fields": ["care"]}, headers=OPERATOR
    )
    assert r.status_code == 200
    assert await names(field="care") == ["Chen", "Dong", "Eva", "Fan"]
    assert await names(field="finance") == []
    for bad in ({"sort": "phone"}, {"region": "jilin"}, {"status": "gone"}):
        r = await providers["providers"].get("/experts", params=bad, headers=PROVINCE_OPERATOR)
        assert r.status_code == 422, bad


# --------------------------------------------------------------------------- linking


async def test_affiliation_is_linked_when_its_organisation_joins_the_library_later(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> None:
    async with Platform(
        nats_url=nats_url, database_url=database_url_factory, services=["providers"]
    ) as p:
        created = await register(p)
        uscc = factories.credit_code()
        tie = await affiliate(p, created["id"], organisation_uscc=uscc, kind="shareholding")
        assert tie["organisation_id"] is None
        # The organisation registers afterwards (written the way the organisation use case
        # writes it: the row and its `registered` event in one transaction).
        runtime = p.runtime("providers")
        now = datetime.now(UTC)
        org = Organisation(
            id=str(uuid.uuid4()),
            uscc=uscc,
            name="吉林省某养老服务有限公司",
            kind="enterprise",
            region_code="220102",
            service_regions=["220102"],
            services=[{"code": "care", "monthly_capacity": 5}],
            qualifications={},
            pack="jilin@2026.1",
            created_at=now,
            updated_at=now,
        )
        async with runtime.unit_of_work() as uow:
            uow.session.add(org)
            uow.emit(org_events.organisation_registered(org))
            await uow.commit()

        async def linked() -> list[dict[str, Any]]:
            r = await p["providers"].get(f"/experts/{created['id']}/affiliations", headers=OPERATOR)
            items: list[dict[str, Any]] = r.json()["items"]
            return items

        items = await eventually(linked, until=lambda a: a[0]["organisation_id"] == org.id)
        assert items[0]["id"] == tie["id"]
        got = (await p["providers"].get(f"/experts/{created['id']}", headers=OPERATOR)).json()
        assert got["version"] == 3

        async def updates() -> list[dict[str, Any]]:
            return [e for e in await expert_events(p, created["id"]) if e["version"] == 3]

        (event,) = await eventually(updates, until=lambda e: len(e) == 1)
        assert event["affiliations"][0]["organisation_id"] == org.id
        # A replay of the organisation event finds nothing left to link: no new version.
        replay = org_events.organisation_registered(org)
        async with runtime.unit_of_work() as uow:
            uow.emit(replay)
            await uow.commit()

        async def handled() -> bool:
            async with runtime.db.session() as s:
                row = (
                    await s.execute(
                        select(runtime.tables.inbox.c.event_id).where(
                            runtime.tables.inbox.c.consumer == "providers-expert-affiliations",
                            runtime.tables.inbox.c.event_id == replay.id,
                        )
                    )
                ).first()
            return row is not None

        await eventually(handled, until=bool)
        got = (await p["providers"].get(f"/experts/{created['id']}", headers=OPERATOR)).json()
        assert got["version"] == 3
        assert [e["version"] for e in await expert_events(p, created["id"])] == [1, 2, 3]


async def test_raw_rows_hold_what_the_api_says(providers: Platform) -> None:
    created = await register(providers, fields=["care", "finance"])
    tie = await affiliate(providers, created["id"], started_on="2018-01-01", ended_on="2022-01-01")
    runtime = providers.runtime("providers")
    async with runtime.db.session() as s:
        fields = (
            await s.execute(
                text("SELECT field FROM expert_field WHERE expert_id = :id ORDER BY field"),
                {"id": created["id"]},
            )
        ).all()
        row = await s.get(ExpertAffiliation, tie["id"])
    assert [f[0] for f in fields] == ["care", "finance"]
    assert row is not None
    assert (row.started_on, row.ended_on) == (date(2018, 1, 1), date(2022, 1, 1))
