"""Bulk import of recipients (`services.needs.importer`, `sa needs import`) on a real
database: the per-row report with the row numbers a person sees, valid rows in and invalid
rows out, idempotent re-runs, CSV (UTF-8, BOM, GB18030) and XLSX with English or Chinese
headers, and no ID number or name in the report, the logs or the database."""

from __future__ import annotations

import asyncio
import csv
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from libs.common.auth import Principal, Role
from libs.common.service import ServiceRuntime
from services.needs.app import MIGRATIONS
from services.needs.import_cli import import_file
from services.needs.importer import (
    ImportFileError,
    ImportReport,
    RowError,
    import_recipients,
    read_rows,
)
from services.needs.models import ConsentRecord, Recipient, event_tables, metadata
from services.needs.service import PersonalData
from services.needs.settings import NeedsSettings
from tests import factories

EN = [
    "id_number",
    "name",
    "region_code",
    "categories",
    "phone",
    "address",
    "household_size",
    "disability_level",
    "guardian_name",
    "guardian_relation",
    "guardian_phone",
    "guardian_consent",
]
ZH = [
    "身份证号",
    "姓名",
    "行政区划代码",
    "救助类别",
    "联系电话",
    "住址",
    "家庭人口",
    "残疾等级",
    "监护人姓名",
    "监护关系",
    "监护人电话",
    "监护人同意",
]
VILLAGE = "220102001001"  # a village in 长春市南关区 (the Jilin pack)
NAMES = ["王小明", "李秀英", "赵建国", "钱桂兰", "孙志强", "周丽华", "吴子涵", "郑国庆", "冯德胜"]


def child_id(years: int) -> str:
    return factories.resident_id(year=date.today().year - years)


def bad_check_digit(id_number: str) -> str:
    return id_number[:-1] + ("1" if id_number[-1] == "0" else "0")


def person(name: str, **fields: Any) -> dict[str, Any]:
    """One row as the file holds it (every column text; "" for an empty cell)."""
    row = {c: "" for c in EN}
    row.update(
        id_number=factories.resident_id(), name=name, region_code=VILLAGE, categories="tekun"
    )
    row.update(fields)
    return row


def sample() -> tuple[list[dict[str, str]], list[RowError]]:
    """Nine data rows (file rows 2-10) and the errors the report must list for them."""
    first = person(NAMES[0])
    rows = [
        first,  # 2 valid
        person(  # 3 valid, every optional column filled
            NAMES[1],
            categories="dibao；medical_aid",
            phone="13812345678",
            address="长春市南关区幸福街1号",
            household_size="3",
            disability_level="二级",
        ),
        person(NAMES[2], id_number=bad_check_digit(factories.resident_id())),  # 4
        person(NAMES[3], categories="tekun、unicorn"),  # 5 unknown category
        person(NAMES[4], id_number=child_id(10), categories="困境儿童"),  # 6 child, no guardian
        person("", categories="dibao"),  # 7 name missing
        person(NAMES[5], id_number=first["id_number"]),  # 8 same person as row 2
        person(  # 9 valid child: guardian who consents
            NAMES[6],
            id_number=child_id(9),
            categories="child_in_difficulty",
            guardian_name="吴父",
            guardian_relation="父亲",
            guardian_phone="13900000000",
            guardian_consent="是",
        ),
        person(NAMES[7], categories="特困人员|医疗救助对象"),  # 10 valid, Chinese category names
    ]
    errors = [
        RowError(4, "id_number", "check digit does not match"),
        RowError(5, "categories", "'unicorn' is not a jilin category"),
        RowError(6, "guardian_name", "a recipient under 14 needs a guardian"),
        RowError(7, "name", "missing value"),
        RowError(8, "id_number", "the same person as row 2"),
    ]
    return rows, errors


def write_csv(
    path: Path, rows: Sequence[dict[str, str]], *, header: Sequence[str] = EN, encoding: str
) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows([row[c] for c in EN] for row in rows)
    return path


def write_xlsx(path: Path, rows: Sequence[dict[str, Any]], *, header: Sequence[str] = EN) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(header))
    for row in rows:
        sheet.append([row[c] if row[c] != "" else None for c in EN])
    workbook.save(path)
    return path


