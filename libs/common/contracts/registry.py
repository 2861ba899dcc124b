"""The event registry: every event type the platform publishes, with its payload's schema.

Each service declares what it publishes in `services/<service>/event_contracts.py` as a
`ServiceContracts` named `CONTRACTS`; `load_registry()` gathers the four into one `Registry`
(by module name, so `libs/common` imports no service code at import time). From it come the
AsyncAPI documents (`asyncapi.py`), the compatibility check against the committed document
(`compat.py`) and the contract tests.

An event type is `sa.<service>.<entity>.<verb>.v<N>` (CloudEvents `type`), published on the
NATS subject `sa.<service>.<entity>.<verb>` in the service's own stream. A payload may gain
optional fields within a version; any other change is a new version (`.v2`), published next
to the old one until its consumers have moved.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ValidationError

from libs.common.contracts.types import Payload
from libs.common.events.envelope import (
    MSG_ID_HEADER,
    Event,
    InvalidEnvelope,
    encode_json,
    subject_of,
)

#: The services whose registries make up the platform's (the order of the merged document).
SERVICES: tuple[str, ...] = ("needs", "providers", "matching", "credit")
#: Module of a service's registry; it must define `CONTRACTS`.
REGISTRY_MODULE = "services.{service}.event_contracts"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_WORD = re.compile(r"^[a-z][a-z_]*$")
_DURABLE = re.compile(r"^[a-z][a-z0-9-]*$")


class ContractError(ValueError):
    """A registry that contradicts itself (a duplicate type, a malformed name)."""


@dataclass(frozen=True)
class FieldProblem:
    """One reason a payload does not meet its contract: the field's path and what is wrong."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


@dataclass(frozen=True)
class EventContract:
    """One event type: who publishes it, its payload model, who consumes it.

    `consumers` names the durable consumers (`<service>-…`) that receive it; the contract
    tests hold them equal to the services' real subscriptions. `deprecated` keeps a type
    that is no longer produced in the registry (and the document) so nobody reuses it.
    """

    service: str
    entity: str
    verb: str
    payload: type[Payload]
    description: str
    consumers: tuple[str, ...] = ()
    version: int = 1
    deprecated: bool = False

    def __post_init__(self) -> None:
        for part in (self.service, self.entity, self.verb):
            if not _WORD.match(part):
                raise ContractError(f"{part!r} is not a lower-case word (a-z and _)")
        if self.version < 1:
            raise ContractError(f"{self.type_name}: version must be 1 or more")
        if not self.description.strip():
            raise ContractError(f"{self.type_name}: a description is required")
        for durable in self.consumers:
            if not _DURABLE.match(durable):
                raise ContractError(f"{self.type_name}: consumer {durable!r} is not a durable name")

    @property
    def type_name(self) -> str:
        """CloudEvents `type`: `sa.<service>.<entity>.<verb>.v<N>`."""
        return f"sa.{self.service}.{self.entity}.{self.verb}.v{self.version}"

    @property
    def subject(self) -> str:
        """NATS subject (the AsyncAPI channel address)."""
        return subject_of(self.type_name)

    @property
    def source(self) -> str:
        """CloudEvents `source` of every event of this type."""
        return f"/sa/{self.service}"

    @property
    def stream(self) -> str:
        return self.service.upper()

    def json_schema(self) -> dict[str, Any]:
        """The payload's JSON Schema (draft 2020-12), self-contained (no `$ref`)."""
        return copy.deepcopy(_schema_of(self.payload, self.type_name, self.description))

    def validate(self, data: bytes | Mapping[str, Any]) -> list[FieldProblem]:
        """Problems of a payload (its JSON body, or the dict a producer emits); [] if valid.

        Fields the contract does not list are allowed here (consumers tolerate them);
        `undeclared_fields` names them for the producers' tests.
        """
        body = data if isinstance(data, bytes) else encode_json(dict(data))
        try:
            self.payload.model_validate_json(body)
        except ValidationError as exc:
            return [
                FieldProblem(".".join(str(p) for p in err["loc"]) or "(payload)", err["msg"])
                for err in exc.errors(include_url=False)
            ]
        return []

    def undeclared_fields(self, data: bytes | Mapping[str, Any]) -> list[str]:
        """Paths of fields the payload carries but the contract does not list."""
        body = data if isinstance(data, bytes) else encode_json(dict(data))
        try:
            model = self.payload.model_validate_json(body)
        except ValidationError:
            return []
        return sorted(_extras(model, ""))


def _extras(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, BaseModel):
        for key in value.model_extra or {}:
            yield f"{path}{key}"
        for name in type(value).model_fields:
            yield from _extras(getattr(value, name), f"{path}{name}.")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _extras(item, f"{path}{i}.")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _extras(item, f"{path}{key}.")


_SCHEMAS: dict[tuple[type[Payload], str], dict[str, Any]] = {}


def _schema_of(model: type[Payload], type_name: str, description: str) -> dict[str, Any]:
    key = (model, type_name)
    if key not in _SCHEMAS:
        raw = model.model_json_schema(mode="validation")
        schema = _inline(raw, raw.get("$defs", {}))
        schema.pop("$defs", None)
        schema.pop("title", None)
        _strip_titles(schema)
        doc = (model.__doc__ or "").strip()
        _SCHEMAS[key] = {
            "$schema": SCHEMA_DIALECT,
            "$id": f"urn:sa:event:{type_name}",
            "title": type_name,
            "description": doc or description,
            **{k: v for k, v in schema.items() if k != "description"},
        }
    return _SCHEMAS[key]


