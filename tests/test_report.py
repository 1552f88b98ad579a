"""The report writer against real files: every format read back with its own reader."""

from __future__ import annotations

import csv
import hashlib
import json
import stat
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers import Invoke
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from batch_share.emulator import device_id
from batch_share.errors import UsageError
from batch_share.report import xlsx as report_xlsx
from batch_share.report.writer import (
    REPORT_COLUMNS,
    ReportSummary,
    check_report_path,
    default_report_path,
    sha256_file,
    write_report,
)

Row = tuple[str | int, ...]

FORMATS = [".csv", ".jsonl", ".xlsx"]
SUMMARY = ReportSummary(
    counts={"succeeded": 2, "failed": 1, "invalid": 1},
    fields=[("run id", "r-123"), ("input file", "people.csv"), ("http requests", "7")],
)
DEVICE = "80:00:00:00:01:02:03:04"
SERVICE = "80:00:00:00:0a:0b:0c:0d"


def line(
    row: int,
    email: str,
    status: str = "succeeded",
    *,
    code: str = "",
    message: str = "",
    attempts: int = 1,
    extras: Sequence[str] = (),
) -> Row:
    return (
        row,
        DEVICE,
        SERVICE,
        email,
        "ADD",
        "false",
        "true",
        status,
        code,
        message,
        attempts,
        "m1",
        *extras,
    )


LINES: list[Row] = [
    line(2, "ada@example.com", extras=("ops", "")),
    line(3, "Zoë@example.com", extras=("チーム", "日本語のメモ")),
    line(
        4,
        "bob@example.com",
        "failed",
        code="server-error",
        message="share failed",
        attempts=3,
        extras=("ops", "x"),
    ),
    line(5, "", "invalid", code="missing-email", message="no email", attempts=0, extras=("", "")),
]
EXTRAS = ("team", "notes")


def neutralised(cell: str | int) -> str | int:
    """What a spreadsheet-bound format stores for a cell."""
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.reader(file))


def read_jsonl(path: Path) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as file:
        return [json.loads(text) for text in file]


def read_xlsx(path: Path, sheet: str = "Report") -> list[list[object]]:
    workbook = load_workbook(path)
    try:
        return [[cell.value for cell in row] for row in workbook[sheet].iter_rows()]
    finally:
        workbook.close()


def as_csv_text(rows: Sequence[Row]) -> list[list[str]]:
    return [[str(neutralised(cell)) for cell in row] for row in rows]


def as_xlsx_cells(rows: Sequence[Row]) -> list[list[object]]:
    # openpyxl reads an empty string cell back as None: an empty cell is not stored.
    return [[None if cell == "" else neutralised(cell) for cell in row] for row in rows]


# --- round trips ------------------------------------------------------------------------


def test_csv_round_trips_with_bom_and_header(tmp_path: Path) -> None:
    path = write_report(tmp_path / "out.csv", EXTRAS, LINES, SUMMARY)

    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert read_csv(path) == [[*REPORT_COLUMNS, *EXTRAS], *as_csv_text(LINES)]


def test_jsonl_round_trips_with_ints_and_key_order(tmp_path: Path) -> None:
    path = write_report(tmp_path / "out.jsonl", EXTRAS, LINES, SUMMARY)

    records = read_jsonl(path)
    assert [list(record) for record in records] == [[*REPORT_COLUMNS, *EXTRAS]] * len(LINES)
    assert [tuple(record.values()) for record in records] == LINES
    assert isinstance(records[0]["row"], int)
    assert isinstance(records[0]["attempts"], int)


def test_xlsx_round_trips_on_the_first_sheet(tmp_path: Path) -> None:
    path = write_report(tmp_path / "out.xlsx", EXTRAS, LINES, SUMMARY)

    workbook = load_workbook(path)
    try:
        # Report first: reading the report back as input takes the first sheet.
        assert workbook.sheetnames == ["Report", "Summary"]
        assert workbook.active.title == "Summary"
        assert workbook["Report"].sheet_view.tabSelected is False
    finally:
        workbook.close()
    assert read_xlsx(path) == [[*REPORT_COLUMNS, *EXTRAS], *as_xlsx_cells(LINES)]


def test_extension_is_case_insensitive(tmp_path: Path) -> None:
    path = write_report(tmp_path / "OUT.CSV", (), [line(2, "a@example.com")], SUMMARY)

    assert read_csv(path)[0] == list(REPORT_COLUMNS)


