"""The event layer against a real nats-server and a real database: outbox, relay,
idempotent consumer, dead letters, and what survives a SIGKILL at each step."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from libs.common import faults
from libs.common.events import DLQ_STREAM, Event
from tests.support.eventkit import DURABLE, Kit

ROOT = Path(__file__).resolve().parents[2]


def run_step(*args: str, fault: str | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "SA_FAULTS": fault or ""}
    return subprocess.run(
        [sys.executable, "-m", "tests.support.event_proc", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture
async def kit(database_url: str, nats_url: str) -> AsyncIterator[Kit]:
    k = await Kit(
        database_url, nats_url, max_deliver=3, ack_wait_seconds=1.0, backoff_base_seconds=0.05
    ).open()
    yield k
    k.worker.stop()
    await k.close()


async def settled_consumer(kit: Kit) -> Any:
    """Consumer info once the server has applied our acks (flushed acks land a moment later)."""
    for _ in range(40):
        info = await kit.bus.js.consumer_info("NEEDS", DURABLE)
        if info.num_ack_pending == 0:
            return info
        await asyncio.sleep(0.05)
    return info


async def drain(kit: Kit, rounds: int = 20) -> None:
    """Relay everything, then let the consumer fetch until nothing is left."""
    await kit.relay.publish_pending()
    if kit.worker._psub is None:
        await kit.worker.start()
    for _ in range(rounds):
        try:
            msgs = await kit.worker._psub.fetch(100, timeout=0.3)
        except TimeoutError:  # nats-py raises its own or asyncio's, by where it waited
            continue
        await kit.worker.process_batch(msgs)


async def test_outbox_to_consumer_round_trip(kit: Kit) -> None:
    events = [await kit.write_event(i) for i in range(25)]
    assert await kit.pending() == 25
    await drain(kit, rounds=3)
    assert await kit.pending() == 0
    assert await kit.stream_count() == 25
    assert sorted(v for _, v in await kit.effects()) == list(range(25))
    assert {e for e, _ in await kit.effects()} == {e.id for e in events}


async def test_envelope_is_cloudevents_binary_mode(kit: Kit) -> None:
    event = await kit.write_event(7)
    await kit.relay.publish_pending()
    raw = await kit.bus.js.get_msg("NEEDS", 1)
    assert raw.subject == "sa.needs.need.opened"
    headers = raw.headers or {}
    assert headers["ce-id"] == event.id == headers["Nats-Msg-Id"]
    assert headers["ce-type"] == "sa.needs.need.opened.v1"
    assert headers["ce-specversion"] == "1.0"
    assert headers["ce-source"] == "/sa/needs"
    assert headers["content-type"] == "application/json"
    assert Event.from_nats(headers, raw.data or b"").data == {"value": 7}


async def test_crash_after_commit_before_publish_publishes_once_after_restart(
    kit: Kit, database_url: str, nats_url: str
) -> None:
    done = run_step("write", database_url, nats_url, "41", fault=faults.OUTBOX_AFTER_COMMIT)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert await kit.pending() == 1  # committed, not published
    assert await kit.stream_count() == 0
    restarted = run_step("relay", database_url, nats_url)
    assert restarted.returncode == 0, restarted.stderr.decode()[-2000:]
    assert await kit.stream_count() == 1
    assert await kit.pending() == 0
    # A second relay pass finds nothing more to send.
    assert run_step("relay", database_url, nats_url).returncode == 0
    assert await kit.stream_count() == 1


async def test_crash_after_publish_before_marking_is_deduplicated(
    kit: Kit, database_url: str, nats_url: str
) -> None:
    await kit.write_event(42)
    died = run_step("relay", database_url, nats_url, fault=faults.RELAY_AFTER_PUBLISH)
    assert died.returncode == -signal.SIGKILL
    assert await kit.stream_count() == 1
    assert await kit.pending() == 1  # published but never marked
    again = run_step("relay", database_url, nats_url)
    assert again.returncode == 0, again.stderr.decode()[-2000:]
    assert await kit.pending() == 0
    assert await kit.stream_count() == 1  # JetStream dropped the republished id


async def test_consumer_killed_after_effect_before_ack_applies_once(
    kit: Kit, database_url: str, nats_url: str
) -> None:
    event = await kit.write_event(43)
    await kit.relay.publish_pending()
    died = run_step("consume", database_url, nats_url, fault=faults.CONSUMER_AFTER_COMMIT)
    assert died.returncode == -signal.SIGKILL, died.stderr.decode()[-2000:]
    assert await kit.effects() == [(event.id, 43)]  # effect committed, message not acked
    await asyncio.sleep(1.2)  # ack_wait: the server redelivers
    await drain(kit, rounds=5)
    assert await kit.effects() == [(event.id, 43)]  # not applied twice
    info = await settled_consumer(kit)
    assert info.num_ack_pending == 0 and info.num_pending == 0
    assert info.delivered.stream_seq == 1


async def test_poison_message_dead_lettered_after_max_deliver_and_others_flow(kit: Kit) -> None:
    poison = await kit.write_event(1, poison="transient")
    good = await kit.write_event(2)
    await kit.relay.publish_pending()
    await kit.worker.start()

    for _ in range(40):
        try:
            msgs = await kit.worker._psub.fetch(10, timeout=0.2)
        except TimeoutError:
            if kit.worker.dead_lettered_total:
                break
            continue
        await kit.worker.process_batch(msgs)
    assert await kit.effects() == [(good.id, 2)]
    dlq = await kit.bus.js.get_msg(DLQ_STREAM, 1)
    headers = dlq.headers or {}
    assert headers["ce-id"] == poison.id
    assert headers["sa-dlq-deliveries"] == "3"
    assert "downstream unavailable" in headers["sa-dlq-reason"]
    assert headers["sa-dlq-consumer"] == DURABLE
    info = await settled_consumer(kit)
    assert info.num_ack_pending == 0 and info.num_pending == 0
    # A later message still flows.
    later = await kit.write_event(3)
    await drain(kit, rounds=3)
    assert (later.id, 3) in await kit.effects()


async def test_permanent_error_dead_letters_at_once(kit: Kit) -> None:
    bad = await kit.write_event(1, poison="permanent")
    await drain(kit, rounds=3)
    dlq = await kit.bus.js.get_msg(DLQ_STREAM, 1)
    assert (dlq.headers or {})["ce-id"] == bad.id
    assert (dlq.headers or {})["sa-dlq-deliveries"] == "1"
    assert "PermanentError" in (dlq.headers or {})["sa-dlq-reason"]


async def test_invalid_envelope_goes_to_dead_letters(kit: Kit) -> None:
    await kit.worker.start()
    await kit.bus.js.publish("sa.needs.need.opened", b"not json", headers={"ce-id": "x"})
    await drain(kit, rounds=3)
    dlq = await kit.bus.js.get_msg(DLQ_STREAM, 1)
    assert "invalid envelope" in (dlq.headers or {})["sa-dlq-reason"]
    assert await kit.effects() == []


async def test_batch_with_one_bad_message_commits_the_rest(kit: Kit) -> None:
    events = [await kit.write_event(i) for i in range(5)]
    await kit.write_event(99, poison="permanent")
    events += [await kit.write_event(i) for i in range(5, 10)]
    await drain(kit, rounds=3)
    assert sorted(v for _, v in await kit.effects()) == list(range(10))
    assert await kit.inbox_count() == 10


async def test_message_whose_consumer_dies_every_time_still_reaches_dead_letters(
    database_url: str, nats_url: str
) -> None:
    """No handler error is ever recorded (the consumer 'crashes' holding the message); the
    server's MAX_DELIVERIES advisory, kept in a stream, drives the dead letter instead."""

    from libs.common.events.consumer import MaxDeliveriesWatcher

    k = await Kit(database_url, nats_url, max_deliver=2, ack_wait_seconds=0.5).open()
    try:
        event = await k.write_event(5)
        await k.relay.publish_pending()
        await k.worker.start()
        watcher = MaxDeliveriesWatcher(
            bus=k.bus, service="kit", streams_by_durable={DURABLE: "NEEDS"}
        )
        await watcher.start()
        for _ in range(2):  # fetched, never acked: as if the process died each time
            msgs = await k.worker._psub.fetch(1, timeout=2)
            assert msgs[0].metadata.num_delivered in (1, 2)
            await asyncio.sleep(0.7)
        # The next pull (the restarted consumer) finds nothing; the server now gives up on
        # the message and emits the advisory.
        with pytest.raises(TimeoutError):
            await k.worker._psub.fetch(1, timeout=1)
        for _ in range(30):
            try:
                advisories = await watcher._psub.fetch(10, timeout=0.3)
            except TimeoutError:
                continue
            await watcher.handle_batch(advisories)
            break
        dlq = await k.bus.js.get_msg(DLQ_STREAM, 1)
        headers = dlq.headers or {}
        assert headers["ce-id"] == event.id
        assert "delivery limit reached" in headers["sa-dlq-reason"]
        assert headers["sa-dlq-consumer"] == DURABLE
        assert await k.effects() == []
    finally:
        await k.close()


