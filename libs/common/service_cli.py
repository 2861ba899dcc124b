"""The commands every service contributes to `sa <service>`: serve it alone, migrate it.

Imports of the service happen inside the commands so `sa --help` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from fastapi import FastAPI


def service_cli(name: str, *, help: str) -> typer.Typer:
    app = typer.Typer(help=help, no_args_is_help=True)

    def _create_app() -> FastAPI:
        app: FastAPI = importlib.import_module(f"services.{name}.app").create_app()
        return app

    @app.command()
    def serve() -> None:
        """Run this service alone (settings from its SA_<SERVICE>_* variables)."""
        from libs.common.service import serve as serve_app

        fastapi_app = _create_app()
        serve_app(fastapi_app, fastapi_app.state.runtime.settings)

    @app.command()
    def migrate() -> None:
        """Apply this service's database migrations (idempotent)."""
        from libs.common.migrations import upgrade_to_head

        runtime = _create_app().state.runtime
        upgrade_to_head(
            database_url=runtime.settings.database_url, script_location=runtime.migrations
        )
        typer.echo(f"{name} database is at the newest revision")

    return app
