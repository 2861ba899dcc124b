"""`sa providers …` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Providers service: the resource library", no_args_is_help=True)


@app.command()
def serve() -> None:
    """Run the providers service alone (settings from SA_PROVIDERS_* variables)."""
    from libs.common.service import serve as serve_app
    from services.providers.app import create_app
    from services.providers.settings import ProvidersSettings

    settings = ProvidersSettings()
    serve_app(create_app(settings), settings)


@app.command()
def migrate() -> None:
    """Apply the providers database migrations."""
    from libs.common.migrations import upgrade_to_head
    from services.providers.app import MIGRATIONS
    from services.providers.settings import ProvidersSettings

    upgrade_to_head(database_url=ProvidersSettings().database_url, script_location=MIGRATIONS)
    typer.echo("providers database is at the newest revision")
