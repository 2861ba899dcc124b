"""The embedded stack: a local nats-server with JetStream plus the four services, one machine.

`sa run` (`make run`) calls `run_stack`, which blocks until Ctrl-C / SIGTERM. Tests and tools
use `start_stack(...)`, which returns a running `Stack` to `stop()` later.

Layout under the var directory (default `var/`):

    var/nats/            JetStream storage
    var/log/nats.log     nats-server output
    var/log/<name>.log   each service's stdout and stderr
    var/<name>.db        each service's SQLite database (unless SA_<NAME>_DATABASE_URL is set)
    var/stack.json       ports and URLs of the running stack (removed on exit), read by `sa demo`
    var/nats-auth.conf   the server's users and permissions (libs/common/nats_auth.py), 0600
    var/nats-credentials.json  the ministry and operations users' passwords, 0600, read by
                         `sa events`; both are made afresh at each start and removed on exit

NATS runs with authorization on, as in production: each service gets its own user (passed as
`SA_<NAME>_NATS_USER` / `_PASSWORD`) that may publish only its own subjects, the `ministry`
user may only read through its own consumers, and `admin` may do anything. Passwords are
random for each start.

Each service runs as `python -m services.<name>` in its own session (process group): Ctrl-C
in the terminal then reaches only this supervisor, which stops the services first and
nats-server last, so services can flush and close their NATS connections while it is up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from libs.common.natsserver import NatsServer, free_port, nats_server_binary

if TYPE_CHECKING:
    from libs.common.nats_auth import ConsumerGrant

SERVICES: tuple[str, ...] = ("needs", "providers", "matching", "credit")
"""The services of the platform, in start-up order."""

DEFAULT_NATS_PORT = 4250
"""Port of the embedded nats-server. Not 4222: a system NATS listens there on dev machines."""

DEFAULT_BASE_PORT = 8001
"""needs on 8001, providers 8002, matching 8003, credit 8004."""

HOST = "127.0.0.1"
STACK_FILE_NAME = "stack.json"
NATS_AUTH_FILE_NAME = "nats-auth.conf"
NATS_CREDENTIALS_FILE_NAME = "nats-credentials.json"
DISCOVERY_TIMEOUT_SECONDS = 120.0
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
LOG_TAIL_LINES = 30


class StackError(RuntimeError):
    """The stack could not start (or a service died). `log_tail` holds the culprit's log."""

    def __init__(self, message: str, *, service: str | None = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.service = service
        self.log_tail = log_tail


# --------------------------------------------------------------------------------------------
# Small helpers (no processes involved; unit-tested on their own)
# --------------------------------------------------------------------------------------------


def port_is_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on `host:port` now.

    Probed by binding (not connecting), with SO_REUSEADDR as nats-server and uvicorn use it:
    a port held by a listener is refused, one merely in TIME_WAIT after a restart is not.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def choose_nats_port(
    preferred: int | None = None, *, default: int = DEFAULT_NATS_PORT, host: str = HOST
) -> int:
    """The port for the embedded nats-server.

    An explicit `preferred` port is used as is (StackError if taken: the caller asked for it).
    Otherwise `default` (4250) when free, else any free port, so a second stack or a stray
    server never blocks `make run`.
    """
    if preferred is not None:
        if not port_is_free(preferred, host):
            raise StackError(f"NATS port {preferred} is already in use")
        return preferred
    if port_is_free(default, host):
        return default
    return free_port(host)


def service_ports(
    services: Sequence[str],
    *,
    ports: Mapping[str, int] | None = None,
    base_port: int | None = None,
    host: str = HOST,
) -> dict[str, int]:
    """Port of each service: `ports[name]` if given, else `base_port + index`, else a free one.

    Explicitly chosen ports must be free (StackError naming the service otherwise), so a port
    clash is reported before anything starts rather than as a crashed service.
    """
    ports = dict(ports or {})
    unknown = set(ports) - set(services)
    if unknown:
        raise StackError(f"ports given for unknown services: {', '.join(sorted(unknown))}")
    chosen: dict[str, int] = {}
    for index, name in enumerate(services):
        if name in ports:
            port = ports[name]
        elif base_port is not None:
            port = base_port + index
        else:
            port = free_port(host)
            # free_port releases the socket, so two calls may in principle return the same one.
            while port in chosen.values():
                port = free_port(host)
            chosen[name] = port
            continue
        if port in chosen.values():
            raise StackError(f"port {port} is given to two services")
        if not port_is_free(port, host):
            hint = " (choose another with --base-port)" if base_port is not None else ""
            raise StackError(f"port {port} for {name} is already in use{hint}", service=name)
        chosen[name] = port
    return chosen


def service_env(
    name: str,
    *,
    port: int,
    nats_url: str,
    var_dir: Path,
    log_level: str = "info",
    base: Mapping[str, str] | None = None,
    nats_user: str | None = None,
    nats_password: str | None = None,
) -> dict[str, str]:
    """Environment of one service process.

    Port, NATS URL and NATS credentials are always ours (the stack owns them); the database
    URL and log level only default, so `SA_<NAME>_DATABASE_URL=postgresql+asyncpg://...` is
    respected.
    """
    env = dict(os.environ if base is None else base)
    prefix = f"SA_{name.upper()}_"
    env[prefix + "PORT"] = str(port)
    env[prefix + "HOST"] = HOST
    env[prefix + "NATS_URL"] = nats_url
    if nats_user is not None and nats_password is not None:
        env[prefix + "NATS_USER"] = nats_user
        env[prefix + "NATS_PASSWORD"] = nats_password
    env.setdefault(prefix + "DATABASE_URL", f"sqlite+aiosqlite:///{var_dir / f'{name}.db'}")
    env.setdefault(prefix + "LOG_LEVEL", log_level.upper())
    # Logs go to files: without this Python block-buffers them and a crash loses the reason.
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of a text file ("" if it does not exist)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines))
    except FileNotFoundError:
        return ""


