"""HTTP throughput of `POST /needs` against a bare FastAPI GET, measured in the same run.

Every server runs in its own process and is driven by `bench.loadgen`, a closed-loop
generator in yet another process (on 2 cores: server on one, generator on the other):

1. the generator's own ceiling, against a trivial HTTP server (`bench.bare_app --raw`);
2. the baseline: a bare FastAPI app with one `GET /ping` under uvicorn (uvloop + httptools,
   one worker, `python -m bench.bare_app`), at CONNECTIONS connections; then, for reference
   only, the same app on uvicorn's pure-Python stack (asyncio + h11), where PITFALLS.md's
   "about 3,000 req/s" (the figure the issue's target was written against) comes from; and,
   also for reference, the bare app's `POST /echo`: `POST /needs`'s body validated and a
   response model written, nothing else (the framework's floor for such a request);
3. per database backend (SQLite always, PostgreSQL when DATABASE_URL is set), the needs
   service as `sa run` starts it (`python -m services.needs`, env from
   `libs.common.stack.service_env`) on a fresh database and the bench's private
   nats-server: RECIPIENTS recipients are registered through `POST /recipients` (operator
   token minted with the development secret), then `POST /needs` is driven at CONNECTIONS
   connections, each request naming the next registered recipient in turn.

Targets (issue "make bench"): `POST /needs` (validation, encryption, write, outbox) at
≥ 50 % of the bare GET rate, with p99 < 50 ms at 64 connections. Afterwards the relay must
catch up: the NEEDS stream holds exactly one `sa.needs.need.opened` per 201 response
(warm-up included) — a run where it does not, or where any request failed, is a FAIL.

In the table "py CPU" is the server process's CPU over the measured window (100 % = one
core) and "nats CPU" the nats-server's; the generator's is in the JSON (`loadgen_cpu_pct`).

Environment: BENCH_NEEDS_HTTP_DURATION (s, default 10), BENCH_NEEDS_HTTP_WARMUP (2),
BENCH_NEEDS_HTTP_CONNECTIONS (64), BENCH_NEEDS_HTTP_RECIPIENTS (1000); `--n` does not apply
(the runs are bounded by time). With
BENCH_NEEDS_HTTP_PROFILE=1 the needs service runs under cProfile (main thread only, so
time spent in aiosqlite's thread shows as the event loop waiting) and the top functions are
printed; the stats file is kept under var/bench/.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import io
import json
import os
import pstats
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from nats.js.errors import NotFoundError
from stdnum.cn import ric

from bench.common import OUTPUT_DIR, ROOT, BenchContext, Figure, console, env_int, proc_status_kb
from libs.common.auth import Role, mint_token
from libs.common.events import EventBus
from libs.common.natsserver import free_port
from libs.common.settings import DEV_JWT_SECRET
from libs.common.stack import HOST, service_env, tail

NAME = "needs_http"
DESCRIPTION = "POST /needs over HTTP (needs service process) vs a bare FastAPI GET"

TARGET_RATIO = 0.5  # POST /needs rate vs bare GET
TARGET_P99_MS = 50.0
CATCH_UP_TIMEOUT = 60.0  # seconds for the relay to publish every committed need
READY_TIMEOUT = 60.0
NEED_SUBJECT = "sa.needs.need.opened"
NEEDS_STREAM = "NEEDS"
REGION = "220102001001"  # a village in Changchun's Nanguan district (the Jilin pack)
NEED_BODY = '{"recipient_ref": "{{n}}", "service_code": "care", "urgency": 2}'
PROFILE_ENV = "BENCH_NEEDS_HTTP_PROFILE"


@dataclass(frozen=True)
class Settings:
    """The run's knobs, from the environment."""

    duration: float
    warmup: float
    connections: int
    recipients: int

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            duration=float(env_int("BENCH_NEEDS_HTTP_DURATION", 10)),
            warmup=float(env_int("BENCH_NEEDS_HTTP_WARMUP", 2)),
            connections=env_int("BENCH_NEEDS_HTTP_CONNECTIONS", 64),
            recipients=env_int("BENCH_NEEDS_HTTP_RECIPIENTS", 1000),
        )


# --------------------------------------------------------------------------- processes


