"""CloudEvents binary-mode envelope: what `Event.from_nats` accepts and refuses."""

from __future__ import annotations

import pytest

from libs.common.events.envelope import Event, InvalidEnvelope, new_event

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def sample() -> Event:
    return new_event(
        service="needs",
        entity="need",
        verb="opened",
        data={"need_id": "n-1", "urgency": 2, "name": "王"},
        subject="n-1",
        trace={"traceparent": TRACEPARENT},
    )


def test_round_trip_keeps_every_attribute() -> None:
    event = sample()
    parsed = Event.from_nats(event.headers(), event.body())
    assert parsed == event


def test_canonicalised_header_names_are_read_as_lower_case() -> None:
    # nats.go's Header.Set writes "Ce-Id", "Traceparent", ...
    event = sample()
    shouted = {
        "-".join(p.capitalize() for p in k.split("-")): v for k, v in event.headers().items()
    }
    assert "Ce-Id" in shouted and "Traceparent" in shouted
    parsed = Event.from_nats(shouted, event.body())
    assert parsed.id == event.id and parsed.type == event.type
    assert parsed.trace == {"traceparent": TRACEPARENT}


@pytest.mark.parametrize("drop", ["ce-id", "ce-source", "ce-type", "ce-specversion"])
def test_a_missing_required_header_is_named(drop: str) -> None:
    event = sample()
    headers = {k: v for k, v in event.headers().items() if k != drop}
    with pytest.raises(InvalidEnvelope, match=drop):
        Event.from_nats(headers, event.body())


@pytest.mark.parametrize(
    ("change", "body", "reason"),
    [
        ({"ce-specversion": "0.3"}, None, "specversion"),
        ({"content-type": "text/plain"}, None, "content-type"),
        ({"ce-type": "needs.opened"}, None, "sa.<service>"),
        ({"ce-time": "yesterday"}, None, "isoformat|Invalid"),
        ({}, b"not json", "not JSON"),
        ({}, b"[1, 2]", "JSON object"),
    ],
)
def test_malformed_messages_are_invalid(
    change: dict[str, str], body: bytes | None, reason: str
) -> None:
    event = sample()
    with pytest.raises(InvalidEnvelope, match=reason):
        Event.from_nats({**event.headers(), **change}, event.body() if body is None else body)


def test_no_headers_at_all_is_invalid() -> None:
    with pytest.raises(InvalidEnvelope, match="missing CloudEvents headers"):
        Event.from_nats(None, b"{}")
