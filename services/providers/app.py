"""The providers service: the resource library (资源库)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.service import ServiceRuntime, create_service_app
from libs.common.telemetry import Telemetry
from services.providers.all_models import metadata
from services.providers.api import router
from services.providers.charities import api as charities_api
from services.providers.charities import events as charities_events
from services.providers.charities.jobs import expiry_job
from services.providers.event_contracts import CONTRACTS
from services.providers.events import subscriptions
from services.providers.experts import api as experts_api
from services.providers.experts import events as experts_events
from services.providers.models import event_tables
from services.providers.projects import api as projects_api
from services.providers.projects import events as projects_events
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
        subscriptions=[
            *subscriptions,
            *experts_events.subscriptions,
            *charities_events.subscriptions,
            *projects_events.subscriptions,
        ],
        jobs=[expiry_job],
        telemetry=telemetry,
    )
    return create_service_app(
        runtime,
        title="Providers service",
        description="Social forces, experts, charities and resources, projects and funds.",
        routers=[router, experts_api.router, charities_api.router, projects_api.router],
        contracts=CONTRACTS,
    )
