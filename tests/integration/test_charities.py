"""Charities (慈善组织) and their resources (慈善资源) in the providers service, in-process on a
real database and the session's real nats-server: registration, offers checked against the
province pack (refusals name the field, the negative list cites its clause, and change
nothing), withdrawal, the events on the PROVIDERS stream, the remaining quantity following
matching's allocation events (each allocation taken and released at most once; an
over-allocation dead-lettered), and resource search with every filter, sort and page."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from stdnum.cn import uscc

from libs.common.auth import Role
from libs.common.events import DLQ_STREAM, new_event
from libs.common.policy import load_pack
from libs.common.validators import CHINA_TZ
from services.providers.charities import service
from services.providers.charities.jobs import expire_resources
from tests.support.platform import Platform, auth, eventually

OPERATOR = auth(Role.operator, region="220102")  # 长春市南关区
OTHER_COUNTY_OPERATOR = auth(Role.operator, region="220104")  # 长春市朝阳区
ZHEJIANG_OPERATOR = auth(Role.operator, region="33")
PROVINCE_OPERATOR = auth(Role.operator, region="22")
NATIONAL = auth(Role.ministry)
PURCHASER = auth(Role.purchaser, region="220102")

RESOURCE_KEYS = {
    "resource_id",
    "charity_id",
    "kind",
    "title",
    "service_codes",
    "regions",
    "target_categories",
    "quantity",
    "remaining",
    "unit",
    "valid_from",
    "valid_until",
    "status",
    "version",
}
TODAY = datetime.now(CHINA_TZ).date()
START = TODAY + timedelta(days=10)


def charity_code(rng: random.Random | None = None) -> str:
    """A valid credit code of a foundation (基金会, 53…) registered in 长春市南关区."""
    rng = rng or random.Random()
    body = "53220102MJ" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(7))
    return body + uscc.calc_check_digit(body)


def charity_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uscc": charity_code(),
        "name": "长春市南关区爱心慈善基金会",
        "charity_registration": "吉民慈认〔2024〕12号",
        "registration_authority": "长春市南关区民政局",
        "region_code": "220102",
    }
    body.update(overrides)
    return body


def resource_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "volunteer_hours",
        "title": "助老志愿服务",
        "service_codes": ["care", "counselling"],
        "regions": ["220102"],
        "target_categories": ["tekun", "dibao"],
        "quantity": 100,
        "unit": "hours",
        "valid_from": START.isoformat(),
        "valid_until": (START + timedelta(days=90)).isoformat(),
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


@pytest.fixture
async def live(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    """Relay and consumers running: matching's events are applied as they arrive."""
    platform = Platform(
        nats_url=nats_url, database_url=database_url_factory, services=["providers"]
    )
    async with platform as p:
        yield p