@pytest.mark.parametrize("suffix", FORMATS)
def test_header_holds_extra_columns_after_the_report_columns(tmp_path: Path, suffix: str) -> None:
    extras = ("Zone", "owner", "cost centre")
    rows = [line(2, "a@example.com", extras=("eu", "ops", "42"))]

    path = write_report(tmp_path / f"out{suffix}", extras, rows, SUMMARY)

    expected = [*REPORT_COLUMNS, *extras]
    if suffix == ".csv":
        assert read_csv(path)[0] == expected
    elif suffix == ".jsonl":
        assert list(read_jsonl(path)[0]) == expected
    else:
        assert read_xlsx(path)[0] == expected


@pytest.mark.parametrize("suffix", FORMATS)
def test_no_lines_writes_the_header_alone(tmp_path: Path, suffix: str) -> None:
    path = write_report(tmp_path / f"out{suffix}", EXTRAS, [], SUMMARY)

    if suffix == ".csv":
        assert read_csv(path) == [[*REPORT_COLUMNS, *EXTRAS]]
    elif suffix == ".jsonl":
        assert path.read_bytes() == b""
    else:
        assert read_xlsx(path) == [[*REPORT_COLUMNS, *EXTRAS]]


@pytest.mark.parametrize("suffix", FORMATS)
def test_unicode_survives(tmp_path: Path, suffix: str) -> None:
    rows = [line(2, "Zoë@exämple.com", message="拒否されました 🚫", extras=("Ünïcödé", "中文"))]

    path = write_report(tmp_path / f"out{suffix}", EXTRAS, rows, SUMMARY)

    if suffix == ".csv":
        assert read_csv(path)[1] == as_csv_text(rows)[0]
    elif suffix == ".jsonl":
        assert tuple(read_jsonl(path)[0].values()) == rows[0]
        assert "Zoë".encode() in path.read_bytes()  # written as UTF-8, not \\u escapes
    else:
        assert read_xlsx(path)[1] == as_xlsx_cells(rows)[0]


def test_jsonl_disambiguates_repeated_column_names(tmp_path: Path) -> None:
    extras = ("note", "note", "status")
    path = write_report(tmp_path / "out.jsonl", extras, [line(2, "a@x.io", extras=extras)], SUMMARY)

    record = read_jsonl(path)[0]
    assert list(record)[-3:] == ["note", "note.1", "status.1"]
    assert record["status"] == "succeeded"
    assert record["status.1"] == "status"


# --- formulas -------------------------------------------------------------------------

