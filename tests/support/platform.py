"""All four services in one process, each with its own real database, on the session's real
nats-server, driven through HTTP (httpx over ASGI) with the apps' lifespans running."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace import SpanProcessor

from libs.common.auth import Role, mint_token
from libs.common.settings import DEV_JWT_SECRET
from libs.common.telemetry import setup_telemetry
from services.credit.app import create_app as credit_app
from services.credit.settings import CreditSettings
from services.matching.app import create_app as matching_app
from services.matching.settings import MatchingSettings
from services.needs.app import create_app as needs_app
from services.needs.settings import NeedsSettings
from services.providers.app import create_app as providers_app
from services.providers.settings import ProvidersSettings

T = TypeVar("T")

FAST_EVENTS: dict[str, Any] = {
    "relay_poll_interval_seconds": 0.05,
    "consumer_backoff_base_seconds": 0.05,
    "consumer_ack_wait_seconds": 5.0,
    "environment": "test",
}

FACTORIES: dict[str, tuple[Callable[..., FastAPI], type]] = {
    "needs": (needs_app, NeedsSettings),
    "providers": (providers_app, ProvidersSettings),
    "matching": (matching_app, MatchingSettings),
    "credit": (credit_app, CreditSettings),
}


def token(
    role: Role | str, region: str = "", org_id: str | None = None, subject: str | None = None
) -> str:
    return mint_token(
        secret=DEV_JWT_SECRET,
        subject=subject or f"test-{role}",
        role=role,
        region=region,
        org_id=org_id,
    )


def auth(role: Role | str, region: str = "", org_id: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, region, org_id)}"}


class Platform:
    def __init__(
        self,
        *,
        nats_url: str,
        database_url: Callable[[str], str],
        services: Sequence[str] = ("needs", "providers", "matching", "credit"),
        span_processors: Sequence[SpanProcessor] = (),
        **overrides: Any,
    ) -> None:
        self.apps: dict[str, FastAPI] = {}
        self.clients: dict[str, httpx.AsyncClient] = {}
        self._stack = contextlib.AsyncExitStack()
        for name in services:
            factory, settings_cls = FACTORIES[name]
            settings = settings_cls(
                nats_url=nats_url, database_url=database_url(name), **{**FAST_EVENTS, **overrides}
            )
            telemetry = setup_telemetry(name, extra_processors=span_processors)
            self.apps[name] = factory(settings, telemetry=telemetry)

    async def __aenter__(self) -> Platform:
        for name, app in self.apps.items():
            await self._stack.enter_async_context(app.router.lifespan_context(app))
            client = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=f"http://{name}"
            )
            self.clients[name] = await self._stack.enter_async_context(client)
        for app in self.apps.values():
            await asyncio.wait_for(app.state.runtime.events_ready.wait(), timeout=20)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def __getitem__(self, name: str) -> httpx.AsyncClient:
        return self.clients[name]

    def runtime(self, name: str) -> Any:
        return self.apps[name].state.runtime


async def eventually(
    probe: Callable[[], Awaitable[T]], *, until: Callable[[T], bool], within: float = 15.0
) -> T:
    """Poll `probe` until `until(result)`; fail with the last result seen."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = await probe()
        if until(result):
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached within {within}s; last: {result!r}")
        await asyncio.sleep(0.05)
