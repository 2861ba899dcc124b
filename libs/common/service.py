"""What every service runs on: database, event bus, relay, consumers, telemetry, the app.

`ServiceRuntime` wires the shared mechanisms for one service; `create_service_app` builds its
FastAPI app with `/health`, `/ready`, problem+json errors, auth and tracing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import MetaData

from libs.common.auth import AuthConfig, TokenVerifier
from libs.common.clock import clock_of, today_in_china
from libs.common.contracts.api import asyncapi_router
from libs.common.contracts.registry import ServiceContracts
from libs.common.db import Database
from libs.common.errors import install_error_handlers
from libs.common.events.bus import EventBus
from libs.common.events.consumer import ConsumerWorker, MaxDeliveriesWatcher, Subscription
from libs.common.events.group import GroupCommitter
from libs.common.events.outbox import EventTables, OutboxRelay
from libs.common.events.uow import UnitOfWork
from libs.common.migrations import upgrade_to_head
from libs.common.policy import calendar_horizons
from libs.common.settings import ServiceSettings
from libs.common.telemetry import Telemetry, instrument_app, instrument_engine, setup_telemetry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    """A background job run every `interval_seconds` while the service runs.

    It must be safe to run in every replica at once (use conditional updates in the
    database so that, say, an overdue notice is emitted once however many replicas scan).
    """

    name: str
    interval_seconds: float
    run: Callable[[ServiceRuntime], Awaitable[None]]


class ServiceRuntime:
    """The running parts of one service, started and stopped together."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        metadata: MetaData,
        tables: EventTables,
        migrations: Path,
        subscriptions: Sequence[Subscription] = (),
        jobs: Sequence[PeriodicJob] = (),
        telemetry: Telemetry | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.service_name
        self.metadata = metadata
        self.tables = tables
        self.migrations = migrations
        self.db = Database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        # A telemetry handed in (tests, a host process) belongs to the caller, who shuts it down.
        self._owns_telemetry = telemetry is None
        self.telemetry = telemetry or setup_telemetry(
            settings.service_name,
            exporter=settings.otel_exporter,
            otlp_endpoint=settings.otel_endpoint,
        )
        instrument_engine(self.db.engine, self.telemetry)
        self.bus = EventBus(
            settings.nats_url,
            name=settings.service_name,
            user=settings.nats_user,
            password=settings.nats_password,
            replicas=settings.stream_replicas,
            duplicate_window_seconds=settings.duplicate_window_seconds,
        )
        self.relay = OutboxRelay(
            db=self.db,
            tables=tables,
            bus=self.bus,
            telemetry=self.telemetry,
            batch_size=settings.relay_batch_size,
            poll_interval=settings.relay_poll_interval_seconds,
        )
        self.workers = [
            ConsumerWorker(
                subscription=sub,
                bus=self.bus,
                tables=tables,
                uow_factory=self.unit_of_work,
                telemetry=self.telemetry,
                batch_size=settings.consumer_batch_size,
                max_deliver=settings.consumer_max_deliver,
                ack_wait_seconds=settings.consumer_ack_wait_seconds,
                backoff_base_seconds=settings.consumer_backoff_base_seconds,
                backoff_max_seconds=settings.consumer_backoff_max_seconds,
            )
            for sub in subscriptions
        ]
        self.watcher = (
            MaxDeliveriesWatcher(
                bus=self.bus,
                service=self.name,
                streams_by_durable={s.durable: s.stream for s in subscriptions},
            )
            if subscriptions
            else None
        )
        self.token_verifier = TokenVerifier(
            AuthConfig(
                secret=settings.jwt_secret,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                jwks_url=settings.jwks_url,
            )
        )
        self.jobs = list(jobs)
        # Hot write paths submit here to share transactions under concurrent load.
        self.group = GroupCommitter(self.unit_of_work)
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = asyncio.Event()
        self.events_ready = asyncio.Event()

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(
            db=self.db, tables=self.tables, on_commit=self.relay.notify, clock=clock_of(self)
        )

    async def migrate(self) -> None:
        await asyncio.to_thread(
            upgrade_to_head,
            database_url=self.settings.database_url,
            script_location=self.migrations,
        )

    async def start(self) -> None:
        await self.migrate()
        for warning in self.calendar_warnings():
            log.warning("%s: %s", self.name, warning)
        self._tasks.append(asyncio.create_task(self._start_events(), name=f"{self.name}-events"))
        # Background work (relay, consumers, jobs) can be switched off, e.g. in tests that
        # drive each step themselves.
        if self.settings.start_event_workers:
            for job in self.jobs:
                task = asyncio.create_task(self._run_job(job), name=f"{self.name}-{job.name}")
                self._tasks.append(task)

    async def _run_job(self, job: PeriodicJob) -> None:
        while not self._stopping.is_set():
            try:
                await job.run(self)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "%s: job %s failed; next run in %.0fs",
                    self.name,
                    job.name,
                    job.interval_seconds,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=job.interval_seconds)

    async def _start_events(self) -> None:
        """Connect to NATS (retrying while it is away) and start the relay and consumers.

        The service serves requests meanwhile: events wait safely in the outbox.
        """
        delay = 0.5
        while True:
            try:
                await self.bus.connect()
                await self.bus.ensure_streams()
                for worker in self.workers:
                    await worker.start()
                if self.watcher is not None:
                    await self.watcher.start()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s: NATS not ready (%s); retrying in %.1fs", self.name, exc, delay)
                await self.bus.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        if not self.settings.start_event_workers:
            self.events_ready.set()
            return
        self._tasks.append(asyncio.create_task(self.relay.run(), name=f"{self.name}-relay"))
        for worker in self.workers:
            self._tasks.append(
                asyncio.create_task(worker.run(), name=f"{self.name}-{worker.durable}")
            )
        if self.watcher is not None:
            self._tasks.append(asyncio.create_task(self.watcher.run(), name=f"{self.name}-watcher"))
        self.events_ready.set()
        log.info("%s: events running (%d consumers)", self.name, len(self.workers))

    async def stop(self) -> None:
        self._stopping.set()
        self.relay.stop()
        for worker in self.workers:
            worker.stop()
        if self.watcher is not None:
            self.watcher.stop()
        # Let loops finish the batch in hand (its acks included) before cancelling.
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=3.0)
            if pending:
                log.warning("%s: cancelling %s", self.name, [t.get_name() for t in pending])
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()
        await self.group.close()
        await self.bus.close()
        await self.db.dispose()
        if self._owns_telemetry:
            self.telemetry.shutdown()

    def calendar_warnings(self) -> list[str]:
        """Provinces whose working-day calendar runs out soon (see `calendar_horizons`)."""
        today = today_in_china(clock_of(self))
        return [h.warning() for h in calendar_horizons(today) if h.running_out]

    async def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        try:
            await asyncio.wait_for(self.db.ping(), timeout=2.0)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unavailable: {type(exc).__name__}"
        checks["nats"] = (
            "ok" if self.bus.connected and self.events_ready.is_set() else "unavailable"
        )
        return checks


