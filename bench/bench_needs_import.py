"""Bulk import of recipients (`sa needs import`): recipients imported per second.

A generated file of N valid rows (default 10,000; Chinese headers, UTF-8 with BOM, as an
office exports it; about 5 % children with a consenting guardian, a third with phone and
address) is imported, per database backend (SQLite always, PostgreSQL when DATABASE_URL is
set), through `services.needs.importer` exactly as the CLI does it, minus the progress bar:
a fresh, migrated database, validation of every row with the registration rules, sealing
of the personal fields, one transaction per batch of 500.

Figures:

* import into the fresh database (the headline: recipients imported per second);
* the same file again: every row must come back `already_registered` and the table keep
  N rows (the blind index makes the import idempotent), so this is validation plus one
  look-up per batch;
* parts: reading the file alone (`read_rows`), CSV and the same rows as XLSX.

Peak RSS is the process's (it includes whatever ran before in `python -m bench`);
`extra.rss_growth_mb` is the import's own growth of the resident set. A run where a count
is wrong is a FAIL. N: BENCH_NEEDS_IMPORT_N (or `--n`).
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import openpyxl
from sqlalchemy import func, select
from stdnum.cn import ric

from bench.common import BenchContext, Figure, console, env_int, rss_mb
from libs.common.auth import Principal, Role
from libs.common.service import ServiceRuntime
from services.needs.app import MIGRATIONS
from services.needs.importer import ImportReport, import_recipients, read_rows
from services.needs.models import Recipient, event_tables, metadata
from services.needs.service import PersonalData
from services.needs.settings import NeedsSettings

NAME = "needs_import"
DESCRIPTION = "sa needs import: recipients imported per second from a 10,000-row CSV"

DEFAULT_N = 10_000
BATCH_SIZE = 500  # the CLI's default
SEED = 20261123  # the same file every run, so runs compare

HEADER = ["身份证号", "姓名", "行政区划代码", "救助类别", "联系电话", "住址", "家庭人口"]
GUARDIAN_HEADER = ["监护人姓名", "监护关系", "监护人电话", "监护人同意"]
VILLAGES = ["220102001001", "220102002003", "220104001001", "220104003002"]  # Jilin pack
ADULT_CATEGORIES = ["tekun", "dibao", "dibao;medical_aid", "特困人员", "temporary_aid"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂"


# --------------------------------------------------------------------------- the file


def resident_id(rng: random.Random, *, year: int, county: str = "220102") -> str:
    """A valid 18-character resident ID (as tests.factories makes them)."""
    born = f"{year:04d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = f"{county}{born}{rng.randint(0, 999):03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum expects a placeholder digit


def generate_rows(n: int, *, seed: int = SEED) -> Iterator[list[str]]:
    """N valid rows with N different people (file columns: HEADER + GUARDIAN_HEADER)."""
    rng = random.Random(seed)
    this_year = date.today().year
    seen: set[str] = set()
    made = 0
    while made < n:
        child = rng.random() < 0.05
        year = this_year - rng.randint(3, 12) if child else rng.randint(1935, 2000)
        id_number = resident_id(rng, year=year)
        if id_number in seen:
            continue  # a file with the same person twice would not be "N valid rows"
        seen.add(id_number)
        made += 1
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2)))
        contact = rng.random() < 1 / 3
        row = [
            id_number,
            name,
            rng.choice(VILLAGES),
            "child_in_difficulty" if child else rng.choice(ADULT_CATEGORIES),
            f"138{rng.randint(0, 99_999_999):08d}" if contact else "",
            f"长春市南关区幸福街{rng.randint(1, 200)}号" if contact else "",
            str(rng.randint(1, 6)),
        ]
        guardian = (
            [name[0] + "父", "父亲", f"139{rng.randint(0, 99_999_999):08d}", "是"]
            if child
            else ["", "", "", ""]
        )
        yield row + guardian


def write_csv(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER + GUARDIAN_HEADER)
        writer.writerows(generate_rows(n))
    return path


def write_xlsx(path: Path, n: int) -> Path:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(HEADER + GUARDIAN_HEADER)
    for row in generate_rows(n):
        sheet.append([cell or None for cell in row])
    workbook.save(path)
    return path


# --------------------------------------------------------------------------- measuring


async def stored_count(runtime: ServiceRuntime) -> int:
    async with runtime.db.session() as session:
        total = await session.execute(select(func.count()).select_from(Recipient))
    return int(total.scalar_one())


def read_only(ctx: BenchContext, path: Path, n: int, label: str) -> Figure:
    """Rows per second of `read_rows` alone: the parsing share of an import."""
    with ctx.measure() as m:
        rows = sum(1 for _ in read_rows(path))
    fig = m.figure(bench=NAME, name=label, backend="file", count=rows, unit="rows")
    if rows != n:
        fig.ok = False
        ctx.fail(f"{label}: read {rows} rows, want {n}")
    return fig


async def import_figures(ctx: BenchContext, backend: str, path: Path, n: int) -> list[Figure]:
    """Import the file into a fresh database, then again; check the counts both times."""
    async with ctx.fresh_database(backend, "needs-import") as url:
        settings = NeedsSettings(database_url=url, environment="test")
        runtime = ServiceRuntime(
            settings, metadata=metadata, tables=event_tables, migrations=MIGRATIONS
        )
        pd = PersonalData.from_settings(settings)
        actor = Principal(subject="bench-import", role=Role.operator, region="")
        figures: list[Figure] = []
        try:
            await runtime.migrate()  # set-up, not timed
            for label, want_new in (("import, fresh database", n), ("re-run (idempotent)", 0)):
                rss_before = rss_mb()
                with ctx.measure() as m:
                    report = await import_recipients(
                        runtime=runtime,
                        pd=pd,
                        actor=actor,
                        rows=read_rows(path),
                        batch_size=BATCH_SIZE,
                    )
                stored = await stored_count(runtime)
                fig = m.figure(
                    bench=NAME,
                    name=label,
                    backend=backend,
                    count=report.total,
                    unit="rows",
                    note=f"validate + seal + insert, {BATCH_SIZE} rows / commit"
                    if want_new
                    else "validate + look up, nothing written",
                )
                fig.extra.update(
                    imported=report.imported,
                    already_registered=report.already_registered,
                    invalid=report.invalid,
                    stored=stored,
                    rss_growth_mb=round(rss_mb() - rss_before, 1),
                )
                check(ctx, fig, report, stored=stored, n=n, want_new=want_new)
                figures.append(fig)
            figures[1].compare_to(figures[0])
        finally:
            await runtime.stop()
    return figures


def check(
    ctx: BenchContext, fig: Figure, report: ImportReport, *, stored: int, n: int, want_new: int
) -> None:
    got = (report.total, report.imported, report.already_registered, report.invalid, stored)
    want = (n, want_new, n - want_new, 0, n)
    if got != want:
        fig.ok = False
        ctx.fail(
            f"{fig.name} ({fig.backend}): (rows, imported, already registered, invalid, "
            f"stored) = {got}, want {want}; first errors {report.errors[:3]}"
        )


async def run(ctx: BenchContext) -> list[Figure]:
    """The import and its re-run on each database backend, then the reading parts."""
    n = ctx.n_override or env_int("BENCH_NEEDS_IMPORT_N", DEFAULT_N)
    csv_path = write_csv(ctx.tmp / "recipients.csv", n)
    xlsx_path = write_xlsx(ctx.tmp / "recipients.xlsx", n)
    console.print(
        f"[dim]needs import: {n:,} rows ({csv_path.stat().st_size / 1e6:.1f} MB CSV), "
        f"batches of {BATCH_SIZE}, backends {', '.join(ctx.database_backends())}[/]"
    )
    figures: list[Figure] = []
    for backend in ctx.database_backends():
        figures += await import_figures(ctx, backend, csv_path, n)
    read_csv = read_only(ctx, csv_path, n, "  part: read CSV")
    read_xlsx = read_only(ctx, xlsx_path, n, "  part: read XLSX")
    figures += [read_csv, read_xlsx.compare_to(read_csv)]
    return figures


__all__ = ["DESCRIPTION", "NAME", "run"]
