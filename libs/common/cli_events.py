"""`sa events`: the platform's events as a ministry reads them (部委订阅).

    sa events tail --subject 'sa.credit.>' [--json]
    sa events export --since 2026-01-01T00:00:00+08:00 --out events.jsonl \\
        [--durable ministry-export] [--stream all] [--follow]
    sa events nats-config > deploy/nats/auth.conf        (production users and permissions)

Both readers go through the ministry user's own named consumers (libs/common/nats_auth.py):
they can read every event stream but publish nothing. Against a running `sa run` they find
the server and the ministry's password in `var/` by themselves.

`export` is meant to be run again and again into the same file and never to lose or repeat
an event. Through a durable pull consumer (created on first use at `--since`), each fetched
batch is written as JSON lines, flushed and fsynced, and only then acknowledged: an event the
server counts as delivered is always on disk. After a crash the consumer is reset to its ack
floor, so the unacknowledged events come again at once and in order; the ones already in
the file (stream sequence at or below the last one written for that stream) are skipped and
acked. A line cut short by the crash is cut off (it was never acked). A sidecar index
`<out>.idx` remembers how far the file was checked, so a restart reads only the tail, and a
lock file `<out>.lock` keeps a second exporter out.

Order: within a stream, by stream sequence. Streams are separate producers with no common
order; sort by `published` (or `ce.time`) when one is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from libs.common import faults

EXPORT_AFTER_WRITE = "events_export.after_write"
"""Fault point (SA_FAULTS): the batch is in the file and fsynced, none of it acked yet."""

DEFAULT_NATS_URL = "nats://127.0.0.1:4250"
DEFAULT_EXPORT_DURABLE = "ministry-export"
DEFAULT_TAIL_CONSUMER = "ministry-tail"
EXPORT_ACK_WAIT_SECONDS = 60.0
MAX_CONSECUTIVE_FAILURES = 30
"""Failed pulls in a row (one a second) before giving up on an unreachable server."""
INDEX_VERSION = 1

app = typer.Typer(
    help="The platform's events, read as a ministry: tail them, export them.",
    no_args_is_help=True,
)


class EventsError(Exception):
    """Something the user must fix (shown as `sa events: error: …`, exit code 1)."""


# --------------------------------------------------------------------------------------------
# Parsing and formatting (no I/O)
# --------------------------------------------------------------------------------------------


def parse_since(value: str | None) -> int | datetime | None:
    """`--since`: a stream sequence (a positive integer) or an RFC 3339 time with an offset."""
    if value is None or value == "":
        return None
    text = value.strip()
    if text.isdigit():
        seq = int(text)
        if seq < 1:
            raise EventsError("--since: a stream sequence starts at 1")
        return seq
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise EventsError(
            f"--since: {value!r} is neither a stream sequence nor an RFC 3339 time "
            "(e.g. 2026-03-01T08:00:00+08:00)"
        ) from None
    if when.tzinfo is None:
        raise EventsError("--since: give the time with its UTC offset, e.g. +08:00 or Z")
    return when


def streams_for_subject(subject: str) -> list[tuple[str, str | None]]:
    """The streams a subject pattern can match, each with the filter to put on its consumer.

    `sa.credit.>` → CREDIT, unfiltered; `sa.needs.need.*` → NEEDS filtered on it; `sa.>` or
    `sa.*.score.changed` → every event stream (and dead letters where they can match).
    """
    from libs.common.events.bus import DLQ_PREFIX, DLQ_STREAM, SERVICE_STREAMS

    tokens = subject.split(".")
    if not subject or any(t == "" for t in tokens) or (">" in tokens[:-1]):
        raise EventsError(f"--subject: {subject!r} is not a NATS subject pattern")
    if tokens == [">"]:
        tokens = ["sa", ">"]
    if tokens[0] not in ("sa", "*") or len(tokens) < 2:
        raise EventsError(f"--subject: {subject!r} matches none of the platform's events")
    dlq = DLQ_PREFIX.split(".")[1]
    streams = {pattern.split(".")[1]: name for name, pattern in SERVICE_STREAMS.items()}
    streams[dlq] = DLQ_STREAM
    second, rest = tokens[1], tokens[2:]
    chosen = list(streams) if second in ("*", ">") else [second] if second in streams else []
    if not chosen:
        raise EventsError(f"--subject: no stream holds {subject!r} (services: {sorted(streams)})")
    whole_stream = rest == [">"] or (second == ">" and not rest)
    return [
        (streams[name], None if whole_stream else ".".join(["sa", name, *rest])) for name in chosen
    ]


def record_of(msg: Any) -> dict[str, Any]:
    """One exported event: where it sits in the stream, its CloudEvents context, its data."""
    meta = msg.metadata
    headers = {k.lower(): v for k, v in (msg.headers or {}).items()}
    ce = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    if "content-type" in headers:
        ce["datacontenttype"] = headers["content-type"]
    record: dict[str, Any] = {
        "stream": meta.stream,
        "seq": meta.sequence.stream,
        "subject": msg.subject,
        "published": meta.timestamp.astimezone(UTC).isoformat(),
        "ce": ce,
    }
    dead = {k[len("sa-dlq-") :]: v for k, v in headers.items() if k.startswith("sa-dlq-")}
    if dead:
        record["dead_letter"] = dead
    try:
        record["data"] = json.loads(msg.data) if msg.data else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        record["data_text"] = msg.data.decode("utf-8", errors="replace")
    return record


def encode_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


# --------------------------------------------------------------------------------------------
# The export file: append-only JSON lines, a sidecar index, a lock
# --------------------------------------------------------------------------------------------


class ExportFile:
    """The JSON-lines file of an export and what is already in it.

    `last_seq[stream]` is the highest stream sequence written for each stream. Events of a
    stream are written in sequence order, so an event at or below it is a redelivery.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.index_path = self.path.with_name(self.path.name + ".idx")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.last_seq: dict[str, int] = {}
        self.count = 0
        self.truncated_bytes = 0
        self._fh: Any = None
        self._lock_fd: int | None = None

    def open(self) -> ExportFile:
        self._lock()
        try:
            self._recover()
        except BaseException:
            self.close()
            raise
        return self

    def _lock(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EventsError(f"another export is writing {self.path}") from None
        self._lock_fd = fd

    def _read_index(self) -> tuple[int, dict[str, int], int]:
        try:
            doc = json.loads(self.index_path.read_text(encoding="utf-8"))
            if doc.get("version") != INDEX_VERSION:
                raise ValueError("unknown version")
            last = {str(k): int(v) for k, v in doc["last_seq"].items()}
            return int(doc["offset"]), last, int(doc["count"])
        except FileNotFoundError:
            return 0, {}, 0
        except (ValueError, KeyError, TypeError, AttributeError):
            # Unreadable (say, cut short by a crash): check the whole file instead.
            return 0, {}, 0

    def _recover(self) -> None:
        """Check the file from where the index stopped; cut off a torn tail."""
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        self._fh = os.fdopen(fd, "r+b")
        if created:
            _fsync_dir(self.path.parent)  # the new file's name must survive a crash too
        offset, last, count = self._read_index()
        size = os.fstat(fd).st_size
        if offset > size:
            raise EventsError(
                f"{self.path} is shorter than its index {self.index_path.name} records: it was "
                "truncated or replaced. Move both away to start a new export."
            )
        self._fh.seek(offset)
        good = offset
        for line in self._fh:
            # Committed lines are whole and valid (fsynced before their ack); the first bad
            # one starts what a crash left unfinished, never acked, so it can go.
            if not line.endswith(b"\n"):
                break
            try:
                doc = json.loads(line)
                stream, seq = str(doc["stream"]), int(doc["seq"])
            except (ValueError, KeyError, TypeError):
                break
            last[stream] = max(last.get(stream, 0), seq)
            count += 1
            good += len(line)
        if good < size:
            self._fh.truncate(good)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.truncated_bytes = size - good
        self._fh.seek(good)
        self.last_seq, self.count = last, count
        self._write_index(good)

    def seen(self, stream: str, seq: int) -> bool:
        return seq <= self.last_seq.get(stream, 0)

    def append(self, stream: str, seq: int, line: bytes) -> None:
        self._fh.write(line)
        self.last_seq[stream] = seq
        self.count += 1

    def commit(self) -> None:
        """Make everything appended durable (flush + fsync), then move the index forward."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._write_index(self._fh.tell())

    def _write_index(self, offset: int) -> None:
        # Written after the data's fsync, so it never claims more than the file holds; not
        # fsynced itself: an index lost in a crash only means checking more of the file.
        tmp = self.index_path.with_name(self.index_path.name + ".tmp")
        doc = {
            "version": INDEX_VERSION,
            "offset": offset,
            "count": self.count,
            "last_seq": self.last_seq,
        }
        tmp.write_text(json.dumps(doc) + "\n", encoding="utf-8")
        tmp.replace(self.index_path)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> ExportFile:
        return self.open()

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# Connecting as the ministry
# --------------------------------------------------------------------------------------------


@dataclass
class Connection:
    """Where to connect and as whom; defaults come from a running `sa run` under var_dir."""

    url: str
    user: str | None = None
    password: str | None = None
    api_timeout: float = 5.0
    errors: list[str] = field(default_factory=list)
    nc: Any = None
    js: Any = None

    async def open(self) -> Connection:
        import nats

        from libs.common.nats_auth import inbox_prefix

        async def on_error(exc: Exception) -> None:
            # Permission violations arrive here, not as the failing call's exception.
            self.errors.append(str(exc))

        options: dict[str, Any] = {}
        if self.user:
            options.update(
                user=self.user, password=self.password, inbox_prefix=inbox_prefix(self.user)
            )
        try:
            self.nc = await nats.connect(
                self.url,
                name="sa-events",
                error_cb=on_error,
                connect_timeout=5,
                allow_reconnect=True,
                max_reconnect_attempts=2,  # a wrong URL or password fails in seconds
                reconnect_time_wait=1,
                **options,
            )
        except Exception as exc:
            detail = "; ".join(self.errors[-1:]) or str(exc) or type(exc).__name__
            raise EventsError(f"cannot connect to {self.url}: {detail}") from None
        # Once in, ride out server restarts (a tail or --follow export runs for days).
        self.nc.options["max_reconnect_attempts"] = -1
        self.js = self.nc.jetstream(timeout=self.api_timeout)
        return self

    def explain(self, exc: BaseException, doing: str) -> EventsError:
        """An API call that timed out was most often refused: say so with the server's words."""
        refused = [e for e in self.errors if "permission" in e.lower()]
        reason = refused[-1] if refused else f"{type(exc).__name__}: {exc}".rstrip(": ")
        return EventsError(f"{doing}: {reason}")

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await self.nc.flush(timeout=2)
            await self.nc.close()


def resolve_connection(
    url: str | None, user: str | None, password: str | None, var_dir: Path
) -> Connection:
    """Explicit options first, then the running stack's URL and ministry user, then defaults."""
    from libs.common.nats_auth import MINISTRY_USER
    from libs.common.stack import StackError, read_nats_credentials, read_stack_file

    stack: dict[str, Any] = {}
    with contextlib.suppress(StackError):
        stack = read_stack_file(var_dir)
    if url is None:
        url = stack.get("nats_url") or DEFAULT_NATS_URL
    if user is None and stack.get("nats_credentials"):
        with contextlib.suppress(OSError, ValueError, StackError):
            creds = read_nats_credentials(var_dir)
            user = MINISTRY_USER
            password = creds["users"][MINISTRY_USER]["password"]
    return Connection(url=url, user=user, password=password)


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------


@dataclass
class StreamProgress:
    stream: str
    written: int = 0
    skipped: int = 0
    pending: int = 0
    caught_up: bool = False


ProgressCallback = Callable[[StreamProgress], None]


class Exporter:
    """Copies streams into an ExportFile through one durable consumer per stream."""

    def __init__(
        self,
        conn: Connection,
        out: ExportFile,
        *,
        streams: Sequence[str],
        durable: str,
        since: int | datetime | None,
        follow: bool = False,
        batch: int = 256,
        fetch_timeout: float = 1.0,
        on_progress: ProgressCallback | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.conn = conn
        self.out = out
        self.streams = list(streams)
        self.durable = durable
        self.since = since
        self.follow = follow
        self.batch = batch
        self.fetch_timeout = fetch_timeout
        self.on_progress = on_progress or (lambda _p: None)
        self.warn = warn or (lambda _m: None)
        self.progress = {s: StreamProgress(s) for s in self.streams}
        self._write_lock = asyncio.Lock()

    async def _consumer(self, stream: str) -> Any:
        """Bind to the durable on `stream`: created at `--since` on first use, else resumed."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
        from nats.js.errors import NotFoundError

        js = self.conn.js
        try:
            info = await js.consumer_info(stream, self.durable)
            existed = True
        except NotFoundError:
            existed = False
        except Exception as exc:
            raise self.conn.explain(exc, f"reading consumer {self.durable} on {stream}") from None
        if existed:
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            written = self.out.last_seq.get(stream)
            if written is not None and floor > written:
                raise EventsError(
                    f"{self.durable} on {stream} has acknowledged up to #{floor} but "
                    f"{self.out.path} ends at #{written}: this file was not written by that "
                    "consumer. Use the file it wrote, or a new --durable."
                )
            if written is None and floor > 0:
                self.warn(
                    f"{self.durable} on {stream} already exists: continuing after #{floor} "
                    "(earlier events are not in this file; use a new --durable for them)"
                )
            if self.since is not None:
                self.warn(f"{self.durable} on {stream}: resuming, so --since is not used")
            try:
                # Events delivered to a crashed run and never acked would otherwise come
                # back only after ack_wait, behind newer ones: restart from the ack floor.
                await js.reset_consumer(stream, self.durable)
            except Exception as exc:
                raise self.conn.explain(exc, f"resetting {self.durable} on {stream}") from None
        else:
            config = ConsumerConfig(
                durable_name=self.durable,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=EXPORT_ACK_WAIT_SECONDS,
                max_deliver=-1,  # an export never gives up on an event
                max_ack_pending=max(1000, self.batch * 4),
                deliver_policy=DeliverPolicy.ALL,
            )
            if isinstance(self.since, int):
                config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
                config.opt_start_seq = self.since
            elif isinstance(self.since, datetime):
                config.deliver_policy = DeliverPolicy.BY_START_TIME
                config.opt_start_time = self.since.astimezone(UTC)
            try:
                await js.add_consumer(stream, config)
            except Exception as exc:
                raise self.conn.explain(exc, f"creating {self.durable} on {stream}") from None
        try:
            info = await js.consumer_info(stream, self.durable)
            psub = await js.pull_subscribe_bind(durable=self.durable, stream=stream)
        except Exception as exc:
            raise self.conn.explain(exc, f"binding to {self.durable} on {stream}") from None
        self.progress[stream].pending = info.num_pending + info.num_ack_pending
        self.on_progress(self.progress[stream])
        return psub

    async def run(self) -> dict[str, StreamProgress]:
        subs = {stream: await self._consumer(stream) for stream in self.streams}
        await asyncio.gather(*(self._copy(stream, sub) for stream, sub in subs.items()))
        return self.progress

    async def _copy(self, stream: str, psub: Any) -> None:
        from nats.errors import Error as NatsError
        from nats.errors import TimeoutError as NatsTimeoutError

        progress = self.progress[stream]
        failures = 0
        while True:
            try:
                try:
                    msgs = await psub.fetch(self.batch, timeout=self.fetch_timeout)
                except (NatsTimeoutError, TimeoutError):
                    msgs = []
                if not msgs:
                    info = await self.conn.js.consumer_info(stream, self.durable)
                    progress.pending = info.num_pending + info.num_ack_pending
            except (NatsError, OSError) as exc:
                # The server restarting or a leader moving: what is acked is on disk, what
                # is not comes again, so waiting and going on is always safe.
                failures += 1
                if failures > MAX_CONSECUTIVE_FAILURES:
                    raise self.conn.explain(exc, f"reading {stream}") from None
                self.warn(f"{stream}: {type(exc).__name__}: {exc}; retrying")
                await asyncio.sleep(1.0)
                continue
            failures = 0
            if msgs:
                await self._write_and_ack(stream, msgs)
                progress.pending = msgs[-1].metadata.num_pending
            progress.caught_up = progress.pending == 0
            self.on_progress(progress)
            if progress.caught_up and not self.follow:
                return

    async def _write_and_ack(self, stream: str, msgs: Sequence[Any]) -> None:
        progress = self.progress[stream]
        async with self._write_lock:
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if self.out.seen(stream, seq):
                    progress.skipped += 1  # written before a crash, never acked
                    continue
                self.out.append(stream, seq, encode_line(record_of(msg)))
                progress.written += 1
            self.out.commit()  # on disk before any of these is acked
        faults.hit(EXPORT_AFTER_WRITE)
        for msg in msgs:
            await msg.ack()
        await self.conn.nc.flush()  # acks are fire-and-forget until flushed


# --------------------------------------------------------------------------------------------
# tail
# --------------------------------------------------------------------------------------------


async def tail_events(
    conn: Connection,
    *,
    subject: str,
    consumer: str,
    since: int | datetime | None,
    emit: Callable[[dict[str, Any]], None],
    max_events: int | None = None,
) -> int:
    """Print events matching `subject` as they arrive (from `since`, else only new ones).

    One short-lived consumer per matching stream, recreated on each start (unacknowledged:
    a tail only watches) and removed on exit; the server also drops it after 5 idle minutes.
    """
    from nats.errors import Error as NatsError
    from nats.errors import TimeoutError as NatsTimeoutError
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
    from nats.js.errors import NotFoundError

    js = conn.js
    targets = streams_for_subject(subject)
    if isinstance(since, int) and len(targets) > 1:
        raise EventsError("--since SEQ: a sequence belongs to one stream; narrow --subject")
    subs: dict[str, Any] = {}
    try:
        for stream, filter_subject in targets:
            try:
                await js.stream_info(stream)
            except NotFoundError:
                continue  # no service has created it yet
            except Exception as exc:
                raise conn.explain(exc, f"reading stream {stream}") from None
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(stream, consumer)
            config = ConsumerConfig(
                durable_name=consumer,
                ack_policy=AckPolicy.NONE,
                deliver_policy=DeliverPolicy.NEW,
                inactive_threshold=300.0,
                filter_subject=filter_subject,
            )
            if isinstance(since, int):
                config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
                config.opt_start_seq = since
            elif isinstance(since, datetime):
                config.deliver_policy = DeliverPolicy.BY_START_TIME
                config.opt_start_time = since.astimezone(UTC)
            try:
                await js.add_consumer(stream, config)
                subs[stream] = await js.pull_subscribe_bind(durable=consumer, stream=stream)
            except Exception as exc:
                raise conn.explain(exc, f"creating {consumer} on {stream}") from None
        if not subs:
            raise EventsError(f"no stream for {subject!r} exists yet: is the platform running?")
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1024)

        async def pull(psub: Any) -> None:
            failures = 0
            while True:
                try:
                    msgs = await psub.fetch(64, timeout=1.0)
                except (NatsTimeoutError, TimeoutError):
                    continue
                except (NatsError, OSError):
                    failures += 1  # the server restarting: try again for a while
                    if failures > MAX_CONSECUTIVE_FAILURES:
                        raise
                    await asyncio.sleep(1.0)
                    continue
                failures = 0
                for msg in msgs:
                    await queue.put(msg)

        tasks = [asyncio.create_task(pull(psub)) for psub in subs.values()]
        shown = 0
        try:
            while max_events is None or shown < max_events:
                done = [t for t in tasks if t.done()]
                for task in done:
                    task.result()  # a pull loop that failed: raise its error here
                try:
                    msg = await asyncio.wait_for(queue.get(), timeout=1.0)
                except TimeoutError:
                    continue
                emit(record_of(msg))
                shown += 1
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return shown
    finally:
        for stream in subs:
            with contextlib.suppress(Exception):
                await js.delete_consumer(stream, consumer)


# --------------------------------------------------------------------------------------------
# The commands
# --------------------------------------------------------------------------------------------

UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--nats-url",
        envvar="SA_EVENTS_NATS_URL",
        help="NATS server [default: the running `sa run`, else nats://127.0.0.1:4250].",
        show_default=False,
    ),
]
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user",
        envvar="SA_EVENTS_NATS_USER",
        help="Ministry NATS user [default: `ministry` of the running `sa run`].",
        show_default=False,
    ),
]
PasswordOpt = Annotated[
    str | None,
    typer.Option(
        "--password",
        envvar="SA_EVENTS_NATS_PASSWORD",
        help="Its password (better from $SA_EVENTS_NATS_PASSWORD).",
        show_default=False,
    ),
]
VarDirOpt = Annotated[Path, typer.Option("--var-dir", help="Where `sa run` keeps stack.json.")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"sa events: error: {message}", err=True)
    return typer.Exit(1)


@app.callback()
def _events() -> None:
    """The platform's events, read as a ministry: tail them, export them."""


@app.command()
def tail(
    subject: Annotated[
        str, typer.Option("--subject", "-s", help="Subject pattern, e.g. 'sa.credit.>'.")
    ] = "sa.>",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    since: Annotated[
        str | None,
        typer.Option(help="Start at an RFC 3339 time or a stream sequence [default: new only]."),
    ] = None,
    consumer: Annotated[
        str, typer.Option("--consumer", help="Consumer name (your user may use it).")
    ] = DEFAULT_TAIL_CONSUMER,
    max_events: Annotated[
        int | None, typer.Option("--max", min=1, help="Stop after this many events.")
    ] = None,
    nats_url: UrlOpt = None,
    user: UserOpt = None,
    password: PasswordOpt = None,
    var_dir: VarDirOpt = Path("var"),
) -> None:
    """Show events as they happen (pretty, or JSON lines with --json), until Ctrl-C."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)

    def emit(record: dict[str, Any]) -> None:
        if as_json:
            typer.echo(encode_line(record).decode(), nl=False)
            return
        data = json.dumps(record.get("data"), ensure_ascii=False, separators=(",", ":"))
        console.print(
            f"[dim]{escape(record['published'])}[/] "
            f"[cyan]{record['stream']}#{record['seq']}[/] "
            f"[bold]{escape(record['subject'])}[/] {escape(data)}"
        )

    async def main() -> None:
        conn = await resolve_connection(nats_url, user, password, var_dir).open()
        try:
            await tail_events(
                conn,
                subject=subject,
                consumer=consumer,
                since=parse_since(since),
                emit=emit,
                max_events=max_events,
            )
        finally:
            await conn.close()

    try:
        asyncio.run(main())
    except EventsError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="JSON-lines file (appended to).")],
    since: Annotated[
        str | None,
        typer.Option(
            help="First event: RFC 3339 time or stream sequence; used when the durable is "
            "first created [default: the beginning].",
            show_default=False,
        ),
    ] = None,
    durable: Annotated[
        str, typer.Option("--durable", help="Durable consumer name (one per export file).")
    ] = DEFAULT_EXPORT_DURABLE,
    stream: Annotated[
        list[str] | None,
        typer.Option(
            "--stream",
            help="Stream to export (repeat), or 'all' [default: all: NEEDS, PROVIDERS, "
            "MATCHING, CREDIT].",
            show_default=False,
        ),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep going after catching up.")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, max=900, help="Fetch size.")] = 256,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")
    ] = True,
    nats_url: UrlOpt = None,
    user: UserOpt = None,
    password: PasswordOpt = None,
    var_dir: VarDirOpt = Path("var"),
) -> None:
    """Copy events into a JSON-lines file; run it again to resume (no gaps, no duplicates)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from libs.common.nats_auth import EVENT_STREAMS

    err = Console(stderr=True, highlight=False)
    try:
        chosen = _chosen_streams(stream, EVENT_STREAMS)
        start = parse_since(since)
        if isinstance(start, int) and len(chosen) > 1:
            raise EventsError("--since SEQ: a sequence belongs to one stream; give --stream")
    except EventsError as exc:
        raise _fail(str(exc)) from None

    bar = Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
        console=err,
        disable=not progress,
        transient=False,
    )
    tasks: dict[str, Any] = {}

    def on_progress(p: StreamProgress) -> None:
        done = p.written + p.skipped
        if p.stream not in tasks:
            tasks[p.stream] = bar.add_task(p.stream, total=done + p.pending, note="")
        note = "caught up" if p.caught_up else ""
        if p.skipped:
            note = f"{note} ({p.skipped} already in file)".strip()
        bar.update(tasks[p.stream], completed=done, total=done + p.pending, note=note)

    async def main() -> dict[str, StreamProgress]:
        conn = await resolve_connection(nats_url, user, password, var_dir).open()
        try:
            with ExportFile(out) as file:
                if file.truncated_bytes:
                    err.print(
                        f"{out}: cut off {file.truncated_bytes} bytes of an unfinished write "
                        "(never acknowledged; those events come again)"
                    )
                exporter = Exporter(
                    conn,
                    file,
                    streams=chosen,
                    durable=durable,
                    since=start,
                    follow=follow,
                    batch=batch,
                    on_progress=on_progress,
                    warn=lambda m: err.print(f"[yellow]warning:[/] {m}"),
                )
                with bar:
                    return await exporter.run()
        finally:
            await conn.close()

    try:
        result = asyncio.run(main())
    except EventsError as exc:
        raise _fail(str(exc)) from None
    except KeyboardInterrupt:
        # Whatever was acked is on disk; run again to continue.
        raise typer.Exit(130) from None
    written = sum(p.written for p in result.values())
    skipped = sum(p.skipped for p in result.values())
    err.print(f"{out}: {written} events written, {skipped} already there; caught up")


def _chosen_streams(values: list[str] | None, default: Sequence[str]) -> list[str]:
    from libs.common.nats_auth import MINISTRY_STREAMS

    if not values or any(v.lower() == "all" for v in values):
        return list(default)
    chosen: list[str] = []
    for value in values:
        name = value.upper()
        if name not in MINISTRY_STREAMS:
            raise EventsError(f"--stream: {value!r} is not one of {', '.join(MINISTRY_STREAMS)}")
        if name not in chosen:
            chosen.append(name)
    return chosen


@app.command("nats-config")
def nats_config() -> None:
    """Print the production nats-server users and permissions (deploy/nats/auth.conf)."""
    from libs.common.nats_auth import production_authorization

    typer.echo(production_authorization(), nl=False)


def main() -> None:
    app(prog_name="sa events")


if __name__ == "__main__":
    main()
