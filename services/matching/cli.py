"""`sa matching …` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Matching service: the market and allocation", no_args_is_help=True)


@app.command()
def serve() -> None:
    """Run the matching service alone (settings from SA_MATCHING_* variables)."""
    from libs.common.service import serve as serve_app
    from services.matching.app import create_app
    from services.matching.settings import MatchingSettings

    settings = MatchingSettings()
    serve_app(create_app(settings), settings)


@app.command()
def migrate() -> None:
    """Apply the matching database migrations."""
    from libs.common.migrations import upgrade_to_head
    from services.matching.app import MIGRATIONS
    from services.matching.settings import MatchingSettings

    upgrade_to_head(database_url=MatchingSettings().database_url, script_location=MIGRATIONS)
    typer.echo("matching database is at the newest revision")
