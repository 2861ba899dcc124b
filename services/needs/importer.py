"""Bulk import of recipients (救助对象) from CSV or XLSX files (no CLI here).

`read_rows` turns a file into `(row number, {field: text})` pairs; `import_recipients`
validates each row as `register_recipient` would (the `RecipientCreate` model, the categories
of the row's province pack, the guardian rule for children under 14, the actor's region) and
writes the valid rows in batches, one transaction per batch.

* Row numbers are the ones a person sees in the file: the header is row 1.
* Safe to run again: a row whose ID number's blind index is already stored counts as
  `already_registered` (not an error, not a second record). The second occurrence of a person
  within one file is an error on the later row.
* No ID number or name appears in a reason of the error report, nor in a log line: reasons
  come from validators that never echo their input, and any 15–18 digit run left in a reason
  is scrubbed all the same.

Columns (English or Chinese headers; case, surrounding spaces and full-width forms ignored):

=====================  ==============================================================
id_number              身份证号, 身份证号码, 公民身份号码
name                   姓名
region_code            行政区划代码, 区划代码
categories             类别, 救助类别 — several separated by ; ； , 、 or |; codes
                       (tekun) or the pack's Chinese names (特困人员)
phone                  电话, 联系电话
address                地址, 住址
household_size         家庭人口
disability_level       残疾等级 — none/无, 1–4, 一级–四级
guardian_name          监护人姓名
guardian_relation      监护关系
guardian_phone         监护人电话
guardian_consent       监护人同意 — 是/否, true/false, 1/0
=====================  ==============================================================

A column outside this list, a column named twice, or a missing required column
(`REQUIRED_COLUMNS`) is an `ImportFileError` for the whole file, raised before any row.
"""

from __future__ import annotations

import codecs
import csv
import logging
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Insert, String, any_, bindparam, insert
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.sql.expression import SelectOfScalar

from libs.common.auth import Principal
from libs.common.errors import FieldError
from libs.common.events import UnitOfWork
from libs.common.ids import new_id, new_person_ref
from libs.common.policy import PolicyPack, pack_for_region
from libs.common.policy.schema import RECIPIENT_CATEGORY_CODES
from libs.common.service import ServiceRuntime
from libs.common.validators import CHINA_TZ
from services.needs import rules
from services.needs.models import ConsentRecord, Recipient
from services.needs.schemas import RecipientCreate
from services.needs.service import ID_INDEX_DOMAIN, PersonalData

log = logging.getLogger(__name__)

__all__ = [
    "COLUMN_ALIASES",
    "REQUIRED_COLUMNS",
    "ImportFileError",
    "ImportReport",
    "RowError",
    "count_rows",
    "import_recipients",
    "read_rows",
    "registration_errors",
]

# --------------------------------------------------------------------------------------------
# Columns
# --------------------------------------------------------------------------------------------

FIELDS: tuple[str, ...] = (
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
)
REQUIRED_COLUMNS: tuple[str, ...] = ("id_number", "name", "region_code", "categories")

#: Normalised header (see `_header_key`) → field. Every field also answers to its own name.
COLUMN_ALIASES: dict[str, str] = {
    **{f: f for f in FIELDS},
    "身份证号": "id_number",
    "身份证号码": "id_number",
    "公民身份号码": "id_number",
    "姓名": "name",
    "行政区划代码": "region_code",
    "区划代码": "region_code",
    "类别": "categories",
    "救助类别": "categories",
    "电话": "phone",
    "联系电话": "phone",
    "地址": "address",
    "住址": "address",
    "家庭人口": "household_size",
    "残疾等级": "disability_level",
    "监护人姓名": "guardian_name",
    "监护关系": "guardian_relation",
    "监护人电话": "guardian_phone",
    "监护人同意": "guardian_consent",
}

