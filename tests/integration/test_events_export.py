"""`sa events export` and `sa events tail` (issue 8 item 3), as the ministry user of a real
nats-server started with the platform's permissions.

The show item: a ministry consumer started after 1,000 events, interrupted twice (SIGKILL from
outside mid-way, then a crash between fsync and ack through SA_FAULTS), ends with exactly
those 1,000 events, in order, none twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nats.js.errors import NotFoundError

from libs.common.cli_events import (
    EXPORT_AFTER_WRITE,
    Connection,
    EventsError,
    Exporter,
    ExportFile,
    parse_since,
    streams_for_subject,
    tail_events,
)
from libs.common.events.bus import EventBus
from libs.common.events.envelope import new_event
from libs.common.nats_auth import ADMIN_USER, EVENT_STREAMS, MINISTRY_USER
from tests.integration.test_nats_permissions import AuthServer, start_auth_server

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("needs", "providers", "matching", "credit")


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[AuthServer]:
    """A server with the platform's users: services that publish, the ministry that reads."""
    server = start_auth_server(tmp_path / "nats", {name: [] for name in SERVICES})
    try:
        yield server
    finally:
        await server.close_clients()
        server.server.stop()


Published = dict[tuple[str, int], dict[str, Any]]


async def publish(auth: AuthServer, count: int, *, start: int = 0) -> Published:
    """`count` events spread over the four services, each published by its own user."""
    buses = {}
    for name in SERVICES:
        bus = EventBus(auth.url, name=name, user=name, password=auth.passwords[name])
        await bus.connect()
        await bus.ensure_streams()
        buses[name] = bus
    published: Published = {}
    try:
        pending = []
        for n in range(start, start + count):
            name = SERVICES[n % len(SERVICES)]
            event = new_event(service=name, entity="probe", verb="recorded", data={"n": n})
            future = await buses[name].js.publish_async(
                event.nats_subject, event.body(), headers=event.headers()
            )
            pending.append((event, future))
        for event, future in pending:
            ack = await asyncio.wait_for(future, timeout=10)
            published[(ack.stream, ack.seq)] = {"id": event.id, "n": event.data["n"]}
    finally:
        for bus in buses.values():
            await bus.close()
    return published


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The file's complete lines (a torn last line, left by a kill, is not one)."""
    if not path.exists():
        return []
    text = path.read_bytes()
    complete = text[: text.rfind(b"\n") + 1]
    return [json.loads(line) for line in complete.splitlines()]


def export_cmd(auth: AuthServer, out: Path, *extra: str) -> list[str]:
    return [
        "export",
        "--out",
        str(out),
        "--nats-url",
        auth.url,
        "--user",
        MINISTRY_USER,
        "--durable",
        "ministry-export",
        "--no-progress",
        *extra,
    ]


