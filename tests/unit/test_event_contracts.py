"""Event contracts (issue 8 item 1), without running any service.

- every event a service can publish is in the registry, and everything registered is
  published somewhere (an AST scan of every `new_event(…)` in services/);
- the registry is well formed: JSON Schema 2020-12 objects, money in integer fen, instants
  and days with their formats, no `$ref` left;
- payload validation catches what breaks a consumer and tolerates what does not;
- no schema carries a recipient's direct identifier; recipient events carry `recipient_ref`
  only, and the public names that do travel are listed with the reason;
- a published version only grows: the committed docs/asyncapi.json is the snapshot, and
  removing, renaming, retyping or requiring a field fails with "publish .v2";
- the AsyncAPI 3 document is well formed (every `$ref` resolves) and up to date.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field
from typer.testing import CliRunner

from libs.common import cli
from libs.common.contracts import (
    ContractError,
    EventContract,
    Fen,
    Id,
    Instant,
    Payload,
    RecipientRef,
    Registry,
    ServiceContracts,
    load_registry,
)
from libs.common.contracts.asyncapi import (
    ASYNCAPI_VERSION,
    SCHEMA_FORMAT,
    platform_document,
    service_document,
)
from libs.common.contracts.command import generate
from libs.common.contracts.compat import incompatibilities, payload_schemas
from libs.common.contracts.registry import dumps
from libs.common.events import new_event
from tests.support.event_scan import (
    Scanner,
    Unresolved,
    direct_event_constructions,
    load_modules,
)

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = REPO / "docs" / "asyncapi.json"
runner = CliRunner()

#: Verbs the scan cannot follow (an attribute read at run time), with why the set is complete.
DYNAMIC_VERBS: dict[tuple[str, str, str], frozenset[str]] = {
    # AdmissionReview.outcome comes from credit.rules.review_admission (Literal["admitted",
    # "rejected"]) or from a confirmed override, whose outcome the API limits to the same two.
    ("services/credit/events.py", "admission_decided", "review.outcome"): frozenset(
        {"admitted", "rejected"}
    ),
    # status_restored: "reinstated" when the status is back to admitted, else the status
    # sanctions.rules.effective_status gives: the heaviest in force (suspended | exited |
    # blacklisted, RANK) or the admission standing (rejected). "pending" would need an
    # organisation sanctioned before any admission review, which credit never does.
    ("services/credit/sanctions/events.py", "status_restored", "record.status"): frozenset(
        {"rejected", "suspended", "exited", "blacklisted"}
    ),
}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(load_modules(), DYNAMIC_VERBS)


@pytest.fixture(scope="module")
def produced(scanner: Scanner) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in scanner.produced():
        out.setdefault(p.type_name, []).append(p.where)
    return out


# --------------------------------------------------------------------------------------------
# Static: what the code can publish ⇔ what the registry lists
# --------------------------------------------------------------------------------------------


def test_every_event_a_service_can_publish_is_registered(
    registry: Registry, produced: dict[str, list[str]]
) -> None:
    assert len(produced) > 40, "the scan found suspiciously few event types"
    missing = {t: where for t, where in produced.items() if t not in registry}
    assert not missing, (
        "published but not in the event registry (add them to services/<service>/"
        f"event_contracts.py): {json.dumps(missing, indent=1)}"
    )


def test_every_registered_event_is_published_somewhere(
    registry: Registry, produced: dict[str, list[str]]
) -> None:
    orphans = sorted(
        c.type_name for c in registry if not c.deprecated and c.type_name not in produced
    )
    assert not orphans, f"registered but never built by any new_event(…): {orphans}"


def test_dynamic_verb_table_has_no_stale_entries(
    scanner: Scanner, produced: dict[str, list[str]]
) -> None:
    assert produced  # the scan ran
    stale = set(DYNAMIC_VERBS) - scanner.used_dynamic
    assert not stale, f"DYNAMIC_VERBS entries no code needs any more: {sorted(stale)}"


def test_events_are_built_only_through_new_event() -> None:
    found = direct_event_constructions(load_modules())
    assert not found, f"Event(type=…) built by hand (use new_event): {found}"


def test_scan_follows_parameters_constants_and_dicts(tmp_path: Path) -> None:
    """The resolver on a small module of its own: a verb through two calls, a dict, an if."""
    pkg = tmp_path / "services" / "demo"
    pkg.mkdir(parents=True)
    (pkg / "events.py").write_text(
        "SERVICE = 'demo'\n"
        "VERBS = {'a': 'opened', 'b': 'closed'}\n"
        "def _build(verb, x):\n"
        "    return new_event(service=SERVICE, entity='thing', verb=verb, data={})\n"
        "def moved(verb, x):\n"
        "    return _build(verb, x)\n"
        "def other(flag, action):\n"
        "    moved('renamed', 1)\n"
        "    moved(VERBS[action], 2)\n"
        "    verb = 'kept' if flag else 'dropped'\n"
        "    return new_event(service=SERVICE, entity='other', verb=verb, data={})\n"
        "def unknown(thing):\n"
        "    return new_event(service=SERVICE, entity='x', verb=thing.state, data={})\n",
        encoding="utf-8",
    )
    modules = load_modules(tmp_path / "services", base=tmp_path)
    with pytest.raises(Unresolved, match=r"thing\.state"):
        Scanner(modules, {}).produced()
    dynamic = {("services/demo/events.py", "unknown", "thing.state"): frozenset({"seen"})}
    found = {p.type_name for p in Scanner(modules, dynamic).produced()}
    assert found == {
        "sa.demo.thing.renamed.v1",
        "sa.demo.thing.opened.v1",
        "sa.demo.thing.closed.v1",
        "sa.demo.other.kept.v1",
        "sa.demo.other.dropped.v1",
        "sa.demo.x.seen.v1",
    }


# --------------------------------------------------------------------------------------------
# The registry is well formed
# --------------------------------------------------------------------------------------------


def _walk(schema: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (property path, schema) in a payload schema, through objects, arrays, maps and
    alternatives ("[]" for items, "*" for map values)."""
    if not isinstance(schema, dict):
        return
    for alt in schema.get("anyOf", []):
        yield from _walk(alt, path)
    for name, sub in schema.get("properties", {}).items():
        sub_path = f"{path}.{name}" if path else name
        yield sub_path, sub
        yield from _walk(sub, sub_path)
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}.*")


