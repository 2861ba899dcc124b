"""A small closed-loop HTTP/1.1 load generator, run in its own process.

    python -m bench.loadgen URL [--method POST] [--body-file F] [--values-file V]
        [--header "Name: value" ...] [--connections 64] [--duration 10] [--warmup 2]
        [--max-requests N] [--timeout 30] [--expect 201] [--server-pid PID ...] [--client raw|httpx]

`--connections` workers each own one keep-alive connection and send their next request as
soon as the previous response is complete (closed loop: at most N requests in flight).
Requests completed during `--warmup` seconds are not counted; the figures cover the
`--duration` seconds after it. The run stops at the end of that window, after
`--max-requests` requests (warm-up included) or at a hard deadline, whichever comes first.

The body may hold `{{n}}` placeholders. With `--values-file` (one value per line) each
request fills them with the next value in turn (request k gets line k mod lines), e.g. the
refs of pre-registered recipients; without it `{{n}}` is the request's sequence number.

Prints one JSON object: requests and errors in the window, status counts (window and
total, warm-up included), rps, p50/p90/p99/max latency in ms, the generator's own CPU and,
with `--server-pid`, the server's CPU over the window (from /proc).

Why a separate process: on a 2-core machine a generator inside the benchmark's process
would take CPU from whatever else runs there and measure its own event loop. The default
client writes requests and parses responses (httptools) straight on asyncio transports,
which is several times cheaper per request than httpx (`--client httpx`, kept to compare).
Loopback only: it refuses any other host.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import math
import os
import resource
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

PLACEHOLDER = "{{n}}"
LOOPBACK_NAMES = {"localhost"}
HARD_DEADLINE_EXTRA = 30.0  # seconds past warm-up + duration before in-flight requests die


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Target:
    """Where requests go: a loopback host, a port and the path (with query)."""

    host: str
    port: int
    path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"only http:// URLs are supported, got {url!r}")
        host = parts.hostname or ""
        if not _is_loopback(host):
            raise ValueError(f"refusing non-loopback host {host!r}: this tool is for local runs")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        return cls(host=host, port=parts.port or 80, path=path)


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RequestFactory:
    """Builds the bytes of request k; the fixed head and the body template are split once."""

    def __init__(
        self,
        target: Target,
        *,
        method: str = "GET",
        headers: Sequence[tuple[str, str]] = (),
        body: str | None = None,
        values: Sequence[str] = (),
    ) -> None:
        self.target = target
        self.method = method.upper()
        self.headers = list(headers)
        self.values = [v.encode() for v in values]
        names = {name.lower() for name, _ in self.headers}
        lines = [f"{self.method} {target.path} HTTP/1.1", f"Host: {target.host}:{target.port}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if body is not None and "content-type" not in names:
            lines.append("Content-Type: application/json")
        self._head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._pieces = body.encode().split(PLACEHOLDER.encode()) if body is not None else None
        self._fixed: bytes | None = None
        if self._pieces is None:
            self._fixed = self._head + b"\r\n"
        elif len(self._pieces) == 1:
            self._fixed = self._with_body(self._pieces[0])

    def _with_body(self, body: bytes) -> bytes:
        return self._head + b"Content-Length: %d\r\n\r\n" % len(body) + body

    @property
    def has_body(self) -> bool:
        return self._pieces is not None

    def body(self, k: int) -> bytes:
        """The body of request k (b"" without a body)."""
        if self._pieces is None:
            return b""
        fill = self.values[k % len(self.values)] if self.values else str(k).encode()
        return fill.join(self._pieces)

    def build(self, k: int) -> bytes:
        """The complete request k, head and body."""
        if self._fixed is not None:
            return self._fixed
        return self._with_body(self.body(k))


# --------------------------------------------------------------------------- the raw client


class ConnectionLost(Exception):
    """The server closed the connection (or it failed) before the response was complete."""


class RawConnection(asyncio.Protocol):
    """One keep-alive connection; `await request(data)` returns the response status."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[int] | None = None
        self.keep_alive = True

    @classmethod
    async def open(cls, target: Target) -> RawConnection:
        loop = asyncio.get_running_loop()
        _transport, conn = await loop.create_connection(cls, target.host, target.port)
        return conn

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses; they behave as one.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionLost(f"bad response: {exc}"))
            self.close()

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail(ConnectionLost(str(exc) if exc else "closed by the server"))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    @property
    def usable(self) -> bool:
        return self.transport is not None and self.keep_alive

    async def request(self, data: bytes, time_limit: float) -> int:
        """Send one request; its status, or TimeoutError / ConnectionLost."""
        if self.transport is None:
            raise ConnectionLost("not connected")
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        # A timer, not asyncio.wait_for: that would create a task per request.
        timer = loop.call_later(time_limit, self._time_out, waiter)
        self.transport.write(data)
        try:
            return await waiter
        finally:
            timer.cancel()

    def _time_out(self, waiter: asyncio.Future[int]) -> None:
        if not waiter.done():
            waiter.set_exception(TimeoutError("no response in time"))
            self.close()  # a late response must not be taken for the next request's

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