async def test_batch_handler_applies_each_event_once_and_isolates_a_bad_one(
    database_url: str, nats_url: str
) -> None:
    k = await Kit(database_url, nats_url, batch=True, max_deliver=3, ack_wait_seconds=1.0).open()
    try:
        good = [await k.write_event(i) for i in range(20)]
        bad = await k.write_event(99, poison="permanent")
        await drain(k, rounds=3)
        assert sorted(v for _, v in await k.effects()) == list(range(20))
        assert {e for e, _ in await k.effects()} == {e.id for e in good}
        dlq = await k.bus.js.get_msg(DLQ_STREAM, 1)
        assert (dlq.headers or {})["ce-id"] == bad.id
        # Redelivering the whole batch applies nothing twice.
        await k.bus.js.delete_consumer("NEEDS", DURABLE)  # a new consumer replays the stream
        k.worker._psub = None
        await drain(k, rounds=3)
        assert len(await k.effects()) == 20
    finally:
        await k.close()


def test_subscription_needs_exactly_one_handler() -> None:
    from libs.common.events import Subscription

    with pytest.raises(ValueError, match="exactly one"):
        Subscription(durable="d", stream="NEEDS", subjects=["sa.needs.>"])


async def test_relay_pipelines_batches_in_order_and_marks_them_all(kit: Kit) -> None:
    from libs.common.events import OutboxRelay
    from tests.support.eventkit import tables

    events = [await kit.write_event(i) for i in range(30)]
    relay = OutboxRelay(db=kit.db, tables=tables, bus=kit.bus, batch_size=7)
    moved = await relay.publish_pending()
    # Batch k+1 is sent while batch k's acks come back, up to 8 batches a call (SQLite:
    # reads past the rows in flight; PostgreSQL: a second transaction skips their locks).
    assert moved == 30
    assert await kit.pending() == 0
    info = await kit.bus.js.stream_info("NEEDS")
    first = info.state.first_seq
    stored = [await kit.bus.js.get_msg("NEEDS", first + k) for k in range(30)]
    assert [m.headers["ce-id"] for m in stored if m.headers] == [e.id for e in events]