def _types(schema: dict[str, Any]) -> set[str]:
    if "anyOf" in schema:
        return set().union(*(_types(s) for s in schema["anyOf"]))
    t = schema.get("type")
    return {t} if isinstance(t, str) else set(t or [])


def _formats(schema: dict[str, Any]) -> set[str | None]:
    if "anyOf" in schema:
        return {f for s in schema["anyOf"] if s.get("type") != "null" for f in _formats(s)}
    return {schema.get("format")}


def test_every_type_follows_the_naming_and_belongs_to_its_producer(registry: Registry) -> None:
    assert len(registry) >= 60
    for c in registry:
        assert re.match(r"^sa\.[a-z_]+\.[a-z_]+\.[a-z_]+\.v[1-9][0-9]*$", c.type_name)
        assert c.subject == c.type_name.rsplit(".", 1)[0]
        assert c.source == f"/sa/{c.service}" and c.stream == c.service.upper()
        assert c.description.strip() and len(c.description) < 200, c.type_name
        for durable in c.consumers:
            assert durable.split("-")[0] in {"needs", "providers", "matching", "credit"}


def test_payload_schemas_are_self_contained_json_schema_2020_12(registry: Registry) -> None:
    for c in registry:
        schema = c.json_schema()
        text = json.dumps(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["type"] == "object" and schema["additionalProperties"] is True
        assert '"$ref"' not in text and "$defs" not in text, c.type_name
        assert schema["required"], f"{c.type_name}: a payload with nothing required"
        for path, sub in _walk(schema):
            assert _types(sub) or "const" in sub or sub == {}, f"{c.type_name}.{path} untyped"


def test_money_is_integer_fen_and_times_have_formats(registry: Registry) -> None:
    for c in registry:
        for path, sub in _walk(c.json_schema()):
            name = path.rsplit(".", 1)[-1]
            where = f"{c.type_name}: {path}"
            if name.endswith("_fen"):
                assert _types(sub) <= {"integer", "null"}, f"{where}: money must be int fen"
            if name.endswith("_at"):
                assert _formats(sub) == {"date-time"}, f"{where}: an instant"
            if name.endswith("_on") or name in {"valid_from", "valid_until", "deadline"}:
                assert _formats(sub) == {"date"}, f"{where}: a day"
            if name in {"version", "decision_version", "ledger_version"}:
                assert _types(sub) == {"integer"}, f"{where}: a version counter"


def test_a_registry_refuses_duplicates_and_foreign_types() -> None:
    class P(Payload):
        thing_id: Id

    one = EventContract("demo", "thing", "made", P, "A thing was made.")
    with pytest.raises(ContractError, match="registered twice"):
        ServiceContracts("demo", "Demo", "d", (one, one))
    with pytest.raises(ContractError, match="only what it publishes"):
        ServiceContracts("other", "Other", "d", (one,))
    with pytest.raises(ContractError, match="lower-case word"):
        EventContract("demo", "Thing", "made", P, "x")
    with pytest.raises(ContractError, match="description"):
        EventContract("demo", "thing", "made", P, " ")
    svc = ServiceContracts("demo", "Demo", "d", (one,))
    with pytest.raises(ContractError, match="registered twice"):
        Registry([svc, svc])


# --------------------------------------------------------------------------------------------
# Validation: strict where it matters to a consumer, tolerant of what does not
# --------------------------------------------------------------------------------------------


def _need_opened() -> dict[str, Any]:
    return {
        "need_id": "7f1c9a52-1d7e-4c45-9a9e-2d3b1c0e8f10",
        "recipient_ref": "0b5c7a9e-3f7d-4d4e-8f8e-9a1b2c3d4e5f",
        "region_code": "220102",
        "service_code": "care",
        "urgency": 3,
        "categories": ["tekun"],
        "quantity": 20,
        "unit": "hour",
        "period_months": 6,
        "opened_at": datetime(2026, 3, 2, 8, 30, tzinfo=UTC),
    }


def _problems(registry: Registry, data: dict[str, Any], **kw: Any) -> list[str]:
    event = new_event(service="needs", entity="need", verb="opened", data=data)
    return [str(p) for p in registry.check_event(event, **kw)]


def test_a_valid_payload_passes(registry: Registry) -> None:
    assert _problems(registry, _need_opened(), declared_only=True) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"need_id": None}, "need_id"),
        ({"urgency": "3"}, "urgency"),  # a string is not an integer
        ({"urgency": 3.0}, "urgency"),  # nor is a float
        ({"region_code": "2201"}, "region_code"),  # a scope is no division code
        ({"opened_at": "2026-03-02"}, "opened_at"),  # a day is no instant
        ({"categories": "tekun"}, "categories"),
    ],
)
def test_a_payload_that_breaks_its_contract_names_the_field(
    registry: Registry, change: dict[str, Any], field: str
) -> None:
    problems = _problems(registry, {**_need_opened(), **change})
    assert problems and all(p.startswith(field) for p in problems), problems


