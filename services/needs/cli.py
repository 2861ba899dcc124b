"""`sa needs …` commands."""

from __future__ import annotations

import asyncio

import typer

from libs.common.service_cli import service_cli

app = service_cli("needs", help="Needs service: recipients, assessments, needs, intake, caseload")


def _import_command() -> None:
    # Registered lazily so `sa --help` does not import the importer (openpyxl, the ORM).
    from services.needs.import_cli import import_file

    app.command("import", help="Import recipients from CSV or XLSX (idempotent).")(import_file)


_import_command()


@app.command()
def caseload(
    region: str = typer.Option(..., help="Region prefix (2–12 digits), e.g. 2201 or 330106"),
    database_url: str | None = typer.Option(None, help="Overrides SA_NEEDS_DATABASE_URL"),
) -> None:
    """Per township: recipients by category, open needs and the staff the pack requires."""
    from rich.console import Console
    from rich.table import Table

    from libs.common.db import Database
    from services.needs.caseload.service import TownshipCaseload
    from services.needs.caseload.service import caseload as load
    from services.needs.settings import NeedsSettings

    if not region.isdigit() or not 2 <= len(region) <= 12:
        raise typer.BadParameter("a region prefix is 2 to 12 digits", param_hint="--region")
    url = database_url or NeedsSettings().database_url

    async def run() -> list[TownshipCaseload]:
        db = Database(url)
        try:
            return await load(db=db, scope=region)
        finally:
            await db.dispose()

    rows = asyncio.run(run())
    table = Table(title=f"Caseload in {region}")
    for column in ("township", "name", "recipients", "by category", "open needs", "staff required"):
        table.add_column(
            column, justify="right" if column in ("recipients", "open needs") else "left"
        )
    for r in rows:
        table.add_row(
            r.township,
            r.county_name or "",
            str(r.recipients),
            ", ".join(f"{k} {v}" for k, v in r.by_category.items()),
            str(r.open_needs),
            "—" if r.required_workers is None else str(r.required_workers),
        )
    Console().print(table)
    if not rows:
        typer.echo("no recipients in that region")
