"""The loader's bounds, on real files: a workbook whose used range is mostly air reads in
the cost of its cells, and every hostile file ends in a `SheetError` naming its limit.

The CLI runs in a subprocess where the old failure was a native abort, which would take
pytest down with it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from openpyxl.styles import Font

from batch_share.errors import SheetError
from batch_share.sheet import limits, loader
from batch_share.sheet.loader import load_sheet

ROWS = [[f"80:00:00:00:00:00:00:0{i}", f"u{i}@example.com", "ADD"] for i in range(1, 6)]


def plan(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batch_share", "plan", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def stray_cell_workbook(path: Path, value: object = "x", *, formatted: bool = False) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["device_id", "email", "action"])
    for line in ROWS:
        sheet.append(line)
    if formatted:
        for row in range(7, limits.MAX_ROWS + 1, 4096):
            sheet.cell(row, 1).font = Font(bold=True)
    sheet["XFD1048576"] = value
    workbook.save(path)
    return path


def test_a_stray_cell_at_the_last_cell_plans_like_the_table(tmp_path: Path) -> None:
    path = stray_cell_workbook(tmp_path / "stray.xlsx")

    result = plan(path)

    assert result.returncode == 0, result.stderr
    assert "5 lines, 0 with problems" in result.stderr + result.stdout


def test_a_workbook_formatted_to_the_bottom_plans_like_the_table(tmp_path: Path) -> None:
    path = stray_cell_workbook(tmp_path / "formatted.xlsm", " ", formatted=True)

    result = plan(path)

    assert result.returncode == 0, result.stderr


def test_a_stray_cell_keeps_the_rows_and_numbers_of_the_table(tmp_path: Path) -> None:
    sheet = load_sheet(stray_cell_workbook(tmp_path / "stray.xlsx"))

    assert sheet.header == ("device_id", "email", "action")
    assert sheet.row_numbers.tolist() == [2, 3, 4, 5, 6]
    assert sheet.blank_rows == 0


def test_cell_by_cell_reading_gives_what_calamine_gives(tmp_path: Path) -> None:
    """The two workbook readers must agree on every text and flag, or a file would read
    differently depending only on where a stray cell sits."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    noon = dt.datetime(2024, 3, 1, 12, 30)  # noqa: DTZ001 - spreadsheet times are naive
    cells: list[list[object]] = [
        ["device_id", "email", "notify", "when"],
        ["80:00:00:00:12:34:56:78", "a@example.com", 1, noon],
        [8000000012345678, "b@example.com", True, dt.date(2024, 3, 1)],
        ["0012", "c@example.com", "TRUE", dt.time(12, 30)],
        [0.5, "d@example.com", 12.0, "NA"],
        [None, None, None, None],
        ["80:00:00:00:00:00:00:01", "  ", False, 0],
    ]
    for r, row in enumerate(cells, start=3):
        for c, value in enumerate(row, start=2):
            sheet.cell(row=r, column=c, value=value)
    sheet.cell(row=7, column=8, value="ticket 9")
    path = tmp_path / "typed.xlsx"
    workbook.save(path)
    raw = path.read_bytes()

    dense = loader._assemble(loader._read_workbook(path, None), source="typed.xlsx")
    sparse = loader._assemble(
        loader._read_sparse(raw, "xl/worksheets/sheet1.xml", "Sheet", source="typed.xlsx"),
        source="typed.xlsx",
    )

    assert sparse.header == dense.header
    assert sparse.header_row == dense.header_row
    assert sparse.blank_rows == dense.blank_rows
    np.testing.assert_array_equal(sparse.row_numbers, dense.row_numbers)
    for mine, theirs in zip(sparse.columns, dense.columns, strict=True):
        assert [(mine.values[c], mine.is_typed(c)) for c in mine.codes.tolist()] == [
            (theirs.values[c], theirs.is_typed(c)) for c in theirs.codes.tolist()
        ]


# --- refusals ---------------------------------------------------------------------------