#: Set on a row whose ID cell was a spreadsheet number: Excel keeps 15 significant digits,
#: so the number is already wrong and is not passed on (it might even be someone else's).
NUMERIC_ID_MARK = "_id_number_was_a_number"

_CATEGORY_SEPARATORS = re.compile(r"[;；,，、|]")
_SCIENTIFIC = re.compile(r"[0-9]+(\.[0-9]+)?[eE]\+?[0-9]+")
# Any run that could be an ID number (15-digit legacy or 18 with check character X).
_ID_LIKE = re.compile(r"[0-9]{14,17}[0-9Xx]")
_TRUE = frozenset({"是", "同意", "true", "t", "yes", "y", "1", "√", "✓"})
_FALSE = frozenset({"否", "不同意", "false", "f", "no", "n", "0", "×"})
_DISABILITY = {"无": "none", "一级": "1", "二级": "2", "三级": "3", "四级": "4"}


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (format, encoding, header); no row was read."""


def _header_key(header: str) -> str:
    """One key for "ID Number", "id-number", "ＩＤ_ＮＵＭＢＥＲ"; "身份证号*" (a required mark)
    is "身份证号"."""
    text = unicodedata.normalize("NFKC", header).replace("\ufeff", "").strip().rstrip("*")
    return re.sub(r"[\s\-]+", "_", text.strip()).lower()


def _columns(header: Sequence[str]) -> list[str | None]:
    """The field of each header cell (None: a blank header, ignored) or ImportFileError."""
    fields: list[str | None] = []
    unknown: list[str] = []
    seen: dict[str, str] = {}
    for cell in header:
        key = _header_key(cell)
        if not key:
            fields.append(None)
            continue
        name = COLUMN_ALIASES.get(key)
        if name is None:
            unknown.append(cell.strip())
        elif name in seen:
            raise ImportFileError(f"columns {seen[name]!r} and {cell.strip()!r} both mean {name}")
        else:
            seen[name] = cell.strip()
        fields.append(name)
    if unknown:
        raise ImportFileError(
            f"unknown columns: {', '.join(repr(u) for u in unknown)}; "
            f"expected some of: {', '.join(FIELDS)} (or their Chinese names)"
        )
    missing = [f for f in REQUIRED_COLUMNS if f not in seen]
    if missing:
        raise ImportFileError(f"missing columns: {', '.join(missing)}")
    return fields


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield `(row number, {field: text})` for every non-blank data row of a .csv or .xlsx.

    The header is the first non-blank row; row numbers count every row of the file from 1,
    blank ones included, so they match what a spreadsheet shows. Values are stripped text
    ("" for an empty cell). CSV: UTF-8 with or without BOM, else GB18030 (what Chinese
    office software exports). XLSX: the first sheet. Raises ImportFileError (lazily: on the
    first `next()`) for an unreadable file or a bad header.
    """
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        yield from _rows(_csv_records(path))
    elif suffix in (".xlsx", ".xlsm"):
        yield from _rows(_xlsx_records(path), spreadsheet=True)
    elif suffix == ".xls":
        raise ImportFileError("old .xls workbooks are not supported; save the file as .xlsx")
    else:
        raise ImportFileError(f"expected a .csv or .xlsx file, got {path.name!r}")


def count_rows(path: Path) -> int | None:
    """Data rows in the file, for a progress bar's total (None when unknown).

    CSV: counted (cheap). XLSX: from the sheet's recorded dimension, so blank rows count too
    and a file without one gives None; the bar just finishes early or runs without a total.
    An unreadable file gives None too: `read_rows` then says what is wrong with it.
    """
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".txt"):
            rows = sum(1 for record in _csv_records(path) if any(v.strip() for v in record))
            return max(rows - 1, 0)
        if suffix in (".xlsx", ".xlsm"):
            import openpyxl

            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
            try:
                max_row = workbook.worksheets[0].max_row
            finally:
                workbook.close()
            return max(max_row - 1, 0) if max_row else None
    except Exception:  # reading the rows reports what is wrong with the file, properly
        return None
    return None


