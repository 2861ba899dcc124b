"""`python -m services.matching.ocds export --out FILE`: the OCDS data to a file.

Reads the matching database named by the service's settings (`SA_MATCHING_DATABASE_URL`);
the releases are those the running service has stored. `--records` writes a record package
(one compiled record per process) instead of a release package; `--since` continues an
earlier export from the cursor it printed.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from libs.common.db import Database
from libs.common.feed import decode_cursor, encode_cursor
from services.matching.ocds import service
from services.matching.ocds.settings import ocds_settings

app = typer.Typer(help="OCDS 1.1 export of the purchasing processes", no_args_is_help=True)


@app.callback()
def main() -> None:
    """OCDS 1.1 export of the purchasing processes (one group, so `export` stays a command)."""


async def collect(
    *, database_url: str, uri: str, records: bool, since: str | None, publisher: str
) -> tuple[dict[str, Any], int, str]:
    """The package to write, how many releases or records it holds, and the cursor to
    continue from (empty for a record package)."""
    db = Database(database_url)
    try:
        if records:
            compiled = [await service.compiled_record(db, o) for o in await service.all_ocids(db)]
            package = service.record_package(compiled, uri=uri, publisher_name=publisher)
            return package, len(compiled), ""
        after = decode_cursor(since, field="--since")
        documents: list[dict[str, Any]] = []
        while True:
            entries, more = await service.read_releases(db, after=after, limit=500)
            documents += [e.document for e in entries]
            after = entries[-1].seq if entries else after
            if not more:
                break
        package = service.release_package(documents, uri=uri, publisher_name=publisher)
        return package, len(documents), encode_cursor(after)
    finally:
        await db.dispose()


def write(package: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(package, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(out)  # a reader never sees half a file


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Option("--out", help="File to write (JSON)")],
    records: Annotated[bool, typer.Option("--records", help="A record package")] = False,
    since: Annotated[
        str | None, typer.Option("--since", help="Cursor of a previous export")
    ] = None,
) -> None:
    """Write every stored release (or every compiled record) as an OCDS 1.1 package."""
    from services.matching.settings import MatchingSettings

    settings = MatchingSettings()
    package, count, cursor = asyncio.run(
        collect(
            database_url=settings.database_url,
            uri=out.resolve().as_uri(),
            records=records,
            since=since,
            publisher=ocds_settings(settings).ocds_publisher,
        )
    )
    write(package, out)
    kind = "records" if records else "releases"
    typer.echo(
        f"wrote {count} {kind} to {out}" + (f"; continue with --since {cursor}" if cursor else "")
    )
