"""OpenTelemetry tracing: one tracer provider per service, and trace context across NATS.

Why a provider per service rather than only the global one: the embedded stack and the
end-to-end tests run several services in one process, and each must export spans under its
own `service.name`. So nothing here relies on the global tracer provider; every span is
started from a `Telemetry` object that the service owns, and instrumentation is attached per
FastAPI app and per SQLAlchemy engine with that service's provider.

How one trace spans HTTP and NATS: when a use case writes an event to the outbox it stores
`current_traceparent()` with the row. The relay publishes later, from another task, inside
`producer_span(parent_headers=<stored headers>)`, so the PRODUCER span joins the trace of the
HTTP request that caused the event; the headers it yields carry the producer span's own
`traceparent` on the NATS message. A consumer handles the message inside `consumer_span`,
whose parent is that producer span.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.instrumentation.sqlalchemy.version import __version__ as _sqlalchemy_inst_version
from opentelemetry.metrics import get_meter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, DEFAULT_ON
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

Exporter = Literal["none", "console", "otlp"]

# Always W3C trace context, whatever OTEL_PROPAGATORS says: these headers travel on NATS
# messages and in outbox rows, and every service must read what every other one writes.
_PROPAGATOR = TraceContextTextMapPropagator()

# Messaging semantic-convention attribute names (literal strings: the semconv package only
# ships them under a private, incubating module).
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_DESTINATION_NAME = "messaging.destination.name"
MESSAGING_MESSAGE_ID = "messaging.message.id"
MESSAGING_OPERATION_TYPE = "messaging.operation.type"
MESSAGING_OPERATION_NAME = "messaging.operation.name"
MESSAGING_CONSUMER_GROUP_NAME = "messaging.consumer.group.name"
ERROR_TYPE = "error.type"

_OTLP_HINT = (
    "exporter 'otlp' needs the OTLP/HTTP exporter package; install it with "
    "`pip install opentelemetry-exporter-otlp-proto-http` (same release line as "
    "opentelemetry-sdk), or choose exporter 'console' or 'none'"
)


@dataclass(eq=False)
class Telemetry:
    """One service's tracing: its own provider (with its `service.name`) and tracer."""

    service_name: str
    provider: TracerProvider
    tracer: Tracer
    _shut_down: bool = field(default=False, repr=False)

    @property
    def records(self) -> bool:
        """False when every span is sampled out (no exporter, no processor): then spans
        are non-recording and callers may skip work done only for them."""
        return self.provider.sampler is not ALWAYS_OFF

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export buffered spans now (e.g. before a test inspects an exporter)."""
        return self.provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop the processors; safe to call more than once."""
        if self._shut_down:
            return
        self._shut_down = True
        self.provider.shutdown()


def _otlp_exporter(endpoint: str | None) -> SpanExporter:
    try:
        # Imported lazily: the package is optional and only production deployments need it.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise RuntimeError(_OTLP_HINT) from exc
    exporter: SpanExporter = OTLPSpanExporter(endpoint=endpoint) if endpoint else OTLPSpanExporter()
    return exporter


def setup_telemetry(
    service_name: str,
    *,
    exporter: Exporter = "none",
    otlp_endpoint: str | None = None,
    extra_processors: Sequence[SpanProcessor] = (),
) -> Telemetry:
    """Create the tracer provider of one service.

    `exporter`: "none" records spans only for `extra_processors` (tests use an in-memory
    exporter there); "console" prints batches to stdout; "otlp" sends OTLP/HTTP to
    `otlp_endpoint` (full URL, e.g. http://collector:4318/v1/traces; default from the
    OTEL_EXPORTER_OTLP_* environment). The global tracer provider is left alone.
    """
    if exporter not in ("none", "console", "otlp"):
        raise ValueError(f"unknown exporter {exporter!r}; expected none, console or otlp")
    # Explicit attributes win over OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES, which is what
    # keeps services apart when they share a process (and its environment).
    resource = Resource.create({SERVICE_NAME: service_name})
    # With no exporter and no processor nobody would receive a span: sample nothing, so the
    # instrumentation makes cheap non-recording spans (trace context still propagates).
    nothing_listens = exporter == "none" and not extra_processors
    provider = TracerProvider(
        resource=resource, sampler=ALWAYS_OFF if nothing_listens else DEFAULT_ON
    )
    if exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    elif exporter == "otlp":
        provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(otlp_endpoint)))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    tracer = provider.get_tracer("libs.common.telemetry")
    return Telemetry(service_name=service_name, provider=provider, tracer=tracer)