def _rows(
    records: Iterable[Sequence[Any]], *, spreadsheet: bool = False
) -> Iterator[tuple[int, dict[str, str]]]:
    fields: list[str | None] | None = None
    for number, record in enumerate(records, start=1):
        cells = [_text(v) for v in record]
        if not any(cells):
            continue
        if fields is None:
            fields = _columns(cells)
            continue
        row = {f: "" for f in fields if f is not None}
        for name, raw, cell in zip(fields, record, cells, strict=False):
            if name is None:
                continue
            if name == "id_number" and spreadsheet and isinstance(raw, int | float) and cell:
                row[NUMERIC_ID_MARK] = "1"
                continue
            row[name] = cell
        yield number, row
    if fields is None:
        raise ImportFileError("the file is empty: no header row")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a household size of 3 comes back from Excel as 3.0
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


def _csv_encoding(path: Path) -> str:
    """utf-8-sig when the whole file decodes as UTF-8 (BOM or not), else gb18030."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as f:
        try:
            while chunk := f.read(1 << 16):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "gb18030"
    return "utf-8-sig"


def _csv_records(path: Path) -> Iterator[list[str]]:
    encoding = _csv_encoding(path)
    try:
        with path.open(encoding=encoding, newline="") as f:
            yield from csv.reader(f)
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"{path.name} is neither UTF-8 nor GB18030 text (byte {exc.start})"
        ) from None
    except csv.Error as exc:
        raise ImportFileError(f"{path.name} is not a readable CSV file: {exc}") from None


def _xlsx_records(path: Path) -> Iterator[tuple[Any, ...]]:
    import openpyxl  # only .xlsx imports pay for it

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # zipfile, XML and openpyxl errors alike
        raise ImportFileError(f"{path.name} is not a readable .xlsx workbook: {exc}") from None
    try:
        yield from workbook.worksheets[0].iter_rows(values_only=True)
    finally:
        workbook.close()


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    """Why one row was not imported: `row` as numbered in the file, `field` a column name."""

    row: int
    field: str
    reason: str


@dataclass
class ImportReport:
    """Counts of one import run and the per-row errors (`invalid` counts rows, not errors)."""

    total: int = 0
    imported: int = 0
    already_registered: int = 0
    invalid: int = 0
    errors: list[RowError] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when every row is in the database (imported now or before)."""
        return self.invalid == 0

    def to_csv(self, path: Path) -> Path:
        """Write the error report (row, field, reason) as UTF-8 with BOM, so Excel shows the
        Chinese reasons correctly; a header-only file when there were no errors."""
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(("row", "field", "reason"))
            writer.writerows((e.row, e.field, e.reason) for e in self.errors)
        return path


# --------------------------------------------------------------------------------------------
# Validation: the rules of register_recipient, as field errors instead of an exception
# --------------------------------------------------------------------------------------------


def registration_errors(
    data: RecipientCreate,
    *,
    actor: Principal,
    on: date,
    packs: Callable[[str], PolicyPack] = pack_for_region,
) -> list[FieldError]:
    """What `service.register_recipient` would refuse before writing, as field errors.

    The same helpers in the same order: the actor's region, the row's province pack and its
    categories (`rules.category_errors`), the guardian of a child (`rules.guardian_errors`).
    `packs` looks up a region's pack (a caching lookup for many rows).
    """
    if not actor.covers(data.region_code):
        scope = actor.region or "the whole country"
        return [FieldError("body.region_code", f"outside the importer's region ({scope})")]
    try:
        pack = packs(data.region_code)
    except LookupError as exc:
        return [FieldError("body.region_code", str(exc))]
    errors = rules.category_errors(pack, data.categories)
    errors += rules.guardian_errors(
        id_number=data.id_number,
        on=on,
        has_guardian=data.guardian is not None,
        guardian_consent=data.guardian is not None and data.guardian.consent,
    )
    return errors