def test_a_missing_required_field_is_reported(registry: Registry) -> None:
    data = _need_opened()
    del data["recipient_ref"]
    assert _problems(registry, data) == ["recipient_ref: Field required"]


def test_money_as_a_float_is_refused() -> None:
    class Paid(Payload):
        amount_fen: Fen

    contract = EventContract("demo", "payment", "made", Paid, "A payment.")
    assert contract.validate({"amount_fen": 1250}) == []
    assert [p.field for p in contract.validate({"amount_fen": 12.5})] == ["amount_fen"]
    assert [p.field for p in contract.validate({"amount_fen": "1250"})] == ["amount_fen"]


def test_unknown_fields_are_tolerated_for_consumers_but_reported_for_producers(
    registry: Registry,
) -> None:
    data = {**_need_opened(), "extra_field": 1}
    assert _problems(registry, data) == []
    assert _problems(registry, data, declared_only=True) == [
        "extra_field: not declared in the contract (add it as an optional field)"
    ]


def test_nested_undeclared_fields_are_found() -> None:
    registry = load_registry()
    contract = registry.get("sa.matching.tender.evaluating.v1")
    assert contract is not None
    data = {
        "tender_id": "t1",
        "project_id": "p1",
        "region_code": "220102",
        "method": "open_tender",
        "version": 3,
        "valid_bids": 1,
        "bids": [{"bid_id": "b1", "organisation_id": "o1", "state": "valid", "price": 1}],
        "panel_size": 5,
        "high_value": False,
        "opened_at": "2026-03-02T08:30:00+08:00",
    }
    assert contract.validate(data) == []
    assert contract.undeclared_fields(data) == ["bids.0.price"]


def test_unknown_types_and_foreign_sources_are_refused(registry: Registry) -> None:
    unknown = new_event(service="needs", entity="need", verb="teleported", data={})
    assert [p.field for p in registry.check_event(unknown)] == ["type"]
    event = new_event(service="needs", entity="need", verb="opened", data=_need_opened())
    forged = type(event)(type=event.type, source="/sa/matching", data=event.data)
    assert [p.field for p in registry.check_event(forged)] == ["source"]


