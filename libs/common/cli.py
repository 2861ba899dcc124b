"""`sa`: the platform's single command line.

Built in: `sa token` (development tokens), `sa run` (the embedded stack), `sa demo` (the
walking skeleton over HTTP), `sa asyncapi` (the event contracts document), `sa db`
(migrations of one service) and `sa events` (a ministry's tail and export of the events).
Each service adds its own group through the `sa.cli` entry-point group in pyproject.toml
(`sa needs …`, `sa credit …`), so no service imports another and this module imports none
of them.

Start-up cost matters for a CLI, so nothing heavy is imported here: built-in commands import
what they need when they run, `token` is loaded only when used, and a service's CLI module is
imported only when its group is invoked or listed (`sa --help`). A service whose module
fails to import is skipped with a one-line warning on stderr; the rest of `sa` works.
"""

from __future__ import annotations

import importlib
import importlib.util
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    # typer 0.29 vendors click as `typer._click`; TyperGroup's methods speak its types (an
    # object of the separately installed `click` package would not fit in).
    from typer._click import Command, Context

ENTRY_POINT_GROUP = "sa.cli"
SERVICE_PANEL = "Service commands"


class ServiceName(StrEnum):
    """The platform's services (for `sa db`)."""

    needs = "needs"
    providers = "providers"
    matching = "matching"
    credit = "credit"


# --------------------------------------------------------------------------------------------
# Service sub-commands, discovered through entry points
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceCli:
    """One contribution to `sa`: `sa <name> …` comes from the object `target` names."""

    name: str
    target: str  # "module:attribute", for messages
    load: Callable[[], Any]  # imports the module and returns its typer.Typer


def discover_service_clis() -> list[ServiceCli]:
    """Every `sa.cli` entry point, without importing any of them."""
    from importlib.metadata import entry_points

    found = [
        ServiceCli(name=ep.name, target=ep.value, load=ep.load)
        for ep in entry_points(group=ENTRY_POINT_GROUP)
    ]
    return sorted(found, key=lambda s: s.name)


def _to_click(name: str, obj: Any) -> Command:
    """The command for `sa <name>`, built exactly as `app.add_typer(obj, name=name)` would."""
    if not isinstance(obj, typer.Typer):
        raise TypeError(f"expected a typer.Typer, got {type(obj).__name__}")
    holder = typer.Typer()
    holder.add_typer(obj, name=name)
    command = typer.main.get_group(holder).commands[name]
    if not getattr(command, "rich_help_panel", None):
        command.rich_help_panel = SERVICE_PANEL  # type: ignore[attr-defined]
    return command


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _LazyCommand(TyperGroup):
    """Stands in for a built-in group that is expensive to import (`sa token` needs FastAPI).

    Its help line is static; the real group is imported only when `sa <name>` runs.
    `make_context` hands over to the real command, so click then invokes that one.
    """

    def __init__(self, *, name: str, target: str, help: str) -> None:
        super().__init__(name=name, help=help, short_help=help)
        self._target = target
        self._real: Command | None = None

    def _load(self) -> Command:
        if self._real is None:
            module_name, _, attr = self._target.partition(":")
            obj = getattr(importlib.import_module(module_name), attr)
            self._real = _to_click(self.name or attr, obj)
            self._real.rich_help_panel = None  # type: ignore[attr-defined]
        return self._real

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Context | None = None,
        **extra: Any,
    ) -> Context:
        return self._load().make_context(info_name, args, parent=parent, **extra)