FORMULA_TEXTS = ["=1+1", "+1 555 0100", "-", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://e")']


def formula_rows() -> list[Row]:
    return [line(2 + i, text, message=text, extras=(text,)) for i, text in enumerate(FORMULA_TEXTS)]


def test_csv_neutralises_formulas_but_not_numbers(tmp_path: Path) -> None:
    path = write_report(tmp_path / "out.csv", ["=header"], formula_rows(), SUMMARY)

    records = read_csv(path)
    assert records[0][-1] == "'=header"
    for text, record in zip(FORMULA_TEXTS, records[1:], strict=True):
        assert record[3] == record[9] == record[12] == "'" + text
        assert record[0].isdigit()
        assert record[10] == "1"


def test_xlsx_stores_formula_looking_text_as_text(tmp_path: Path) -> None:
    path = write_report(tmp_path / "out.xlsx", ["=header"], formula_rows(), SUMMARY)

    workbook = load_workbook(path)
    try:
        sheet = workbook["Report"]
        assert sheet.cell(1, 13).value == "'=header"
        for index, text in enumerate(FORMULA_TEXTS, 2):
            for column in (4, 10, 13):
                cell = sheet.cell(index, column)
                # lxml writes a carriage return as a character reference, so it reads
                # back as itself rather than as the newline a raw one would become.
                assert cell.value == "'" + text
                assert cell.data_type == "s"
            assert sheet.cell(index, 1).data_type == "n"
            assert sheet.cell(index, 11).value == 1
    finally:
        workbook.close()


def test_jsonl_keeps_formula_looking_text_exactly(tmp_path: Path) -> None:
    path = write_report(tmp_path / "out.jsonl", ["note"], formula_rows(), SUMMARY)

    assert [record["email"] for record in read_jsonl(path)] == FORMULA_TEXTS


# --- xlsx presentation ----------------------------------------------------------------


def test_xlsx_report_sheet_has_bold_frozen_header_filter_and_status_fills(tmp_path: Path) -> None:
    rows = [
        line(2, "a@x.io", "succeeded"),
        line(3, "b@x.io", "failed"),
        line(4, "c@x.io", "invalid"),
        line(5, "d@x.io", "conflict"),
        line(6, "e@x.io", "not-run"),
    ]
    path = write_report(tmp_path / "out.xlsx", ["team"], [(*r, "t") for r in rows], SUMMARY)

    workbook = load_workbook(path)
    try:
        sheet = workbook["Report"]
        assert all(cell.font.b for cell in sheet[1])
        assert not sheet.cell(2, 1).font.b
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == "A1:M6"
        fills = {sheet.cell(r, 8).value: sheet.cell(r, 8).fill for r in range(2, 7)}
        assert all(fill.fill_type == "solid" for fill in fills.values())
        colours = {status: fill.fgColor.rgb for status, fill in fills.items()}
        assert len(set(colours.values())) == 5
        assert colours["succeeded"].endswith("C6EFCE")
        assert colours["failed"].endswith("FFC7CE")
        assert sheet.cell(2, 4).fill.fill_type is None  # only the status cell is coloured
        assert sheet.column_dimensions["J"].width > sheet.column_dimensions["A"].width
    finally:
        workbook.close()


def test_xlsx_unknown_status_is_written_without_fill(tmp_path: Path) -> None:
    path = write_report(tmp_path / "out.xlsx", (), [line(2, "a@x.io", "pending")], SUMMARY)

    workbook = load_workbook(path)
    try:
        cell = workbook["Report"].cell(2, 8)
        assert cell.value == "pending"
        assert cell.fill.fill_type is None
    finally:
        workbook.close()


def test_xlsx_summary_sheet_lists_counts_and_fields(tmp_path: Path) -> None:
    path = write_report(tmp_path / "out.xlsx", (), [line(2, "a@x.io")], SUMMARY)

    assert read_xlsx(path, "Summary") == [
        ["status", "lines"],
        ["succeeded", 2],
        ["failed", 1],
        ["invalid", 1],
        ["conflict", 0],
        ["not-run", 0],
        ["total", 4],
        [None, None],
        ["run id", "r-123"],
        ["input file", "people.csv"],
        ["http requests", "7"],
    ]


def test_xlsx_replaces_characters_xml_cannot_hold(tmp_path: Path) -> None:
    rows = [line(2, "a@x.io", message="bell\x07 and\x0bvt\nnewline")]

    path = write_report(tmp_path / "out.xlsx", (), rows, SUMMARY)

    assert read_xlsx(path)[1][9] == "bell\ufffd and\ufffdvt\nnewline"


def test_xlsx_cuts_text_longer_than_excel_allows(tmp_path: Path) -> None:
    rows = [line(2, "a@x.io", message="x" * 40_000)]

    path = write_report(tmp_path / "out.xlsx", (), rows, SUMMARY)

    message = read_xlsx(path)[1][9]
    assert isinstance(message, str)
    assert len(message) == 32_767
    assert message.endswith("x\u2026")


def test_csv_survives_a_lone_surrogate(tmp_path: Path) -> None:
    # Text decoded with surrogateescape can carry one; it must not cost the whole report.
    rows = [line(2, "a@x.io", message="bad \udc80 byte")]

    path = write_report(tmp_path / "out.csv", (), rows, SUMMARY)

    assert read_csv(path)[1][9] == "bad \\udc80 byte"


def test_xlsx_refuses_more_lines_than_a_sheet_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sheet of 3 rows stands in for Excel's 1,048,576 so the test writes 3 lines, not 1M.
    monkeypatch.setattr(report_xlsx, "XLSX_MAX_ROWS", 3)
    target = tmp_path / "out.xlsx"
    write_report(target, (), [line(2, "a@x.io"), line(3, "b@x.io")], SUMMARY)

    with pytest.raises(UsageError, match=r"more than 2 lines.*\.csv or \.jsonl"):
        write_report(target, (), [line(r, "a@x.io") for r in range(2, 5)], SUMMARY)

    assert len(read_xlsx(target)) == 3  # the earlier report is still there
    assert [p.name for p in tmp_path.iterdir()] == ["out.xlsx"]


def test_xlsx_row_limit_is_excels() -> None:
    assert report_xlsx.XLSX_MAX_ROWS == 2**20


# --- atomicity ------------------------------------------------------------------------


class BoomError(Exception):
    pass


def failing_rows(error: BaseException) -> Iterator[Row]:
    yield line(2, "a@x.io")
    yield line(3, "b@x.io")
    raise error


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("error", [BoomError("mid-write"), KeyboardInterrupt()])
def test_failure_mid_write_keeps_previous_report_and_no_temp_file(
    tmp_path: Path, suffix: str, error: BaseException
) -> None:
    target = tmp_path / f"out{suffix}"
    target.write_bytes(b"previous report")

    with pytest.raises(type(error)):
        write_report(target, (), failing_rows(error), SUMMARY)

    assert target.read_bytes() == b"previous report"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


@pytest.mark.parametrize("suffix", FORMATS)
def test_a_row_of_the_wrong_width_is_refused_without_writing(tmp_path: Path, suffix: str) -> None:
    rows = [line(2, "a@x.io", extras=("x",)), line(3, "b@x.io")]

    with pytest.raises(ValueError, match="report line 2 has 12 cells, expected 13"):
        write_report(tmp_path / f"out{suffix}", ["team"], rows, SUMMARY)

    assert list(tmp_path.iterdir()) == []


def test_rewriting_replaces_the_previous_report(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    write_report(target, (), [line(2, "old@x.io")], SUMMARY)

    write_report(target, (), [line(2, "new@x.io")], SUMMARY)

    assert read_csv(target)[1][3] == "new@x.io"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_new_report_is_owner_only_and_a_replaced_one_keeps_its_mode(tmp_path: Path) -> None:
    fresh = write_report(tmp_path / "fresh.csv", (), [], SUMMARY)
    existing = tmp_path / "existing.csv"
    existing.write_text("old")
    existing.chmod(0o640)

    write_report(existing, (), [], SUMMARY)

    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640


# --- paths ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.txt", "out.xls", "out", "out.csv.bak"])
def test_unknown_extension_is_a_usage_error_before_anything_is_read(
    tmp_path: Path, name: str
) -> None:
    def rows() -> Iterator[Row]:
        raise AssertionError("rows must not be read")
        yield  # pragma: no cover

    with pytest.raises(UsageError, match=r"\.csv, \.jsonl, \.xlsx") as caught:
        write_report(tmp_path / name, (), rows(), SUMMARY)

    assert name in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_check_report_path_refuses_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        check_report_path(tmp_path / "nowhere" / "out.csv")


def test_check_report_path_refuses_a_directory(tmp_path: Path) -> None:
    (tmp_path / "out.csv").mkdir()

    with pytest.raises(UsageError, match="is a directory"):
        check_report_path(tmp_path / "out.csv")


def test_check_report_path_accepts_a_writable_target(tmp_path: Path) -> None:
    check_report_path(tmp_path / "out.XLSX")


def test_default_report_path_sits_next_to_the_sheet_with_a_utc_stamp() -> None:
    cest = timezone(timedelta(hours=2))
    now = datetime(2024, 5, 6, 9, 8, 7, tzinfo=cest)

    path = default_report_path(Path("sheets") / "people.xlsx", now)

    assert path == Path("sheets") / "people.result-20240506T070807Z.csv"


def test_default_report_path_needs_an_aware_time() -> None:
    naive = datetime(2024, 5, 6, 9, 8, 7)  # noqa: DTZ001 - the point of the test

    with pytest.raises(ValueError, match="timezone-aware"):
        default_report_path(Path("people.csv"), naive)


def test_default_report_path_is_writable(tmp_path: Path) -> None:
    path = default_report_path(tmp_path / "people.csv", datetime.now(UTC))

    write_report(path, (), [line(2, "a@x.io")], SUMMARY)

    assert path.parent == tmp_path
    assert read_csv(path)[1][3] == "a@x.io"


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = b"device_id,email\n" * 10_000
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes(data)

    assert sha256_file(sheet) == hashlib.sha256(data).hexdigest()


# --- any text -------------------------------------------------------------------------

any_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(any_text, min_size=1, max_size=4))
def test_any_text_round_trips_through_csv_and_jsonl(
    tmp_path_factory: pytest.TempPathFactory, texts: list[str]
) -> None:
    directory = tmp_path_factory.mktemp("any")
    rows = [line(2 + i, text, message=text, extras=(text,)) for i, text in enumerate(texts)]

    csv_path = write_report(directory / "out.csv", ["note"], rows, SUMMARY)
    jsonl_path = write_report(directory / "out.jsonl", ["note"], rows, SUMMARY)

    assert read_csv(csv_path)[1:] == as_csv_text(rows)
    assert [tuple(record.values()) for record in read_jsonl(jsonl_path)] == rows


def test_a_run_whose_xlsx_report_overflows_ends_finished_but_not_as_a_usage_error(
    invoke: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found only while writing, after sending: "finished, but" (exit 1), never exit 2,
    # which promises that nothing was sent.
    monkeypatch.setattr(report_xlsx, "XLSX_MAX_ROWS", 2)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        f"device_id,email\n{device_id(1)},a@example.com\n{device_id(2)},b@example.com\n",
        encoding="utf-8",
    )

    result = invoke("run", sheet, "--report", tmp_path / "out.xlsx")

    assert result.exit_code == 1, result.output
    assert "could not write the report" in result.output
    assert "write it as .csv or .jsonl" in result.output
