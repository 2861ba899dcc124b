"""`sa needs import FILE`: bulk-register recipients from a CSV or XLSX file.

Only the database is needed: the command migrates the needs database and writes to it
directly (no HTTP, no NATS). It prints a progress bar while importing, a summary table, and
writes the per-row error report (row, field, reason) next to the file. Safe to run again:
people already registered are counted, not added twice.

Exit status: 0 every row is registered (now or before), 1 some rows are invalid (see the
report), 2 the file cannot be imported at all (format, encoding, header).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the service modules load only when a command runs (`sa --help` is fast)
    from libs.common.auth import Principal
    from services.needs.importer import ImportReport
    from services.needs.settings import NeedsSettings

#: Errors listed on screen; the report file has them all.
SHOWN_ERRORS = 20


class RateColumn(ProgressColumn):
    """Rows per second, as rich measures it over its recent updates."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "– rows/s", style="progress.data.speed")


def default_report_path(path: Path) -> Path:
    """`recipients.xlsx` → `recipients.xlsx.errors.csv` (the full name: a .csv and an .xlsx
    of the same stem keep separate reports)."""
    return path.with_name(f"{path.name}.errors.csv")


def import_file(
    path: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="The .csv or .xlsx file to import."
        ),
    ],
    report: Annotated[
        Path | None,
        typer.Option(help="Where to write the error report (default: <file>.errors.csv)."),
    ] = None,
    region: Annotated[
        str,
        typer.Option(help="Only accept rows inside this division-code prefix (default: all)."),
    ] = "",
    as_subject: Annotated[
        str, typer.Option(help="Who the records are created by (recorded on each recipient).")
    ] = "import-cli",
    database_url: Annotated[
        str | None,
        typer.Option(help="The needs database (default: SA_NEEDS_DATABASE_URL / settings)."),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 500,
) -> None:
    """Import recipients (救助对象) from a CSV or XLSX file; safe to run again."""
    from libs.common.auth import Principal, Role
    from services.needs.importer import ImportFileError, count_rows, read_rows
    from services.needs.settings import NeedsSettings

    console = Console()
    try:
        actor = Principal(subject=as_subject, role=Role.operator, region=region)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--region") from None
    settings = NeedsSettings(database_url=database_url) if database_url else NeedsSettings()
    report_path = report or default_report_path(path)
    try:
        rows = read_rows(path)
        # The header is read first: a file that cannot be imported is refused before the
        # database is touched.
        first = next(rows, None)
        result = asyncio.run(
            _run(
                settings,
                actor=actor,
                rows=itertools.chain([first] if first else [], rows),
                total=count_rows(path),
                batch_size=batch_size,
            )
        )
    except ImportFileError as exc:
        Console(stderr=True).print(
            f"[bold red]cannot import {escape(path.name)}:[/] {escape(str(exc))}"
        )
        raise typer.Exit(2) from None
    result.to_csv(report_path)
    _print_summary(console, result, report_path)
    if not result.ok:
        raise typer.Exit(1)


async def _run(
    settings: NeedsSettings,
    *,
    actor: Principal,
    rows: Iterable[tuple[int, dict[str, str]]],
    total: int | None,
    batch_size: int,
) -> ImportReport:
    from libs.common.service import ServiceRuntime
    from services.needs.app import MIGRATIONS
    from services.needs.importer import import_recipients
    from services.needs.models import event_tables, metadata
    from services.needs.service import PersonalData

    runtime = ServiceRuntime(
        settings, metadata=metadata, tables=event_tables, migrations=MIGRATIONS
    )
    try:
        # Events (none today) would stay in the outbox for the service's own relay.
        await runtime.migrate()
        progress = Progress(
            TextColumn("[bold]importing"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
        )
        with progress:
            task = progress.add_task("import", total=total)
            result = await import_recipients(
                runtime=runtime,
                pd=PersonalData.from_settings(settings),
                actor=actor,
                rows=rows,
                batch_size=batch_size,
                on_progress=lambda n: progress.update(task, completed=n),
            )
            progress.update(task, total=result.total, completed=result.total)
        return result
    finally:
        await runtime.stop()


def _print_summary(console: Console, result: ImportReport, report_path: Path) -> None:
    rate = result.total / result.seconds if result.seconds else 0.0
    summary = Table(title="import summary", title_justify="left", show_header=False)
    summary.add_column()
    summary.add_column(justify="right")
    summary.add_row("rows read", f"{result.total:,}")
    summary.add_row("imported", f"[green]{result.imported:,}[/]")
    summary.add_row("already registered", f"{result.already_registered:,}")
    summary.add_row("invalid", f"[red]{result.invalid:,}[/]" if result.invalid else "0")
    summary.add_row("seconds", f"{result.seconds:.1f}")
    summary.add_row("rows per second", f"{rate:,.0f}")
    console.print(summary)
    if result.errors:
        errors = Table(title="errors", title_justify="left")
        errors.add_column("row", justify="right")
        errors.add_column("field")
        errors.add_column("reason")
        for e in result.errors[:SHOWN_ERRORS]:
            # Text, not markup: a reason may hold brackets ("[redacted]", a header's name).
            errors.add_row(str(e.row), e.field, Text(e.reason))
        console.print(errors)
        more = len(result.errors) - SHOWN_ERRORS
        if more > 0:
            console.print(f"… and {more:,} more")
    console.print(f"error report: {report_path}")
