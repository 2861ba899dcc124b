"""The credit service: who may take part (准入、评价、失信惩戒、信用修复)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.service import ServiceRuntime, create_service_app
from libs.common.telemetry import Telemetry
from services.credit.api import router
from services.credit.event_contracts import CONTRACTS
from services.credit.events import subscriptions
from services.credit.models import event_tables, metadata
from services.credit.performance.api import router as performance_router
from services.credit.performance.events import subscriptions as performance_subscriptions
from services.credit.public.events import subscriptions as public_subscriptions
from services.credit.sanctions.api import router as sanctions_router
from services.credit.sanctions.events import subscriptions as sanctions_subscriptions
from services.credit.sanctions.jobs import jobs as sanctions_jobs
from services.credit.settings import CreditSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: CreditSettings | None = None, *, telemetry: Telemetry | None = None
) -> FastAPI:
    runtime = ServiceRuntime(
        settings or CreditSettings(),
        metadata=metadata,
        tables=event_tables,
        migrations=MIGRATIONS,
        subscriptions=[
            *subscriptions,
            *sanctions_subscriptions,
            *performance_subscriptions,
            *public_subscriptions,
        ],
        jobs=[*sanctions_jobs],
        telemetry=telemetry,
    )
    return create_service_app(
        runtime,
        title="Credit service",
        description="Admission, evaluations, scores, sanctions, blacklist, appeals, credit repair.",
        routers=[router, sanctions_router, performance_router],
        contracts=CONTRACTS,
    )