async def register(
    p: Platform, headers: dict[str, str] = OPERATOR, **overrides: Any
) -> dict[str, Any]:
    r = await p["providers"].post("/charities", json=charity_body(**overrides), headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def offer(
    p: Platform, charity_id: str, headers: dict[str, str] = OPERATOR, **overrides: Any
) -> dict[str, Any]:
    r = await p["providers"].post(
        f"/charities/{charity_id}/resources", json=resource_body(**overrides), headers=headers
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def published(p: Platform, subject: str | None = None) -> list[dict[str, Any]]:
    """Publish the whole outbox, then the data of every PROVIDERS message (with `_subject`),
    optionally only those on `subject`."""
    runtime = p.runtime("providers")
    while await runtime.relay.publish_pending():
        pass
    info = await runtime.bus.js.stream_info("PROVIDERS")
    out = []
    for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
        msg = await runtime.bus.js.get_msg("PROVIDERS", seq)
        if subject is None or msg.subject == subject:
            out.append({"_subject": msg.subject, **json.loads(msg.data or b"{}")})
    return out


async def on_stream(p: Platform) -> list[dict[str, Any]]:
    """What the running relay has published so far (the data of every PROVIDERS message)."""
    js = p.runtime("providers").bus.js
    info = await js.stream_info("PROVIDERS")
    out = []
    for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
        msg = await js.get_msg("PROVIDERS", seq)
        out.append({"_subject": msg.subject, **json.loads(msg.data or b"{}")})
    return out


async def pending_events(p: Platform) -> int:
    runtime = p.runtime("providers")
    async with runtime.db.session() as session:
        count: int = await runtime.tables.pending_count(session)
    return count


async def matching_says(p: Platform, verb: str, **data: Any) -> str:
    """Publish `sa.matching.resource.<verb>` as matching would (CloudEvents envelope)."""
    event = new_event(service="matching", entity="resource", verb=verb, data=data)
    await p.runtime("providers").bus.js.publish(
        event.nats_subject, event.body(), headers=event.headers()
    )
    return event.id


async def resource(p: Platform, resource_id: str) -> dict[str, Any]:
    r = await p["providers"].get(f"/resources/{resource_id}", headers=OPERATOR)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def movements(p: Platform, resource_id: str) -> list[dict[str, Any]]:
    r = await p["providers"].get(f"/resources/{resource_id}/movements", headers=OPERATOR)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


# --------------------------------------------------------------------------- charities


async def test_register_a_charity_and_announce_it(providers: Platform) -> None:
    created = await register(providers)
    assert created["status"] == "active" and created["version"] == 1
    assert created["charity_registration"] == "吉民慈认〔2024〕12号"
    assert created["created_by"] == "test-operator"
    [event] = await published(providers, "sa.providers.charity.registered")
    assert event["charity_id"] == created["id"]
    assert event["uscc"] == created["uscc"] and event["region_code"] == "220102"
    assert event["version"] == 1 and event["status"] == "active"
    got = await providers["providers"].get(f"/charities/{created['id']}", headers=PURCHASER)
    assert got.status_code == 200 and got.json()["name"] == created["name"]


async def test_a_known_credit_code_is_409_with_the_existing_id(providers: Platform) -> None:
    first = await register(providers)
    again = await providers["providers"].post(
        "/charities", json=charity_body(uscc=first["uscc"], name="另一个名字"), headers=OPERATOR
    )
    assert again.status_code == 409
    assert again.json()["existing_id"] == first["id"]
    assert len(await published(providers, "sa.providers.charity.registered")) == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"uscc": "53220102MJ0000001X"}, "body.uscc"),
        ({"charity_registration": " "}, "body.charity_registration"),
        ({"region_code": "220199"}, "body.region_code"),
        ({"region_code": "110101"}, "body.region_code"),  # Beijing: no policy pack
    ],
)
async def test_invalid_registrations_name_the_field_and_write_nothing(
    providers: Platform, overrides: dict[str, Any], field: str
) -> None:
    headers = auth(Role.operator) if overrides.get("region_code") == "110101" else OPERATOR
    r = await providers["providers"].post(
        "/charities", json=charity_body(**overrides), headers=headers
    )
    assert r.status_code == 422, r.text
    assert field in [e["field"] for e in r.json()["errors"]]
    listed = await providers["providers"].get("/charities", headers=NATIONAL)
    assert listed.json()["total"] == 0
    assert await pending_events(providers) == 0


async def test_the_charity_registration_number_is_required(providers: Platform) -> None:
    body = charity_body()
    del body["charity_registration"]
    r = await providers["providers"].post("/charities", json=body, headers=OPERATOR)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "body.charity_registration"


async def test_who_may_register(providers: Platform) -> None:
    purchaser = await providers["providers"].post(
        "/charities", json=charity_body(), headers=PURCHASER
    )
    assert purchaser.status_code == 403
    outside = await providers["providers"].post(
        "/charities", json=charity_body(), headers=OTHER_COUNTY_OPERATOR
    )
    assert outside.status_code == 404
    # A charity's own account registers it under its own id, and then manages it.
    own_id = str(uuid.uuid4())
    account = auth(Role.charity, region="220102", org_id=own_id)
    mine = await register(providers, headers=account)
    assert mine["id"] == own_id
    await offer(providers, own_id, headers=account)
    twice = await providers["providers"].post("/charities", json=charity_body(), headers=account)
    assert twice.status_code == 409 and twice.json()["existing_id"] == own_id


