"""What every benchmark shares: a private nats-server, fresh databases, timing, output.

A benchmark gets a `BenchContext` and returns `Figure`s; the runner prints them as a rich
table and writes them as JSON under `var/bench/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from libs.common.natsserver import NatsServer

ROOT = Path(__file__).resolve().parents[1]
OUTPUT_DIR = ROOT / "var" / "bench"

# Piped output (make bench | tee) would otherwise wrap the tables at 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 170)


def env_int(name: str, default: int) -> int:
    """An integer from the environment (`BENCH_EVENTS_N=20000`), or the default."""
    raw = os.environ.get(name, "").strip().replace("_", "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name}={raw!r} is not an integer") from exc
    if value <= 0:
        raise SystemExit(f"{name} must be positive, got {value}")
    return value


# --------------------------------------------------------------------------- figures


@dataclass
class Figure:
    """One measured figure: `count` units of work in `seconds` of wall-clock time."""

    bench: str
    name: str
    backend: str
    count: int
    seconds: float
    unit: str = "msg"
    # The figure (by name) this one is compared with, and the ratio of the rates.
    baseline: str | None = None
    ratio: float | None = None
    target: float | None = None
    cpu_seconds: float = 0.0
    server_cpu_seconds: float | None = None
    peak_rss_mb: float = 0.0
    ok: bool = True
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def compare_to(self, baseline: Figure, *, target: float | None = None) -> Figure:
        """Set the ratio of this figure's rate to `baseline`'s (and an optional target)."""
        self.baseline = f"{baseline.name} ({baseline.backend})"
        self.ratio = self.rate / baseline.rate if baseline.rate else None
        self.target = target
        return self

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["rate_per_second"] = round(self.rate, 1)
        data["seconds"] = round(self.seconds, 4)
        return data


# --------------------------------------------------------------------------- measuring


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / (1024 * 1024)


def proc_status_kb(field: str, pid: int | str = "self") -> int:
    """A memory field of /proc/<pid>/status (VmRSS, VmHWM, …) in KiB; 0 where there is none
    (the process has exited, or no /proc)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb() -> float:
    """The current resident set of this process (not the peak), in MB; 0 where unknown."""
    return proc_status_kb("VmRSS") / 1024


def process_cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (aiosqlite runs in one)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of another process (the nats-server), from /proc."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


class Measure:
    """`with Measure(server_pid) as m: ...` then `m.figure(...)`: wall, CPU, peak RSS."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.server_pid = server_pid
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.server_cpu_seconds: float | None = None
        self._t0 = 0.0
        self._cpu0 = 0.0
        self._srv0: float | None = None

    def __enter__(self) -> Measure:
        self._srv0 = child_cpu_seconds(self.server_pid)
        self._cpu0 = process_cpu_seconds()
        self._t0 = time.perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the clock (idempotent: the first call wins)."""
        if self.seconds:
            return
        self.seconds = time.perf_counter() - self._t0
        self.cpu_seconds = process_cpu_seconds() - self._cpu0
        srv1 = child_cpu_seconds(self.server_pid)
        if srv1 is not None and self._srv0 is not None:
            self.server_cpu_seconds = srv1 - self._srv0

    def figure(self, *, bench: str, name: str, backend: str, count: int, **kw: Any) -> Figure:
        return Figure(
            bench=bench,
            name=name,
            backend=backend,
            count=count,
            seconds=self.seconds,
            cpu_seconds=self.cpu_seconds,
            server_cpu_seconds=self.server_cpu_seconds,
            peak_rss_mb=peak_rss_mb(),
            **kw,
        )


# --------------------------------------------------------------------------- context


def event_loop_name() -> str:
    """Which event loop implementation runs the current task."""
    loop = asyncio.get_running_loop()
    module = type(loop).__module__.split(".")[0]
    return "uvloop" if module == "uvloop" else f"asyncio ({type(loop).__name__})"


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


