"""Unit tests for `libs.common.telemetry`: per-service providers and trace context over NATS.

Spans are collected with an in-memory exporter; nothing leaves the process.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from libs.common.telemetry import (
    Telemetry,
    consumer_span,
    current_traceparent,
    extract_context,
    instrument_app,
    instrument_engine,
    producer_span,
    setup_telemetry,
)

SUBJECT = "sa.needs.need.opened"
EVENT_ID = "0190f2c4-7d0e-7a35-9a51-3c1b6f1c2d01"

MakeTelemetry = Callable[[str], Telemetry]


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def make_telemetry(exporter: InMemorySpanExporter) -> Iterator[MakeTelemetry]:
    """Factory of per-service Telemetry objects that all export to `exporter`."""
    created: list[Telemetry] = []

    def make(service_name: str) -> Telemetry:
        telemetry = setup_telemetry(service_name, extra_processors=[SimpleSpanProcessor(exporter)])
        created.append(telemetry)
        return telemetry

    yield make
    for telemetry in created:
        telemetry.shutdown()


def service_of(span: ReadableSpan) -> Any:
    return span.resource.attributes["service.name"]


def only(spans: list[ReadableSpan], *, kind: SpanKind) -> ReadableSpan:
    matching = [s for s in spans if s.kind == kind]
    assert len(matching) == 1, [s.name for s in spans]
    return matching[0]


def assert_attributes(span: ReadableSpan, expected: dict[str, Any]) -> None:
    """`span` carries every attribute of `expected` (and maybe more)."""
    actual = dict(span.attributes or {})
    assert {name: actual.get(name) for name in expected} == expected


def finished(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return list(exporter.get_finished_spans())


# --- HTTP ------------------------------------------------------------------------------


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/needs/{need_id}")
    async def get_need(need_id: str) -> dict[str, Any]:
        # What a use case stores next to an outbox row.
        return {"need_id": need_id, "trace": current_traceparent()}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/broken")
    async def broken() -> dict[str, str]:
        raise RuntimeError("the handler failed")

    return app


async def get(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_request_produces_server_span_of_the_service(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    app = make_app()
    instrument_app(app, make_telemetry("needs"))

    response = await get(app, "/needs/n-1")

    assert response.status_code == 200
    server = only(finished(exporter), kind=SpanKind.SERVER)
    assert service_of(server) == "needs"
    assert server.name == "GET /needs/{need_id}"
    # Inside the request, current_traceparent() names the server span.
    trace_id = format(server.context.trace_id, "032x")
    span_id = format(server.context.span_id, "016x")
    assert response.json()["trace"]["traceparent"].split("-")[1:3] == [trace_id, span_id]


async def test_server_span_describes_the_request_and_joins_the_callers_trace(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    app = make_app()
    instrument_app(app, make_telemetry("needs"))
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(
            "/needs/n-2", headers={"traceparent": caller, "user-agent": "probe/1"}
        )
    assert response.status_code == 200
    server = only(finished(exporter), kind=SpanKind.SERVER)
    assert format(server.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert server.parent is not None and format(server.parent.span_id, "016x") == (
        "00f067aa0ba902b7"
    )
    assert_attributes(
        server,
        {
            "http.request.method": "GET",
            "http.route": "/needs/{need_id}",
            "url.path": "/needs/n-2",
            "http.response.status_code": 200,
            "user_agent.original": "probe/1",
        },
    )
    assert server.status.status_code == StatusCode.UNSET


async def test_server_span_records_a_failing_handler(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    app = make_app()
    instrument_app(app, make_telemetry("needs"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/broken")).status_code == 500
    server = only(finished(exporter), kind=SpanKind.SERVER)
    assert server.name == "GET /broken"
    assert server.status.status_code == StatusCode.ERROR
    assert_attributes(server, {"http.response.status_code": 500, "error.type": "RuntimeError"})
    assert [e.name for e in server.events] == ["exception"]


async def test_unsampled_requests_still_propagate_trace_context() -> None:
    telemetry = setup_telemetry("needs")  # exporter "none": nothing records
    app = make_app()
    instrument_app(app, telemetry)
    response = await get(app, "/needs/n-3")
    # A non-recording span is current, so what the use case stores still names a trace.
    flags = int(response.json()["trace"]["traceparent"].rsplit("-", 1)[1], 16)
    assert flags & 0x01 == 0  # valid, not sampled
    telemetry.shutdown()


async def test_health_is_not_traced(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    app = make_app()
    instrument_app(app, make_telemetry("needs"))

    assert (await get(app, "/health")).status_code == 200
    assert finished(exporter) == []


async def test_two_apps_in_one_process_keep_their_service_names(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    needs_app, credit_app = make_app(), make_app()
    instrument_app(needs_app, make_telemetry("needs"))
    instrument_app(credit_app, make_telemetry("credit"))

    await get(needs_app, "/needs/a")
    await get(credit_app, "/needs/b")

    servers = [s for s in finished(exporter) if s.kind == SpanKind.SERVER]
    assert sorted(service_of(s) for s in servers) == ["credit", "needs"]


async def test_instrument_app_is_idempotent_and_refuses_a_second_service(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    app = make_app()
    needs = make_telemetry("needs")
    instrument_app(app, needs)
    instrument_app(app, needs)
    with pytest.raises(ValueError, match="needs"):
        instrument_app(app, make_telemetry("credit"))

    await get(app, "/needs/n-1")
    assert len([s for s in finished(exporter) if s.kind == SpanKind.SERVER]) == 1


# --- propagation -----------------------------------------------------------------------


def test_current_traceparent_is_empty_without_a_span() -> None:
    assert current_traceparent() == {}


def test_extract_context_reads_headers_case_insensitively(make_telemetry: MakeTelemetry) -> None:
    telemetry = make_telemetry("needs")
    with telemetry.tracer.start_as_current_span("request") as span:
        headers = current_traceparent()
    shouted = {"Traceparent": headers["traceparent"]}
    parent = trace.get_current_span(extract_context(shouted)).get_span_context()
    assert parent.trace_id == span.get_span_context().trace_id
    assert parent.is_remote


def test_extract_context_without_headers_has_no_parent() -> None:
    assert not trace.get_current_span(extract_context({})).get_span_context().is_valid


# --- messaging -------------------------------------------------------------------------


def test_producer_joins_the_trace_of_the_request_that_wrote_the_event(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    needs, relay = make_telemetry("needs"), make_telemetry("needs-relay")
    with needs.tracer.start_as_current_span("POST /needs", kind=SpanKind.SERVER) as request:
        stored = current_traceparent()  # saved with the outbox row

    # Later, in the relay, while some unrelated span is active: the stored context wins.
    publish = producer_span(relay, subject=SUBJECT, message_id=EVENT_ID, parent_headers=stored)
    with relay.tracer.start_as_current_span("relay poll"), publish as (span, headers):
        own_span_id = format(span.get_span_context().span_id, "016x")
        assert headers["traceparent"].split("-")[2] == own_span_id

    producer = only(finished(exporter), kind=SpanKind.PRODUCER)
    assert producer.name == f"{SUBJECT} publish"
    assert service_of(producer) == "needs-relay"
    assert producer.context.trace_id == request.get_span_context().trace_id
    assert producer.parent is not None
    assert producer.parent.span_id == request.get_span_context().span_id
    assert_attributes(
        producer,
        {
            "messaging.system": "nats",
            "messaging.destination.name": SUBJECT,
            "messaging.message.id": EVENT_ID,
            "messaging.operation.type": "publish",
        },
    )


def test_producer_without_parent_headers_uses_the_active_context(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    telemetry = make_telemetry("needs")
    with (
        telemetry.tracer.start_as_current_span("use case") as outer,
        producer_span(telemetry, subject=SUBJECT, message_id=EVENT_ID, parent_headers=None),
    ):
        pass
    producer = only(finished(exporter), kind=SpanKind.PRODUCER)
    assert producer.parent is not None
    assert producer.parent.span_id == outer.get_span_context().span_id


def test_consumer_span_is_a_child_of_the_producer(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    needs, matching = make_telemetry("needs"), make_telemetry("matching")
    publish = producer_span(needs, subject=SUBJECT, message_id=EVENT_ID, parent_headers={})
    with publish as (_, headers):
        pass
    with consumer_span(
        matching, subject=SUBJECT, message_id=EVENT_ID, headers=headers, consumer="allocation"
    ) as span:
        # The handler's own spans (SQL, HTTP) nest under the consumer span.
        assert trace.get_current_span() is span

    spans = finished(exporter)
    producer = only(spans, kind=SpanKind.PRODUCER)
    consumer = only(spans, kind=SpanKind.CONSUMER)
    assert consumer.name == f"{SUBJECT} process"
    assert service_of(consumer) == "matching"
    assert consumer.context.trace_id == producer.context.trace_id
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id
    assert_attributes(
        consumer,
        {
            "messaging.system": "nats",
            "messaging.destination.name": SUBJECT,
            "messaging.message.id": EVENT_ID,
            "messaging.operation.type": "process",
            "messaging.consumer.group.name": "allocation",
        },
    )
    assert consumer.status.status_code is StatusCode.UNSET


def test_consumer_span_records_a_failure_and_reraises(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    matching = make_telemetry("matching")
    with (
        pytest.raises(LookupError, match="no such need"),
        consumer_span(
            matching, subject=SUBJECT, message_id=EVENT_ID, headers={}, consumer="allocation"
        ),
    ):
        raise LookupError("no such need")

    consumer = only(finished(exporter), kind=SpanKind.CONSUMER)
    assert consumer.status.status_code is StatusCode.ERROR
    assert [event.name for event in consumer.events] == ["exception"]
    assert consumer.attributes is not None
    assert consumer.attributes["error.type"] == "LookupError"


def test_producer_span_records_a_failed_publish(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    needs = make_telemetry("needs")
    with (
        pytest.raises(TimeoutError),
        producer_span(needs, subject=SUBJECT, message_id=EVENT_ID, parent_headers={}),
    ):
        raise TimeoutError("no ack from JetStream")
    assert only(finished(exporter), kind=SpanKind.PRODUCER).status.status_code is StatusCode.ERROR


# --- providers -------------------------------------------------------------------------


def test_two_telemetries_keep_separate_service_names(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    needs, credit = make_telemetry("needs"), make_telemetry("credit")
    assert needs.provider is not credit.provider
    with needs.tracer.start_as_current_span("a"):
        pass
    with credit.tracer.start_as_current_span("b"):
        pass
    assert {s.name: service_of(s) for s in finished(exporter)} == {"a": "needs", "b": "credit"}


def test_service_name_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, make_telemetry: MakeTelemetry
) -> None:
    # One process, one environment, several services: the argument must decide.
    monkeypatch.setenv("OTEL_SERVICE_NAME", "whole-process")
    telemetry = make_telemetry("providers")
    assert telemetry.provider.resource.attributes["service.name"] == "providers"


def test_console_exporter_and_repeated_shutdown() -> None:
    telemetry = setup_telemetry("credit", exporter="console")
    telemetry.shutdown()
    telemetry.shutdown()


def test_otlp_without_the_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # `None` in sys.modules makes the import fail whether or not the package is installed.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(RuntimeError, match="opentelemetry-exporter-otlp-proto-http"):
        setup_telemetry("credit", exporter="otlp", otlp_endpoint="http://collector:4318")


def test_unknown_exporter_is_refused() -> None:
    with pytest.raises(ValueError, match="exporter"):
        setup_telemetry("credit", exporter="zipkin")  # type: ignore[arg-type]


# --- SQLAlchemy ------------------------------------------------------------------------


def test_engines_of_two_services_report_their_own_service(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    needs_engine, credit_engine = create_engine("sqlite://"), create_engine("sqlite://")
    needs, credit = make_telemetry("needs"), make_telemetry("credit")
    instrument_engine(needs_engine, needs)
    instrument_engine(credit_engine, credit)
    instrument_engine(needs_engine, needs)  # idempotent: no duplicate spans

    with needs_engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    with credit_engine.connect() as connection:
        connection.execute(text("SELECT 2"))

    clients = [s for s in finished(exporter) if s.kind == SpanKind.CLIENT]
    assert sorted(service_of(s) for s in clients) == ["credit", "needs"]
    with pytest.raises(ValueError, match="needs"):
        instrument_engine(needs_engine, credit)
    needs_engine.dispose()
    credit_engine.dispose()


async def test_async_engine_is_traced_under_the_request(
    make_telemetry: MakeTelemetry, exporter: InMemorySpanExporter
) -> None:
    engine = create_async_engine("sqlite+aiosqlite://")
    providers = make_telemetry("providers")
    instrument_engine(engine, providers)

    with providers.tracer.start_as_current_span("use case") as use_case:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    await engine.dispose()

    sql = only(finished(exporter), kind=SpanKind.CLIENT)
    assert service_of(sql) == "providers"
    assert sql.parent is not None
    assert sql.parent.span_id == use_case.get_span_context().span_id


def test_otlp_exporter_is_installed_and_exports_over_http() -> None:
    """The pinned OTLP/HTTP exporter is part of the platform: the setting works as documented."""
    import http.server
    import threading

    received: list[bytes] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        t = setup_telemetry(
            "needs",
            exporter="otlp",
            otlp_endpoint=f"http://127.0.0.1:{server.server_port}/v1/traces",
        )
        with t.tracer.start_as_current_span("otlp-probe"):
            pass
        assert t.force_flush(5000)
        t.shutdown()
    finally:
        server.shutdown()
    assert received and b"otlp-probe" in received[0]


def test_spans_are_not_recorded_when_nothing_would_receive_them() -> None:
    silent = setup_telemetry("needs")  # exporter "none", no processor
    with silent.tracer.start_as_current_span("x") as span:
        assert not span.is_recording()
        # Trace context still flows to the next hop.
        assert current_traceparent()["traceparent"].startswith("00-")
    listened = setup_telemetry(
        "needs", extra_processors=[SimpleSpanProcessor(InMemorySpanExporter())]
    )
    with listened.tracer.start_as_current_span("y") as span:
        assert span.is_recording()