def stack_file(var_dir: Path) -> Path:
    return Path(var_dir) / STACK_FILE_NAME


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending anything)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def read_stack_file(var_dir: Path = Path("var")) -> dict[str, Any]:
    """The description of the stack running on `var_dir`.

    Raises StackError with a hint when there is none, or when it was left by a stack that is
    no longer running (killed with SIGKILL, machine rebooted).
    """
    path = stack_file(var_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StackError(
            f"no running stack found ({path} does not exist): start it with `make run` "
            "(or `sa run`) in another terminal"
        ) from None
    except (OSError, ValueError) as exc:
        raise StackError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
        raise StackError(f"{path} is not a stack description")
    pid = data.get("pid")
    if isinstance(pid, int) and not pid_alive(pid):
        raise StackError(
            f"{path} is stale: the stack (pid {pid}) is not running; start it with `make run`"
        )
    return data


def urls_from_stack_file(data: Mapping[str, Any]) -> dict[str, str]:
    """`{"needs": "http://127.0.0.1:8001", ...}` from a stack description."""
    urls: dict[str, str] = {}
    for name, entry in data["services"].items():
        if isinstance(entry, dict) and isinstance(entry.get("url"), str):
            urls[name] = entry["url"]
    return urls


def _write_json_atomically(path: Path, data: Mapping[str, Any]) -> None:
    # Written then renamed so a concurrent `sa demo` never reads half a file.
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (it holds passwords), replacing any old one."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    tmp.replace(path)


# --------------------------------------------------------------------------------------------
# NATS authorization of the embedded stack
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NatsAuth:
    """The generated server config and every user's password for one start of the stack."""

    config_file: Path
    credentials_file: Path
    passwords: dict[str, str]

    def remove(self) -> None:
        for path in (self.config_file, self.credentials_file):
            path.unlink(missing_ok=True)


def read_nats_credentials(var_dir: Path = Path("var")) -> dict[str, Any]:
    """What the running stack wrote for `sa events`: `{"users": {"ministry": {...}}}`."""
    path = Path(var_dir) / NATS_CREDENTIALS_FILE_NAME
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
        raise StackError(f"{path} is not a NATS credentials file")
    return data


def discover_service_consumers(services: Sequence[str]) -> dict[str, list[ConsumerGrant]]:
    """Each service's durable consumers, found by a child process that builds the apps.

    A child, so this supervisor never imports the services. A service that cannot be loaded
    gets no consumer: started anyway, it fails on its own and its log says why.
    """
    from libs.common.nats_auth import ConsumerGrant

    if not services:
        return {}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "libs.common.nats_auth", *services],
            capture_output=True,
            text=True,
            timeout=DISCOVERY_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError("listing the services' NATS consumers timed out", service="nats") from exc
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise StackError(
            "could not list the services' NATS consumers",
            service="nats",
            log_tail=result.stderr[-4000:],
        )
    found = json.loads(lines[-1])
    return {
        name: (
            [ConsumerGrant(g["stream"], g["durable"]) for g in found[name]]
            if isinstance(found.get(name), list)
            else []
        )
        for name in services
    }