async def test_charities_are_seen_in_their_province_and_listed_by_region(
    providers: Platform,
) -> None:
    nanguan = await register(providers)
    chaoyang = await register(providers, headers=PROVINCE_OPERATOR, region_code="220104")
    zhejiang = await register(providers, headers=ZHEJIANG_OPERATOR, region_code="330106")
    hidden = await providers["providers"].get(f"/charities/{zhejiang['id']}", headers=PURCHASER)
    assert hidden.status_code == 404
    seen = await providers["providers"].get(f"/charities/{chaoyang['id']}", headers=PURCHASER)
    assert seen.status_code == 200
    everyone = await providers["providers"].get("/charities", headers=NATIONAL)
    assert [c["id"] for c in everyone.json()["items"]] == [
        nanguan["id"],
        chaoyang["id"],
        zhejiang["id"],
    ]
    jilin = await providers["providers"].get("/charities", headers=PURCHASER)
    assert {c["id"] for c in jilin.json()["items"]} == {nanguan["id"], chaoyang["id"]}
    county = await providers["providers"].get(
        "/charities", params={"region": "220104", "status": "active"}, headers=NATIONAL
    )
    assert [c["id"] for c in county.json()["items"]] == [chaoyang["id"]]
    none = await providers["providers"].get(
        "/charities", params={"status": "inactive"}, headers=NATIONAL
    )
    assert none.json()["total"] == 0
    page = await providers["providers"].get(
        "/charities", params={"limit": 1, "offset": 1}, headers=NATIONAL
    )
    assert page.json()["total"] == 3 and [c["id"] for c in page.json()["items"]] == [chaoyang["id"]]


# --------------------------------------------------------------------------- offers


async def test_offer_a_resource_and_announce_it(providers: Platform) -> None:
    charity = await register(providers)
    created = await offer(providers, charity["id"], regions=["220102", "2201"])
    assert created["status"] == "offered" and created["version"] == 1
    assert created["remaining"] == created["quantity"] == 100
    assert created["charity_id"] == charity["id"] and created["created_by"] == "test-operator"
    [event] = await published(providers, "sa.providers.resource.offered")
    assert set(event) - {"_subject"} == RESOURCE_KEYS
    assert event["resource_id"] == created["id"]
    assert event["service_codes"] == ["care", "counselling"]
    assert event["regions"] == ["220102", "2201"]
    assert event["target_categories"] == ["tekun", "dibao"]
    assert (event["quantity"], event["remaining"], event["unit"]) == (100, 100, "hours")
    assert event["valid_from"] == START.isoformat()
    assert (event["status"], event["version"]) == ("offered", 1)


async def test_funds_are_offered_in_fen(providers: Platform) -> None:
    charity = await register(providers)
    funds = await offer(
        providers, charity["id"], kind="funds", unit="fen", quantity=5_000_000, title="助学金"
    )
    assert (funds["quantity"], funds["unit"]) == (5_000_000, "fen")
    yuan = await providers["providers"].post(
        f"/charities/{charity['id']}/resources",
        json=resource_body(kind="funds", unit="yuan", quantity=50_000),
        headers=OPERATOR,
    )
    assert yuan.status_code == 422
    assert [e["field"] for e in yuan.json()["errors"]] == ["body.unit"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"service_codes": ["care", "dance_lessons"]}, "body.service_codes.1"),
        ({"service_codes": ["rare_disease_followup"]}, "body.service_codes.0"),  # Zhejiang only
        ({"target_categories": ["tekun", "rare_disease"]}, "body.target_categories.1"),
        ({"regions": ["220102", "330106"]}, "body.regions.1"),
        ({"regions": ["229999"]}, "body.regions.0"),  # not a county at all
        ({"quantity": 0}, "body.quantity"),
        (
            {"valid_until": START.isoformat(), "valid_from": (START + timedelta(1)).isoformat()},
            "body.valid_until",
        ),
        (
            {"valid_from": "2020-01-01", "valid_until": (TODAY - timedelta(1)).isoformat()},
            "body.valid_until",
        ),
        ({"kind": "land"}, "body.kind"),
    ],
)
async def test_offers_outside_the_pack_are_422_naming_the_field_and_change_nothing(
    providers: Platform, overrides: dict[str, Any], field: str
) -> None:
    charity = await register(providers)
    await published(providers)  # the registration is out of the way
    r = await providers["providers"].post(
        f"/charities/{charity['id']}/resources", json=resource_body(**overrides), headers=OPERATOR
    )
    assert r.status_code == 422, r.text
    assert r.json()["type"].endswith("invalid-input")
    assert [e["field"] for e in r.json()["errors"]] == [field]
    listed = await providers["providers"].get(
        "/resources", params={"status": ["offered", "withdrawn", "exhausted"]}, headers=OPERATOR
    )
    assert listed.json()["total"] == 0
    assert await pending_events(providers) == 0


