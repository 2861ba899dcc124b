"""Session-wide fixtures: one real nats-server per test session, fresh databases per test,
and the event-contract check of every event the services publish (tests/support)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import nats
import pytest

from libs.common.natsserver import NatsServer
from tests.support.databases import fresh_database

# Event contracts (issue 8): every event a service writes to its outbox during any test is
# checked against the event registry; a test that publishes a bad event fails.
from tests.support.event_contracts import (  # noqa: F401  (pytest hooks, found by name)
    pytest_runtest_call,
    pytest_runtest_setup,
    pytest_runtest_teardown,
    pytest_terminal_summary,
    pytest_unconfigure,
)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    store = tmp_path_factory.mktemp("nats")
    server = NatsServer(store_dir=store, log_file=store / "nats.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def nats_url(nats_server: NatsServer) -> AsyncIterator[str]:
    """The session's server with no streams left from an earlier test."""
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    for info in await js.streams_info():
        await js.delete_stream(info.config.name)
    await nc.close()
    yield nats_server.url


@pytest.fixture
def database_url_factory(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """`make("needs")` → URL of a new empty database for that name."""
    with ExitStack() as stack:

        def make(name: str) -> str:
            return stack.enter_context(fresh_database(tmp_path, name))

        yield make


@pytest.fixture
def database_url(database_url_factory: Callable[[str], str]) -> str:
    return database_url_factory("test")
