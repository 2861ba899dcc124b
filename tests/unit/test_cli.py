"""The `sa` command line, the embedded-stack helpers and the demo, without the services.

Service processes are replaced by what needs no service code: fake entry points for the CLI,
an in-memory fake of the HTTP API for the demo (httpx.MockTransport), and a service module
that does not exist for the stack's failure path. Only nats-server is real.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import random
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from libs.common import cli, demo, stack
from libs.common.natsserver import free_port, port_open
from libs.common.validators import is_valid_resident_id, is_valid_uscc, validate_uscc

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


def _quiet_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120, color_system=None), out


# --------------------------------------------------------------------------------------------
# The root CLI
# --------------------------------------------------------------------------------------------


def _fake_service_app(name: str) -> typer.Typer:
    sub = typer.Typer(help=f"{name} service commands", no_args_is_help=True)

    @sub.command()
    def hello(who: str = "world") -> None:
        """Say hello."""
        typer.echo(f"hello {who} from {name}")

    return sub


def _raise(exc: BaseException) -> Any:
    raise exc


def test_entry_points_declare_the_four_services() -> None:
    names = [s.name for s in cli.discover_service_clis()]
    assert names == ["credit", "matching", "needs", "providers"]
    targets = {s.name: s.target for s in cli.discover_service_clis()}
    assert targets["needs"] == "services.needs.cli:app"


def test_help_lists_builtins_and_service_groups() -> None:
    result = runner.invoke(cli.app, ["--help"])
    assert result.exit_code == 0, result.output
    for name in ("token", "run", "demo", "db", "needs", "providers", "matching", "credit"):
        assert f" {name} " in result.stdout, name


def test_calendar_command_exits_1_when_a_calendar_runs_out_soon() -> None:
    ok = runner.invoke(cli.app, ["calendar", "--today", "2026-10-01"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.count("2026-12-31") == 3 and "runs out soon" not in ok.output
    late = runner.invoke(cli.app, ["calendar", "--today", "2026-12-01"])
    assert late.exit_code == 1, late.output
    assert "runs out soon" in late.output and "holiday_calendar" in late.output
    bad = runner.invoke(cli.app, ["calendar", "--today", "2026-13-01"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(cli.app, [])
    assert "Usage" in result.output
    assert "token" in result.output


def test_broken_service_is_skipped_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = [
        cli.ServiceCli("alpha", "fake.alpha:app", lambda: _fake_service_app("alpha")),
        cli.ServiceCli(
            "broken",
            "services.broken.cli:app",
            lambda: _raise(ModuleNotFoundError("No module named 'services.broken.cli'")),
        ),
        cli.ServiceCli("syntax", "fake.syntax:app", lambda: _raise(SyntaxError("bad\nsyntax"))),
        cli.ServiceCli("notapp", "fake.notapp:app", lambda: 42),
    ]
    monkeypatch.setattr(cli, "discover_service_clis", lambda: fakes)

    result = runner.invoke(cli.app, ["--help"])

    assert result.exit_code == 0, result.output
    assert " alpha " in result.stdout
    for skipped in ("broken", "syntax", "notapp"):
        assert f" {skipped} " not in result.stdout
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 3, warnings
    assert all(line.startswith("sa: warning: skipping the ") for line in warnings)
    assert "ModuleNotFoundError: No module named 'services.broken.cli'" in warnings[0]
    assert "SyntaxError: bad syntax" in warnings[1]  # one line, whatever the message holds


def test_service_group_runs_and_other_commands_survive_a_broken_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fakes = [
        cli.ServiceCli("alpha", "fake.alpha:app", lambda: _fake_service_app("alpha")),
        cli.ServiceCli("broken", "fake.broken:app", lambda: _raise(ImportError("boom"))),
    ]
    monkeypatch.setattr(cli, "discover_service_clis", lambda: fakes)

    ok = runner.invoke(cli.app, ["alpha", "hello", "--who", "Jilin"])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip() == "hello Jilin from alpha"
    assert ok.stderr == ""  # the broken one is not even imported

    token = runner.invoke(cli.app, ["token", "mint", "--role", "operator"])
    assert token.exit_code == 0, token.output
    assert token.stdout.count(".") == 2  # a JWT

    broken = runner.invoke(cli.app, ["broken", "anything"])
    assert broken.exit_code == 2
    assert "sa: warning: skipping the 'broken' commands (fake.broken:app): ImportError: boom" in (
        broken.stderr
    )


def test_builtin_names_win_over_service_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = [cli.ServiceCli("run", "fake.run:app", lambda: _fake_service_app("run"))]
    monkeypatch.setattr(cli, "discover_service_clis", lambda: fakes)
    result = runner.invoke(cli.app, ["run", "--help"])
    assert result.exit_code == 0
    assert "--base-port" in result.stdout  # the built-in `sa run`
    listing = runner.invoke(cli.app, ["--help"])
    assert listing.exit_code == 0
    assert "ignoring the 'run' service commands: the name is built in" in listing.stderr


def test_token_subcommands_through_the_lazy_group() -> None:
    result = runner.invoke(cli.app, ["token", "--help"])
    assert result.exit_code == 0, result.output
    assert "mint" in result.stdout
    bad = runner.invoke(cli.app, ["token", "mint", "--role", "purchaser", "--region", "Jilin"])
    assert bad.exit_code == 2
    assert "--region" in bad.output


def test_importing_the_cli_stays_light() -> None:
    # `sa --help` must stay fast: the root module imports neither the web stack, nor httpx,
    # nor any service.
    code = (
        "import sys, libs.common.cli\n"
        "heavy = [m for m in ('fastapi', 'httpx', 'sqlalchemy', 'libs.common.auth') "
        "if m in sys.modules]\n"
        "heavy += [m for m in sys.modules if m.startswith('services')]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_db_commands_validate_the_service_name() -> None:
    result = runner.invoke(cli.app, ["db", "upgrade", "nosuchservice"])
    assert result.exit_code == 2
    result = runner.invoke(cli.app, ["db", "revision", "needs"])  # -m is required
    assert result.exit_code == 2
    assert "--message" in result.output


def test_service_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SA_CREDIT_DATABASE_URL", raising=False)
    assert cli.service_database_url("credit") == "sqlite+aiosqlite:///var/credit.db"
    monkeypatch.setenv("SA_CREDIT_DATABASE_URL", "postgresql+asyncpg://u:p@db/credit")
    assert cli.service_database_url("credit") == "postgresql+asyncpg://u:p@db/credit"


def test_migrations_dir_is_found_through_the_package(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        cli.migrations_dir("nosuchservice")
    # services.needs is a package of this repository; its folder is where the import says.
    found = cli.migrations_dir("needs") if (REPO / "services/needs/migrations").is_dir() else None
    if found is not None:
        assert found == REPO / "services" / "needs" / "migrations"


def test_demo_command_without_a_stack_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["demo", "--var-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "no running stack" in result.output
    assert "make run" in result.output


def test_demo_command_rejects_malformed_urls(tmp_path: Path) -> None:
    result = runner.invoke(cli.app, ["demo", "--var-dir", str(tmp_path), "--url", "needs"])
    assert result.exit_code == 2
    assert "NAME=http" in result.output


# --------------------------------------------------------------------------------------------
# Stack helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture
def occupied_4250() -> Iterator[None]:
    """Port 4250 held by a listener (ours, or whatever already holds it)."""
    sock = socket.socket()
    # Without it the bind fails on a port merely in TIME_WAIT (an earlier test's stack ran
    # there), the fixture would hold nothing, and `port_is_free` rightly says "free".
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((stack.HOST, stack.DEFAULT_NATS_PORT))
        sock.listen()
    except OSError:
        pass  # already taken by something else: just as good for the test
    try:
        yield
    finally:
        sock.close()


def test_nats_port_defaults_to_4250_or_a_free_one(occupied_4250: None) -> None:
    assert not stack.port_is_free(stack.DEFAULT_NATS_PORT)
    port = stack.choose_nats_port()
    assert port not in (stack.DEFAULT_NATS_PORT, 4222)
    assert stack.port_is_free(port)


def test_nats_port_default_is_used_when_free() -> None:
    port = free_port()
    assert stack.choose_nats_port(default=port) == port


def test_explicit_nats_port_must_be_free(occupied_4250: None) -> None:
    with pytest.raises(stack.StackError, match="4250 is already in use"):
        stack.choose_nats_port(stack.DEFAULT_NATS_PORT)


def test_service_ports() -> None:
    base = free_port()
    services = ("needs", "providers")
    if stack.port_is_free(base + 1):
        assert stack.service_ports(services, base_port=base) == {
            "needs": base,
            "providers": base + 1,
        }
    chosen = stack.service_ports(stack.SERVICES)
    assert len(set(chosen.values())) == 4
    assert stack.service_ports(services, ports={"needs": base})["needs"] == base
    with pytest.raises(stack.StackError, match="unknown services"):
        stack.service_ports(services, ports={"ghost": base})


def test_service_port_in_use_is_reported_before_starting() -> None:
    with socket.socket() as sock:
        sock.bind((stack.HOST, 0))
        sock.listen()
        taken = sock.getsockname()[1]
        with pytest.raises(stack.StackError, match=f"port {taken} for needs is already in use"):
            stack.service_ports(("needs",), ports={"needs": taken})


def test_service_env() -> None:
    env = stack.service_env(
        "needs",
        port=8101,
        nats_url="nats://127.0.0.1:4250",
        var_dir=Path("var"),
        base={"PATH": "/bin", "SA_NEEDS_PORT": "1"},
    )
    assert env["SA_NEEDS_PORT"] == "8101"  # the stack owns the ports
    assert env["SA_NEEDS_NATS_URL"] == "nats://127.0.0.1:4250"
    assert env["SA_NEEDS_DATABASE_URL"] == "sqlite+aiosqlite:///var/needs.db"
    assert env["PATH"] == "/bin"
    kept = stack.service_env(
        "credit",
        port=1,
        nats_url="nats://x:1",
        var_dir=Path("var"),
        base={"SA_CREDIT_DATABASE_URL": "postgresql+asyncpg://db/credit"},
    )
    assert kept["SA_CREDIT_DATABASE_URL"] == "postgresql+asyncpg://db/credit"


def test_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert stack.tail(log, 3) == "line 97\nline 98\nline 99\n"
    assert stack.tail(tmp_path / "missing.log") == ""


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_stack_json(var_dir: Path, *, pid: int, services: dict[str, int]) -> None:
    var_dir.mkdir(parents=True, exist_ok=True)
    (var_dir / "stack.json").write_text(
        json.dumps(
            {
                "pid": pid,
                "nats_url": "nats://127.0.0.1:4250",
                "services": {
                    name: {"port": port, "url": f"http://127.0.0.1:{port}"}
                    for name, port in services.items()
                },
            }
        )
    )


FOUR = {"needs": 8001, "providers": 8002, "matching": 8003, "credit": 8004}


def test_demo_reads_urls_from_stack_json(tmp_path: Path) -> None:
    _write_stack_json(tmp_path, pid=os.getpid(), services=FOUR)
    assert demo.load_stack_urls(tmp_path) == {
        name: f"http://127.0.0.1:{port}" for name, port in FOUR.items()
    }


def test_demo_rejects_missing_stale_or_partial_stack_json(tmp_path: Path) -> None:
    with pytest.raises(demo.DemoError, match="no running stack"):
        demo.load_stack_urls(tmp_path)
    _write_stack_json(tmp_path, pid=_dead_pid(), services=FOUR)
    with pytest.raises(demo.DemoError, match="stale"):
        demo.load_stack_urls(tmp_path)
    _write_stack_json(tmp_path, pid=os.getpid(), services={"needs": 8001})
    with pytest.raises(demo.DemoError, match="no providers, matching, credit service"):
        demo.load_stack_urls(tmp_path)
    (tmp_path / "stack.json").write_text("{not json")
    with pytest.raises(demo.DemoError, match="cannot read"):
        demo.load_stack_urls(tmp_path)


def test_start_refuses_a_var_dir_with_a_running_stack(tmp_path: Path) -> None:
    _write_stack_json(tmp_path, pid=os.getpid(), services=FOUR)
    with pytest.raises(stack.StackError, match="already running"):
        stack.start_stack(tmp_path, services=())


def test_stack_with_nats_only_writes_and_removes_stack_json(tmp_path: Path) -> None:
    _write_stack_json(tmp_path, pid=_dead_pid(), services=FOUR)  # stale: replaced
    s = stack.start_stack(tmp_path, services=())
    try:
        assert s.nats_url.startswith("nats://127.0.0.1:")
        assert not s.nats_url.endswith(":4222")
        assert port_open("127.0.0.1", s.nats.port)
        data = json.loads((tmp_path / "stack.json").read_text())
        assert data["pid"] == os.getpid()
        assert data["nats_url"] == s.nats_url
        assert data["services"] == {}
        assert (tmp_path / "nats").is_dir()
        assert (tmp_path / "log" / "nats.log").exists()
    finally:
        port = s.nats.port
        s.stop()
    assert not (tmp_path / "stack.json").exists()
    assert not port_open("127.0.0.1", port)
    s.stop()  # idempotent


def test_service_that_dies_is_reported_with_its_log(tmp_path: Path) -> None:
    # `python -m services.ghost` exits at once: the stack must say so, show why, and clean up.
    with pytest.raises(stack.StackError) as info:
        stack.start_stack(tmp_path, services=("ghost",), ready_timeout=20)
    assert info.value.service == "ghost"
    assert "ghost exited with code" in str(info.value)
    assert "No module named services.ghost" in info.value.log_tail
    assert not (tmp_path / "stack.json").exists()


def test_run_stack_exits_non_zero_and_prints_the_log_tail(tmp_path: Path) -> None:
    console, out = _quiet_console()
    code = stack.run_stack(
        var_dir=tmp_path, base_port=free_port(), services=("ghost",), console=console
    )
    text = out.getvalue()
    assert code == 1
    assert "error: ghost exited with code" in text
    assert "No module named services.ghost" in text
    assert "last 30 lines" in text


# --------------------------------------------------------------------------------------------
# Identifiers for the demo
# --------------------------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=2**64))
def test_demo_uscc_is_valid(seed: int) -> None:
    code = demo.make_demo_uscc(random.Random(seed))
    assert len(code) == 18
    assert code.startswith("52220102MJ")
    assert is_valid_uscc(code)
    assert validate_uscc(code) == code


@given(st.integers(min_value=0, max_value=2**64))
@settings(max_examples=200)
def test_demo_resident_id_is_valid(seed: int) -> None:
    number = demo.make_demo_resident_id(random.Random(seed))
    assert len(number) == 18
    assert number.startswith("220102")
    assert is_valid_resident_id(number)
    born = datetime.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    assert datetime.date(1940, 1, 1) <= born <= datetime.date(1960, 12, 31)


def test_identifier_generators_refuse_bad_parameters() -> None:
    with pytest.raises(ValueError):
        demo.make_demo_uscc(prefix="I" * 10)  # I is not in the alphabet
    with pytest.raises(ValueError):
        demo.make_demo_resident_id(county="990102")  # no province 99


def test_successive_runs_get_different_codes() -> None:
    assert len({demo.make_demo_uscc() for _ in range(20)}) == 20


# --------------------------------------------------------------------------------------------
# The demo against an in-memory fake of the API
# --------------------------------------------------------------------------------------------


class FakePlatform:
    """Just enough of the four services' HTTP API to walk the skeleton path.

    Effects of events show up late on purpose (the first reads answer 404 or the old state)
    so the demo's waiting is exercised.
    """

    def __init__(self) -> None:
        self.orgs: dict[str, dict[str, Any]] = {}
        self.needs: dict[str, dict[str, Any]] = {}
        self.matches: list[dict[str, Any]] = []
        self.reads: dict[str, int] = {}
        self.fail: dict[str, httpx.Response] = {}
        self.requests: list[httpx.Request] = []

    def _late(self, key: str, after: int = 1) -> bool:
        """False for the first `after` reads of `key`: the event has not arrived yet."""
        self.reads[key] = self.reads.get(key, 0) + 1
        return self.reads[key] > after

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.headers["authorization"].startswith("Bearer ")
        service, method, path = request.url.host.split(".")[0], request.method, request.url.path
        key = f"{service} {method} {path}"
        for pattern, response in self.fail.items():
            if key.startswith(pattern):
                return response
        body = json.loads(request.content) if request.content else None
        return self.route(service, method, path, body, request.url.params)

    def route(
        self, service: str, method: str, path: str, body: Any, params: httpx.QueryParams
    ) -> httpx.Response:
        parts = path.strip("/").split("/")
        if (service, method, path) == ("providers", "POST", "/organisations"):
            assert is_valid_uscc(body["uscc"])
            assert body["service_regions"] == ["2201"]
            org_id = str(uuid.uuid4())
            self.orgs[org_id] = {"id": org_id, "status": "pending", **body}
            return httpx.Response(201, json={"id": org_id, "status": "pending"})
        if service == "providers" and method == "GET" and parts[0] == "organisations":
            org = self.orgs[parts[1]]
            status = org["status"] if self._late(path) else "pending"
            return httpx.Response(200, json={"id": org["id"], "status": status})
        if service == "credit" and method == "GET" and parts[0] == "admissions":
            if not self._late(path):
                return httpx.Response(404, json={"title": "Not found", "status": 404})
            self.orgs[parts[1]].setdefault("admitted", True)
            if self.orgs[parts[1]]["status"] == "pending":
                self.orgs[parts[1]]["status"] = "admitted"
            reasons = [
                {"condition": "independent_civil_liability", "met": True, "rule": "吉林 2020 §四"}
            ]
            return httpx.Response(200, json={"outcome": "admitted", "reasons": reasons})
        if (service, method, path) == ("credit", "POST", "/blacklist"):
            assert body["severity"] == "serious"
            self.orgs[body["organisation_id"]]["status"] = "blacklisted"
            return httpx.Response(
                201, json={"ban_until": "2029-01-01", "legal_basis": "吉林 2020 §五(三)"}
            )
        if service == "matching" and method == "GET" and path.endswith("/eligibility"):
            if not self._late(path):
                return httpx.Response(404, json={"title": "Not found", "status": 404})
            org = self.orgs[parts[1]]
            eligible = org["status"] == "admitted"
            return httpx.Response(
                200,
                json={"organisation_id": org["id"], "status": org["status"], "eligible": eligible},
            )
        if (service, method, path) == ("needs", "POST", "/recipients"):
            assert is_valid_resident_id(body["id_number"])
            assert body["region_code"].startswith("220102")
            return httpx.Response(201, json={"ref": "r-1", "id_number_masked": "220102********"})
        if (service, method, path) == ("needs", "POST", "/needs"):
            need_id = str(uuid.uuid4())
            self.needs[need_id] = {"id": need_id, "status": "open", **body}
            return httpx.Response(201, json={"id": need_id, "status": "open"})
        if (service, method, path) == ("matching", "POST", "/allocations/run"):
            if not self._late("allocation"):
                return httpx.Response(200, json={"matched": 0, "matches": [], "unmatched": []})
            eligible = [o for o in self.orgs.values() if o["status"] == "admitted"]
            matches = []
            for need in self.needs.values():
                if need["status"] == "open" and eligible:
                    need["status"] = "matched"
                    match = {"need_id": need["id"], "organisation_id": eligible[0]["id"]}
                    self.matches.append(match)
                    matches.append(match)
            return httpx.Response(
                200, json={"matched": len(matches), "matches": matches, "unmatched": []}
            )
        if (service, method, path) == ("matching", "GET", "/matches"):
            items = [m for m in self.matches if all(m.get(k) == v for k, v in params.items())]
            return httpx.Response(200, json={"items": items, "total": len(items)})
        if service == "needs" and method == "GET" and parts[0] == "needs":
            need = self.needs[parts[1]]
            matched = [m for m in self.matches if m["need_id"] == need["id"]]
            if need["status"] == "matched" and matched and self._late(path):
                return httpx.Response(
                    200,
                    json={
                        "id": need["id"],
                        "status": "matched",
                        "matched_organisation_id": matched[0]["organisation_id"],
                    },
                )
            return httpx.Response(200, json={"id": need["id"], "status": "open"})
        return httpx.Response(404, json={"title": "Not found", "detail": f"{method} {path}"})


FAKE_URLS = {name: f"http://{name}.test" for name in stack.SERVICES}


def _run_fake_demo(fake: FakePlatform) -> tuple[demo.DemoResult, str]:
    console, out = _quiet_console()
    result = demo.run_demo(
        urls=FAKE_URLS,
        console=console,
        transport=httpx.MockTransport(fake.handler),
        timeout=5,
        poll_interval=0.001,
        seed=7,
    )
    return result, out.getvalue()


def test_demo_walks_the_skeleton_path() -> None:
    fake = FakePlatform()
    result, text = _run_fake_demo(fake)
    assert result.ok, text
    assert result.error is None
    first, second = list(fake.orgs)
    assert result.admitted_org_id == first
    assert result.blacklisted_org_id == second
    assert result.matched_org_id == first
    assert result.need_id in fake.needs
    assert result.recipient_ref == "r-1"
    assert "outcome=admitted" in text
    assert "吉林 2020 §四" in text  # the cited clause of each admission reason
    assert "banned until 2029-01-01" in text
    assert "eligible=False" in text
    assert "got nothing" in text


def test_demo_prints_problem_details_and_fails() -> None:
    fake = FakePlatform()
    fake.fail["credit POST /blacklist"] = httpx.Response(
        422,
        json={
            "type": "https://sa.example.gov.cn/problems/invalid-input",
            "title": "Invalid input",
            "status": 422,
            "detail": "The request body is invalid.",
            "errors": [{"field": "body.severity", "reason": "unknown severity"}],
        },
        headers={"content-type": "application/problem+json"},
    )
    result, text = _run_fake_demo(fake)
    assert not result.ok
    assert result.error is not None
    assert "HTTP 422 Invalid input: The request body is invalid." in result.error
    assert "body.severity: unknown severity" in text
    assert result.need_id is None  # it stopped at the failing step


def test_demo_times_out_when_an_event_never_arrives() -> None:
    fake = FakePlatform()
    fake.fail["credit GET /admissions/"] = httpx.Response(404, json={"title": "Not found"})
    console, _out = _quiet_console()
    result = demo.run_demo(
        urls=FAKE_URLS,
        console=console,
        transport=httpx.MockTransport(fake.handler),
        timeout=0.2,
        poll_interval=0.01,
    )
    assert not result.ok
    assert "timed out after" in (result.error or "")
    assert "credit has admitted" in (result.error or "")


def test_demo_reports_an_unreachable_stack() -> None:
    console, _out = _quiet_console()
    port = free_port()  # nothing listens there
    result = demo.run_demo(
        urls={name: f"http://127.0.0.1:{port}" for name in stack.SERVICES},
        console=console,
        timeout=0.5,
    )
    assert not result.ok
    assert "is the stack running?" in (result.error or "")


def test_describe_problem_without_json() -> None:
    request = httpx.Request("GET", "http://x.test/")
    response = httpx.Response(502, text="Bad gateway", request=request)
    assert demo.describe_problem(response) == "HTTP 502: Bad gateway"