# --------------------------------------------------------------------------- the run


@dataclass
class Results:
    """What the workers record: latencies (s) and statuses in the window, totals overall."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    statuses_total: Counter[int] = field(default_factory=Counter)
    errors: int = 0  # transport errors and timeouts in the window
    errors_total: int = 0
    error_kinds: Counter[str] = field(default_factory=Counter)
    sent: int = 0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted values; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def proc_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of a process from /proc (None if unreadable)."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Window:
    """The measured window: opens after warm-up, closes after the duration (or the cap)."""

    start: float = math.inf
    end: float = math.inf
    stopping: bool = False
    cpu0: float = 0.0
    server_cpu0: dict[int, float | None] = field(default_factory=dict)
    cpu: float = 0.0
    server_cpu: dict[int, float] = field(default_factory=dict)


async def run_load(
    factory: RequestFactory,
    *,
    connections: int = 64,
    duration: float = 10.0,
    warmup: float = 2.0,
    max_requests: int = 1_000_000,
    request_timeout: float = 30.0,
    expect: Callable[[int], bool] = lambda s: 200 <= s < 300,
    server_pids: Sequence[int] = (),
    client: str = "raw",
) -> dict[str, Any]:
    """Drive the target with `connections` closed-loop workers; return the report."""
    if connections <= 0 or duration <= 0 or warmup < 0 or max_requests <= 0:
        raise ValueError("connections, duration and max_requests must be positive")
    results = Results()
    window = Window()
    loop = asyncio.get_running_loop()
    counter = iter(range(max_requests))
    deadline = time.perf_counter() + warmup + duration + HARD_DEADLINE_EXTRA

    def record(status: int | None, started: float, kind: str = "") -> None:
        now = time.perf_counter()
        in_window = window.start <= now <= window.end
        if status is None:
            results.errors_total += 1
            if in_window:
                results.errors += 1
                results.error_kinds[kind] += 1
            return
        results.statuses_total[status] += 1
        if in_window:
            results.statuses[status] += 1
            results.latencies.append(now - started)

    async def raw_worker() -> None:
        conn: RawConnection | None = None
        try:
            while not window.stopping:
                k = next(counter, None)
                if k is None:
                    break
                data = factory.build(k)
                started = time.perf_counter()
                try:
                    if conn is None or not conn.usable:
                        if conn is not None:
                            conn.close()
                        conn = await asyncio.wait_for(
                            RawConnection.open(factory.target), request_timeout
                        )
                        started = time.perf_counter()
                    results.sent += 1
                    status = await conn.request(data, request_timeout)
                except (OSError, ConnectionLost, TimeoutError) as exc:
                    record(None, started, type(exc).__name__)
                    if conn is not None:
                        conn.close()
                        conn = None
                    if time.perf_counter() > deadline:
                        break
                    await asyncio.sleep(0.01)  # a refusing server is not hammered
                    continue
                record(status, started)
        finally:
            if conn is not None:
                conn.close()

    async def httpx_worker(http: Any) -> None:
        import httpx

        url = f"http://{factory.target.host}:{factory.target.port}{factory.target.path}"
        headers = dict(factory.headers)
        while not window.stopping:
            k = next(counter, None)
            if k is None:
                break
            body = factory.body(k) if factory.has_body else None
            started = time.perf_counter()
            try:
                results.sent += 1
                response = await http.request(factory.method, url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                record(None, started, type(exc).__name__)
                continue
            record(response.status_code, started)

    async def clock() -> None:
        await asyncio.sleep(warmup)
        window.cpu0 = self_cpu_seconds()
        window.server_cpu0 = {pid: proc_cpu_seconds(pid) for pid in server_pids}
        window.start = time.perf_counter()
        window.end = window.start + duration
        await asyncio.sleep(duration)
        close_window()

    def close_window() -> None:
        if window.stopping:
            return
        window.stopping = True
        window.end = min(window.end, time.perf_counter())
        window.cpu = self_cpu_seconds() - window.cpu0
        for pid, before in window.server_cpu0.items():
            after = proc_cpu_seconds(pid)
            if before is not None and after is not None:
                window.server_cpu[pid] = after - before

    clock_task = loop.create_task(clock())
    http: Any = None
    if client == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        http = httpx.AsyncClient(limits=limits, timeout=request_timeout, trust_env=False)
        workers = [loop.create_task(httpx_worker(http)) for _ in range(connections)]
    elif client == "raw":
        workers = [loop.create_task(raw_worker()) for _ in range(connections)]
    else:
        raise ValueError(f"unknown client {client!r}")
    try:
        # The workers end on their own when the window closes or the count runs out.
        done, _pending = await asyncio.wait(
            workers, timeout=warmup + duration + HARD_DEADLINE_EXTRA
        )
        for task in done:
            error = task.exception()
            if error is not None:
                raise error
    finally:
        close_window()  # the count ran out first (or a worker crashed)
        clock_task.cancel()
        for task in workers:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*workers, clock_task, return_exceptions=True)
        if http is not None:
            await http.aclose()
    return report(results, window, connections=connections, expect=expect, client=client)


def report(
    results: Results,
    window: Window,
    *,
    connections: int,
    expect: Callable[[int], bool],
    client: str,
) -> dict[str, Any]:
    """The JSON report of one run."""
    seconds = window.end - window.start if math.isfinite(window.start) else 0.0
    lat = sorted(results.latencies)
    ok = sum(n for status, n in results.statuses.items() if expect(status))
    bad_status = sum(n for status, n in results.statuses.items() if not expect(status))
    requests = sum(results.statuses.values())

    def ms(value: float) -> float:
        return round(value * 1000, 2)

    return {
        "client": client,
        "connections": connections,
        "seconds": round(seconds, 3),
        "requests": requests,
        "ok": ok,
        "errors": results.errors + bad_status,
        "transport_errors": results.errors,
        "error_kinds": dict(results.error_kinds),
        "status": {str(k): v for k, v in sorted(results.statuses.items())},
        "status_total": {str(k): v for k, v in sorted(results.statuses_total.items())},
        "errors_total": results.errors_total,
        "sent_total": results.sent,
        "rps": round(requests / seconds, 1) if seconds > 0 else 0.0,
        "ok_rps": round(ok / seconds, 1) if seconds > 0 else 0.0,
        "latency_ms": {
            "mean": ms(sum(lat) / len(lat)) if lat else 0.0,
            "p50": ms(percentile(lat, 50)),
            "p90": ms(percentile(lat, 90)),
            "p99": ms(percentile(lat, 99)),
            "max": ms(lat[-1]) if lat else 0.0,
        },
        "loadgen_cpu_seconds": round(window.cpu, 3),
        "server_cpu_seconds": {str(pid): round(s, 3) for pid, s in window.server_cpu.items()},
    }


# --------------------------------------------------------------------------- command line


def parse_header(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"header must be 'Name: value', got {raw!r}")
    return name.strip(), value.strip()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadgen", description=__doc__.split("\n")[0]
    )
    parser.add_argument("url", help="http://127.0.0.1:PORT/path (loopback only)")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body-file", type=Path, help="request body; may contain {{n}}")
    parser.add_argument(
        "--values-file", type=Path, help="values for {{n}}, one per line, used in turn"
    )
    parser.add_argument(
        "--header", "-H", action="append", type=parse_header, default=[], help="'Name: value'"
    )
    parser.add_argument("--connections", "-c", type=int, default=64)
    parser.add_argument("--duration", "-d", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds not measured")
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument(
        "--expect", type=int, action="append", help="status(es) that count as ok (default 2xx)"
    )
    parser.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=[],
        help="report this process's CPU over the window (repeatable)",
    )
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        target = Target.parse(args.url)
    except ValueError as exc:
        print(f"loadgen: {exc}", file=sys.stderr)
        return 2
    body = args.body_file.read_text() if args.body_file else None
    values: list[str] = []
    if args.values_file:
        values = [v for v in args.values_file.read_text().splitlines() if v.strip()]
        if not values:
            print(f"loadgen: {args.values_file} holds no values", file=sys.stderr)
            return 2
    factory = RequestFactory(
        target, method=args.method, headers=args.header, body=body, values=values
    )
    wanted = set(args.expect or ())

    def expect(status: int) -> bool:
        return status in wanted if wanted else 200 <= status < 300

    coro = run_load(
        factory,
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        max_requests=args.max_requests,
        request_timeout=args.timeout,
        expect=expect,
        server_pids=args.server_pid,
        client=args.client,
    )
    if args.loop == "uvloop":
        import uvloop

        result = uvloop.run(coro)
    else:
        result = asyncio.run(coro)
    result["url"] = args.url
    result["method"] = factory.method
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