async def test_relays_sharing_an_outbox_store_each_event_once(kit: Kit) -> None:
    """Two relays on one outbox (a service's replicas; a mistake on SQLite, which runs one
    per database): the stream holds each event once. On PostgreSQL SKIP LOCKED also gives
    each row to exactly one relay transaction, whichever relay and whichever of its two
    overlapping transactions, so no row is even sent twice."""
    from libs.common.events import OutboxRelay
    from tests.support.eventkit import tables

    events = [await kit.write_event(i) for i in range(120)]
    relays = [OutboxRelay(db=kit.db, tables=tables, bus=kit.bus, batch_size=8) for _ in range(2)]

    async def drain_with(relay: OutboxRelay) -> None:
        while await relay.publish_pending():
            pass

    await asyncio.gather(*(drain_with(r) for r in relays))
    assert await kit.pending() == 0
    info = await kit.bus.js.stream_info("NEEDS")
    assert info.state.messages == 120
    first = info.state.first_seq
    stored = [await kit.bus.js.get_msg("NEEDS", first + k) for k in range(120)]
    assert sorted(m.headers["ce-id"] for m in stored if m.headers) == sorted(e.id for e in events)
    if not kit.db.is_sqlite:
        assert sum(r.published_total for r in relays) == 120  # no row marked twice
        assert all(r.published_total > 0 for r in relays)  # and both took part


