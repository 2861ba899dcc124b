"""The matching service: the market and the allocation engine."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.service import ServiceRuntime, create_service_app
from libs.common.telemetry import Telemetry
from services.matching.api import router
from services.matching.events import subscriptions
from services.matching.models import event_tables, metadata
from services.matching.settings import MatchingSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: MatchingSettings | None = None, *, telemetry: Telemetry | None = None
) -> FastAPI:
    runtime = ServiceRuntime(
        settings or MatchingSettings(),
        metadata=metadata,
        tables=event_tables,
        migrations=MIGRATIONS,
        subscriptions=subscriptions,
        telemetry=telemetry,
    )
    return create_service_app(
        runtime,
        title="Matching service",
        description="Tenders, bids, panels, awards, contracts; allocation of needs to providers.",
        routers=[router],
    )