def assert_errors(report: ImportReport, expected: Sequence[RowError]) -> None:
    """Same rows and fields in order; each expected reason is the start of the actual one."""
    got = [(e.row, e.field) for e in report.errors]
    assert got == [(e.row, e.field) for e in expected], report.errors
    for actual, want in zip(report.errors, expected, strict=True):
        assert want.reason in actual.reason, (actual, want)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def settings(database_url_factory: Callable[[str], str]) -> NeedsSettings:
    return NeedsSettings(database_url=database_url_factory("import"), environment="test")


@pytest.fixture
async def runtime(settings: NeedsSettings) -> AsyncIterator[ServiceRuntime]:
    # The database only: an import needs no NATS, and starts none of the event tasks.
    rt = ServiceRuntime(settings, metadata=metadata, tables=event_tables, migrations=MIGRATIONS)
    await rt.migrate()
    yield rt
    await rt.stop()


@pytest.fixture
def pd(settings: NeedsSettings) -> PersonalData:
    return PersonalData.from_settings(settings)


OPERATOR = Principal(subject="test-import", role=Role.operator, region="")


async def run_import(
    runtime: ServiceRuntime,
    pd: PersonalData,
    path: Path,
    *,
    actor: Principal = OPERATOR,
    **kw: Any,
) -> ImportReport:
    return await import_recipients(runtime=runtime, pd=pd, actor=actor, rows=read_rows(path), **kw)


async def count(runtime: ServiceRuntime, model: type[Any]) -> int:
    async with runtime.db.session() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("kind", ["csv", "csv-bom", "xlsx"])
async def test_valid_rows_in_invalid_rows_reported_and_a_rerun_adds_nothing(
    runtime: ServiceRuntime, pd: PersonalData, tmp_path: Path, kind: str
) -> None:
    rows, expected = sample()
    if kind == "xlsx":
        path = write_xlsx(tmp_path / "recipients.xlsx", rows)
    else:
        encoding = "utf-8-sig" if kind == "csv-bom" else "utf-8"
        path = write_csv(tmp_path / "recipients.csv", rows, encoding=encoding)
    seen: list[int] = []
    report = await run_import(runtime, pd, path, on_progress=seen.append)
    assert (report.total, report.imported, report.already_registered, report.invalid) == (
        9,
        4,
        0,
        5,
    )
    assert_errors(report, expected)
    assert seen and seen[-1] == 9 and seen == sorted(seen)
    assert await count(runtime, Recipient) == 4
    assert await count(runtime, ConsentRecord) == 1  # the guardian's, for the child

    again = await run_import(runtime, pd, path)
    assert (again.total, again.imported, again.already_registered, again.invalid) == (
        9,
        0,
        4,
        5,
    )
    assert again.errors == report.errors
    assert await count(runtime, Recipient) == 4
    assert await count(runtime, ConsentRecord) == 1


async def test_rows_are_stored_as_register_recipient_stores_them(
    runtime: ServiceRuntime, pd: PersonalData, tmp_path: Path
) -> None:
    rows, _ = sample()
    path = write_csv(tmp_path / "r.csv", rows, encoding="utf-8")
    await run_import(runtime, pd, path)
    async with runtime.db.session() as session:
        stored = {
            pd.open(r.ref, "name", r.name_enc): r
            for r in (await session.execute(select(Recipient))).scalars()
        }
    assert set(stored) == {NAMES[0], NAMES[1], NAMES[6], NAMES[7]}
    full = stored[NAMES[1]]
    assert full.categories == ["dibao", "medical_aid"]
    assert pd.open(full.ref, "id_number", full.id_number_enc) == rows[1]["id_number"]
    assert pd.open(full.ref, "phone", full.phone_enc) == "13812345678"
    assert pd.open(full.ref, "address", full.address_enc) == "长春市南关区幸福街1号"
    assert (full.household_size, full.disability_level) == (3, "2")
    assert (full.status, full.version, full.created_by) == ("active", 1, "test-import")
    child = stored[NAMES[6]]
    assert child.guardian_relation == "父亲"
    assert pd.open(child.ref, "guardian_name", child.guardian_name_enc) == "吴父"
    assert stored[NAMES[7]].categories == ["tekun", "medical_aid"]