@dataclass
class Server:
    """A server process of this benchmark, its log, and how to reach it."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    peak_rss: float = 0.0  # MB, read just before `stop()`

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @classmethod
    def start(
        cls, name: str, argv: Sequence[str], *, port: int, log_path: Path, env: dict[str, str]
    ) -> Server:
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, *argv],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return cls(name=name, port=port, proc=proc, log_path=log_path)

    async def wait_ready(self, path: str, within: float = READY_TIMEOUT) -> None:
        """Poll `path` until it answers 200; RuntimeError (with the log tail) otherwise."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with code {self.proc.returncode}:\n"
                        + tail(self.log_path)
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.url + path)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{self.name} not ready within {within:.0f} s:\n" + tail(self.log_path)
                    )
                await asyncio.sleep(0.1)

    def peak_rss_mb(self) -> float:
        """The server process's peak resident set size so far (0.0 once it has exited)."""
        return proc_status_kb("VmHWM", self.proc.pid) / 1024

    async def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` s."""
        self.peak_rss = self.peak_rss_mb()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.proc.wait, grace)
            if self.proc.poll() is None:
                console.print(f"[yellow]{self.name} ignored SIGTERM for {grace:.0f} s: killed[/]")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                await asyncio.to_thread(self.proc.wait, 5)


async def loadgen(
    url: str,
    *,
    settings: Settings,
    method: str = "GET",
    duration: float | None = None,
    warmup: float | None = None,
    body_file: Path | None = None,
    values_file: Path | None = None,
    headers: Sequence[str] = (),
    expect: Sequence[int] = (),
    pids: Sequence[int] = (),
) -> dict[str, Any]:
    """Run `python -m bench.loadgen` and return its JSON report."""
    duration = settings.duration if duration is None else duration
    warmup = settings.warmup if warmup is None else warmup
    argv = [
        "-m",
        "bench.loadgen",
        url,
        "--method",
        method,
        "--connections",
        str(settings.connections),
        "--duration",
        str(duration),
        "--warmup",
        str(warmup),
    ]
    if body_file is not None:
        argv += ["--body-file", str(body_file)]
    if values_file is not None:
        argv += ["--values-file", str(values_file)]
    for header in headers:
        argv += ["--header", header]
    for status in expect:
        argv += ["--expect", str(status)]
    for pid in pids:
        argv += ["--server-pid", str(pid)]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=warmup + duration + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen failed ({proc.returncode}): {err.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def http_figure(
    result: dict[str, Any],
    *,
    name: str,
    backend: str,
    server: Server,
    nats_pid: int | None = None,
    note: str = "",
) -> Figure:
    """A figure from a loadgen report: ok responses over the window, latencies in `extra`.

    `cpu_seconds` is the server process's CPU, `server_cpu_seconds` the nats-server's, the
    peak RSS the server's.
    """
    seconds = float(result["seconds"])
    cpu = result.get("server_cpu_seconds") or {}
    lat = result["latency_ms"]
    return Figure(
        bench=NAME,
        name=name,
        backend=backend,
        count=int(result["ok"]),
        seconds=seconds,
        unit="req",
        peak_rss_mb=server.peak_rss,
        cpu_seconds=cpu.get(str(server.proc.pid)) or 0.0,
        server_cpu_seconds=cpu.get(str(nats_pid)) if nats_pid is not None else None,
        note=note or f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms",
        extra={
            "connections": result["connections"],
            "p50_ms": lat["p50"],
            "p90_ms": lat["p90"],
            "p99_ms": lat["p99"],
            "max_ms": lat["max"],
            "mean_ms": lat["mean"],
            "errors": result["errors"],
            "status": result["status"],
            "status_total": result["status_total"],
            "loadgen_cpu_pct": round(result["loadgen_cpu_seconds"] / seconds * 100, 1)
            if seconds
            else None,
        },
    )


# --------------------------------------------------------------------------- steps


async def generator_ceiling(ctx: BenchContext, settings: Settings) -> Figure:
    """The generator against a server that does nothing: the most it can measure."""
    port = free_port(HOST)
    server = Server.start(
        "trivial server",
        ["-m", "bench.bare_app", str(port), "--raw"],
        port=port,
        log_path=ctx.tmp / "trivial.log",
        env=dict(os.environ),
    )
    try:
        await server.wait_ready("/ping")
        result = await loadgen(
            server.url + "/ping", settings=settings, duration=3, warmup=1, pids=[server.proc.pid]
        )
    finally:
        await server.stop()
    fig = http_figure(
        result,
        name="loadgen ceiling (trivial server)",
        backend="http",
        server=server,
    )
    fig.note = f"generator CPU {fig.extra['loadgen_cpu_pct']:.0f} %"
    return fig


async def bare_get(ctx: BenchContext, settings: Settings, *, plain: bool = False) -> Figure:
    """The baseline: FastAPI `GET /ping` under uvicorn, as a service is served; with
    `plain`, on asyncio + h11 (for reference only: the target is against the served stack)."""
    port = free_port(HOST)
    server = Server.start(
        "bare FastAPI",
        ["-m", "bench.bare_app", str(port), *(["--plain"] if plain else [])],
        port=port,
        log_path=ctx.tmp / ("bare-plain.log" if plain else "bare.log"),
        env=dict(os.environ),
    )
    try:
        await server.wait_ready("/ping")
        result = await loadgen(server.url + "/ping", settings=settings, pids=[server.proc.pid])
    finally:
        await server.stop()
    name = "bare FastAPI GET /ping" + (", asyncio + h11 (reference)" if plain else "")
    fig = http_figure(result, name=name, backend="http", server=server)
    if result["errors"]:
        fig.ok = False
        ctx.fail(f"bare GET: {result['errors']} errors ({result['status']})")
    return fig


async def bare_post(ctx: BenchContext, settings: Settings) -> Figure:
    """For reference: `POST /echo` on the bare app, `POST /needs`'s body validated and a
    response model written, nothing else: how close to the bare GET any FastAPI POST of
    this shape can come on this machine."""
    port = free_port(HOST)
    server = Server.start(
        "bare FastAPI",
        ["-m", "bench.bare_app", str(port)],
        port=port,
        log_path=ctx.tmp / "bare-post.log",
        env=dict(os.environ),
    )
    body = ctx.tmp / "echo-body.json"
    body.write_text(NEED_BODY)
    values = ctx.tmp / "echo-values.txt"
    values.write_text("\n".join(f"r-{i:06d}" for i in range(settings.recipients)) + "\n")
    try:
        await server.wait_ready("/ping")
        result = await loadgen(
            server.url + "/echo",
            settings=settings,
            method="POST",
            body_file=body,
            values_file=values,
            expect=[201],
            pids=[server.proc.pid],
        )
    finally:
        await server.stop()
    fig = http_figure(
        result, name="bare FastAPI POST /echo (reference)", backend="http", server=server
    )
    if result["errors"]:
        fig.ok = False
        ctx.fail(f"bare POST: {result['errors']} errors ({result['status']})")
    return fig


def resident_id(i: int) -> str:
    """A valid, unique (per i) resident ID of an adult from Changchun."""
    born = datetime.date(1940, 1, 1) + datetime.timedelta(days=i)
    body = f"220102{born:%Y%m%d}{i % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


async def register_recipients(url: str, token: str, n: int, *, concurrency: int = 16) -> list[str]:
    """Register n recipients through `POST /recipients`; their refs."""
    refs: list[str] = []
    queue = iter(range(n))
    headers = {"Authorization": f"Bearer {token}"}

    async def worker(client: httpx.AsyncClient) -> None:
        for i in queue:
            body = {
                "id_number": resident_id(i),
                "name": "张三",
                "region_code": REGION,
                "categories": ["tekun"],
            }
            r = await client.post(url + "/recipients", json=body, headers=headers)
            if r.status_code != 201:
                raise RuntimeError(f"POST /recipients: {r.status_code} {r.text[:500]}")
            refs.append(r.json()["ref"])

    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return refs


async def needs_in_stream(bus: EventBus) -> int:
    """How many `sa.needs.need.opened` messages the NEEDS stream holds."""
    try:
        info = await bus.js.stream_info(NEEDS_STREAM, subjects_filter=NEED_SUBJECT)
    except NotFoundError:
        return 0
    return int((info.state.subjects or {}).get(NEED_SUBJECT, 0))


async def wait_catch_up(bus: EventBus, want: int, within: float) -> tuple[int, float]:
    """Poll the stream until it holds `want` need.opened messages: (count, seconds waited)."""
    started = time.perf_counter()
    count = await needs_in_stream(bus)
    while count < want and time.perf_counter() - started < within:
        await asyncio.sleep(0.05)
        count = await needs_in_stream(bus)
    return count, time.perf_counter() - started


def needs_argv(profile_path: Path | None) -> list[str]:
    """How the needs service is started: as `sa run` does, or under cProfile."""
    if profile_path is None:
        return ["-m", "services.needs"]
    return ["-m", "bench.bench_needs_http", "profile-service", str(profile_path)]


async def post_needs(
    ctx: BenchContext,
    settings: Settings,
    bus: EventBus,
    backend: str,
    bare: Figure,
    plain: Figure | None = None,
) -> list[Figure]:
    """The needs service on a fresh database: register recipients, drive POST /needs."""
    with contextlib.suppress(NotFoundError):
        await bus.js.delete_stream(NEEDS_STREAM)  # the events bench fills it with its own
    profile_path = OUTPUT_DIR / f"{NAME}-{backend}.prof" if os.environ.get(PROFILE_ENV) else None
    if profile_path is not None:
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    async with ctx.fresh_database(backend, "needs-http") as db_url:
        port = free_port(HOST)
        env = service_env(
            "needs",
            port=port,
            nats_url=ctx.nats().url,
            var_dir=ctx.tmp,
            base={**os.environ, "SA_NEEDS_DATABASE_URL": db_url},
        )
        server = Server.start(
            "needs service",
            needs_argv(profile_path),
            port=port,
            log_path=ctx.tmp / f"needs-{backend}.log",
            env=env,
        )
        try:
            await server.wait_ready("/ready")
            token = mint_token(secret=DEV_JWT_SECRET, subject="bench-operator", role=Role.operator)
            started = time.perf_counter()
            refs = await register_recipients(server.url, token, settings.recipients)
            registered_s = time.perf_counter() - started
            values = ctx.tmp / f"refs-{backend}.txt"
            values.write_text("\n".join(refs) + "\n")
            body = ctx.tmp / "need-body.json"
            body.write_text(NEED_BODY)
            before = await needs_in_stream(bus)
            result = await loadgen(
                server.url + "/needs",
                settings=settings,
                method="POST",
                body_file=body,
                values_file=values,
                headers=[f"Authorization: Bearer {token}"],
                expect=[201],
                pids=[p for p in (server.proc.pid, ctx.nats_pid) if p is not None],
            )
            created = int(result["status_total"].get("201", 0))
            in_stream, waited = await wait_catch_up(bus, before + created, CATCH_UP_TIMEOUT)
            in_stream -= before
            # The database's own count, through the API (GET /needs reports the total).
            async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
                r = await client.get(
                    server.url + "/needs",
                    params={"limit": 1},
                    headers={"Authorization": f"Bearer {token}"},
                )
            db_total = int(r.json()["total"]) if r.status_code == 200 else -1
        finally:
            await server.stop()
        if server.proc.returncode not in (0, -signal.SIGTERM, 128 + signal.SIGTERM):
            console.print(f"[yellow]needs service exited with {server.proc.returncode}[/]")
    fig = http_figure(
        result,
        name="POST /needs",
        backend=backend,
        server=server,
        nats_pid=ctx.nats_pid,
    )
    fig.compare_to(bare, target=TARGET_RATIO)
    p99 = float(result["latency_ms"]["p99"])
    fig.extra.update(
        target_p99_ms=TARGET_P99_MS,
        p99_ok=p99 < TARGET_P99_MS,
        ratio_ok=fig.ratio is not None and fig.ratio >= TARGET_RATIO,
        recipients=len(refs),
        recipients_per_s=round(len(refs) / registered_s, 1),
        created_total=created,
        db_needs=db_total,
    )
    catch_up = Figure(
        bench=NAME,
        name="  outbox → NATS catch-up",
        backend=backend,
        count=in_stream,
        seconds=waited,
        unit="ev",
        note=f"{in_stream:,} in NEEDS = {created:,} × 201",
        extra={"created": created, "in_stream": in_stream, "db_needs": db_total},
    )
    failed_total = result["errors_total"] + sum(
        n for code, n in result["status_total"].items() if code != "201"
    )
    if result["errors"] or failed_total:
        fig.ok = False
        ctx.fail(
            f"POST /needs ({backend}): {result['errors']} errors of {result['requests']:,} "
            f"in the window, {failed_total} in all (status {result['status_total']}, "
            f"transport {result['error_kinds']})"
        )
    if in_stream != created or db_total != created:
        catch_up.ok = False
        ctx.fail(
            f"POST /needs ({backend}): {created:,} × 201 but {in_stream:,} need.opened in the "
            f"NEEDS stream after {waited:.1f} s and {db_total:,} needs in the database"
        )
    if plain is not None and plain.rate:
        fig.extra["vs_plain_bare_get"] = round(fig.rate / plain.rate, 3)
    if not (fig.extra["p99_ok"] and fig.extra["ratio_ok"]):
        ratio = f"{fig.ratio * 100:.0f} %" if fig.ratio is not None else "?"
        reference = (
            f"; {fig.extra['vs_plain_bare_get'] * 100:.0f} % of the asyncio + h11 bare GET, "
            "for reference"
            if "vs_plain_bare_get" in fig.extra
            else ""
        )
        console.print(
            f"[yellow]POST /needs ({backend}): {fig.rate:,.0f} req/s = {ratio} of the bare GET "
            f"(target ≥ {TARGET_RATIO * 100:.0f} %), p99 {p99:.1f} ms "
            f"(target < {TARGET_P99_MS:.0f} ms){reference}[/]"
        )
    if profile_path is not None:
        print_profile(profile_path)
    return [fig, catch_up]


def print_profile(path: Path, top: int = 35) -> None:
    """The service's cProfile, by own time and by cumulative time."""
    if not path.exists():
        console.print(f"[yellow]no profile written to {path}[/]")
        return
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(str(path), stream=out).strip_dirs().sort_stats(key).print_stats(top)
        console.print(out.getvalue(), markup=False, highlight=False)
    console.print(f"[dim]profile written to {path} (python -m pstats {path})[/]")


# --------------------------------------------------------------------------- entry points


async def run(ctx: BenchContext) -> list[Figure]:
    """Generator ceiling, bare GET, then POST /needs on each database backend."""
    settings = Settings.from_env()
    console.print(
        f"[dim]needs_http: {settings.connections} connections, {settings.warmup:.0f} s warm-up "
        f"+ {settings.duration:.0f} s, {settings.recipients:,} recipients; "
        f"nats-server {ctx.nats().url}[/]"
    )
    ceiling = await generator_ceiling(ctx, settings)
    bare = await bare_get(ctx, settings)
    bare.compare_to(ceiling)
    # For reference only: the "about 3,000 req/s" bare GET ran on this stack.
    plain = await bare_get(ctx, settings, plain=True)
    plain.compare_to(ceiling)
    # Also for reference: a POST of POST /needs's shape with nothing behind it.
    echo = await bare_post(ctx, settings)
    echo.compare_to(bare)
    figures = [ceiling, bare, plain, echo]
    bus = EventBus(ctx.nats().url, name="bench-needs-http")
    await bus.connect()
    try:
        for backend in ctx.database_backends():
            figures += await post_needs(ctx, settings, bus, backend, bare, plain)
    finally:
        await bus.close()
    return figures


def profile_service(out: str) -> None:
    """Run `services.needs` as `__main__` under cProfile; write the stats on exit."""
    import cProfile
    import runpy

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    # uvicorn restores this handler after its graceful shutdown and re-raises the signal it
    # caught: without it the process would die from SIGTERM before writing the stats.
    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        runpy.run_module("services.needs", run_name="__main__", alter_sys=True)
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "profile-service":
        profile_service(sys.argv[2])
    else:
        raise SystemExit("usage: python -m bench.bench_needs_http profile-service OUT.prof")


__all__ = ["DESCRIPTION", "NAME", "run"]
