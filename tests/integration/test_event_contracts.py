"""Event contracts with the services built and running (issue 8 item 1).

- each service serves `GET /asyncapi.json` without login: its own events, exactly as in the
  merged docs/asyncapi.json;
- the consumers the registry declares are the services' real durable subscriptions, and no
  subscription waits for a subject nobody publishes (except those listed with a reason);
- on the wire: after a flow through all four services over a real nats-server, every message
  in every stream has CloudEvents headers matching its subject and a payload that validates,
  and no consumer dead-lettered anything.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.common.auth import Role
from libs.common.contracts import Registry, load_registry, load_service_contracts
from libs.common.contracts.asyncapi import service_document
from libs.common.events.bus import DLQ_STREAM
from tests import factories
from tests.support.platform import FACTORIES, Platform, auth, eventually

REPO = Path(__file__).resolve().parents[2]
OPERATOR = auth(Role.operator)
PURCHASER = auth(Role.purchaser, region="220102")

#: Subscriptions to subjects nobody publishes yet, each with why that is deliberate
#: ((durable, filter) → reason). Empty: every subscription hears a registered event.
ANTICIPATED: dict[tuple[str, str], str] = {}


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, `>` one or more trailing tokens."""
    p, s = pattern.split("."), subject.split(".")
    for i, token in enumerate(p):
        if token == ">":
            return len(s) > i
        if i >= len(s) or (token != "*" and token != s[i]):
            return False
    return len(p) == len(s)


def test_subject_matching() -> None:
    assert subject_matches("sa.credit.organisation.>", "sa.credit.organisation.admitted")
    assert not subject_matches("sa.credit.organisation.>", "sa.credit.organisation")
    assert subject_matches("sa.*.need.opened", "sa.needs.need.opened")
    assert not subject_matches("sa.needs.need", "sa.needs.need.opened")
    assert not subject_matches("sa.needs.need.opened", "sa.needs.need.cancelled")


@pytest.fixture
def apps(nats_url: str, database_url_factory: Callable[[str], str]) -> dict[str, Any]:
    """The four apps, built but not started (their routes and subscriptions as configured)."""
    built = {}
    for name, (factory, settings_cls) in FACTORIES.items():
        settings = settings_cls(
            nats_url=nats_url, database_url=database_url_factory(name), environment="test"
        )
        built[name] = factory(settings)
    return built


async def test_each_service_serves_its_asyncapi_document_as_merged_in_the_repo(
    apps: dict[str, Any],
) -> None:
    merged = json.loads((REPO / "docs" / "asyncapi.json").read_text(encoding="utf-8"))
    for name, app in apps.items():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=f"http://{name}") as client:
            r = await client.get("/asyncapi.json")  # no token: contracts are public
        assert r.status_code == 200, r.text
        document = r.json()
        assert document == json.loads(json.dumps(service_document(load_service_contracts(name))))
        assert document["asyncapi"] == "3.0.0"
        messages = document["components"]["messages"]
        assert messages and all(k.startswith(f"sa.{name}.") for k in messages if k[:3] == "sa.")
        for key, message in messages.items():
            assert merged["components"]["messages"][key] == message, key
        for key, channel in document["channels"].items():
            assert merged["channels"][key] == channel, key
        for key, op in document["operations"].items():
            assert merged["operations"][key] == op, key


def test_declared_consumers_are_the_services_real_subscriptions(apps: dict[str, Any]) -> None:
    registry = load_registry()
    subscriptions = {
        worker.sub.durable: list(worker.sub.subjects)
        for app in apps.values()
        for worker in app.state.runtime.workers
    }
    assert len(subscriptions) >= 15
    wrong = []
    for contract in registry:
        real = sorted(
            durable
            for durable, filters in subscriptions.items()
            if any(subject_matches(f, contract.subject) for f in filters)
        )
        if real != sorted(contract.consumers):
            wrong.append(
                f"{contract.type_name}: declared {sorted(contract.consumers)}, real {real}"
            )
    assert not wrong, "consumers in the registry differ from the subscriptions:\n" + "\n".join(
        wrong
    )
    unheard = [
        (durable, f)
        for durable, filters in subscriptions.items()
        for f in filters
        if not any(subject_matches(f, c.subject) for c in registry)
    ]
    unexplained = [u for u in unheard if u not in ANTICIPATED]
    assert not unexplained, f"subscriptions to subjects nobody publishes: {unexplained}"
    assert not set(ANTICIPATED) - set(unheard), "ANTICIPATED lists a subject now published"


