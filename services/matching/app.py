"""The matching service: the market and the allocation engine."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from libs.common.service import ServiceRuntime, create_service_app
from libs.common.telemetry import Telemetry
from services.matching.all_models import metadata
from services.matching.allocation.wiring import AllocationWiring
from services.matching.api import router
from services.matching.contracts import api as contracts_api
from services.matching.contracts import events as contracts_events
from services.matching.evaluation import api as evaluation_api
from services.matching.evaluation import events as evaluation_events
from services.matching.event_contracts import CONTRACTS
from services.matching.events import subscriptions
from services.matching.library import events as library_events
from services.matching.models import event_tables
from services.matching.ocds import api as ocds_api
from services.matching.ocds.settings import ocds_settings
from services.matching.public import api as public_api
from services.matching.public import events as public_events
from services.matching.settings import MatchingSettings
from services.matching.statistics import api as statistics_api
from services.matching.statistics import events as statistics_events
from services.matching.statistics.jobs import statistics_job
from services.matching.tenders import api as tenders_api
from services.matching.tenders import events as tenders_events
from services.matching.tenders.service import opening_job

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: MatchingSettings | None = None, *, telemetry: Telemetry | None = None
) -> FastAPI:
    settings = settings or MatchingSettings()
    allocation = AllocationWiring()
    runtime = ServiceRuntime(
        settings or MatchingSettings(),
        metadata=metadata,
        tables=event_tables,
        migrations=MIGRATIONS,
        subscriptions=[
            *subscriptions,
            *allocation.library(library_events.subscriptions),
            *tenders_events.subscriptions,
            *evaluation_events.subscriptions,
            *contracts_events.subscriptions,
            *allocation.subscriptions(),
            *public_events.subscriptions(ocds_settings(settings).ocds_prefix),
            *statistics_events.subscriptions,
        ],
        jobs=[opening_job, *allocation.jobs(), statistics_job],
        telemetry=telemetry,
    )
    allocation.bind(runtime)
    return create_service_app(
        runtime,
        title="Matching service",
        description="Tenders, bids, panels, awards, contracts; allocation of needs to providers.",
        routers=[
            router,
            tenders_api.router,
            evaluation_api.router,
            contracts_api.router,
            public_api.router,
            ocds_api.router,
            statistics_api.router,
        ],
        contracts=CONTRACTS,
    )
