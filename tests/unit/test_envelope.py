"""CloudEvents binary-mode envelope: what `Event.from_nats` accepts and refuses."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC
from enum import Enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.common.events.envelope import (
    Event,
    InvalidEnvelope,
    _json_default,
    encode_json,
    new_event,
)

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


# --------------------------------------------------------------------------- JSON

_STDLIB = json.JSONEncoder(default=_json_default, ensure_ascii=False, separators=(",", ":"))


class Colour(Enum):
    RED = "red"
    BLUE = 2


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()  # Chinese, emoji, control characters, lone surrogates excluded by default
    | st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones())
    | st.dates()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.uuids()
    | st.sampled_from(Colour)
    | st.frozensets(st.integers(), max_size=4)
)
_keys = (
    st.text()
    | st.integers()
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False, allow_infinity=False)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(_keys, inner, max_size=4)
    ),
    max_leaves=20,
)


def _has_float(value: object) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(k) or _has_float(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_float(v) for v in value)
    return False


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(), _values, max_size=6))
def test_encode_json_writes_what_the_standard_library_writes(data: dict[str, object]) -> None:
    """Stored bodies, feeds and hashes stay what they were before orjson: the same JSON
    value always, the same bytes unless a float is spelt another way."""
    ours, theirs = encode_json(data), _STDLIB.encode(data).encode()
    assert json.loads(ours) == json.loads(theirs)
    if not _has_float(data):
        assert ours == theirs


def test_a_float_keeps_its_value_whatever_its_spelling() -> None:
    for number in (6.103515625e-05, 1e16, 1.5, -0.0, 2.5e-308, 1.7976931348623157e308):
        assert json.loads(encode_json({"x": number}))["x"] == number


def test_integers_beyond_64_bits_are_still_written() -> None:
    assert (
        encode_json({"n": 2**70, "m": -(2**64)})
        == b'{"n":1180591620717411303424,"m":-18446744073709551616}'
    )


def test_encode_json_refuses_what_it_always_refused() -> None:
    @dataclass
    class Point:
        x: int

    for value in (Point(1), object(), b"bytes"):
        with pytest.raises(TypeError):
            encode_json({"v": value})


def test_a_body_that_is_not_strict_json_is_an_invalid_envelope() -> None:
    event = sample()
    for body in (b'{"x": NaN}', b"\xff\xfe", b'{"x": 1', b"[1, 2]"):
        with pytest.raises(InvalidEnvelope):
            Event.from_nats(event.headers(), body)


def test_held_encodings_take_their_size_not_a_write_buffer_each() -> None:
    """10,000 encoded events held at once (an import's outbox batch) cost about their
    size, not orjson's 4 KB write buffer each (40 MB)."""

    def resident_mb() -> float:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    data = {"need_id": "0199a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "urgency": 2, "name": "王"}
    before = resident_mb()
    held = [encode_json({**data, "seq": i}) for i in range(10_000)]
    grown = resident_mb() - before
    assert len(held) == 10_000
    assert grown < 20, f"{grown:.0f} MB for 10,000 small encodings"