def _inline(node: Any, defs: Mapping[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Replace `{"$ref": "#/$defs/X"}` by X itself: a payload schema stands on its own, so
    it reads the same inside the AsyncAPI document as on its own."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen:
                raise ContractError(f"recursive payload model {name}: events must be finite trees")
            target = _inline(defs[name], defs, (*seen, name))
            target.pop("title", None)
            rest = {k: _inline(v, defs, seen) for k, v in node.items() if k != "$ref"}
            return {**target, **rest}
        return {k: _inline(v, defs, seen) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs, seen) for v in node]
    return node


def _strip_titles(node: Any) -> None:
    """pydantic titles every property after its name ("Need Id"): noise in a contract."""
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            for sub in props.values():
                if isinstance(sub, dict):
                    sub.pop("title", None)
        for value in node.values():
            _strip_titles(value)
    elif isinstance(node, list):
        for value in node:
            _strip_titles(value)


@dataclass(frozen=True)
class ServiceContracts:
    """What one service publishes: its `EventContract`s, in one place."""

    service: str
    title: str
    description: str
    events: tuple[EventContract, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for contract in self.events:
            if contract.service != self.service:
                raise ContractError(
                    f"{contract.type_name} is declared in the {self.service} registry: "
                    "a service registers only what it publishes"
                )
            if contract.type_name in seen:
                raise ContractError(f"{contract.type_name} is registered twice")
            seen.add(contract.type_name)

    def __iter__(self) -> Iterator[EventContract]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)


class Registry:
    """Every event type of the platform, by CloudEvents type."""

    def __init__(self, services: Iterable[ServiceContracts]) -> None:
        self.services: tuple[ServiceContracts, ...] = tuple(services)
        self._by_type: dict[str, EventContract] = {}
        for svc in self.services:
            for contract in svc:
                if contract.type_name in self._by_type:
                    raise ContractError(f"{contract.type_name} is registered twice")
                self._by_type[contract.type_name] = contract

    def __iter__(self) -> Iterator[EventContract]:
        return iter(self._by_type.values())

    def __len__(self) -> int:
        return len(self._by_type)

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._by_type

    def get(self, type_name: str) -> EventContract | None:
        return self._by_type.get(type_name)

    def by_subject(self, subject: str) -> list[EventContract]:
        return [c for c in self if c.subject == subject]

    @cached_property
    def types(self) -> frozenset[str]:
        return frozenset(self._by_type)

    def check_event(self, event: Event, *, declared_only: bool = False) -> list[FieldProblem]:
        """Why `event` breaks its contract ([] if it does not).

        An unknown type is a problem; so is a `source` other than the producer's. With
        `declared_only`, every field must also be listed in the contract (for producers'
        tests: a field a producer adds is declared in the same change).
        """
        contract = self.get(event.type)
        if contract is None:
            return [FieldProblem("type", f"{event.type} is not in the event registry")]
        problems: list[FieldProblem] = []
        if event.source != contract.source:
            problems.append(
                FieldProblem("source", f"{event.source!r} is not the producer {contract.source!r}")
            )
        body = event.body()
        problems.extend(contract.validate(body))
        if declared_only and not problems:
            problems.extend(
                FieldProblem(path, "not declared in the contract (add it as an optional field)")
                for path in contract.undeclared_fields(body)
            )
        return problems

    def check_message(
        self, subject: str, headers: Mapping[str, str] | None, body: bytes
    ) -> list[FieldProblem]:
        """Why a message as received from NATS breaks its contract: the CloudEvents headers,
        the subject (the type without `.vN`), the de-duplication id and the payload."""
        try:
            event = Event.from_nats(headers, body)
        except InvalidEnvelope as exc:
            return [FieldProblem("headers", str(exc))]
        problems = self.check_event(event)
        if subject != event.nats_subject:
            problems.append(FieldProblem("subject", f"{subject} does not carry {event.type}"))
        lowered = {k.lower(): v for k, v in (headers or {}).items()}
        if not lowered.get("ce-time"):
            problems.append(FieldProblem("headers.ce-time", "missing"))
        if lowered.get(MSG_ID_HEADER.lower()) != event.id:
            problems.append(FieldProblem(f"headers.{MSG_ID_HEADER}", "must equal ce-id"))
        return problems


def load_service_contracts(service: str) -> ServiceContracts:
    """`services/<service>/event_contracts.py`'s `CONTRACTS`."""
    module = importlib.import_module(REGISTRY_MODULE.format(service=service))
    contracts = getattr(module, "CONTRACTS", None)
    if not isinstance(contracts, ServiceContracts):
        raise ContractError(f"{module.__name__}.CONTRACTS is not a ServiceContracts")
    if contracts.service != service:
        raise ContractError(f"{module.__name__} declares service {contracts.service!r}")
    return contracts


def load_registry(services: Sequence[str] = SERVICES) -> Registry:
    """The platform's registry: every service's `CONTRACTS`."""
    return Registry(load_service_contracts(s) for s in services)


def dumps(document: Mapping[str, Any]) -> str:
    """The canonical text of a generated document (stable key order, UTF-8, newline)."""
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