async def run_events(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """`python -m libs.common.cli_events ARGS` in a child process: (exit code, out, err)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "libs.common.cli_events",
        *args,
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def export_env(auth: AuthServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SA_FAULTS"}
    return {**env, "SA_EVENTS_NATS_PASSWORD": auth.passwords[MINISTRY_USER], **extra}


def assert_exactly(lines: list[dict[str, Any]], published: Published) -> None:
    """Every published event exactly once, each stream in sequence order, nothing else."""
    keys = [(line["stream"], line["seq"]) for line in lines]
    assert len(keys) == len(set(keys)), "an event was written twice"
    assert set(keys) == set(published), "events missing or extra"
    for stream in EVENT_STREAMS:
        seqs = [seq for s, seq in keys if s == stream]
        assert seqs == sorted(seqs), f"{stream} out of order"
        assert seqs == list(range(1, len(seqs) + 1)), f"{stream} has a gap"
    for line in lines:
        expected = published[(line["stream"], line["seq"])]
        assert line["ce"]["id"] == expected["id"]
        assert line["data"] == {"n": expected["n"]}
        assert line["subject"] == f"sa.{line['stream'].lower()}.probe.recorded"


async def test_export_interrupted_twice_ends_with_exactly_the_1000_events_in_order(
    auth: AuthServer, tmp_path: Path
) -> None:
    published = await publish(auth, 1000)  # all of it before the ministry starts
    out = tmp_path / "export" / "events.jsonl"

    # 1. Killed from outside, mid-way (one event per batch, so it is still busy).
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "libs.common.cli_events",
        *export_cmd(auth, out, "--batch", "1"),
        env=export_env(auth),
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while len(read_lines(out)) < 100:
        assert proc.returncode is None, "the export stopped by itself"
        assert time.monotonic() < deadline, "the export did not get going"
        await asyncio.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(proc.wait(), timeout=10) == -signal.SIGKILL
    first = len(read_lines(out))
    assert 100 <= first < 1000, first

    # 2. Crashes right after a batch is written and fsynced, before any of it is acked.
    code, _, err = await run_events(
        export_cmd(auth, out, "--batch", "50"), export_env(auth, SA_FAULTS=EXPORT_AFTER_WRITE)
    )
    assert code == -signal.SIGKILL, err
    lines = read_lines(out)
    assert first < len(lines) < 1000
    # The server has not seen the acks of what is in the file beyond each ack floor: those
    # events come again and must be recognised.
    admin = await auth.connect(ADMIN_USER)
    unacked = 0
    for stream in EVENT_STREAMS:
        info = await admin.js.consumer_info(stream, "ministry-export")
        in_file = max((x["seq"] for x in lines if x["stream"] == stream), default=0)
        assert info.ack_floor.stream_seq <= in_file, "acked before written"
        unacked += in_file - info.ack_floor.stream_seq
    assert unacked >= 1, "the fault did not leave a written, unacked batch"

    # 3. Runs to the end: writes the rest, skips exactly the redelivered events.
    code, _, err = await run_events(export_cmd(auth, out), export_env(auth))
    assert code == 0, err
    assert report_numbers(err) == {"written": 1000 - len(lines), "already": unacked}
    lines = read_lines(out)
    assert_exactly(lines, published)
    assert out.read_bytes().endswith(b"\n")

    # `published` is the time the stream stored the event, not when it was delivered.
    stored = await admin.js.get_msg("NEEDS", 1)
    line = next(x for x in lines if x["stream"] == "NEEDS" and x["seq"] == 1)
    assert stored.time is not None
    assert abs((datetime.fromisoformat(line["published"]) - stored.time).total_seconds()) < 0.001

    # Run again: nothing new, nothing repeated.
    code, _, err = await run_events(export_cmd(auth, out), export_env(auth))
    assert code == 0, err
    assert report_numbers(err) == {"written": 0, "already": 0}
    assert_exactly(read_lines(out), published)


def report_numbers(stderr: str) -> dict[str, int]:
    """From the last line: "<out>: N events written, M already there; caught up"."""
    match = re.search(r"(\d+) events written, (\d+) already there; caught up", stderr)
    assert match, stderr
    return {"written": int(match.group(1)), "already": int(match.group(2))}


# --------------------------------------------------------------------------------------------
# export in-process: where it starts, what it refuses
# --------------------------------------------------------------------------------------------


async def ministry(auth: AuthServer) -> Connection:
    conn = Connection(
        url=auth.url,
        user=MINISTRY_USER,
        password=auth.passwords[MINISTRY_USER],
        api_timeout=1.0,
    )
    return await conn.open()


async def export_into(
    auth: AuthServer, out: Path, *, durable: str = "ministry-export", **options: Any
) -> dict[str, Any]:
    conn = await ministry(auth)
    warnings: list[str] = []
    try:
        with ExportFile(out) as file:
            exporter = Exporter(
                conn,
                file,
                durable=durable,
                streams=options.pop("streams", EVENT_STREAMS),
                since=options.pop("since", None),
                warn=warnings.append,
                fetch_timeout=0.2,
                **options,
            )
            progress = await exporter.run()
    finally:
        await conn.close()
    return {"progress": progress, "warnings": warnings}


async def test_export_since_a_time_or_a_sequence_starts_there(
    auth: AuthServer, tmp_path: Path
) -> None:
    await publish(auth, 8)
    await asyncio.sleep(0.05)
    since = datetime.now(UTC)
    later = await publish(auth, 8, start=8)

    out = tmp_path / "since-time.jsonl"
    await export_into(auth, out, since=since)
    lines = read_lines(out)
    assert sorted(line["data"]["n"] for line in lines) == list(range(8, 16))
    assert {(line["stream"], line["seq"]) for line in lines} == set(later)

    out = tmp_path / "since-seq.jsonl"
    result = await export_into(auth, out, durable="ministry-tail", streams=["CREDIT"], since=3)
    assert [(x["stream"], x["seq"]) for x in read_lines(out)] == [("CREDIT", 3), ("CREDIT", 4)]
    assert result["progress"]["CREDIT"].caught_up


async def test_export_follow_keeps_writing_new_events(auth: AuthServer, tmp_path: Path) -> None:
    await publish(auth, 4)
    out = tmp_path / "follow.jsonl"
    task = asyncio.create_task(export_into(auth, out, streams=["NEEDS"], follow=True))
    try:
        for expected in (1, 3):  # needs gets one event in four
            if expected == 3:
                await publish(auth, 8, start=4)
            deadline = time.monotonic() + 10
            while len(read_lines(out)) < expected:
                assert not task.done(), task
                assert time.monotonic() < deadline, read_lines(out)
                await asyncio.sleep(0.05)
        assert not task.done()  # caught up, and still following
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [x["data"]["n"] for x in read_lines(out)] == [0, 4, 8]


async def test_a_resumed_durable_ignores_since_and_a_foreign_file_is_refused(
    auth: AuthServer, tmp_path: Path
) -> None:
    await publish(auth, 8)
    first = tmp_path / "first.jsonl"
    await export_into(auth, first)
    assert len(read_lines(first)) == 8

    # The same durable into a new file: it goes on where it stopped, and says so.
    await publish(auth, 4, start=8)
    second = tmp_path / "second.jsonl"
    result = await export_into(auth, second, since=datetime(2020, 1, 1, tzinfo=UTC))
    assert sorted(x["data"]["n"] for x in read_lines(second)) == [8, 9, 10, 11]
    assert any("already exists" in w for w in result["warnings"])
    assert any("--since is not used" in w for w in result["warnings"])

    # A file that ends before what the durable acknowledged would leave a gap: refused.
    short = tmp_path / "short.jsonl"
    short.write_bytes(first.read_bytes().splitlines(keepends=True)[0])
    with pytest.raises(EventsError, match="was not written by that consumer"):
        await export_into(auth, short)


async def test_the_ministry_may_use_only_its_own_consumer_names(
    auth: AuthServer, tmp_path: Path
) -> None:
    await publish(auth, 4)
    with pytest.raises(EventsError, match="permissions violation"):
        await export_into(auth, tmp_path / "x.jsonl", durable="needs-matches")
    wrong = Connection(url=auth.url, user=MINISTRY_USER, password="guess")
    # The server answers -ERR 'Authorization Violation' and closes; the client sometimes sees
    # the reset before it reads the error. Either way the wrong password does not get in.
    with pytest.raises(
        EventsError, match=r"(?i)cannot connect.*(authorization violation|connection reset)"
    ):
        await wrong.open()


# --------------------------------------------------------------------------------------------
# The export file on its own
# --------------------------------------------------------------------------------------------


def _line(stream: str, seq: int) -> bytes:
    return (json.dumps({"stream": stream, "seq": seq, "data": {}}) + "\n").encode()


def test_export_file_cuts_off_a_torn_tail_and_catches_up_a_stale_index(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    with ExportFile(path) as file:
        file.append("NEEDS", 1, _line("NEEDS", 1))
        file.commit()  # the index now says: 1 line
    # Lines written after the index moved (a crash before its update), then half a line.
    with path.open("ab") as fh:
        fh.write(_line("NEEDS", 2) + _line("CREDIT", 7) + b'{"stream": "NEEDS", "se')
    with ExportFile(path) as file:
        assert file.truncated_bytes == len(b'{"stream": "NEEDS", "se')
        assert file.last_seq == {"NEEDS": 2, "CREDIT": 7}
        assert file.count == 3
        assert file.seen("NEEDS", 2) and not file.seen("NEEDS", 3)
        assert file.seen("CREDIT", 7) and not file.seen("MATCHING", 1)
        # Busy: a second exporter on the same file is kept out.
        with pytest.raises(EventsError, match="another export"):
            ExportFile(path).open()
    assert path.read_bytes().endswith(_line("CREDIT", 7))
    index = json.loads(path.with_name("e.jsonl.idx").read_text())
    assert index["offset"] == path.stat().st_size and index["count"] == 3


def test_export_file_refuses_a_file_shorter_than_its_index(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    with ExportFile(path) as file:
        file.append("NEEDS", 1, _line("NEEDS", 1))
        file.commit()
    path.write_bytes(b"")
    with pytest.raises(EventsError, match="shorter than its index"):
        ExportFile(path).open()
    # A lost or broken index only means reading the whole file.
    path.write_bytes(_line("NEEDS", 1) + _line("NEEDS", 2))
    path.with_name("e.jsonl.idx").write_text("{broken")
    with ExportFile(path) as file:
        assert file.last_seq == {"NEEDS": 2} and file.count == 2


def test_since_and_subject_parsing() -> None:
    assert parse_since(None) is None
    assert parse_since("42") == 42
    assert parse_since("2026-03-01T08:00:00+08:00") == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_since("2026-03-01T00:00:00Z") == datetime(2026, 3, 1, tzinfo=UTC)
    for bad, reason in (("0", "starts at 1"), ("2026-03-01T08:00", "offset"), ("x", "neither")):
        with pytest.raises(EventsError, match=reason):
            parse_since(bad)

    assert streams_for_subject("sa.credit.>") == [("CREDIT", None)]
    assert streams_for_subject("sa.needs.need.*") == [("NEEDS", "sa.needs.need.*")]
    every = {"NEEDS", "PROVIDERS", "MATCHING", "CREDIT", "DLQ"}
    assert {s for s, f in streams_for_subject("sa.>")} == every
    assert all(f is None for _, f in streams_for_subject(">"))
    assert dict(streams_for_subject("sa.*.score.changed"))["CREDIT"] == "sa.credit.score.changed"
    for bad in ("", "sa..x", "sa.>.x", "other.>", "sa.ghost.>"):
        with pytest.raises(EventsError):
            streams_for_subject(bad)


# --------------------------------------------------------------------------------------------
# tail
# --------------------------------------------------------------------------------------------


async def test_tail_shows_only_the_subject_and_leaves_no_consumer_behind(
    auth: AuthServer,
) -> None:
    await publish(auth, 8)
    since = datetime.now(UTC) - timedelta(minutes=1)
    conn = await ministry(auth)
    seen: list[dict[str, Any]] = []
    try:
        shown = await tail_events(
            conn,
            subject="sa.credit.>",
            consumer="ministry-tail",
            since=since,
            emit=seen.append,
            max_events=2,
        )
    finally:
        await conn.close()
    assert shown == 2
    assert [(x["stream"], x["seq"]) for x in seen] == [("CREDIT", 1), ("CREDIT", 2)]
    assert all(x["subject"].startswith("sa.credit.") for x in seen)
    admin = await auth.connect(ADMIN_USER)
    with pytest.raises(NotFoundError):
        await admin.js.consumer_info("CREDIT", "ministry-tail")


async def test_tail_command_prints_json_lines_and_new_events(auth: AuthServer) -> None:
    await publish(auth, 8)
    env = export_env(auth)
    common = ["--nats-url", auth.url, "--user", MINISTRY_USER]
    code, out, err = await run_events(
        ["tail", "--subject", "sa.needs.>", "--json", "--since", "1", "--max", "2", *common], env
    )
    assert code == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    assert [(x["stream"], x["seq"], x["data"]["n"]) for x in lines] == [
        ("NEEDS", 1, 0),
        ("NEEDS", 2, 4),
    ]
    # Pretty, and without --since only what happens from now on.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "libs.common.cli_events",
        "tail",
        "--subject",
        "sa.matching.>",
        "--max",
        "1",
        *common,
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    admin = await auth.connect(ADMIN_USER)
    for _ in range(200):  # wait for its consumer, then publish one more event
        try:
            await admin.js.consumer_info("MATCHING", "ministry-tail")
            break
        except NotFoundError:
            await asyncio.sleep(0.05)
    fresh = await publish(auth, 4, start=100)
    out_b, err_b = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 0, err_b.decode()
    matching_seq = next(seq for stream, seq in fresh if stream == "MATCHING")
    text = out_b.decode()
    assert f"MATCHING#{matching_seq} sa.matching.probe.recorded" in text
    assert '{"n":102}' in text


def test_sa_events_is_a_command_of_sa() -> None:
    sa = Path(sys.executable).parent / "sa"
    result = subprocess.run([str(sa), "events", "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for command in ("tail", "export", "nats-config"):
        assert command in result.stdout