def _category_names(pack: PolicyPack) -> dict[str, str]:
    """Chinese name → code: the pack's own names plus the shared vocabulary's."""
    names: dict[str, str] = {}
    for code, zh in RECIPIENT_CATEGORY_CODES.items():
        for alias in zh.split("/"):
            names[alias] = code
    names.update({c.name_zh: c.code for c in pack.recipient_categories})
    return names


class _Validator:
    """Row → `RecipientCreate` plus the registration rules, or the row's errors."""

    def __init__(self, *, actor: Principal, on: date) -> None:
        self.actor = actor
        self.on = on
        self._names: dict[str, dict[str, str]] = {}  # province → Chinese name → code
        self._packs: dict[str, PolicyPack | str] = {}  # province code → pack or why none

    def pack(self, region_code: str) -> PolicyPack:
        """`pack_for_region`, once per province: it reads the packs directory on each call,
        which would cost more than the rest of a row's validation."""
        province = region_code[:2]
        found = self._packs.get(province)
        if found is None:
            try:
                found = pack_for_region(region_code)
            except LookupError as exc:
                found = str(exc)
            self._packs[province] = found
        if isinstance(found, str):
            raise LookupError(found)  # a new one each time: a re-raised one grows its traceback
        return found

    def __call__(
        self, number: int, raw: dict[str, str]
    ) -> tuple[RecipientCreate | None, list[RowError]]:
        secrets = [v for v in (raw.get("id_number", ""), raw.get("name", "")) if len(v) > 1]
        id_text = raw.get("id_number", "")
        if raw.get(NUMERIC_ID_MARK) or _SCIENTIFIC.fullmatch(id_text):
            return None, [
                RowError(
                    number,
                    "id_number",
                    "the ID number was stored as a number, which keeps only 15 significant "
                    "digits; format the column as text and enter the number again",
                )
            ]
        try:
            data = RecipientCreate.model_validate(_payload(raw))
        except ValidationError as exc:
            return None, [
                RowError(number, _field_of(e["loc"]), _scrub(_reason(e["msg"]), secrets))
                for e in exc.errors(include_url=False, include_input=False)
            ]
        data = self._with_category_codes(data)
        errors = registration_errors(data, actor=self.actor, on=self.on, packs=self.pack)
        return (None if errors else data), [
            RowError(number, _field_of(e.field.split(".")), _scrub(e.reason, secrets))
            for e in errors
        ]

    def _with_category_codes(self, data: RecipientCreate) -> RecipientCreate:
        """Accept the pack's Chinese names (特困人员) where a code (tekun) is expected."""
        try:
            pack = self.pack(data.region_code)
        except LookupError:
            return data  # reported by registration_errors
        names = self._names.get(pack.province)
        if names is None:
            names = self._names[pack.province] = _category_names(pack)
        codes = [names.get(c, c) for c in data.categories]
        return data if codes == data.categories else data.model_copy(update={"categories": codes})


def _payload(raw: dict[str, str]) -> dict[str, Any]:
    """The `RecipientCreate` body of a row; empty cells are left out (→ "Field required")."""
    body: dict[str, Any] = {
        f: raw[f]
        for f in ("id_number", "name", "region_code", "phone", "address", "household_size")
        if raw.get(f)
    }
    categories = [c.strip() for c in _CATEGORY_SEPARATORS.split(raw.get("categories", ""))]
    if any(categories):
        body["categories"] = [c for c in categories if c]
    level = raw.get("disability_level", "").lower()
    if level:
        level = _DISABILITY.get(level, level)
        body["disability_level"] = level[0] if re.fullmatch("[1-4]级", level) else level
    guardian = {
        key: raw.get(f"guardian_{key}", "") for key in ("name", "relation", "phone", "consent")
    }
    if any(guardian.values()):
        consent = guardian["consent"].lower()
        body["guardian"] = {
            k: v
            for k, v in {
                **guardian,
                # Unrecognised text goes to pydantic unchanged, to fail there with a reason.
                "consent": True if consent in _TRUE else False if consent in _FALSE else consent,
            }.items()
            if v != ""
        }
    return body