@pytest.mark.parametrize("prefetch", [True, False])
async def test_running_consumer_applies_every_event_once_and_stops_cleanly(
    database_url: str, nats_url: str, prefetch: bool
) -> None:
    # A batch of 5: 47 events take ten fetches, each full one followed by a prefetch.
    kit = await Kit(database_url, nats_url, batch_size=5, prefetch=prefetch).open()
    try:
        events = [await kit.write_event(i) for i in range(47)]
        await kit.relay.publish_pending()
        await kit.worker.start()
        task = asyncio.create_task(kit.worker.run())
        for _ in range(200):
            if kit.worker.handled_total >= 47:
                break
            await asyncio.sleep(0.05)
        kit.worker.stop()
        await asyncio.wait_for(task, timeout=5)  # returns, prefetch cancelled, no error
        assert sorted(v for _, v in await kit.effects()) == list(range(47))
        assert {e for e, _ in await kit.effects()} == {e.id for e in events}
        assert (await settled_consumer(kit)).num_ack_pending == 0
    finally:
        await kit.close()


# --------------------------------------------------------------------------- failed publishes


async def outbox_row(kit: Kit, event_id: str) -> Any:
    from sqlalchemy import select

    from tests.support.eventkit import tables

    t = tables.outbox
    async with kit.db.session() as s:
        return (
            await s.execute(
                select(t.c.published_at, t.c.attempts, t.c.last_error).where(
                    t.c.event_id == event_id
                )
            )
        ).one()


async def test_relay_keeps_a_row_no_stream_captures_and_publishes_the_others(kit: Kit) -> None:
    from libs.common.events import new_event

    before = await kit.write_event(1)
    orphan = new_event(service="ghost", entity="thing", verb="happened", data={"value": 2})
    async with kit.uow() as uow:
        uow.emit(orphan)
        await uow.commit()
    after = await kit.write_event(3)
    assert await kit.relay.publish_pending() == 2
    assert await kit.stream_count() == 2
    row = await outbox_row(kit, orphan.id)
    assert row.published_at is None
    assert row.attempts == 1
    assert "no responders" in row.last_error
    for event in (before, after):
        assert (await outbox_row(kit, event.id)).published_at is not None
    # Retried on every pass, counted each time, never marked published.
    await kit.relay.publish_pending()
    assert (await outbox_row(kit, orphan.id)).attempts == 2
    assert await kit.pending() == 1


async def test_relay_records_the_streams_refusal_and_goes_on(kit: Kit) -> None:
    from nats.js.api import StreamConfig

    # A stream that refuses messages over 300 bytes: the big event's ack carries an error.
    info = await kit.bus.js.stream_info("NEEDS")
    config: StreamConfig = info.config
    config.max_msg_size = 300
    await kit.bus.js.update_stream(config)
    small = await kit.write_event(1)
    big = await kit.write_event(2, padding="x" * 1000)
    assert await kit.relay.publish_pending() == 1
    row = await outbox_row(kit, big.id)
    assert row.published_at is None and row.attempts == 1
    assert "maximum" in row.last_error.lower(), row.last_error
    assert (await outbox_row(kit, small.id)).published_at is not None
    assert await kit.stream_count() == 1


async def test_relay_counts_unacknowledged_publishes_as_failed_and_sends_them_once(
    kit: Kit,
) -> None:
    from libs.common.events import OutboxRelay
    from tests.support.eventkit import tables

    events = [await kit.write_event(i) for i in range(5)]
    # No acknowledgement can arrive within a microsecond: all five count as failed, though
    # the stream stores them. The next pass sends them again and JetStream drops the copies.
    hasty = OutboxRelay(db=kit.db, tables=tables, bus=kit.bus, publish_timeout=1e-6)
    assert await hasty.publish_pending() == 0
    assert await kit.pending() == 5
    assert "no acknowledgement" in (await outbox_row(kit, events[0].id)).last_error
    assert await kit.relay.publish_pending() == 5
    assert await kit.pending() == 0
    assert await kit.stream_count() == 5
    assert kit.bus.publisher.in_flight == 0  # the hasty batch was forgotten, late acks too