async def test_gb18030_csv_with_chinese_headers(
    runtime: ServiceRuntime, pd: PersonalData, tmp_path: Path
) -> None:
    rows, expected = sample()
    path = write_csv(tmp_path / "救助对象.csv", rows, header=ZH, encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        path.read_text(encoding="utf-8")  # really not UTF-8
    report = await run_import(runtime, pd, path)
    assert (report.imported, report.invalid) == (4, 5)
    assert_errors(report, expected)
    async with runtime.db.session() as session:
        names = {
            pd.open(r.ref, "name", r.name_enc)
            for r in (await session.execute(select(Recipient))).scalars()
        }
    assert names == {NAMES[0], NAMES[1], NAMES[6], NAMES[7]}  # decoded, not mojibake


async def test_xlsx_with_chinese_headers_blank_rows_and_spreadsheet_values(
    runtime: ServiceRuntime, pd: PersonalData, tmp_path: Path
) -> None:
    rows: list[dict[str, Any]] = [
        person(NAMES[0], household_size=2),  # 2: a number cell
        {c: "" for c in EN},  # 3: blank, still counted
        person(NAMES[1], guardian_name="李母", guardian_relation="母亲", guardian_consent=True),
        # 5: an ID typed as a number: Excel keeps 15 significant digits
        person(NAMES[2], id_number=int(factories.resident_id()[:17] + "1")),
    ]
    path = write_xlsx(tmp_path / "r.xlsx", rows, header=[f" {h} " for h in ZH])
    report = await run_import(runtime, pd, path)
    assert (report.total, report.imported, report.invalid) == (3, 2, 1)
    assert report.errors == [
        RowError(
            5,
            "id_number",
            "the ID number was stored as a number, which keeps only 15 significant digits; "
            "format the column as text and enter the number again",
        )
    ]


async def test_rows_outside_the_importers_region_are_refused(
    runtime: ServiceRuntime, pd: PersonalData, tmp_path: Path
) -> None:
    rows = [person(NAMES[0]), person(NAMES[1], region_code="330106001001")]
    path = write_csv(tmp_path / "r.csv", rows, encoding="utf-8")
    county = Principal(subject="test-import", role=Role.purchaser, region="330106")
    report = await run_import(runtime, pd, path, actor=county)
    assert (report.imported, report.invalid) == (1, 1)
    assert [(e.row, e.field) for e in report.errors] == [(2, "region_code")]


async def test_small_batches_with_some_people_already_registered(
    runtime: ServiceRuntime, pd: PersonalData, tmp_path: Path
) -> None:
    rows = [person(name) for name in NAMES]
    await run_import(runtime, pd, write_csv(tmp_path / "first.csv", rows[2:5], encoding="utf-8"))
    path = write_csv(tmp_path / "all.csv", rows, encoding="utf-8")
    report = await run_import(runtime, pd, path, batch_size=2)
    assert (report.total, report.imported, report.already_registered, report.invalid) == (
        9,
        6,
        3,
        0,
    )
    assert await count(runtime, Recipient) == 9


async def test_two_imports_at_once_register_each_person_once(
    runtime: ServiceRuntime, pd: PersonalData, tmp_path: Path
) -> None:
    rows = [person(f"{NAMES[i % len(NAMES)]}{i}") for i in range(60)]
    path = write_csv(tmp_path / "r.csv", rows, encoding="utf-8")
    first, second = await asyncio.gather(
        run_import(runtime, pd, path, batch_size=7), run_import(runtime, pd, path, batch_size=5)
    )
    assert first.imported + second.imported == 60
    assert first.already_registered + second.already_registered == 60
    assert first.invalid == second.invalid == 0
    assert await count(runtime, Recipient) == 60


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ([*EN[:4], "身高", "notes"], "unknown columns: '身高', 'notes'"),
        (["id_number", "name", "region_code"], "missing columns: categories"),
        ([*EN[:4], "身份证号"], "both mean id_number"),
    ],
)
async def test_a_bad_header_refuses_the_whole_file(
    runtime: ServiceRuntime,
    pd: PersonalData,
    tmp_path: Path,
    header: list[str],
    message: str,
) -> None:
    path = tmp_path / "r.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([header, [factories.resident_id(), "王五", VILLAGE, "tekun"]])
    with pytest.raises(ImportFileError, match=message):
        await run_import(runtime, pd, path)
    assert await count(runtime, Recipient) == 0