def test_a_message_from_the_wire_is_checked_with_its_headers(registry: Registry) -> None:
    event = new_event(service="needs", entity="need", verb="opened", data=_need_opened())
    headers = event.headers()
    assert registry.check_message("sa.needs.need.opened", headers, event.body()) == []
    wrong = registry.check_message("sa.needs.need.cancelled", headers, event.body())
    assert [p.field for p in wrong] == ["subject"]
    no_id = {k: v for k, v in headers.items() if k != "Nats-Msg-Id"}
    assert [p.field for p in registry.check_message(event.nats_subject, no_id, event.body())] == [
        "headers.Nats-Msg-Id"
    ]
    assert [p.field for p in registry.check_message(event.nats_subject, {}, b"{}")] == ["headers"]


# --------------------------------------------------------------------------------------------
# Personal data
# --------------------------------------------------------------------------------------------

#: Property names that would carry a direct identifier of a person.
IDENTIFIER = re.compile(
    r"(^|_)(name|names|full_name|id_number|id_no|identity|resident_id|phone|mobile|tel|"
    r"telephone|address|addr|email|contact|birth|birthday)($|_)|^guardian"
)

#: The only places a name may travel, and why it is public.
PUBLIC_NAMES: dict[tuple[str, str], str] = {
    **{
        (t, "name"): "an organisation's registered name: the social-force library (社会力量库) "
        "and its admission are public"
        for t in (
            "sa.providers.organisation.registered.v1",
            "sa.providers.organisation.updated.v1",
        )
    },
    ("sa.providers.charity.registered.v1", "name"): "a charity's registered name (public "
    "charity register)",
    **{
        (t, "name"): "an expert's name: experts sit on evaluation panels whose members are "
        "published with the results"
        for t in ("sa.providers.expert.registered.v1", "sa.providers.expert.updated.v1")
    },
    ("sa.matching.tender.evaluated.v1", "criteria[].name"): "the label of a scoring criterion",
    ("sa.matching.tender.evaluated.v1", "results[].criteria.*.name"): "the label of a "
    "scoring criterion",
    ("sa.matching.tender.evaluated.v1", "results[].organisation_name"): "bidders are named "
    "in the results notice (评审结果公告)",
    ("sa.matching.tender.evaluated.v1", "invalid[].organisation_name"): "bidders are named "
    "in the results notice (评审结果公告)",
    ("sa.credit.organisation.blacklisted.v1", "name"): "the dishonesty list is published "
    "(失信记录公示, 吉民发〔2018〕21号 §二(六))",
    ("sa.credit.joint_punishment.notified.v1", "name"): "joint punishment names the "
    "organisation to other departments (失信联合惩戒)",
}


def test_no_schema_carries_a_direct_identifier_except_public_names(registry: Registry) -> None:
    found: dict[tuple[str, str], str] = {}
    for c in registry:
        for path, _sub in _walk(c.json_schema()):
            if IDENTIFIER.search(path.rsplit(".", 1)[-1]):
                found[(c.type_name, path)] = PUBLIC_NAMES.get((c.type_name, path), "")
    unexplained = sorted(k for k, reason in found.items() if not reason)
    assert not unexplained, f"direct identifiers in event schemas: {unexplained}"
    stale = sorted(set(PUBLIC_NAMES) - set(found))
    assert not stale, f"PUBLIC_NAMES entries no schema has any more: {stale}"


def test_recipient_events_carry_only_the_pseudonymous_ref(registry: Registry) -> None:
    with_recipients = []
    for c in registry:
        for path, sub in _walk(c.json_schema()):
            name = path.rsplit(".", 1)[-1]
            if "recipient" not in name:
                continue
            with_recipients.append(c.type_name)
            ref = sub.get("items", sub) if name.endswith("recipients") else sub
            assert name in {"recipient_ref", "invited_recipients"}, f"{c.type_name}: {path}"
            assert ref.get("x-sa-recipient-ref") is True, f"{c.type_name}: {path} is no ref"
    # The recipient events we know of, so the check cannot pass by finding nothing.
    assert {
        "sa.needs.need.opened.v1",
        "sa.matching.need.matched.v1",
        "sa.matching.service.delivered.v1",
        "sa.matching.acceptance.published.v1",
    } <= set(with_recipients)


class Member(Payload):
    full_name: str