# Which Telemetry instrumented which app/engine, so repeated calls are no-ops and a second
# service cannot silently re-label another service's spans. Weak keys: tests create and drop
# many apps and engines.
_instrumented_apps: weakref.WeakKeyDictionary[FastAPI, Telemetry] = weakref.WeakKeyDictionary()
_instrumented_engines: weakref.WeakKeyDictionary[Engine, Telemetry] = weakref.WeakKeyDictionary()


def instrument_app(app: FastAPI, telemetry: Telemetry) -> None:
    """Trace every request of `app` (SERVER spans) with the service's own provider.

    Call before the app serves its first request (the middleware stack is built then).
    /health and /ready are not traced. Idempotent for the same telemetry; instrumenting an
    app with a second service's telemetry is a wiring bug and raises `ValueError`.
    """
    owner = _instrumented_apps.get(app)
    if owner is telemetry:
        return
    if owner is not None:
        raise ValueError(
            f"app already instrumented for service {owner.service_name!r}, "
            f"not {telemetry.service_name!r}"
        )
    app.add_middleware(ServerSpanMiddleware, telemetry=telemetry)
    _instrumented_apps[app] = telemetry


# Health probes run every few seconds per pod; tracing them drowns the real traffic. Exact
# paths, so e.g. /healthcare-centres is still traced.
_UNTRACED_PATHS = frozenset({"/health", "/health/", "/ready", "/ready/"})


class ServerSpanMiddleware:
    """A SERVER span per HTTP request, named `"<METHOD> <route template>"`.

    Why not opentelemetry-instrumentation-fastapi: with spans sampled out (exporter "none")
    it still built every attribute and matched the route a second time; measured on
    `POST /needs` it cost a quarter of the request's CPU. Here the span is started from the
    request's `traceparent` (if any), attributes are set only when the span records, and the
    route is the one Starlette already matched (`scope["route"]`), read after the handler.
    Attributes follow the stable HTTP semantic conventions.
    """

    def __init__(self, app: Any, telemetry: Telemetry) -> None:
        self.app = app
        self.tracer = telemetry.tracer

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in _UNTRACED_PATHS:
            await self.app(scope, receive, send)
            return
        parent: Context | None = None
        for name, _value in scope["headers"]:
            if name == b"traceparent":
                parent = _PROPAGATOR.extract(
                    {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                )
                break
        method = scope["method"]
        status = 0

        async def send_with_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self.tracer.start_as_current_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            if not span.is_recording():
                await self.app(scope, receive, send)
                return
            failed = False
            try:
                await self.app(scope, receive, send_with_status)
            except Exception as exc:
                failed = True
                status = status or 500
                _record_failure(span, exc)
                raise
            finally:
                _describe_request(span, scope, method, status, failed=failed)


def _describe_request(span: Span, scope: Any, method: str, status: int, *, failed: bool) -> None:
    route = getattr(scope.get("route"), "path", None)
    if route is not None:
        span.update_name(f"{method} {route}")
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "url.scheme": scope.get("scheme", "http"),
        "url.path": scope["path"],
        "network.protocol.version": scope.get("http_version", "1.1"),
    }
    if route is not None:
        attributes["http.route"] = route
    if status:
        attributes["http.response.status_code"] = status
        if status >= 500 and not failed:  # a raised exception has set both already
            span.set_status(Status(StatusCode.ERROR))
            attributes[ERROR_TYPE] = str(status)
    server = scope.get("server")
    if server:
        attributes["server.address"], attributes["server.port"] = server[0], server[1]
    client = scope.get("client")
    if client:
        attributes["client.address"] = client[0]
    for name, value in scope["headers"]:
        if name == b"user-agent":
            attributes["user_agent.original"] = value.decode("latin-1")
            break
    span.set_attributes(attributes)


