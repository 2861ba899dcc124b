"""`sa credit …` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Credit service: admission, sanctions and repair", no_args_is_help=True)


@app.command()
def serve() -> None:
    """Run the credit service alone (settings from SA_CREDIT_* variables)."""
    from libs.common.service import serve as serve_app
    from services.credit.app import create_app
    from services.credit.settings import CreditSettings

    settings = CreditSettings()
    serve_app(create_app(settings), settings)


@app.command()
def migrate() -> None:
    """Apply the credit database migrations."""
    from libs.common.migrations import upgrade_to_head
    from services.credit.app import MIGRATIONS
    from services.credit.settings import CreditSettings

    upgrade_to_head(database_url=CreditSettings().database_url, script_location=MIGRATIONS)
    typer.echo("credit database is at the newest revision")