def refused(path: Path) -> str:
    with pytest.raises(SheetError) as caught:
        load_sheet(path)
    result = plan(path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    return str(caught.value)


def test_a_decompression_bomb_is_refused(tmp_path: Path) -> None:
    path = stray_cell_workbook(tmp_path / "bomb.xlsx")
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("xl/media/image1.bin")
        info.compress_type = zipfile.ZIP_DEFLATED
        zeros = bytes(2**20)
        with archive.open(info, "w", force_zip64=True) as part:
            for _ in range(64):
                part.write(zeros)

    assert "decompression bomb" in refused(path)


def test_a_part_that_hides_its_real_size_is_refused(tmp_path: Path) -> None:
    """A part that declares a small size but inflates to more: the check must count what
    comes out, not trust the zip directory."""
    path = stray_cell_workbook(tmp_path / "liar.xlsx")
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("xl/worksheets/sheet1.xml")
    small = (info.file_size // 2).to_bytes(4, "little")
    raw[info.header_offset + 22 : info.header_offset + 26] = small
    name = info.filename.encode()
    central = raw.find(b"PK\x01\x02")
    while raw[central + 46 : central + 46 + len(name)] != name:
        central = raw.find(b"PK\x01\x02", central + 4)
    raw[central + 24 : central + 28] = small
    path.write_bytes(bytes(raw))

    assert "declares" in refused(path)


def test_a_cell_past_the_grid_is_refused(tmp_path: Path) -> None:
    path = stray_cell_workbook(tmp_path / "beyond.xlsx")
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"]
    parts["xl/worksheets/sheet1.xml"] = sheet.replace(b'r="XFD1048576"', b'r="XFD2000000"')
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in parts.items():
            archive.writestr(name, data)

    assert "beyond row 1,048,576" in refused(path)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_cell_past_the_size_a_spreadsheet_allows_is_refused(tmp_path: Path, suffix: str) -> None:
    long = "a" * (limits.MAX_CELL_CHARS + 1)
    path = tmp_path / f"long{suffix}"
    if suffix == ".csv":
        path.write_text(f"device_id,email\n80:00:00:00:00:00:00:01,{long}\n", encoding="utf-8")
    else:
        path.write_text(f'{{"device_id": "x", "email": "{long}"}}\n', encoding="utf-8")

    assert "32,767" in refused(path)


def test_a_workbook_cell_is_cut_at_the_limit_as_excel_and_calamine_cut_it(
    tmp_path: Path,
) -> None:
    long = "a" * (limits.MAX_CELL_CHARS + 100)
    workbook = openpyxl.Workbook()
    workbook.active.append(["device_id", "note"])
    workbook.active.append(["80:00:00:00:00:00:00:01", long])
    workbook.save(tmp_path / "dense.xlsx")
    workbook.active["XFD1048576"] = "x"  # and the same through the cell-by-cell reader
    workbook.save(tmp_path / "sparse.xlsx")
    for name in ("dense.xlsx", "sparse.xlsx"):
        sheet = load_sheet(tmp_path / name)

        assert sheet.cell(1, 0) == long[: limits.MAX_CELL_CHARS]


def test_deeply_nested_json_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    depth = 100_000
    path.write_text('{"device_id": ' + "[" * depth + "]" * depth + "}\n", encoding="utf-8")

    assert "nests deeper" in refused(path)


def test_nesting_within_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "nested.jsonl"
    levels = limits.MAX_JSON_DEPTH - 1  # the record itself is the first level
    nested = "[" * levels + "]" * levels
    path.write_text(f'{{"device_id": "x", "note": "[[[[", "n": {nested}}}\n', encoding="utf-8")

    assert load_sheet(path).header == ("device_id", "note", "n")


def test_a_huge_json_line_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    note = "n" * (limits.MAX_JSON_LINE_CHARS + 1)
    path.write_text(f'{{"device_id": "x", "note": "{note}"}}\n', encoding="utf-8")

    assert "limit for one record" in refused(path)