async def get_runtime(request: Request) -> ServiceRuntime:
    # async: a sync dependency would cost a thread-pool hop on every request.
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    version: str = "0.1.0",
    contracts: ServiceContracts | None = None,
) -> FastAPI:
    """The service's app; given its event `contracts`, it also serves `GET /asyncapi.json`."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    # FastAPI's own telemetry stays off: tracing comes from our per-service provider
    # (instrument_app); the built-in one would look up global providers on every request.
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    app.state.token_verifier = runtime.token_verifier
    install_error_handlers(app)

    @app.get("/health", tags=["ops"], summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": runtime.name}

    @app.get("/ready", tags=["ops"], summary="Readiness: database and NATS reachable")
    async def ready() -> JSONResponse:
        checks = await runtime.readiness()
        ok = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {
            "status": "ready" if ok else "not-ready",
            "service": runtime.name,
            "checks": checks,
        }
        # Not a reason to take the service out of rotation, but what monitoring must see.
        warnings = runtime.calendar_warnings()
        if warnings:
            body["warnings"] = warnings
        return JSONResponse(body, status_code=200 if ok else 503)

    for router in routers:
        app.include_router(router)
    if contracts is not None:
        app.include_router(asyncapi_router(contracts))
    instrument_app(app, runtime.telemetry)
    return app


def tune_gc() -> None:
    """The collector settings of a service process (`serve`; the benchmarks' service
    processes too). Fewer, later young-generation collections: request and event handling
    allocate many short-lived objects, and default thresholds put GC pauses into the
    latency tail."""
    gc.set_threshold(50_000, 20, 100)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run one service under uvicorn (uvloop + httptools), as `python -m services.<name>`."""
    import uvicorn

    from libs.common.logging import configure_logging

    configure_logging(settings.log_level)
    tune_gc()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=10,
    )