async def test_publisher_reports_each_refusal_by_index(kit: Kit) -> None:
    batch = await kit.bus.publisher.publish(
        [
            ("sa.needs.need.opened", b"{}", {"Nats-Msg-Id": "p-1"}),
            ("sa.nowhere.at.all", b"{}", None),
            ("sa.needs.need.opened", b"{}", {"Nats-Msg-Id": "p-1"}),  # a duplicate is stored
            ("sa.needs.need.opened", b"{}", {"Nats-Msg-Id": "p-2"}),
        ]
    )
    errors = await batch.wait(5.0)
    assert list(errors) == [1]
    assert "no responders" in errors[1]
    assert await kit.stream_count() == 2
    empty = await kit.bus.publisher.publish([])
    assert await empty.wait(0.01) == {}
    assert kit.bus.publisher.in_flight == 0


@pytest.mark.parametrize("wire", [True, False])
async def test_publisher_refuses_a_bad_message_alone_and_stores_the_rest(
    kit: Kit, wire: bool
) -> None:
    from libs.common.events.publish import JetStreamPublisher

    assert kit.bus.nc is not None
    publisher = JetStreamPublisher(kit.bus.nc, wire=wire)
    assert (publisher._wire is not None) is wire
    too_big = b"x" * (kit.bus.nc.max_payload + 1)
    batch = await publisher.publish(
        [
            ("sa.needs.need.opened", b'{"n": 0}', {"Nats-Msg-Id": f"{wire}-0"}),
            ("sa.needs.need.opened", too_big, {"Nats-Msg-Id": f"{wire}-1"}),
            ("sa.needs.need.opened", b'{"n": 2}', {"bad key": "v", "Nats-Msg-Id": f"{wire}-2"}),
            ("sa.needs.need opened", b'{"n": 3}', {"Nats-Msg-Id": f"{wire}-3"}),
            ("sa.needs.need.opened", b'{"n": 4}', {"Nats-Msg-Id": f"{wire}-4", "x": "a\r\nb"}),
        ]
    )
    errors = await batch.wait(5.0)
    assert sorted(errors) == [1, 2, 3]
    assert "MaxPayload" in errors[1] and "BadHeader" in errors[2] and "BadSubject" in errors[3]
    stored = [await kit.bus.js.get_msg("NEEDS", seq) for seq in (1, 2)]
    assert [m.data for m in stored] == [b'{"n": 0}', b'{"n": 4}']
    assert stored[1].headers is not None and stored[1].headers["x"] == "a  b"


async def test_wire_frames_store_what_nats_py_publish_stores(kit: Kit) -> None:
    """The private-API path and nc.publish() give the stream the same message."""
    from libs.common.events import new_event
    from libs.common.events.publish import JetStreamPublisher

    assert kit.bus.nc is not None
    event = new_event(service="needs", entity="need", verb="opened", data={"v": "é"})
    stored = []
    for wire in (True, False):
        headers = {**event.headers(), "Nats-Msg-Id": f"{event.id}-{wire}"}
        publisher = JetStreamPublisher(kit.bus.nc, wire=wire)
        batch = await publisher.publish([(event.nats_subject, event.body(), headers)])
        assert await batch.wait(5.0) == {}
        info = await kit.bus.js.stream_info("NEEDS")
        stored.append(await kit.bus.js.get_msg("NEEDS", info.state.last_seq))
    wire_msg, plain_msg = stored
    assert wire_msg.subject == plain_msg.subject == event.nats_subject
    assert wire_msg.data == plain_msg.data == event.body()
    assert wire_msg.headers is not None and plain_msg.headers is not None
    assert {k: v for k, v in wire_msg.headers.items() if k != "Nats-Msg-Id"} == {
        k: v for k, v in plain_msg.headers.items() if k != "Nats-Msg-Id"
    }
    assert Event.from_nats(wire_msg.headers, wire_msg.data or b"").data == {"v": "é"}