class BenchContext:
    """Shared resources of one `python -m bench` run, released by `close()`."""

    def __init__(self, *, n_override: int | None = None, keep_files: bool = False) -> None:
        # On the project's disk (not a tmpfs), so fsyncs cost what they cost in `sa run`.
        self.tmp = Path(tempfile.mkdtemp(prefix="sa-bench-"))
        # `--n`: the message count every benchmark uses instead of its own default.
        self.n_override = n_override
        self.keep_files = keep_files
        self.failures: list[str] = []
        self._nats: NatsServer | None = None

    # nats-server -----------------------------------------------------------------------

    def nats(self) -> NatsServer:
        """A private nats-server (JetStream, file store, default fsync), started once."""
        if self._nats is None:
            store = self.tmp / "jetstream"
            self._nats = NatsServer(store_dir=store, log_file=self.tmp / "nats-server.log")
            self._nats.start()
        return self._nats

    @property
    def nats_pid(self) -> int | None:
        return self._nats.proc.pid if self._nats is not None and self._nats.proc else None

    def measure(self) -> Measure:
        return Measure(self.nats_pid)

    # databases -------------------------------------------------------------------------

    @staticmethod
    def postgres_admin_url() -> str | None:
        url = os.environ.get("DATABASE_URL", "")
        return url if url.startswith("postgresql") else None

    def database_backends(self) -> list[str]:
        """SQLite always; PostgreSQL too when DATABASE_URL points at a server."""
        return ["sqlite", "postgresql"] if self.postgres_admin_url() else ["sqlite"]

    @contextlib.asynccontextmanager
    async def fresh_database(self, backend: str, name: str) -> AsyncIterator[str]:
        """A new empty database (a SQLite file, or a PostgreSQL database dropped after)."""
        if backend == "sqlite":
            path = self.tmp / f"{name}-{uuid.uuid4().hex[:6]}.db"
            try:
                yield f"sqlite+aiosqlite:///{path}"
            finally:
                _remove_sqlite_files(path)
            return
        admin = self.postgres_admin_url()
        if backend != "postgresql" or admin is None:
            raise ValueError(f"backend {backend!r} is not available")
        import psycopg

        base = make_url(admin)
        db_name = f"sa_bench_{name}_{uuid.uuid4().hex[:8]}"
        conninfo = base.set(drivername="postgresql").render_as_string(hide_password=False)

        def run(sql: str) -> None:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                conn.execute(sql)

        await asyncio.to_thread(run, f'CREATE DATABASE "{db_name}"')
        try:
            yield base.set(drivername="postgresql+asyncpg", database=db_name).render_as_string(
                hide_password=False
            )
        finally:
            await asyncio.to_thread(run, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')

    # results ---------------------------------------------------------------------------

    def fail(self, message: str) -> None:
        """Record a failed check; the run exits non-zero and prints it."""
        self.failures.append(message)
        console.print(f"[bold red]FAIL[/] {message}")

    def close(self) -> None:
        if self._nats is not None:
            self._nats.stop()
            self._nats = None
        if not self.keep_files:
            shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------- output


def _fmt_rate(rate: float) -> str:
    return f"{rate:,.0f}"


def _fmt_ratio(fig: Figure) -> str:
    if fig.ratio is None:
        return ""
    text = f"{fig.ratio * 100:.0f} %"
    if fig.target is not None:
        colour = "green" if fig.ratio >= fig.target else "red"
        text = f"[{colour}]{text}[/] (≥{fig.target * 100:.0f} %)"
    return text


def print_figures(title: str, figures: Sequence[Figure]) -> None:
    """One rich table of figures: rate, ratio to its baseline, CPU and memory."""
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("step")
    table.add_column("backend")
    table.add_column("count", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("rate /s", justify="right")
    table.add_column("vs baseline", justify="right")
    table.add_column("py CPU", justify="right")
    table.add_column("nats CPU", justify="right")
    table.add_column("peak RSS", justify="right")
    table.add_column("note")
    for fig in figures:
        py_cpu = f"{fig.cpu_seconds / fig.seconds * 100:.0f} %" if fig.seconds else ""
        srv_cpu = (
            f"{fig.server_cpu_seconds / fig.seconds * 100:.0f} %"
            if fig.server_cpu_seconds is not None and fig.seconds
            else ""
        )
        name = fig.name if fig.ok else f"[bold red]{fig.name} FAIL[/]"
        table.add_row(
            name,
            fig.backend,
            f"{fig.count:,} {fig.unit}",
            f"{fig.seconds:.2f}",
            _fmt_rate(fig.rate),
            _fmt_ratio(fig),
            py_cpu,
            srv_cpu,
            f"{fig.peak_rss_mb:.0f} MB",
            fig.note,
        )
    console.print(table)


def write_json(name: str, figures: Sequence[Figure], meta: dict[str, Any]) -> Path:
    """Write `var/bench/<name>.json` with the figures and the run's metadata."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{name}.json"
    payload = {
        "bench": name,
        "written_at": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        **meta,
        "figures": [f.as_json() for f in figures],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
