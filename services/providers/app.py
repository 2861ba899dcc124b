"""The providers service: the resource library (资源库)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.service import ServiceRuntime, create_service_app
from libs.common.telemetry import Telemetry
from services.providers.api import router
from services.providers.events import subscriptions
from services.providers.models import event_tables, metadata
from services.providers.settings import ProvidersSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: ProvidersSettings | None = None, *, telemetry: Telemetry | None = None
) -> FastAPI:
    runtime = ServiceRuntime(
        settings or ProvidersSettings(),
        metadata=metadata,
        tables=event_tables,
        migrations=MIGRATIONS,
        subscriptions=subscriptions,
        telemetry=telemetry,
    )
    return create_service_app(
        runtime,
        title="Providers service",
        description="Social forces, experts, charities and resources, projects and funds.",
        routers=[router],
    )