class Leaky(Payload):
    recipient_ref: RecipientRef
    guardian_phone: str
    applicant: dict[str, str]
    household: list[Member] = Field(default_factory=list)


def test_the_identifier_check_would_catch_a_leak() -> None:
    schema = EventContract("demo", "leak", "made", Leaky, "x").json_schema()
    caught = {p for p, _ in _walk(schema) if IDENTIFIER.search(p.rsplit(".", 1)[-1])}
    assert caught == {"guardian_phone", "household[].full_name"}


# --------------------------------------------------------------------------------------------
# Versions: a published version only grows
# --------------------------------------------------------------------------------------------


class Base(Payload):
    """A payload as published."""

    thing_id: Id
    count: int
    note: str | None = None
    at: Instant


def _schemas(model: type[Payload]) -> dict[str, dict[str, Any]]:
    c = EventContract("demo", "thing", "made", model, "A thing was made.")
    return {c.type_name: c.json_schema()}


def _breaks(model: type[Payload]) -> list[str]:
    return [str(i) for i in incompatibilities(_schemas(Base), _schemas(model))]


def test_adding_an_optional_field_is_compatible() -> None:
    class Added(Payload):
        thing_id: Id
        count: int
        note: str | None = None
        at: Instant
        colour: str | None = None

    assert _breaks(Added) == []
    assert _breaks(Base) == []


def test_removing_a_field_needs_a_new_version() -> None:
    class Removed(Payload):
        thing_id: Id
        note: str | None = None
        at: Instant

    (problem,) = _breaks(Removed)
    assert "field `count` removed" in problem
    assert "publish it as sa.demo.thing.made.v2" in problem


def test_renaming_a_field_needs_a_new_version() -> None:
    class Renamed(Payload):
        thing_id: Id
        amount: int
        note: str | None = None
        at: Instant

    problems = _breaks(Renamed)
    assert any("`count` removed" in p for p in problems)
    assert any("`amount` added as a required field" in p for p in problems)
    assert all("sa.demo.thing.made.v2" in p for p in problems)


def test_changing_a_type_needs_a_new_version() -> None:
    class Retyped(Payload):
        thing_id: Id
        count: float
        note: str | None = None
        at: Instant

    (problem,) = _breaks(Retyped)
    assert "field `count` type changed" in problem and ".v2" in problem


def test_making_a_nullable_field_non_null_or_an_optional_one_required_breaks() -> None:
    class Required(Payload):
        thing_id: Id
        count: int
        note: str
        at: Instant

    problems = _breaks(Required)
    assert any("`note` became required" in p for p in problems)
    assert any("`note` type changed" in p for p in problems)


def test_a_removed_type_must_stay_registered() -> None:
    (problem,) = incompatibilities(_schemas(Base), {})
    assert "type removed" in str(problem) and "deprecated=True" in str(problem)


def test_nested_changes_are_found() -> None:
    published: dict[str, dict[str, Any]] = {
        "sa.d.t.v.v1": {
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"a": {"type": "string"}},
                        "required": ["a"],
                    },
                }
            },
        }
    }
    current = copy.deepcopy(published)
    current["sa.d.t.v.v1"]["properties"]["items"]["items"]["properties"]["a"] = {"type": "integer"}
    (problem,) = incompatibilities(published, current)
    assert problem.path == "items.[].a" and "type changed" in problem.change


def test_the_registry_is_compatible_with_the_committed_contract(registry: Registry) -> None:
    assert DOCUMENT.exists(), "docs/asyncapi.json is missing: run `make asyncapi`"
    published = payload_schemas(json.loads(DOCUMENT.read_text(encoding="utf-8")))
    current = payload_schemas(platform_document(registry))
    problems = [str(p) for p in incompatibilities(published, current)]
    assert not problems, "\n".join(problems)


def test_the_committed_document_is_up_to_date(registry: Registry) -> None:
    expected = dumps(platform_document(registry))
    assert DOCUMENT.read_text(encoding="utf-8") == expected, (
        "docs/asyncapi.json is stale: run `make asyncapi` (sa asyncapi --out docs/asyncapi.json)"
    )


