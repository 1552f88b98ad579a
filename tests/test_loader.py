"""The loader against real files on disk: every encoding, delimiter and workbook format the
spec names, the row numbers a user sees, and a `SheetError` (never a traceback) for files
that cannot be read."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_share.errors import SheetError
from batch_share.models import Sheet
from batch_share.sheet.loader import load_sheet

HEADER = ("device_id", "email", "notify", "note")
ROWS = (
    ("80:00:00:00:12:34:56:78", "ann@example.com", "NA", "null"),
    ("80000000AABBCCDD", "bob@example.com", "0012", "1e5"),
    (" 80-00-00-00-00-00-00-01 ", "Zoë@example.com", "TRUE", "Zoë"),
)


def table(sheet: Sheet) -> tuple[tuple[str, ...], list[tuple[int, tuple[str, ...]]]]:
    """What a user sees: the header, then each data row's number and cell texts."""
    rows = [
        (int(number), tuple(sheet.cell(c, r) for c in range(len(sheet.columns))))
        for r, number in enumerate(sheet.row_numbers)
    ]
    return sheet.header, rows


def csv_text(rows: Sequence[Sequence[str]], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def write_xlsx(path: Path, sheets: dict[str, Sequence[Sequence[object]]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        worksheet = workbook.create_sheet(title)
        for row in rows:
            worksheet.append(list(row))
    workbook.save(path)
    return path


EXPECTED = (HEADER, [(n, row) for n, row in enumerate(ROWS, start=2)])


# --- text files -------------------------------------------------------------------------


def test_csv_cells_stay_exactly_as_typed(tmp_path: Path) -> None:
    path = tmp_path / "shares.csv"
    path.write_text(csv_text([HEADER, *ROWS]), encoding="utf-8")

    sheet = load_sheet(path)

    assert table(sheet) == EXPECTED
    assert sheet.source == "shares.csv"
    assert sheet.sheet_name is None
    assert sheet.header_row == 1
    assert sheet.blank_rows == 0
    assert all(column.typed is None for column in sheet.columns)
    assert sheet.row_numbers.dtype.name == "int64"
    assert all(column.codes.dtype.name == "int64" for column in sheet.columns)


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [
        ("utf-8", b""),
        ("utf-8", b"\xef\xbb\xbf"),
        ("utf-16-le", b"\xff\xfe"),
        ("utf-16-be", b"\xfe\xff"),
        ("cp1252", b""),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16-le-bom", "utf-16-be-bom", "cp1252"],
)
def test_every_supported_encoding_reads_the_same(
    tmp_path: Path, encoding: str, prefix: bytes
) -> None:
    path = tmp_path / "shares.csv"
    path.write_bytes(prefix + csv_text([HEADER, *ROWS]).encode(encoding))

    assert table(load_sheet(path)) == EXPECTED


@pytest.mark.parametrize(
    ("name", "delimiter"),
    [
        ("shares.csv", ","),
        ("shares.csv", ";"),
        ("shares.csv", "\t"),
        ("shares.csv", "|"),
        ("shares.tsv", "\t"),
        ("shares.txt", ";"),
        ("shares.txt", ","),
    ],
)
def test_delimiter_is_sniffed(tmp_path: Path, name: str, delimiter: str) -> None:
    # Commas inside cells must not fool the sniffer into splitting a semicolon file.
    rows = [*ROWS, ("80:00:00:00:00:00:00:02", "a@example.com,b@example.com", "", "x, y")]
    path = tmp_path / name
    path.write_text(csv_text([HEADER, *rows], delimiter), encoding="utf-8")

    header, lines = table(load_sheet(path))

    assert header == HEADER
    assert [cells for _, cells in lines] == list(rows)


def test_quoted_cell_spanning_lines_is_one_row(tmp_path: Path) -> None:
    path = tmp_path / "shares.csv"
    path.write_text(
        'device_id,email,note\n80:00:00:00:00:00:00:01,a@example.com,"line one\nline two\n"\n'
        "80:00:00:00:00:00:00:02,b@example.com,plain\n",
        encoding="utf-8",
    )

    _, lines = table(load_sheet(path))

    assert lines == [
        (2, ("80:00:00:00:00:00:00:01", "a@example.com", "line one\nline two\n")),
        (3, ("80:00:00:00:00:00:00:02", "b@example.com", "plain")),
    ]


def test_many_multiline_cells_across_parser_blocks(tmp_path: Path) -> None:
    # A few MB, so the fast parser works in several blocks; quoted line breaks land on
    # block boundaries and must not split a record.
    count = 40_000
    rows = [("device", "note")] + [
        (f"{i:016X}", f"first line {i}\nsecond line, with a comma\n\nfourth") for i in range(count)
    ]
    path = tmp_path / "big.csv"
    path.write_text(csv_text(rows), encoding="utf-8")

    sheet = load_sheet(path)

    assert sheet.row_count == count
    assert sheet.row_numbers.tolist() == list(range(2, count + 2))
    assert sheet.cell(0, count - 1) == f"{count - 1:016X}"
    assert sheet.cell(1, 12_345) == "first line 12345\nsecond line, with a comma\n\nfourth"


def test_blank_rows_are_skipped_without_shifting_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "shares.csv"
    path.write_text(
        "\n"
        ",,\n"
        "device_id,email,note\n"
        "80:00:00:00:00:00:00:01,a@example.com,x\n"
        "\n"
        " ,\t, \n"
        "80:00:00:00:00:00:00:02,b@example.com,y\n",
        encoding="utf-8",
    )

    sheet = load_sheet(path)

    assert sheet.header == ("device_id", "email", "note")
    assert sheet.header_row == 3
    assert sheet.row_numbers.tolist() == [4, 7]
    assert sheet.blank_rows == 2
    # Values seen only in blank or header rows are not carried as data values.
    assert sheet.columns[0].values == ("80:00:00:00:00:00:00:01", "80:00:00:00:00:00:00:02")


def test_short_rows_are_padded_and_extra_cells_kept_under_a_made_up_name(tmp_path: Path) -> None:
    path = tmp_path / "shares.csv"
    path.write_text(
        "device_id,email,note\n"
        "80:00:00:00:00:00:00:01,a@example.com\n"
        "80:00:00:00:00:00:00:02,b@example.com,n,,\n"
        "80:00:00:00:00:00:00:03,c@example.com,n,,ticket 42\n",
        encoding="utf-8",
    )

    header, lines = table(load_sheet(path))

    # Column 4 is empty everywhere and has no name: dropped. Column 5 holds data: kept.
    assert header == ("device_id", "email", "note", "column_5")
    assert lines == [
        (2, ("80:00:00:00:00:00:00:01", "a@example.com", "", "")),
        (3, ("80:00:00:00:00:00:00:02", "b@example.com", "n", "")),
        (4, ("80:00:00:00:00:00:00:03", "c@example.com", "n", "ticket 42")),
    ]


def test_header_names_are_kept_as_written_even_when_repeated(tmp_path: Path) -> None:
    path = tmp_path / "shares.csv"
    path.write_text(
        " Device ID ,E-mail,note,note\n80:00:00:00:00:00:00:01,a@example.com,one,two\n",
        encoding="utf-8",
    )

    header, lines = table(load_sheet(path))

    assert header == (" Device ID ", "E-mail", "note", "note")
    assert lines == [(2, ("80:00:00:00:00:00:00:01", "a@example.com", "one", "two"))]


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "shares.csv"
    path.write_text("device_id,email\n", encoding="utf-8")

    sheet = load_sheet(path)

    assert sheet.header == ("device_id", "email")
    assert sheet.row_count == 0
    assert all(column.values == () for column in sheet.columns)


# Any text a UTF-8 file can hold, but NUL (never in a text file).
cell_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(
    width=st.integers(min_value=2, max_value=4),
    records=st.lists(st.lists(cell_text, min_size=1, max_size=6), max_size=8),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    rectangular=st.booleans(),
)
def test_any_cells_survive_a_csv_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    width: int,
    records: list[list[str]],
    delimiter: str,
    rectangular: bool,
) -> None:
    # Rectangular files take the fast parser, ragged ones the fallback: both must agree.
    if rectangular:
        records = [(record + [""] * width)[:width] for record in records]
    header = [f"h{i}" for i in range(width)]
    path = tmp_path_factory.mktemp("roundtrip") / "cells.csv"
    path.write_text(csv_text([header, *records], delimiter), encoding="utf-8", newline="")

    sheet = load_sheet(path)

    full_width = max([width, *(len(r) for r in records)])
    padded = [tuple(r) + ("",) * (full_width - len(r)) for r in records]
    kept = [(n, r) for n, r in enumerate(padded, start=2) if any(c.strip() for c in r)]
    extra = [
        j
        for j in range(width, full_width)
        if any(r[j].strip() for _, r in kept)  # unnamed columns survive only with data
    ]
    names = tuple(header) + tuple(f"column_{j + 1}" for j in extra)
    expected = [(n, r[:width] + tuple(r[j] for j in extra)) for n, r in kept]
    assert table(sheet) == (names, expected)
    assert sheet.blank_rows == len(records) - len(kept)


# --- workbooks --------------------------------------------------------------------------


def test_xlsx_typed_cells_are_flagged_and_shown_as_excel_shows_them(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    worksheet = workbook.active
    worksheet.title = "Shares"
    # Spreadsheet cells hold naive date-times, hence no tzinfo.
    noon = dt.datetime(2024, 3, 1, 12, 30)  # noqa: DTZ001
    # Two empty rows and one empty column before the table: numbering must stay true.
    cells: list[list[object]] = [
        ["device_id", "email", "notify", "when"],
        ["80:00:00:00:12:34:56:78", "a@example.com", 1, noon],
        [8000000012345678, "b@example.com", True, dt.date(2024, 3, 1)],
        ["0012", "c@example.com", "TRUE", dt.time(12, 30)],
        [0.5, "d@example.com", 12.0, "NA"],
    ]
    for r, row in enumerate(cells, start=3):
        for c, value in enumerate(row, start=2):
            worksheet.cell(row=r, column=c, value=value)
    worksheet.cell(row=7, column=7, value="ticket 9")  # data under no heading, column G
    path = tmp_path / "shares.xlsx"
    workbook.save(path)

    sheet = load_sheet(path)

    assert sheet.sheet_name == "Shares"
    assert sheet.header_row == 3
    assert sheet.header == ("device_id", "email", "notify", "when", "column_7")
    assert table(sheet)[1] == [
        (4, ("80:00:00:00:12:34:56:78", "a@example.com", "1", "2024-03-01 12:30:00", "")),
        (5, ("8.00000001234568e+15", "b@example.com", "TRUE", "2024-03-01", "")),
        (6, ("0012", "c@example.com", "TRUE", "12:30:00", "")),
        (7, ("0.5", "d@example.com", "12", "NA", "ticket 9")),
    ]
    device, _, notify, when, _ = sheet.columns
    typed = {device.values[i]: device.is_typed(i) for i in range(len(device.values))}
    assert typed == {
        "80:00:00:00:12:34:56:78": False,
        "8.00000001234568e+15": True,
        "0012": False,
        "0.5": True,
    }
    # The boolean TRUE and the text TRUE read alike but are different values.
    assert notify.values == ("1", "TRUE", "TRUE", "12")
    assert notify.typed == (True, True, False, True)
    assert notify.codes.tolist() == [0, 1, 2, 3]
    assert when.typed == (True, True, True, False)


def test_xlsx_blank_rows_are_counted_not_numbered_away(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "shares.xlsx",
        {
            "Sheet": [
                ["device_id", "email"],
                ["80:00:00:00:00:00:00:01", "a@example.com"],
                [None, None],
                ["  ", ""],
                ["80:00:00:00:00:00:00:02", "b@example.com"],
            ]
        },
    )

    sheet = load_sheet(path)

    assert sheet.row_numbers.tolist() == [2, 5]
    assert sheet.blank_rows == 2


def test_xlsm_reads_like_xlsx(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "shares.xlsm", {"Sheet": [HEADER, *ROWS]})

    assert table(load_sheet(path)) == EXPECTED


def test_xlsx_saved_under_an_xls_name_still_reads(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "export.xls", {"Sheet": [HEADER, *ROWS]})

    assert table(load_sheet(path)) == EXPECTED


def write_ods(path: Path, title: str, rows: list[list[object]]) -> Path:
    """A minimal but real OpenDocument spreadsheet (no ODS writer is installed)."""

    def cell(value: object) -> str:
        if value is None:
            return "<table:table-cell/>"
        if isinstance(value, bool):
            kind = f'office:value-type="boolean" office:boolean-value="{str(value).lower()}"'
        elif isinstance(value, int | float):
            kind = f'office:value-type="float" office:value="{value}"'
        elif isinstance(value, dt.date):
            kind = f'office:value-type="date" office:date-value="{value.isoformat()}"'
        else:
            kind = 'office:value-type="string"'
        return f"<table:table-cell {kind}><text:p>{escape(str(value))}</text:p></table:table-cell>"

    body = "".join(
        "<table:table-row>" + "".join(cell(v) for v in row) + "</table:table-row>" for row in rows
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content office:version="1.2"'
        ' xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
        ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
        ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0">'
        f"<office:body><office:spreadsheet><table:table table:name={quoteattr(title)}>"
        f"{body}</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<manifest:manifest manifest:version="1.2"'
        ' xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        '<manifest:file-entry manifest:full-path="/"'
        ' manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        # The mimetype entry comes first and uncompressed, as the format requires.
        archive.writestr(
            "mimetype",
            "application/vnd.oasis.opendocument.spreadsheet",
            compress_type=zipfile.ZIP_STORED,
        )
        archive.writestr("META-INF/manifest.xml", manifest)
        archive.writestr("content.xml", content)
    return path


def test_ods_reads_text_and_typed_cells(tmp_path: Path) -> None:
    path = write_ods(
        tmp_path / "shares.ods",
        "Shares",
        [
            [None],
            ["device_id", "email", "scripting"],
            ["0012", "a@example.com", True],
            [8000000012345678, "b@example.com", "yes"],
            [dt.date(2024, 3, 1), "c@example.com", None],
        ],
    )

    sheet = load_sheet(path)

    assert sheet.sheet_name == "Shares"
    assert table(sheet) == (
        ("device_id", "email", "scripting"),
        [
            (3, ("0012", "a@example.com", "TRUE")),
            (4, ("8.00000001234568e+15", "b@example.com", "yes")),
            (5, ("2024-03-01", "c@example.com", "")),
        ],
    )
    assert sheet.columns[0].typed == (False, True, True)


def test_sheet_option_picks_a_worksheet(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "book.xlsx",
        {
            "Notes": [["nothing to see"]],
            "Offboarding": [["device_id", "email"], ["80:00:00:00:00:00:00:09", "z@example.com"]],
        },
    )

    assert load_sheet(path).header == ("nothing to see",)
    chosen = load_sheet(path, sheet="Offboarding")
    assert chosen.sheet_name == "Offboarding"
    assert table(chosen)[1] == [(2, ("80:00:00:00:00:00:00:09", "z@example.com"))]
    assert load_sheet(path, sheet="offboarding").sheet_name == "Offboarding"


def test_unknown_sheet_lists_the_ones_that_exist(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "book.xlsx", {"Notes": [["x"]], "Offboarding": [["y"]]})

    with pytest.raises(SheetError) as raised:
        load_sheet(path, sheet="Onboarding")

    message = str(raised.value)
    assert "book.xlsx" in message
    assert "'Onboarding'" in message
    assert "'Notes'" in message
    assert "'Offboarding'" in message


def test_same_data_in_every_form_gives_the_same_sheet(tmp_path: Path) -> None:
    text = csv_text([HEADER, *ROWS])
    files = {
        "plain.csv": text.encode("utf-8"),
        "bom.csv": b"\xef\xbb\xbf" + text.encode("utf-8"),
        "windows.csv": text.encode("cp1252"),
        "semicolon.csv": csv_text([HEADER, *ROWS], ";").encode("utf-8"),
    }
    sheets = []
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        sheets.append(load_sheet(tmp_path / name))
    xlsx = write_xlsx(tmp_path / "text-ids.xlsx", {"Sheet": [HEADER, *ROWS]})
    sheets.append(load_sheet(xlsx))

    first = table(sheets[0])
    assert first == EXPECTED
    assert all(table(sheet) == first for sheet in sheets[1:])
    assert not any(any(column.typed or ()) for column in sheets[-1].columns)


# --- files that cannot be read ------------------------------------------------------------


def sheet_error(path: Path, **options: str) -> str:
    with pytest.raises(SheetError) as raised:
        load_sheet(path, **options)
    return str(raised.value)


@pytest.mark.parametrize("content", [b"", b"\n\n", b" , ,\n\t\n", b"\xef\xbb\xbf"])
def test_empty_text_file_has_no_header(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)

    message = sheet_error(path)

    assert "empty.csv" in message
    assert "no header row" in message


def test_empty_worksheet_has_no_header(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "empty.xlsx", {"Blank": []})

    message = sheet_error(path)

    assert "empty.xlsx" in message
    assert "'Blank'" in message
    assert "no header row" in message


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in sheet_error(tmp_path / "absent.xlsx")
    assert "absent.csv" in sheet_error(tmp_path / "absent.csv")


def test_directory_is_not_a_sheet(tmp_path: Path) -> None:
    folder = tmp_path / "folder.csv"
    folder.mkdir()

    assert "is a directory" in sheet_error(folder)


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "shares.json"
    path.write_text("{}", encoding="utf-8")

    message = sheet_error(path)

    assert "shares.json" in message
    assert "'.json'" in message
    assert ".xlsx" in message


@pytest.mark.parametrize("name", ["garbage.xlsx", "garbage.xlsm", "garbage.xls", "garbage.ods"])
def test_garbage_workbook(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"PK\x03\x04 this is not a workbook \x00\x01\x02" * 10)

    message = sheet_error(path)

    assert name in message
    assert "cannot be read as a spreadsheet" in message


def test_workbook_renamed_to_csv_is_refused(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "shares.xlsx", {"Sheet": [list(HEADER)]})
    renamed = path.rename(tmp_path / "shares.csv")

    message = sheet_error(renamed)

    assert "shares.csv" in message
    assert "not a text file" in message


def test_sheet_option_on_a_text_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "shares.csv"
    path.write_text("device_id,email\n", encoding="utf-8")

    message = sheet_error(path, sheet="Offboarding")

    assert "shares.csv" in message
    assert "'Offboarding'" in message


def test_json_lines_read_as_text_with_numbers_marked_typed(tmp_path: Path) -> None:
    path = tmp_path / "report.jsonl"
    path.write_text(
        '{"row": 2, "device_id": "80:00:00:00:01:00:00:01", "email": "a@example.com"}\n'
        "\n"
        '{"row": 4, "device_id": 8000000012345678, "email": "b@example.com", "note": null}\n',
        encoding="utf-8",
    )

    sheet = load_sheet(path)

    assert sheet.header == ("row", "device_id", "email", "note")
    assert list(sheet.row_numbers) == [2, 4]
    assert sheet.blank_rows == 1
    device = sheet.columns[1]
    assert [sheet.cell(1, i) for i in range(2)] == ["80:00:00:00:01:00:00:01", "8000000012345678"]
    assert [device.is_typed(int(code)) for code in device.codes] == [False, True]
    assert [sheet.cell(3, i) for i in range(2)] == ["", ""]


@pytest.mark.parametrize("line", ["{not json", "[1, 2]"])
def test_json_lines_that_are_not_objects_name_the_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"device_id": "x", "email": "y"}\n' + line + "\n", encoding="utf-8")

    with pytest.raises(SheetError, match=r"bad\.jsonl: line 2 "):
        load_sheet(path)