# --------------------------------------------------------------------------------------------
# On the wire
# --------------------------------------------------------------------------------------------


@pytest.fixture
async def platform(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    async with Platform(nats_url=nats_url, database_url=database_url_factory) as p:
        yield p


async def _quiet(platform: Platform) -> None:
    """Wait until every outbox is published and the streams stop growing."""
    last: tuple[int, ...] = ()
    for _ in range(100):
        pending = 0
        for name in platform.apps:
            runtime = platform.runtime(name)
            async with runtime.db.session() as s:
                pending += await runtime.tables.pending_count(s)
        js = platform.runtime("needs").bus.js
        counts = tuple([(await js.stream_info(s)).state.last_seq for s in _streams()])
        if pending == 0 and counts == last:
            return
        last = counts
        await asyncio.sleep(0.3)
    raise AssertionError("the platform did not settle")


def _streams() -> list[str]:
    return ["NEEDS", "PROVIDERS", "MATCHING", "CREDIT"]


async def _register(platform: Platform, **overrides: Any) -> str:
    r = await platform["providers"].post(
        "/organisations", json=factories.organisation(**overrides), headers=OPERATOR
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_every_message_on_the_wire_meets_its_contract(platform: Platform) -> None:
    registry: Registry = load_registry()
    good = await _register(platform)
    bad = await _register(platform)
    unqualified = factories.organisation()["qualifications"]
    unqualified["independent_civil_liability"] = False
    await _register(platform, qualifications=unqualified)
    await eventually(
        lambda: platform["providers"].get(f"/organisations/{bad}", headers=OPERATOR),
        until=lambda r: r.json()["status"] == "admitted",
    )
    r = await platform["credit"].post(
        "/blacklist",
        json={"organisation_id": bad, "severity": "serious", "reason": "falsified records"},
        headers=OPERATOR,
    )
    assert r.status_code == 201, r.text
    await eventually(
        lambda: platform["matching"].get(f"/organisations/{good}/eligibility", headers=OPERATOR),
        until=lambda r: r.status_code == 200 and r.json()["eligible"] is True,
    )
    need_ids = []
    for _ in range(2):
        ref = (
            await platform["needs"].post(
                "/recipients", json=factories.recipient(), headers=PURCHASER
            )
        ).json()["ref"]
        r = await platform["needs"].post(
            "/needs",
            json={"recipient_ref": ref, "service_code": "care", "urgency": 3},
            headers=PURCHASER,
        )
        assert r.status_code == 201, r.text
        need_ids.append(r.json()["id"])
    await _quiet(platform)

    js = platform.runtime("needs").bus.js
    seen: dict[str, int] = {}
    problems: list[str] = []
    for stream in _streams():
        info = await js.stream_info(stream)
        if not info.state.messages:
            continue
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            assert msg.subject is not None
            for p in registry.check_message(msg.subject, msg.headers, msg.data or b""):
                problems.append(f"{stream}#{seq} {msg.subject}: {p}")
            ce_type = (msg.headers or {}).get("ce-type", "?")
            seen[ce_type] = seen.get(ce_type, 0) + 1
    assert not problems, "\n".join(problems)
    assert {
        "sa.providers.organisation.registered.v1",
        "sa.credit.organisation.admitted.v1",
        "sa.credit.organisation.rejected.v1",
        "sa.credit.organisation.blacklisted.v1",
        "sa.needs.need.opened.v1",
    } <= set(seen), seen
    # Valid events were also handled: no consumer gave up on any of them.
    assert (await js.stream_info(DLQ_STREAM)).state.messages == 0