async def test_a_negative_list_item_is_refused_citing_the_clause(providers: Platform) -> None:
    charity = await register(providers)
    await published(providers)
    r = await providers["providers"].post(
        f"/charities/{charity['id']}/resources",
        json=resource_body(service_codes=["care", "goods_and_works"]),
        headers=OPERATOR,
    )
    assert r.status_code == 422
    problem = r.json()
    assert problem["type"].endswith("rule-violation")
    clause = load_pack("jilin").negative_entry("goods_and_works").source.cite()  # type: ignore[union-attr]
    assert problem["rules"] == [clause] == ["吉民发〔2020〕44号 §三(二)3"]
    assert problem["errors"][0]["field"] == "body.service_codes.1"
    assert clause in problem["errors"][0]["reason"]
    assert await pending_events(providers) == 0


async def test_who_may_offer_and_withdraw(providers: Platform) -> None:
    charity = await register(providers)
    other_charity = auth(Role.charity, region="220102", org_id=str(uuid.uuid4()))
    own = auth(Role.charity, region="220102", org_id=charity["id"])
    url = f"/charities/{charity['id']}/resources"
    for headers, code in [
        (PURCHASER, 403),  # not a role that offers
        (other_charity, 403),  # sees the charity, may not act for it
        (OTHER_COUNTY_OPERATOR, 403),  # same province, not its county
        (ZHEJIANG_OPERATOR, 404),  # another province: existence does not leak
    ]:
        r = await providers["providers"].post(url, json=resource_body(), headers=headers)
        assert r.status_code == code, (headers, r.text)
    mine = await offer(providers, charity["id"], headers=own)
    assert mine["created_by"] == "test-charity"
    province = await offer(providers, charity["id"], headers=PROVINCE_OPERATOR)
    missing = await providers["providers"].post(
        "/charities/nope/resources", json=resource_body(), headers=OPERATOR
    )
    assert missing.status_code == 404
    withdraw = {"reason": "donor changed plans"}
    r = await providers["providers"].post(
        f"/resources/{mine['id']}/withdraw", json=withdraw, headers=other_charity
    )
    assert r.status_code == 403
    r = await providers["providers"].post(
        f"/resources/{province['id']}/withdraw", json=withdraw, headers=own
    )
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"


async def test_withdraw_once_with_the_reason_and_announce_it(providers: Platform) -> None:
    charity = await register(providers)
    created = await offer(providers, charity["id"])
    r = await providers["providers"].post(
        f"/resources/{created['id']}/withdraw",
        json={"reason": "捐赠方撤回"},
        headers=OPERATOR,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["status_reason"], body["version"]) == (
        "withdrawn",
        "捐赠方撤回",
        2,
    )
    again = await providers["providers"].post(
        f"/resources/{created['id']}/withdraw", json={"reason": "twice"}, headers=OPERATOR
    )
    assert again.status_code == 409 and again.json()["resource_status"] == "withdrawn"
    [event] = await published(providers, "sa.providers.resource.withdrawn")
    assert event["resource_id"] == created["id"] and event["reason"] == "捐赠方撤回"
    assert (event["status"], event["version"]) == ("withdrawn", 2)
    assert (await resource(providers, created["id"]))["status_reason"] == "捐赠方撤回"
    no_reason = await providers["providers"].post(
        f"/resources/{created['id']}/withdraw", json={}, headers=OPERATOR
    )
    assert no_reason.status_code == 422


async def test_offers_past_their_window_expire_once_with_an_event(providers: Platform) -> None:
    charity = await register(providers)
    ending = await offer(providers, charity["id"], valid_until=START.isoformat())
    lasting = await offer(providers, charity["id"])
    runtime = providers.runtime("providers")
    # On its last day an offer still stands; the day after, it expires, once.
    assert await expire_resources(runtime, today=START) == 0
    assert await expire_resources(runtime, today=START + timedelta(days=1)) == 1
    assert await expire_resources(runtime, today=START + timedelta(days=1)) == 0
    gone = await resource(providers, ending["id"])
    assert (gone["status"], gone["version"]) == ("expired", 2)
    assert (await resource(providers, lasting["id"]))["status"] == "offered"
    [event] = await published(providers, "sa.providers.resource.expired")
    assert (event["resource_id"], event["status"], event["version"]) == (ending["id"], "expired", 2)


