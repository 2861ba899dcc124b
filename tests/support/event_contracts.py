"""Pytest plugin: every event a service writes to its outbox during a test meets its contract.

Loaded by tests/conftest.py for the whole session (issue 8: "every published payload
validates against its schema"). It wraps `EventTables.append`, the one path into every
service's outbox (the relay publishes exactly those rows), and checks each event with the
platform registry: the type must be registered and belong to the service whose outbox it is
written to, the payload must validate, and every field the producer sends must be declared
(consumers tolerate undeclared fields; producers declare theirs in the same change).

A test during which a bad event is written fails, naming the type, the field and why. Only
services' outboxes are checked: the event-layer kit (tests/support/eventkit.py) publishes
synthetic payloads on purpose. Processes a test starts (`sa run`, subprocess helpers) are not
covered; the in-process tests exercise the same producers.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Generator, Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.contracts import SERVICES, Registry, load_registry
from libs.common.events import Event, EventTables


class OutboxContractCheck:
    """Collects contract violations of events written to services' outboxes."""

    def __init__(self, registry: Registry, tables: dict[int, str]) -> None:
        self.registry = registry
        self.tables = tables  # id(EventTables) → the service owning that outbox
        self.violations: list[str] = []
        self.checked = 0
        # type → paths of instants sent without a UTC offset (valid, but worth fixing)
        self.naive: dict[str, set[str]] = {}
        self._original: Any = None

    @classmethod
    def for_platform(cls) -> OutboxContractCheck:
        tables = {
            id(importlib.import_module(f"services.{s}.models").event_tables): s for s in SERVICES
        }
        return cls(load_registry(), tables)

    def inspect(self, service: str, event: Event) -> None:
        self.checked += 1
        problems = [str(p) for p in self.registry.check_event(event, declared_only=True)]
        producer = event.type.split(".")[1]
        if producer != service:
            problems.append(f"written to the {service} outbox: a service publishes only its own")
        for problem in problems:
            self.violations.append(f"{event.type} (event {event.id}): {problem}")
        for path in _naive_instants(json.loads(event.body()), ""):
            self.naive.setdefault(event.type, set()).add(path)

    def install(self) -> None:
        if self._original is not None:
            return
        original = EventTables.append
        check = self

        async def append(self: EventTables, session: AsyncSession, events: Sequence[Event]) -> None:
            service = check.tables.get(id(self))
            if service is not None:
                for event in events:
                    check.inspect(service, event)
            await original(self, session, events)

        self._original = original
        EventTables.append = append  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            EventTables.append = self._original  # type: ignore[method-assign]
            self._original = None

    def take(self) -> list[str]:
        found, self.violations = self.violations, []
        return found


_NAIVE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+$")


def _naive_instants(value: Any, path: str) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _naive_instants(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _naive_instants(item, f"{path}[]")
    elif isinstance(value, str) and _NAIVE.match(value):
        yield path


_check: OutboxContractCheck | None = None


def _checker() -> OutboxContractCheck:
    global _check
    if _check is None:
        _check = OutboxContractCheck.for_platform()
        _check.install()
    return _check


def _fail_on_violations(when: str) -> None:
    found = _checker().take()
    if found:
        listed = "\n".join(f"  - {v}" for v in found[:20])
        more = f"\n  … and {len(found) - 20} more" if len(found) > 20 else ""
        pytest.fail(
            f"events written {when} break their contracts (fix the schema in "
            f"services/<service>/event_contracts.py, or the producer):\n{listed}{more}",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    _checker().take()  # anything left from background work of an earlier test
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    yield
    _fail_on_violations("during the test")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    yield
    _fail_on_violations("while the test's services shut down")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _check is None:
        return
    terminalreporter.write_line(f"event contracts: {_check.checked} outbox events checked")
    for type_name, paths in sorted(_check.naive.items()):
        terminalreporter.write_line(
            f"event contracts: {type_name} sent instants without UTC offset: {sorted(paths)}"
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    if _check is not None:
        _check.uninstall()