def prepare_nats_auth(var_dir: Path, services: Sequence[str]) -> NatsAuth:
    """Generate users, passwords and permissions for `services` (plus ministry and admin)."""
    from libs.common.nats_auth import (
        ADMIN_USER,
        MINISTRY_USER,
        NatsAuthError,
        generate_password,
        platform_users,
        render_authorization,
    )

    consumers = discover_service_consumers(services)
    passwords = {name: generate_password() for name in [*services, MINISTRY_USER, ADMIN_USER]}
    try:
        users = platform_users(passwords, consumers)
    except NatsAuthError as exc:
        raise StackError(f"cannot give the services NATS users: {exc}", service="nats") from exc
    auth = NatsAuth(
        config_file=Path(var_dir) / NATS_AUTH_FILE_NAME,
        credentials_file=Path(var_dir) / NATS_CREDENTIALS_FILE_NAME,
        passwords=passwords,
    )
    header = (
        "Generated by `sa run` (libs/common/stack.py) for this start only; removed on exit.\n"
        "Users and permissions: libs/common/nats_auth.py."
    )
    _write_private(auth.config_file, render_authorization(users, header=header))
    credentials = {
        "users": {name: {"password": passwords[name]} for name in (MINISTRY_USER, ADMIN_USER)}
    }
    _write_private(auth.credentials_file, json.dumps(credentials, indent=2) + "\n")
    return auth


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


@dataclass
class ServiceProcess:
    """One running service."""

    name: str
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, signum: int) -> None:
        """Signal the service's whole process group (uvicorn may have children)."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)


@dataclass
class Stack:
    """A running embedded stack. `stop()` is idempotent and safe from any state."""

    var_dir: Path
    nats: NatsServer
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    auth: NatsAuth | None = None
    _stopped: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def nats_url(self) -> str:
        return self.nats.url

    @property
    def urls(self) -> dict[str, str]:
        """Base URL of each service, e.g. `{"needs": "http://127.0.0.1:8001"}`."""
        return {name: svc.url for name, svc in self.services.items()}

    @property
    def stack_file(self) -> Path:
        return stack_file(self.var_dir)

    def describe(self) -> dict[str, Any]:
        """What `var/stack.json` holds (and `sa demo` reads)."""
        return {
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "var_dir": str(self.var_dir),
            "nats_url": self.nats_url,
            "nats_credentials": None if self.auth is None else str(self.auth.credentials_file),
            "services": {
                name: {
                    "port": svc.port,
                    "url": svc.url,
                    "docs": svc.url + "/docs",
                    "pid": svc.proc.pid,
                    "log": str(svc.log_path),
                }
                for name, svc in self.services.items()
            },
        }

    def write_stack_file(self) -> None:
        _write_json_atomically(self.stack_file, self.describe())

    def dead_service(self) -> ServiceProcess | None:
        """The first service that has exited, if any."""
        return next((s for s in self.services.values() if not s.alive()), None)

    def stop(
        self,
        *,
        timeout: float = STOP_TIMEOUT_SECONDS,
        force: threading.Event | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> None:
        """SIGTERM the services, wait up to `timeout` s, SIGKILL stragglers, stop nats-server.

        Setting `force` (e.g. on a second Ctrl-C) skips the rest of the grace period.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        try:
            running = [s for s in self.services.values() if s.alive()]
            if running and on_progress:
                on_progress(f"stopping {', '.join(s.name for s in running)}")
            for svc in running:
                svc.signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while any(s.alive() for s in running) and time.monotonic() < deadline:
                if force is not None and force.is_set():
                    break
                time.sleep(0.1)
            for svc in running:
                if svc.alive():
                    if on_progress:
                        on_progress(f"{svc.name} did not stop in time: killing it")
                    svc.signal(signal.SIGKILL)
            for svc in running:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    svc.proc.wait(5)
            if on_progress:
                on_progress("stopping nats-server")
            self.nats.stop(timeout=STOP_TIMEOUT_SECONDS)
        finally:
            if self.auth is not None:
                self.auth.remove()  # passwords do not outlive the stack
            with contextlib.suppress(FileNotFoundError):
                # Only our own description: another stack may have replaced it meanwhile.
                data = json.loads(self.stack_file.read_text(encoding="utf-8"))
                if data.get("pid") == os.getpid():
                    self.stack_file.unlink()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _start_service(
    name: str, *, port: int, env: Mapping[str, str], log_path: Path
) -> ServiceProcess:
    with log_path.open("ab") as log:
        log.write(f"\n--- {datetime.now(UTC).isoformat()} starting {name} on {port}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,  # see the module docstring: we order the shutdown
        )
    return ServiceProcess(name=name, port=port, log_path=log_path, proc=proc)


