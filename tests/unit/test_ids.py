"""Identifiers (libs.common.ids): time-ordered for records and events, random for people."""

from __future__ import annotations

import time
import uuid

from libs.common.events.envelope import new_event
from libs.common.ids import new_id, new_person_ref


def test_record_ids_are_uuid7_in_canonical_text() -> None:
    value = new_id()
    parsed = uuid.UUID(value)
    assert str(parsed) == value
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_record_ids_carry_the_time_they_were_made_and_sort_by_it() -> None:
    before = time.time_ns() // 1_000_000
    first = new_id()
    time.sleep(0.002)
    second = new_id()
    after = time.time_ns() // 1_000_000
    millis = uuid.UUID(first).int >> 80  # the leading 48 bits: Unix time in ms
    assert before <= millis <= after
    assert first < second  # as text too: what a B-tree orders by


def test_ids_made_in_a_burst_are_unique() -> None:
    ids = [new_id() for _ in range(50_000)]
    assert len(set(ids)) == len(ids)


def test_person_refs_are_random_and_carry_no_time() -> None:
    refs = [uuid.UUID(new_person_ref()) for _ in range(100)]
    assert {r.version for r in refs} == {4}
    # The leading 48 bits of a v4 are random: a hundred of them are not clustered in time
    # as a hundred v7 ids made together would be.
    assert len({r.int >> 80 for r in refs}) == 100


def test_events_get_time_ordered_ids() -> None:
    event = new_event(service="needs", entity="need", verb="opened", data={})
    assert uuid.UUID(event.id).version == 7