def _field_of(loc: Sequence[int | str]) -> str:
    """A pydantic location or rule path → the column it is about (guardian.consent →
    guardian_consent, categories.0 → categories, body.guardian → guardian_name)."""
    parts = [str(p) for p in loc if not isinstance(p, int) and not str(p).isdigit()]
    if parts[:1] == ["body"]:
        parts = parts[1:]
    if not parts:
        return "row"
    if parts[0] == "guardian":
        return f"guardian_{parts[1]}" if len(parts) > 1 else "guardian_name"
    return parts[0]


def _reason(message: str) -> str:
    if message == "Field required":
        return "missing value"
    return message.removeprefix("Value error, ")


def _scrub(reason: str, secrets: Sequence[str]) -> str:
    """Reasons end up in a report file: strip what might be an ID number or the name."""
    for secret in secrets:
        reason = reason.replace(secret, "[redacted]")
    return _ID_LIKE.sub("[redacted]", reason)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Valid:
    row: int
    data: RecipientCreate
    index: str


def _rows_to_insert(
    valid: Sequence[_Valid], *, actor: Principal, pd: PersonalData, now: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Recipient and consent rows, sealed and consented exactly as `register_recipient` does.

    As plain dicts for one executemany each: building ORM objects and flushing them is
    several times slower, and a batch holds nothing the ORM would need to track.
    """
    recipients: list[dict[str, Any]] = []
    consents: list[dict[str, Any]] = []
    for item in valid:
        data, ref = item.data, new_person_ref()
        guardian = data.guardian
        recipients.append(
            {
                "ref": ref,
                "region_code": data.region_code,
                "categories": list(data.categories),
                "id_number_enc": pd.seal(ref, "id_number", data.id_number) or "",
                "id_number_index": item.index,
                "name_enc": pd.seal(ref, "name", data.name) or "",
                "phone_enc": pd.seal(ref, "phone", data.phone),
                "address_enc": pd.seal(ref, "address", data.address),
                "status": "active",
                "household_size": data.household_size,
                "disability_level": data.disability_level,
                "self_care_tier": None,
                "guardian_name_enc": pd.seal(
                    ref, "guardian_name", guardian.name if guardian else None
                ),
                "guardian_phone_enc": pd.seal(
                    ref, "guardian_phone", guardian.phone if guardian else None
                ),
                "guardian_relation": guardian.relation if guardian else None,
                "version": 1,
                "created_by": actor.subject,
                "created_at": now,
                "updated_at": now,
            }
        )
        if guardian is not None and guardian.consent:
            consents.append(
                {
                    "id": new_id(),
                    "recipient_ref": ref,
                    "purpose": "registration for social assistance",
                    "basis": "consent",
                    "given": True,
                    "given_by": "guardian",
                    "recorded_by": actor.subject,
                    "recorded_at": now,
                }
            )
    return recipients, consents


def _registered(indexes: list[str], uow: UnitOfWork) -> SelectOfScalar[str]:
    """Which of these blind indexes are stored already.

    PostgreSQL gets one array parameter (`= ANY($1)`): an IN list of 500 parameters, once
    asyncpg's prepared statement switches to a generic plan, is planned as a sequential scan
    comparing every row with every parameter (0.3 s a batch at 10,000 rows, growing).
    """
    column = col(Recipient.id_number_index)
    if uow.session.get_bind().dialect.name == "postgresql":
        array = bindparam("indexes", indexes, type_=postgresql.ARRAY(String))
        return select(column).where(column == any_(array))
    return select(column).where(column.in_(indexes))


def _insert(model: type[Recipient] | type[ConsentRecord]) -> Insert:
    return insert(model).execution_options(render_nulls=True)


async def _write_batch(
    uow: UnitOfWork, batch: Sequence[_Valid], *, actor: Principal, pd: PersonalData
) -> int:
    """Insert the batch's people not yet registered; returns how many were inserted."""
    stored = set(
        (await uow.session.execute(_registered([item.index for item in batch], uow))).scalars()
    )
    fresh = [item for item in batch if item.index not in stored]
    recipients, consents = _rows_to_insert(fresh, actor=actor, pd=pd, now=datetime.now(UTC))
    # render_nulls: every row then has the same columns, so the whole batch goes to the
    # driver as one executemany; without it the ORM groups rows by which values are None
    # (phone, guardian, ...) and the import runs at half the speed.
    if recipients:
        await uow.session.execute(_insert(Recipient), recipients)
    if consents:  # after the recipients: they refer to them
        await uow.session.execute(_insert(ConsentRecord), consents)
    await uow.commit()
    return len(fresh)


BATCH_ATTEMPTS = 5  # a batch meeting concurrent registrations of the same people
PROGRESS_EVERY = 100  # rows between two progress reports


async def _write_with_retry(
    runtime: ServiceRuntime, batch: Sequence[_Valid], *, actor: Principal, pd: PersonalData
) -> int:
    """One transaction for the batch; again (fresh look-up) if a person appeared meanwhile."""
    for attempt in range(1, BATCH_ATTEMPTS + 1):
        try:
            async with runtime.unit_of_work() as uow:
                return await _write_batch(uow, batch, actor=actor, pd=pd)
        except IntegrityError:
            if attempt == BATCH_ATTEMPTS:
                raise
            log.info("import: a batch met concurrent registrations; retrying it")
    raise AssertionError("unreachable")


async def import_recipients(
    *,
    runtime: ServiceRuntime,
    pd: PersonalData,
    actor: Principal,
    rows: Iterable[tuple[int, dict[str, str]]],
    batch_size: int = 500,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Validate `rows` (from `read_rows`) and register the valid ones, `batch_size` a commit.

    `on_progress(n)` gets the number of rows handled so far. A batch that meets a person
    registered meanwhile by someone else (unique index violation) is rolled back and tried
    again, and that person then counts as already registered. File-level errors from
    `read_rows` propagate before anything is written. Nothing identifying is logged.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    started = time.perf_counter()
    report = ImportReport()
    validate = _Validator(actor=actor, on=datetime.now(CHINA_TZ).date())
    first_row: dict[str, int] = {}  # blind index → the row that brought the person first
    batch: list[_Valid] = []

    async def flush() -> None:
        inserted = await _write_with_retry(runtime, batch, actor=actor, pd=pd)
        report.imported += inserted
        report.already_registered += len(batch) - inserted
        batch.clear()

    for number, raw in rows:
        report.total += 1
        data, errors = validate(number, raw)
        if data is not None:
            index = pd.index.compute(data.id_number, domain=ID_INDEX_DOMAIN)
            if index in first_row:
                errors = [
                    RowError(number, "id_number", f"the same person as row {first_row[index]}")
                ]
            else:
                first_row[index] = number
                batch.append(_Valid(number, data, index))
        if errors:
            report.invalid += 1
            report.errors.extend(errors)
        if len(batch) >= batch_size:
            await flush()
        if on_progress is not None and report.total % PROGRESS_EVERY == 0:
            on_progress(report.total)
    if batch:
        await flush()
    if on_progress is not None:
        on_progress(report.total)
    report.seconds = time.perf_counter() - started
    log.info(
        "import by %s: %d rows, %d imported, %d already registered, %d invalid",
        actor.subject,
        report.total,
        report.imported,
        report.already_registered,
        report.invalid,
    )
    return report
