"""`sa needs …` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Needs service: recipients, needs, intake", no_args_is_help=True)


@app.command()
def serve() -> None:
    """Run the needs service alone (settings from SA_NEEDS_* variables)."""
    from libs.common.service import serve as serve_app
    from services.needs.app import create_app
    from services.needs.settings import NeedsSettings

    settings = NeedsSettings()
    serve_app(create_app(settings), settings)


@app.command()
def migrate() -> None:
    """Apply the needs database migrations."""
    from libs.common.migrations import upgrade_to_head
    from services.needs.app import MIGRATIONS
    from services.needs.settings import NeedsSettings

    upgrade_to_head(database_url=NeedsSettings().database_url, script_location=MIGRATIONS)
    typer.echo("needs database is at the newest revision")
