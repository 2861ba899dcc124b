"""The needs service: recipients, assessments, need items, intake and caseload."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.service import ServiceRuntime, create_service_app
from libs.common.telemetry import Telemetry
from services.needs.all_models import metadata
from services.needs.api import router
from services.needs.assessments.api import router as assessments_router
from services.needs.caseload.api import router as caseload_router
from services.needs.event_contracts import CONTRACTS
from services.needs.events import subscriptions
from services.needs.intake.api import router as intake_router
from services.needs.intake.jobs import overdue_job
from services.needs.models import event_tables
from services.needs.service import PersonalData
from services.needs.settings import NeedsSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: NeedsSettings | None = None, *, telemetry: Telemetry | None = None
) -> FastAPI:
    settings = settings or NeedsSettings()
    runtime = ServiceRuntime(
        settings,
        metadata=metadata,
        tables=event_tables,
        migrations=MIGRATIONS,
        subscriptions=subscriptions,
        jobs=[overdue_job],
        telemetry=telemetry,
    )
    app = create_service_app(
        runtime,
        title="Needs service",
        description="Recipients with protected personal data, assessments, need items, intake.",
        routers=[router, assessments_router, caseload_router, intake_router],
        contracts=CONTRACTS,
    )
    app.state.personal_data = PersonalData.from_settings(settings)
    return app
