"""`/ready` against a real database and nats-server: the checks, and the working-day
calendar warning that monitoring must see before deadlines start being refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest

from libs.common.clock import FrozenClock
from tests.support.platform import Platform, eventually


@pytest.fixture
async def credit(
    nats_url: str, database_url_factory: Callable[[str], str]
) -> AsyncIterator[Platform]:
    async with Platform(
        nats_url=nats_url, database_url=database_url_factory, services=["credit"]
    ) as p:
        yield p


async def ready_body(p: Platform) -> dict[str, object]:
    async def answered() -> dict[str, object] | None:
        r = await p["credit"].get("/ready")
        return r.json() if r.status_code == 200 else None  # type: ignore[no-any-return]

    body = await eventually(answered, until=lambda b: b is not None)
    assert body is not None
    return body


async def test_ready_warns_when_the_working_day_calendar_runs_out_soon(credit: Platform) -> None:
    runtime = credit.runtime("credit")
    runtime.clock = FrozenClock(datetime(2026, 10, 1, 2, tzinfo=UTC))  # type: ignore[attr-defined]
    body = await ready_body(credit)
    assert body["status"] == "ready" and body["checks"] == {"database": "ok", "nats": "ok"}
    assert "warnings" not in body
    runtime.clock = FrozenClock(datetime(2026, 12, 1, 2, tzinfo=UTC))  # type: ignore[attr-defined]
    body = await ready_body(credit)
    assert body["status"] == "ready"  # still serving: only deadlines past 2026 are refused
    warnings = body["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 3  # jilin, zhejiang, hainan
    assert all("2026-12-31" in w for w in warnings)