def _wait_ready(
    stack: Stack,
    *,
    timeout: float,
    on_status: Callable[[str, str], None] | None,
) -> None:
    """Poll `GET /ready` of every service until all answer 200 (StackError otherwise)."""
    import httpx  # imported here: `sa --help` must not pay for it

    pending = dict(stack.services)
    deadline = time.monotonic() + timeout
    # trust_env=False: a developer's HTTP(S)_PROXY must not capture calls to 127.0.0.1.
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while pending:
            for name, svc in list(pending.items()):
                if not svc.alive():
                    raise StackError(
                        f"{name} exited with code {svc.proc.returncode} while starting",
                        service=name,
                        log_tail=tail(svc.log_path),
                    )
                try:
                    response = client.get(svc.url + "/ready")
                except httpx.HTTPError:
                    continue  # not listening yet
                if response.status_code == 200:
                    del pending[name]
                    if on_status:
                        on_status(name, "ready")
            if not pending:
                return
            if time.monotonic() > deadline:
                name = next(iter(pending))
                raise StackError(
                    f"{', '.join(pending)} not ready within {timeout:.0f} s",
                    service=name,
                    log_tail=tail(pending[name].log_path),
                )
            time.sleep(0.2)


def start_stack(
    var_dir: Path = Path("var"),
    *,
    nats_port: int | None = None,
    ports: Mapping[str, int] | None = None,
    env: Mapping[str, str] | None = None,
    services: Sequence[str] = SERVICES,
    base_port: int | None = None,
    log_level: str = "info",
    ready_timeout: float = READY_TIMEOUT_SECONDS,
    on_status: Callable[[str, str], None] | None = None,
    nats_auth: bool = True,
) -> Stack:
    """Start nats-server and the services, wait until every service is ready, return the Stack.

    `nats_auth` (default): nats-server enforces the platform's users and permissions (see
    the module docstring); False runs it open, as before issue 8.

    `nats_port`: None picks 4250, or a free port when 4250 is taken. `ports`: port per
    service; services not in it get `base_port + index` when `base_port` is given, else a
    free port. `env` is added to this process's environment for the services.
    `on_status(service, state)` reports progress ("starting", "ready"; service "nats").

    On any failure everything already started is stopped and StackError is raised (with the
    failing service's log tail). The caller owns the returned Stack: call `stop()`.
    """
    var_dir = Path(var_dir)
    log_dir = var_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    if stack_file(var_dir).exists():
        try:
            running: dict[str, Any] | None = read_stack_file(var_dir)
        except StackError:
            running = None  # stale or unreadable: replaced once this stack is ready
        if running is not None:
            # Two stacks on one var dir would share SQLite files and JetStream storage.
            raise StackError(
                f"a stack is already running on {var_dir} (pid {running.get('pid')}); "
                "stop it first or use another var directory"
            )
    nats_server_binary()  # FileNotFoundError with a hint before anything starts
    chosen_ports = service_ports(services, ports=ports, base_port=base_port)
    auth = prepare_nats_auth(var_dir, services) if nats_auth else None
    try:
        # Chosen after the (slow) discovery of consumers, so the port is still free.
        port = choose_nats_port(nats_port)
    except BaseException:
        if auth is not None:
            auth.remove()
        raise
    nats = NatsServer(
        new_session=True,
        store_dir=var_dir / "nats",
        port=port,
        host=HOST,
        log_file=log_dir / "nats.log",
        config_file=None if auth is None else auth.config_file,
    )
    stack = Stack(var_dir=var_dir, nats=nats, auth=auth)
    try:
        if on_status:
            on_status("nats", "starting")
        try:
            nats.start()
        except (RuntimeError, TimeoutError) as exc:
            raise StackError(
                f"nats-server did not start: {exc}",
                service="nats",
                log_tail=tail(log_dir / "nats.log"),
            ) from exc
        if on_status:
            on_status("nats", "ready")
        base_env = {**os.environ, **(env or {})}
        for name in services:
            service_environment = service_env(
                name,
                port=chosen_ports[name],
                nats_url=nats.url,
                var_dir=var_dir,
                log_level=log_level,
                base=base_env,
                nats_user=None if auth is None else name,
                nats_password=None if auth is None else auth.passwords[name],
            )
            stack.services[name] = _start_service(
                name,
                port=chosen_ports[name],
                env=service_environment,
                log_path=log_dir / f"{name}.log",
            )
            if on_status:
                on_status(name, "starting")
        _wait_ready(stack, timeout=ready_timeout, on_status=on_status)
        stack.write_stack_file()
    except BaseException:
        # KeyboardInterrupt included: never leave children behind a failed start.
        stack.stop()
        raise
    return stack