# --------------------------------------------------------------------------- matching's events


async def test_allocations_and_releases_move_the_remaining_quantity(live: Platform) -> None:
    charity = await register(live)
    res = await offer(live, charity["id"], quantity=10)
    rid = res["id"]
    a1, a2 = str(uuid.uuid4()), str(uuid.uuid4())
    e1 = await matching_says(live, "allocated", allocation_id=a1, resource_id=rid, quantity=4)
    await eventually(lambda: resource(live, rid), until=lambda r: r["remaining"] == 6)
    # The same allocation again under a new event id changes nothing; a2 shows it was seen.
    await matching_says(live, "allocated", allocation_id=a1, resource_id=rid, quantity=4)
    await matching_says(live, "allocated", allocation_id=a2, resource_id=rid, quantity=6)
    after = await eventually(lambda: resource(live, rid), until=lambda r: r["version"] >= 3)
    assert (after["remaining"], after["status"], after["version"]) == (0, "exhausted", 3)
    # Releasing a1 (twice, under two event ids) gives back 4 once; the resource is offered.
    await matching_says(live, "released", allocation_id=a1, resource_id=rid, quantity=4)
    await matching_says(live, "released", allocation_id=a1, resource_id=rid, quantity=4)
    await matching_says(live, "released", allocation_id=a2, resource_id=rid, quantity=6)
    final = await eventually(lambda: resource(live, rid), until=lambda r: r["version"] >= 5)
    assert (final["remaining"], final["status"], final["version"]) == (10, "offered", 5)
    moved = await movements(live, rid)
    assert [(m["allocation_id"], m["reason"], m["delta"]) for m in moved] == [
        (a1, "allocated", -4),
        (a2, "allocated", -6),
        (a1, "released", 4),
        (a2, "released", 6),
    ]
    assert moved[0]["event_id"] == e1
    # Every change was announced with the state at its version.
    events = await eventually(
        lambda: on_stream(live),
        until=lambda es: len([e for e in es if e.get("resource_id") == rid]) >= 5,
    )
    mine = [e for e in events if e.get("resource_id") == rid]
    assert [(e["_subject"].rsplit(".", 1)[1], e["version"], e["remaining"]) for e in mine] == [
        ("offered", 1, 10),
        ("updated", 2, 6),
        ("exhausted", 3, 0),
        ("updated", 4, 4),
        ("updated", 5, 10),
    ]
    assert mine[2]["status"] == "exhausted" and mine[3]["status"] == "offered"
    assert mine[1]["movement"] == {"allocation_id": a1, "reason": "allocated", "delta": -4}
    # Nothing was dead-lettered on the way.
    dlq = await live.runtime("providers").bus.js.stream_info(DLQ_STREAM)
    assert dlq.state.messages == 0


async def test_an_over_allocation_is_dead_lettered_with_the_reason(live: Platform) -> None:
    charity = await register(live)
    rid = (await offer(live, charity["id"], quantity=5))["id"]
    too_much = str(uuid.uuid4())
    event_id = await matching_says(
        live, "allocated", allocation_id=too_much, resource_id=rid, quantity=6
    )
    js = live.runtime("providers").bus.js

    async def dead_letters() -> int:
        return int((await js.stream_info(DLQ_STREAM)).state.messages)

    await eventually(dead_letters, until=lambda n: n == 1)
    msg = await js.get_msg(DLQ_STREAM, 1)
    headers = msg.headers or {}
    assert headers["ce-id"] == event_id
    assert headers["sa-dlq-consumer"] == "providers-resource-allocations"
    assert "PermanentError" in headers["sa-dlq-reason"]
    assert "exceeds the remaining 5" in headers["sa-dlq-reason"]
    assert "over-allocate" in headers["sa-dlq-reason"]
    # Nothing moved; a later, valid allocation still flows.
    ok = str(uuid.uuid4())
    await matching_says(live, "allocated", allocation_id=ok, resource_id=rid, quantity=5)
    after = await eventually(lambda: resource(live, rid), until=lambda r: r["version"] == 2)
    assert (after["remaining"], after["status"]) == (0, "exhausted")
    assert [m["allocation_id"] for m in await movements(live, rid)] == [ok]