async def test_no_id_number_or_name_in_the_report_the_logs_or_the_database(
    runtime: ServiceRuntime,
    pd: PersonalData,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    rows, _ = sample()
    # Rows that invite echoing the input: a wrong ID in every way, a name in the wrong place.
    rows += [
        person(NAMES[8], id_number="２２" + bad_check_digit(rows[0]["id_number"])[2:]),
        person(NAMES[8], id_number=rows[1]["id_number"] + "1"),
        person(NAMES[8], categories=rows[2]["id_number"]),
        person(NAMES[8], phone=rows[3]["id_number"] + "x"),
        person("很" * 60),
    ]
    path = write_csv(tmp_path / "r.csv", rows, encoding="utf-8")
    report = await run_import(runtime, pd, path)
    await run_import(runtime, pd, path)
    report_file = report.to_csv(tmp_path / "r.csv.errors.csv")
    written = report_file.read_text(encoding="utf-8-sig")
    assert written.splitlines()[0] == "row,field,reason"
    assert len(written.splitlines()) == 1 + len(report.errors) == 1 + 10
    if runtime.db.is_sqlite:
        db_file = Path(runtime.db.engine.url.database or "")
        stored = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
    else:
        stored = b""
        async with runtime.db.session() as session:
            for table in runtime.metadata.sorted_tables:
                for record in (await session.execute(table.select())).all():
                    stored += repr(tuple(record)).encode()
    reasons = " ".join(e.reason for e in report.errors)
    for row in rows:
        id_number = row["id_number"]
        for where, text in (("report", written), ("reasons", reasons), ("logs", caplog.text)):
            assert id_number not in text, f"ID number of {row['name']} in the {where}"
            assert id_number[:17] not in text, f"ID number body in the {where}"
            if row["name"]:
                assert row["name"] not in text, f"a name in the {where}"
        assert id_number.encode() not in stored
        assert id_number[:17].encode() not in stored
        if row["name"]:
            assert row["name"].encode() not in stored
    assert "import by test-import: 14 rows" in caplog.text


def test_the_cli_imports_reports_and_can_run_again(
    tmp_path: Path, database_url_factory: Callable[[str], str]
) -> None:
    app = typer.Typer()
    app.command("import")(import_file)

    @app.callback()
    def main() -> None:
        """A group, so the command keeps its name as under `sa needs`."""

    rows, expected = sample()
    path = write_csv(tmp_path / "recipients.csv", rows, header=ZH, encoding="utf-8-sig")
    url = database_url_factory("cli")
    runner = CliRunner()
    result = runner.invoke(app, ["import", str(path), "--database-url", url])
    assert result.exit_code == 1, result.output  # some rows are invalid
    assert "imported" in result.output and "invalid" in result.output
    report_path = tmp_path / "recipients.csv.errors.csv"
    with report_path.open(encoding="utf-8-sig", newline="") as f:
        written = list(csv.DictReader(f))
    assert [(int(r["row"]), r["field"]) for r in written] == [(e.row, e.field) for e in expected]
    for row in rows:
        assert row["id_number"] not in result.output
        assert row["id_number"] not in report_path.read_text(encoding="utf-8-sig")

    custom = tmp_path / "again.csv"
    again = runner.invoke(
        app, ["import", str(path), "--database-url", url, "--report", str(custom)]
    )
    assert again.exit_code == 1, again.output
    assert re.search(r"imported\s*│\s*0\s*│", again.output), again.output
    assert re.search(r"already registered\s*│\s*4\s*│", again.output), again.output
    assert custom.exists()

    clean = write_csv(tmp_path / "clean.csv", [person(NAMES[8])], encoding="utf-8")
    ok = runner.invoke(app, ["import", str(clean), "--database-url", url])
    assert ok.exit_code == 0, ok.output

    bad = tmp_path / "bad.csv"
    bad.write_text("id_number,name,region_code,categories,favourite_colour\n", encoding="utf-8")
    refused = runner.invoke(app, ["import", str(bad), "--database-url", url])
    assert refused.exit_code == 2
    assert "favourite_colour" in refused.output