# --------------------------------------------------------------------------------------------
# `sa run`
# --------------------------------------------------------------------------------------------


class _Interrupted(Exception):
    """Raised from the signal handler to leave the blocking parts of `run_stack`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run_stack(
    *,
    var_dir: Path = Path("var"),
    nats_port: int | None = None,
    base_port: int = DEFAULT_BASE_PORT,
    services: Sequence[str] = SERVICES,
    log_level: str = "info",
    console: Any = None,
) -> int:
    """Run the stack in the foreground until Ctrl-C or SIGTERM; returns the exit code.

    0 after a requested stop; 1 when the stack could not start or a service died (its last
    log lines are printed). A second Ctrl-C skips the rest of the 10 s grace period.
    """
    from rich.console import Console

    console = console or Console()
    force = threading.Event()
    interrupted: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        if interrupted:
            force.set()
            return
        interrupted.append(signum)
        raise _Interrupted(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in _STOP_SIGNALS}
    stack: Stack | None = None
    exit_code = 0
    try:
        try:
            stack = _start_with_status(
                console,
                var_dir=var_dir,
                nats_port=nats_port,
                base_port=base_port,
                services=services,
                log_level=log_level,
            )
            console.print(_summary_table(stack))
            console.print(
                "Run the demo in another terminal: [bold]make demo[/]  (or [bold]sa demo[/])\n"
                "Watch the events as a ministry would: [bold]sa events tail[/]\n"
                "Press [bold]Ctrl-C[/] to stop."
            )
            _monitor(stack)
        except StackError as exc:
            exit_code = 1
            _report_failure(console, exc, var_dir=var_dir)
    except _Interrupted as exc:
        console.print(f"\n{signal.Signals(exc.signum).name}: stopping the stack…")
    finally:
        # From here on signals only hurry the shutdown; they must not abort it half-way.
        for sig in _STOP_SIGNALS:
            signal.signal(sig, _force_handler(force))
        try:
            if stack is not None:
                stack.stop(force=force, on_progress=lambda m: console.print(f"  {m}"))
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    console.print("stack stopped" if exit_code == 0 else "stack stopped after an error")
    return exit_code


def _start_with_status(
    console: Any,
    *,
    var_dir: Path,
    nats_port: int | None,
    base_port: int,
    services: Sequence[str],
    log_level: str,
) -> Stack:
    """`start_stack` with a rich spinner naming what we are still waiting for."""
    states: dict[str, str] = {}
    with console.status("starting nats-server…") as status:

        def on_status(name: str, state: str) -> None:
            states[name] = state
            waiting = [n for n in services if states.get(n) != "ready"]
            if states.get("nats") != "ready":
                status.update("starting nats-server…")
            elif waiting:
                status.update(f"waiting for {', '.join(waiting)} to be ready…")
            if state == "ready":
                console.print(f"[green]✓[/] {name} ready")

        return start_stack(
            var_dir,
            nats_port=nats_port,
            services=services,
            base_port=base_port,
            log_level=log_level,
            on_status=on_status,
        )


def _monitor(stack: Stack) -> None:
    """Block while the stack runs; StackError as soon as a service dies on its own."""
    while True:
        dead = stack.dead_service()
        if dead is not None:
            raise StackError(
                f"{dead.name} exited with code {dead.proc.returncode}",
                service=dead.name,
                log_tail=tail(dead.log_path),
            )
        time.sleep(0.5)


def _report_failure(console: Any, exc: StackError, *, var_dir: Path) -> None:
    console.print(f"[bold red]error:[/] {exc}")
    if exc.log_tail:
        where = var_dir / "log" / f"{exc.service}.log"
        console.rule(f"last {LOG_TAIL_LINES} lines of {where}")
        console.print(exc.log_tail.rstrip("\n"), markup=False, highlight=False)
        console.rule()


def _force_handler(force: threading.Event) -> Callable[[int, object], None]:
    def handler(_signum: int, _frame: object) -> None:
        force.set()

    return handler


def _summary_table(stack: Stack) -> Any:
    from rich.table import Table

    table = Table(title="Social-assistance platform: embedded stack", title_justify="left")
    table.add_column("service", style="bold")
    table.add_column("URL")
    table.add_column("API docs")
    table.add_column("log", style="dim")
    for name, svc in stack.services.items():
        table.add_row(name, svc.url, svc.url + "/docs", str(svc.log_path))
    table.add_row("nats", stack.nats_url, "JetStream", str(stack.var_dir / "log" / "nats.log"))
    return table