# --------------------------------------------------------------------------------------------
# The AsyncAPI document
# --------------------------------------------------------------------------------------------


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _check_document(document: dict[str, Any]) -> None:
    assert document["asyncapi"] == ASYNCAPI_VERSION
    assert document["info"]["title"] and document["info"]["version"]
    key = re.compile(r"^[A-Za-z0-9.\-_]+$")
    for section in ("channels", "operations"):
        assert all(key.match(k) for k in document[section]), section
    for ref in _refs(document):
        _resolve(document, ref)
    for name, channel in document["channels"].items():
        assert channel["address"], name
        assert channel["messages"], name
    for name, op in document["operations"].items():
        assert op["action"] in {"send", "receive"}, name
        channel_ref = op["channel"]["$ref"]
        for message in op["messages"]:
            # An operation's messages belong to its channel (AsyncAPI 3 rule).
            assert message["$ref"].startswith(channel_ref + "/messages/"), name
    for name, message in document["components"]["messages"].items():
        assert message["payload"]["schemaFormat"] == SCHEMA_FORMAT, name
        assert message["contentType"] == "application/json"


def test_the_platform_document_is_well_formed(registry: Registry) -> None:
    document = platform_document(registry)
    _check_document(document)
    assert set(payload_schemas(document)) == registry.types
    receive = [k for k, v in document["operations"].items() if v["action"] == "receive"]
    declared = {(d, c.subject) for c in registry for d in c.consumers}
    assert {tuple(k.split(".receive.")) for k in receive} == declared
    assert document["channels"]["dead-letters"]["address"] == "sa.dlq.{durable}"


def test_each_service_document_is_well_formed_and_part_of_the_platform_one(
    registry: Registry,
) -> None:
    platform = platform_document(registry)
    for svc in registry.services:
        document = service_document(svc)
        _check_document(document)
        assert set(payload_schemas(document)) == {c.type_name for c in svc}
        for name, message in document["components"]["messages"].items():
            assert platform["components"]["messages"][name] == message
        for name, channel in document["channels"].items():
            assert platform["channels"][name] == channel
        assert all(op["action"] == "send" for op in document["operations"].values())


def test_a_payload_schema_in_the_document_is_the_registry_schema(registry: Registry) -> None:
    document = platform_document(registry)
    contract = registry.get("sa.credit.score.changed.v1")
    assert contract is not None
    message = document["components"]["messages"][contract.type_name]
    assert message["payload"]["schema"] == contract.json_schema()
    assert message["x-consumers"] == list(contract.consumers)
    headers = message["headers"]
    assert headers["properties"]["ce-type"] == {"const": contract.type_name}
    assert _resolve(document, headers["allOf"][0]["$ref"])["required"][:3] == [
        "ce-specversion",
        "ce-id",
        "ce-source",
    ]


# --------------------------------------------------------------------------------------------
# `sa asyncapi`
# --------------------------------------------------------------------------------------------


def test_sa_asyncapi_writes_checks_and_refuses_a_break(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "asyncapi.json"
    result = runner.invoke(cli.app, ["asyncapi", "--check", "--out", str(out)])
    assert result.exit_code == 1 and "stale" in result.output
    result = runner.invoke(cli.app, ["asyncapi", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8") == dumps(platform_document(load_registry()))
    result = runner.invoke(cli.app, ["asyncapi", "--check", "--out", str(out)])
    assert result.exit_code == 0 and "up to date" in result.output

    # A published v1 that had a field the registry no longer has: refused, file untouched.
    published = json.loads(out.read_text(encoding="utf-8"))
    schema = published["components"]["messages"]["sa.needs.need.opened.v1"]["payload"]["schema"]
    schema["properties"]["ward"] = {"type": "string"}
    schema["required"].append("ward")
    out.write_text(dumps(published), encoding="utf-8")
    lines: list[str] = []
    assert generate(out, echo=lines.append) == 1
    assert any("sa.needs.need.opened.v1: field `ward` removed" in x for x in lines), lines
    assert any("sa.needs.need.opened.v2" in x for x in lines), lines
    assert json.loads(out.read_text(encoding="utf-8")) == published
    assert generate(out, accept_breaking=True, echo=lines.append) == 0
    assert out.read_text(encoding="utf-8") == dumps(platform_document(load_registry()))


def test_times_without_an_offset_are_sent_as_utc() -> None:
    """SQLite returns stored UTC times without their offset; the body must still carry one."""
    event = new_event(
        service="needs",
        entity="need",
        verb="opened",
        data={"naive": datetime(2026, 11, 23, 8, 30), "aware": datetime(2026, 11, 23, tzinfo=UTC)},
    )
    body = json.loads(event.body())
    assert body["naive"] == "2026-11-23T08:30:00+00:00"
    assert body["aware"] == "2026-11-23T00:00:00+00:00"