def instrument_engine(engine: Engine | AsyncEngine, telemetry: Telemetry) -> None:
    """Trace SQL statements of `engine` (CLIENT spans) with the service's own provider.

    Accepts an `AsyncEngine` (its `sync_engine` carries the events). Idempotent per engine.

    Why not `SQLAlchemyInstrumentor().instrument(engine=...)`: that instrumentor is a
    process-wide singleton. Its first call also patches `create_engine` globally with the
    first service's tracer, and later calls (other services) are ignored with a warning, so
    every service's SQL would be reported under the first service's name. Attaching its
    `EngineTracer` to the one engine, with a tracer from this service's provider, gives the
    same spans without any global state.
    """
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    owner = _instrumented_engines.get(sync_engine)
    if owner is telemetry:
        return
    if owner is not None:
        raise ValueError(
            f"engine already instrumented for service {owner.service_name!r}, "
            f"not {telemetry.service_name!r}"
        )
    tracer = trace.get_tracer(
        "opentelemetry.instrumentation.sqlalchemy",
        _sqlalchemy_inst_version,
        telemetry.provider,
    )
    # Connection-pool metrics go to the global meter provider (a no-op unless configured).
    meter = get_meter("opentelemetry.instrumentation.sqlalchemy", _sqlalchemy_inst_version)
    connections_usage = meter.create_up_down_counter(
        name="db.client.connections.usage",
        unit="connections",
        description="The number of connections that are currently in the state described "
        "by the state attribute.",
    )
    # The EngineTracer registers its listeners on the engine, which keeps it alive.
    EngineTracer(tracer, sync_engine, connections_usage)
    _instrumented_engines[sync_engine] = telemetry


def current_traceparent() -> dict[str, str]:
    """W3C headers of the active span: {"traceparent": ..., maybe "tracestate": ...}.

    Empty when no span is active (or it is not sampled-in and invalid), so callers can store
    the result unconditionally, e.g. next to an outbox row.
    """
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str]) -> Context:
    """The trace context carried by `headers` (an empty context when there is none).

    Header names are matched case-insensitively (as HTTP does): NATS keeps header case as
    sent, and a producer in another language may write "Traceparent".
    """
    carrier = {str(k).lower(): v for k, v in headers.items()}
    return _PROPAGATOR.extract(carrier)


def _headers_of(span: Span) -> dict[str, str]:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier


def _record_failure(span: Span, exc: Exception) -> None:
    span.record_exception(exc)
    span.set_attribute(ERROR_TYPE, type(exc).__qualname__)
    # The status description is shown in trace lists; keep it to the type, since exception
    # messages may quote personal data. The recorded exception event has the details.
    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


@contextmanager
def producer_span(
    telemetry: Telemetry,
    *,
    subject: str,
    message_id: str,
    parent_headers: Mapping[str, str] | None,
) -> Iterator[tuple[Span, dict[str, str]]]:
    """PRODUCER span `"<subject> publish"` around publishing one message.

    The parent comes from `parent_headers` (the trace context stored with the outbox row),
    not from whatever is active in the relay, so the publish joins the trace of the request
    that wrote the event. With `parent_headers=None` the currently active context is used.
    Yields the span and the headers to put on the NATS message (its `traceparent`).
    The span is current inside the block; an exception is recorded and re-raised.
    """
    parent = extract_context(parent_headers) if parent_headers is not None else None
    attributes: dict[str, Any] = {
        MESSAGING_SYSTEM: "nats",
        MESSAGING_DESTINATION_NAME: subject,
        MESSAGING_MESSAGE_ID: message_id,
        MESSAGING_OPERATION_TYPE: "publish",
        MESSAGING_OPERATION_NAME: "publish",
    }
    with telemetry.tracer.start_as_current_span(
        f"{subject} publish",
        context=parent,
        kind=SpanKind.PRODUCER,
        attributes=attributes,
        # Done by hand below so the error also carries `error.type`.
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span, _headers_of(span)
        except Exception as exc:
            # Exception, not BaseException: a cancelled relay is not a failed publish (the
            # outbox row stays and is published on the next run).
            _record_failure(span, exc)
            raise


@contextmanager
def consumer_span(
    telemetry: Telemetry,
    *,
    subject: str,
    message_id: str,
    headers: Mapping[str, str],
    consumer: str,
) -> Iterator[Span]:
    """CONSUMER span `"<subject> process"` around handling one delivered message.

    Its parent is the producer span whose `traceparent` the message carries. An exception
    raised by the handler is recorded, sets ERROR status, and is re-raised (the caller decides
    between nak and term).
    """
    attributes: dict[str, Any] = {
        MESSAGING_SYSTEM: "nats",
        MESSAGING_DESTINATION_NAME: subject,
        MESSAGING_MESSAGE_ID: message_id,
        MESSAGING_OPERATION_TYPE: "process",
        MESSAGING_OPERATION_NAME: "process",
        MESSAGING_CONSUMER_GROUP_NAME: consumer,
    }
    with telemetry.tracer.start_as_current_span(
        f"{subject} process",
        context=extract_context(headers),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except Exception as exc:
            # Exception, not BaseException: a cancelled task or Ctrl-C is not a failure of
            # the handler, and the message is simply redelivered.
            _record_failure(span, exc)
            raise