async def test_conflicting_or_unknown_allocations_are_dead_lettered(live: Platform) -> None:
    charity = await register(live)
    rid = (await offer(live, charity["id"], quantity=8))["id"]
    a1 = str(uuid.uuid4())
    await matching_says(live, "allocated", allocation_id=a1, resource_id=rid, quantity=3)
    await eventually(lambda: resource(live, rid), until=lambda r: r["remaining"] == 5)
    bad = [
        # the same allocation id with another quantity
        await matching_says(live, "allocated", allocation_id=a1, resource_id=rid, quantity=2),
        # releasing more than the allocation took
        await matching_says(live, "released", allocation_id=a1, resource_id=rid, quantity=4),
        # a resource providers never offered
        await matching_says(
            live, "allocated", allocation_id=str(uuid.uuid4()), resource_id="nope", quantity=1
        ),
        # no usable quantity
        await matching_says(
            live, "allocated", allocation_id=str(uuid.uuid4()), resource_id=rid, quantity=True
        ),
    ]
    js = live.runtime("providers").bus.js

    async def dead() -> set[str]:
        info = await js.stream_info(DLQ_STREAM)
        ids = set()
        for seq in range(info.state.first_seq or 1, info.state.last_seq + 1):
            ids.add((await js.get_msg(DLQ_STREAM, seq)).headers["ce-id"])
        return ids

    assert await eventually(dead, until=lambda ids: ids == set(bad)) == set(bad)
    now = await resource(live, rid)
    assert (now["remaining"], now["version"]) == (5, 2)
    assert len(await movements(live, rid)) == 1


async def test_movements_are_listed_oldest_first_in_pages(live: Platform) -> None:
    charity = await register(live)
    rid = (await offer(live, charity["id"], quantity=50))["id"]
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for i, allocation in enumerate(ids):
        await matching_says(
            live, "allocated", allocation_id=allocation, resource_id=rid, quantity=i + 1
        )
    await eventually(lambda: resource(live, rid), until=lambda r: r["remaining"] == 44)
    r = await live["providers"].get(
        f"/resources/{rid}/movements", params={"limit": 2, "offset": 1}, headers=OPERATOR
    )
    page = r.json()
    assert page["total"] == 3
    assert [m["allocation_id"] for m in page["items"]] == ids[1:]
    hidden = await live["providers"].get(
        f"/resources/{rid}/movements", headers=auth(Role.purchaser, region="330106")
    )
    assert hidden.status_code == 404


# --------------------------------------------------------------------------- search


async def seed(p: Platform) -> dict[str, dict[str, Any]]:
    """A small library: two Jilin charities and one in Zhejiang, resources spread over
    regions, services, categories, kinds and windows (created in this order)."""
    nanguan = await register(p)
    chaoyang = await register(p, headers=PROVINCE_OPERATOR, region_code="220104")
    hangzhou = await register(p, headers=ZHEJIANG_OPERATOR, region_code="330106")
    made: dict[str, dict[str, Any]] = {}
    specs: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, str]]] = [
        (
            "province",
            nanguan,
            {
                "regions": ["22"],
                "title": "E 全省助医",
                "quantity": 30,
                "service_codes": ["hospital_escort"],
                "kind": "funds",
                "unit": "fen",
                "target_categories": ["medical_aid"],
            },
            OPERATOR,
        ),
        (
            "county",
            nanguan,
            {"regions": ["220102"], "title": "A 南关助老", "quantity": 80},
            OPERATOR,
        ),
        (
            "township",
            nanguan,
            {
                "regions": ["220102003"],
                "title": "C 街道心理",
                "service_codes": ["counselling"],
                "quantity": 50,
                "valid_until": (START + timedelta(days=30)).isoformat(),
            },
            OPERATOR,
        ),
        (
            "neighbour",
            chaoyang,
            {
                "regions": ["220105"],
                "title": "B 朝阳助老",
                "quantity": 80,
                "kind": "goods",
                "unit": "boxes",
                "target_categories": ["dibao_edge"],
            },
            PROVINCE_OPERATOR,
        ),
        (
            "later",
            chaoyang,
            {
                "regions": ["2201"],
                "title": "D 长春康复",
                "service_codes": ["rehabilitation"],
                "quantity": 20,
                "valid_from": (START + timedelta(days=60)).isoformat(),
            },
            PROVINCE_OPERATOR,
        ),
        (
            "zhejiang",
            hangzhou,
            {"regions": ["33"], "title": "F 浙江助老", "target_categories": ["rare_disease"]},
            ZHEJIANG_OPERATOR,
        ),
        ("gone", nanguan, {"regions": ["220102"], "title": "G 已撤回"}, OPERATOR),
    ]
    for name, charity, overrides, headers in specs:
        made[name] = await offer(p, charity["id"], headers=headers, **overrides)
    r = await p["providers"].post(
        f"/resources/{made['gone']['id']}/withdraw", json={"reason": "撤回"}, headers=OPERATOR
    )
    assert r.status_code == 200
    made["_nanguan"] = nanguan
    return made