class SaGroup(TyperGroup):
    """The root group: built-in commands plus the services' groups, loaded on demand."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        token = _LazyCommand(
            name="token",
            target="libs.common.cli_token:app",
            help="Development tokens (HS256, for local use and tests only).",
        )
        events = _LazyCommand(
            name="events",
            target="libs.common.cli_events:app",
            help="The platform's events, read as a ministry: tail them, export them.",
        )
        # First in `sa --help`, as the command most people need first.
        self.commands = {"token": token, **self.commands, "events": events}
        self._services: dict[str, ServiceCli] | None = None
        self._loaded: dict[str, Command | None] = {}

    def _service_clis(self) -> dict[str, ServiceCli]:
        if self._services is None:
            self._services = {}
            for svc in discover_service_clis():
                if svc.name in self.commands:
                    _warn(f"ignoring the {svc.name!r} service commands: the name is built in")
                    continue
                self._services[svc.name] = svc
        return self._services

    def _service_command(self, name: str) -> Command | None:
        if name not in self._loaded:
            svc = self._service_clis()[name]
            try:
                self._loaded[name] = _to_click(name, svc.load())
            except (Exception, SystemExit) as exc:
                # A service being rewritten must not take `sa token` or `sa run` down with it.
                _warn(f"skipping the {name!r} commands ({svc.target}): {_one_line(exc)}")
                self._loaded[name] = None
        return self._loaded[name]

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *self._service_clis()]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        if cmd_name in self._service_clis():
            return self._service_command(cmd_name)
        return None


def _warn(message: str) -> None:
    typer.echo(f"sa: warning: {message}", err=True)


# --------------------------------------------------------------------------------------------
# The root and the built-in commands
# --------------------------------------------------------------------------------------------

app = typer.Typer(
    name="sa",
    cls=SaGroup,
    help="Social-assistance services marketplace: one command line for the whole platform.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@app.callback()
def _root() -> None:
    """Social-assistance services marketplace: one command line for the whole platform.

    Start everything with [bold]sa run[/], then try [bold]sa demo[/] in another terminal.
    """


@app.command()
def run(
    var_dir: Annotated[
        Path, typer.Option("--var-dir", help="Databases, JetStream storage, logs.")
    ] = Path("var"),
    nats_port: Annotated[
        int | None,
        typer.Option("--nats-port", help="nats-server port [default: 4250, or a free one]."),
    ] = None,
    base_port: Annotated[
        int, typer.Option("--base-port", help="Port of the first service; the others follow.")
    ] = 8001,
    service: Annotated[
        list[ServiceName] | None,
        typer.Option(
            "--service", "-s", help="Run only these services (repeat).", show_default=False
        ),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="Services' log level.")] = "info",
) -> None:
    """Run the platform locally: nats-server with JetStream and all services, until Ctrl-C."""
    from libs.common.stack import SERVICES, run_stack

    chosen = tuple(s.value for s in service) if service else SERVICES
    code = run_stack(
        var_dir=var_dir,
        nats_port=nats_port,
        base_port=base_port,
        services=chosen,
        log_level=log_level,
    )
    raise typer.Exit(code)


def _parse_urls(values: list[str]) -> dict[str, str]:
    urls = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not name or not url.startswith(("http://", "https://")):
            raise typer.BadParameter(f"expected NAME=http://host:port, got {value!r}")
        urls[name] = url
    return urls


@app.command()
def demo(
    var_dir: Annotated[
        Path, typer.Option("--var-dir", help="Where `sa run` keeps stack.json.")
    ] = Path("var"),
    url: Annotated[
        list[str] | None,
        typer.Option(
            "--url",
            help="Override a service URL, e.g. --url needs=http://127.0.0.1:8001 (repeat).",
            show_default=False,
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            envvar="SA_JWT_SECRET",
            help="HS256 secret [default: $SA_JWT_SECRET, else the development secret].",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for each asynchronous effect.")
    ] = 20.0,
) -> None:
    """Drive the walking skeleton over HTTP against the running stack, step by step."""
    from libs.common.demo import load_stack_urls, run_demo
    from libs.common.settings import DEV_JWT_SECRET

    overrides = _parse_urls(url or [])
    urls = None
    if overrides:
        try:
            urls = {**load_stack_urls(var_dir), **overrides}
        except Exception:
            urls = overrides  # every URL given explicitly: no running stack.json needed
    result = run_demo(urls=urls, var_dir=var_dir, secret=secret or DEV_JWT_SECRET, timeout=timeout)
    raise typer.Exit(0 if result.ok else 1)


@app.command()
def asyncapi(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Where the platform's document goes.")
    ] = Path("docs/asyncapi.json"),
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; fail if the file is stale.")
    ] = False,
    accept_breaking: Annotated[
        bool,
        typer.Option(
            "--accept-breaking",
            help="Overwrite even if a published event version changes incompatibly.",
        ),
    ] = False,
) -> None:
    """Generate the AsyncAPI 3 document of every event from the event registry."""
    from libs.common.contracts.command import generate

    code = generate(out, check=check, accept_breaking=accept_breaking, echo=typer.echo)
    raise typer.Exit(code)


@app.command()
def calendar(
    today: Annotated[
        str | None,
        typer.Option("--today", help="Look from this day (YYYY-MM-DD) [default: today in China]."),
    ] = None,
) -> None:
    """How far each province's working-day calendar reaches; exit 1 if one runs out soon.

    Deadlines counted in PRC working days (intake time limits, violation response windows,
    single-source publicity) are refused beyond it, so run this from monitoring.
    """
    import datetime as dt

    from rich.console import Console
    from rich.table import Table

    from libs.common.clock import today_in_china
    from libs.common.policy import calendar_horizons

    try:
        day = dt.date.fromisoformat(today) if today else today_in_china()
    except ValueError as exc:
        raise typer.BadParameter(
            f"expected YYYY-MM-DD, got {today!r}", param_hint="--today"
        ) from exc
    horizons = calendar_horizons(day)
    table = Table(title=f"Working-day calendars seen from {day}")
    for column in ("province", "known through", "days left", "status"):
        table.add_column(column)
    for h in horizons:
        status = "[red]runs out soon[/]" if h.running_out else "[green]ok[/]"
        table.add_row(h.province, str(h.known_through), str(h.days_left), status)
    console = Console()
    console.print(table)
    late = [h for h in horizons if h.running_out]
    for h in late:
        console.print(f"[yellow]{h.warning()}[/]")
    raise typer.Exit(1 if late else 0)


# --------------------------------------------------------------------------------------------
# sa db
# --------------------------------------------------------------------------------------------

db_app = typer.Typer(help="Database migrations of one service (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")


def migrations_dir(service: str) -> Path:
    """`services/<service>/migrations`, found through the installed package (not the cwd)."""
    spec = importlib.util.find_spec(f"services.{service}")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package services.{service} not found")
    path = Path(next(iter(spec.submodule_search_locations))) / "migrations"
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist")
    return path


def service_database_url(service: str) -> str:
    """The URL the service itself would use: `SA_<SERVICE>_DATABASE_URL` or its SQLite file."""
    import os

    return os.environ.get(f"SA_{service.upper()}_DATABASE_URL") or (
        f"sqlite+aiosqlite:///var/{service}.db"
    )


def _migrations_or_exit(service: str) -> Path:
    try:
        return migrations_dir(service)
    except FileNotFoundError as exc:
        typer.echo(f"sa: error: {exc}", err=True)
        raise typer.Exit(1) from None


@db_app.command("revision")
def db_revision(
    service: Annotated[ServiceName, typer.Argument(help="Service whose models changed.")],
    message: Annotated[str, typer.Option("--message", "-m", help="What the revision does.")],
) -> None:
    """Autogenerate a revision: the service's models compared with a fresh, upgraded database."""
    from libs.common.migrations import make_revision

    location = _migrations_or_exit(service.value)
    # A scratch database at head, so the revision holds only the model changes and never
    # depends on the state of the developer's var/ database.
    with tempfile.TemporaryDirectory(prefix=f"sa-{service.value}-rev-") as tmp:
        make_revision(
            database_url=f"sqlite:///{Path(tmp) / 'revision.db'}",
            script_location=location,
            message=message,
        )


@db_app.command("upgrade")
def db_upgrade(
    service: Annotated[ServiceName, typer.Argument(help="Service to migrate.")],
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Default: $SA_<SERVICE>_DATABASE_URL, else sqlite+aiosqlite:///var/<service>.db",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Bring the service's database to the newest revision (services also do it at start)."""
    from libs.common.migrations import upgrade_to_head

    location = _migrations_or_exit(service.value)
    url = database_url or service_database_url(service.value)
    upgrade_to_head(database_url=url, script_location=location)
    typer.echo(f"{service.value}: database at head ({_redact(url)})")


def _redact(url: str) -> str:
    """The URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<database url>"


def main() -> None:
    """Entry point of the `sa` console script."""
    app(prog_name="sa")


if __name__ == "__main__":
    main()