async def search(p: Platform, headers: dict[str, str] = NATIONAL, **params: Any) -> dict[str, Any]:
    r = await p["providers"].get("/resources", params=params, headers=headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def names(made: dict[str, dict[str, Any]], page: dict[str, Any]) -> list[str]:
    by_id = {v["id"]: k for k, v in made.items()}
    return [by_id[item["id"]] for item in page["items"]]


@pytest.fixture(params=["sparse", "dense"])
def plan(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run search tests with the page read both ways: through the id lists (few matches) and
    by walking the sort index with probes (many matches): both must give the same rows."""
    if request.param == "dense":
        monkeypatch.setattr(service, "DENSE_TOTAL", 0)
        monkeypatch.setattr(service, "DENSE_RATIO", 0)
    else:
        monkeypatch.setattr(service, "DENSE_TOTAL", 10**9)
    return str(request.param)


async def test_search_filters_give_the_right_rows(providers: Platform, plan: str) -> None:
    made = await seed(providers)
    newest_first = ["zhejiang", "later", "neighbour", "township", "county", "province"]
    assert names(made, await search(providers)) == newest_first  # offered only, by default

    def found(**params: Any) -> Any:
        return search(providers, **params)

    # Region X: resources serving an area covering X, or inside X.
    assert names(made, await found(region="220102")) == ["later", "township", "county", "province"]
    assert names(made, await found(region="220102003")) == [
        "later",
        "township",
        "county",
        "province",
    ]
    assert names(made, await found(region="220102001")) == ["later", "county", "province"]
    assert names(made, await found(region="2201")) == [
        "later",
        "neighbour",
        "township",
        "county",
        "province",
    ]
    assert names(made, await found(region="220104")) == ["later", "province"]
    assert names(made, await found(region="22")) == newest_first[1:]
    assert names(made, await found(region="33")) == ["zhejiang"]
    assert names(made, await found(region="46")) == []
    # Service, category, kind, charity.
    assert names(made, await found(service="counselling")) == [
        "zhejiang",
        "neighbour",
        "township",
        "county",
    ]
    assert names(made, await found(service="hospital_escort")) == ["province"]
    assert names(made, await found(category="dibao_edge")) == ["neighbour"]
    assert names(made, await found(category="tekun", region="220104")) == ["later"]
    assert names(made, await found(kind="funds")) == ["province"]
    assert names(made, await found(kind=["funds", "goods"])) == ["neighbour", "province"]
    assert names(made, await found(charity_id=made["_nanguan"]["id"])) == [
        "township",
        "county",
        "province",
    ]
    # Availability: both ends of the window count.
    first_day = START.isoformat()
    assert "later" not in names(made, await found(available_on=first_day))
    assert "township" in names(made, await found(available_on=first_day))
    township_end = (START + timedelta(days=30)).isoformat()
    assert "township" in names(made, await found(available_on=township_end))
    after = (START + timedelta(days=31)).isoformat()
    assert "township" not in names(made, await found(available_on=after))
    later_start = (START + timedelta(days=60)).isoformat()
    assert names(made, await found(available_on=later_start, region="220102")) == [
        "later",
        "county",
        "province",
    ]
    # Remaining, status.
    assert names(made, await found(min_remaining=80)) == ["zhejiang", "neighbour", "county"]
    assert names(made, await found(status="withdrawn")) == ["gone"]
    assert names(made, await found(status=["withdrawn", "offered"], region="220102003")) == [
        "gone",
        "later",
        "township",
        "county",
        "province",
    ]
    combined = await found(
        region="220102",
        service="care",
        category="dibao",
        available_on=first_day,
        kind="volunteer_hours",
    )
    assert names(made, combined) == ["county"] and combined["total"] == 1


async def test_search_sorts_and_pages_are_stable(providers: Platform, plan: str) -> None:
    made = await seed(providers)
    assert names(made, await search(providers, sort="title")) == [
        "county",
        "neighbour",
        "township",
        "later",
        "province",
        "zhejiang",
    ]
    assert names(made, await search(providers, sort="-title"))[0] == "zhejiang"
    assert names(made, await search(providers, sort="valid_until"))[0] == "township"
    # -remaining: 100 (zhejiang), 80 and 80 (neighbour, county: tie broken by id), 50, 30, 20.
    by_remaining = names(made, await search(providers, sort="-remaining"))
    tied = sorted(["neighbour", "county"], key=lambda n: made[n]["id"], reverse=True)
    assert by_remaining == ["zhejiang", *tied, "township", "province", "later"]
    assert names(made, await search(providers, sort="created_at"))[0] == "province"
    # Pages of two cover every row exactly once, in order, with the total.
    everything = names(made, await search(providers, sort="-remaining"))
    pages = []
    for offset in range(0, 8, 2):
        page = await search(providers, sort="-remaining", limit=2, offset=offset)
        assert page["total"] == 6 and page["limit"] == 2 and page["offset"] == offset
        pages += names(made, page)
    assert pages == everything
    beyond = await search(providers, offset=50)
    assert beyond["items"] == [] and beyond["total"] == 6
    bad = await providers["providers"].get("/resources", params={"sort": "price"}, headers=NATIONAL)
    assert bad.status_code == 422
    bad_region = await providers["providers"].get(
        "/resources", params={"region": "2201%"}, headers=NATIONAL
    )
    assert bad_region.status_code == 422


async def test_region_scoped_callers_see_only_what_reaches_their_region(
    providers: Platform, plan: str
) -> None:
    made = await seed(providers)
    county_purchaser = auth(Role.purchaser, region="220102")
    seen = names(made, await search(providers, headers=county_purchaser))
    assert seen == ["later", "township", "county", "province"]
    township = auth(Role.purchaser, region="220102001")
    assert names(made, await search(providers, headers=township)) == ["later", "county", "province"]
    # Chaoyang's operator also sees what its charities offer elsewhere (neighbour: 220105).
    chaoyang_operator = auth(Role.operator, region="220104")
    assert names(made, await search(providers, headers=chaoyang_operator)) == [
        "later",
        "neighbour",
        "province",
    ]
    # A charity sees its own resources wherever they serve.
    hangzhou_id = made["zhejiang"]["charity_id"]
    charity = auth(Role.charity, region="220102", org_id=hangzhou_id)
    assert "zhejiang" in names(made, await search(providers, headers=charity))
    # The region filter narrows within the caller's scope, never widens it.
    assert names(made, await search(providers, headers=county_purchaser, region="2201")) == [
        "later",
        "township",
        "county",
        "province",
    ]
    for rid, code in [(made["neighbour"]["id"], 404), (made["county"]["id"], 200)]:
        r = await providers["providers"].get(f"/resources/{rid}", headers=county_purchaser)
        assert r.status_code == code
    outsider = auth(Role.purchaser, region="330106")
    assert names(made, await search(providers, headers=outsider)) == ["zhejiang"]


async def test_search_sql_uses_ranges_not_leading_wildcards() -> None:
    from sqlalchemy import func, select
    from sqlalchemy.dialects import postgresql, sqlite

    from libs.common.auth import Principal
    from services.providers.charities.models import Resource

    actor = Principal("p", Role.purchaser, "220102")
    plan = service.search_plan(
        service.ResourceSearch(region="2201", service="care", category="tekun"), actor
    )
    for dense in (False, True):
        query = select(func.count()).select_from(Resource).where(*plan.where(dense=dense))
        for dialect in (sqlite.dialect(), postgresql.dialect()):
            sql = str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
            assert "LIKE" not in sql.upper()
            assert "resource_region.code >= '2201'" in sql
            assert "resource_region.code < '2202'" in sql
