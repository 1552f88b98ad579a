"""Workbooks meant to be edited and fed back in (exports, templates), built so a spreadsheet
cannot mangle them.

- Every column is formatted as Text: Excel applies a column's format to what is typed
  into an empty cell, so a pasted ID stays `80:00:00:00:01:00:00:01` instead of becoming
  a number or a time, and a typed `true` stays text instead of becoming a boolean. The ID
  cells written are Text themselves, so an ID edited in place stays text too; the other
  written cells are not (styling them doubled the time to write a large export), so a
  `true` retyped over one becomes a boolean, which the loader reads as `true` anyway.
- `action`, `scripting` and `notify` offer a drop-down of the plain accepted values and
  refuse anything else, so a misspelt value is caught while typing, not at the next run.
- Bold, frozen, filtered header; a second sheet, `Columns`, says what each column holds.
  The data sheet stays first, so the loader's default (the first sheet) reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import IO, Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from batch_share.errors import UsageError
from batch_share.report.roster import COLUMN_NOTES, ID_COLUMNS, VALUE_LISTS
from batch_share.report.writer import checked_rows
from batch_share.report.xlsx import XLSX_MAX_ROWS, bold_cell, save_streamed, xlsx_text

TEXT_FORMAT = "@"
_WIDTHS = {
    "device_id": 25,
    "service_id": 25,
    "device_name": 24,
    "service_name": 16,
    "email": 32,
    "action": 10,
    "scripting": 10,
    "notify": 8,
}


def write_sheet_xlsx(
    out: IO[bytes],
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    sheet_title: str,
) -> None:
    save_streamed(
        out,
        [
            (sheet_title, lambda sheet: _fill_data_sheet(sheet, header, rows)),
            ("Columns", lambda sheet: _fill_notes_sheet(sheet, header)),
        ],
        active=sheet_title,  # the data sheet, which is also first: the loader reads it
    )


def _fill_data_sheet(sheet: Any, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    # Write-only sheets emit views, column formats and widths with the first row: set first.
    sheet.sheet_view.tabSelected = True
    sheet.freeze_panes = "A2"
    for index, name in enumerate(header, 1):
        column = sheet.column_dimensions[get_column_letter(index)]
        column.width = _WIDTHS.get(name, min(max(len(name) + 2, 12), 40))
        column.number_format = TEXT_FORMAT
    for index, name in enumerate(header, 1):
        values = VALUE_LISTS.get(name)
        if values is None:
            continue
        letter = get_column_letter(index)
        validation = DataValidation(
            type="list",
            formula1='"' + ",".join(values) + '"',
            allow_blank=True,
            showErrorMessage=True,
            errorTitle=f"Not a {name} value",
            error=f"{name} must be one of: {', '.join(values)} (or blank for the default).",
        )
        validation.add(f"{letter}2:{letter}{XLSX_MAX_ROWS}")
        sheet.data_validations.append(validation)
    sheet.append([bold_cell(sheet, name) for name in header])
    # ID cells carry the Text format themselves, so an ID retyped in place stays text. Each
    # is a Text-formatted cell refilled row after row (openpyxl writes an appended row before
    # taking the next), since a styled cell costs openpyxl four times a plain value; the
    # other cells are plain text, and Text only where typed anew, from their column.
    id_cells = {
        index: WriteOnlyCell(sheet) for index, name in enumerate(header) if name in ID_COLUMNS
    }
    for cell in id_cells.values():
        cell.number_format = TEXT_FORMAT
    count = 0
    for row in checked_rows(rows, len(header)):
        count += 1
        if count >= XLSX_MAX_ROWS:
            raise UsageError(
                f"more than {XLSX_MAX_ROWS - 1:,} rows, more than an .xlsx sheet holds; "
                "write it as .csv"
            )
        # A blank is left out rather than written: a cell that does not exist takes the
        # column's Text format when someone types into it.
        cells: list[Any] = [xlsx_text(str(value)) or None for value in row]
        for index, id_cell in id_cells.items():
            if cells[index] is not None:
                id_cell.value = cells[index]
                cells[index] = id_cell
        sheet.append(cells)
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{count + 1}"


def _fill_notes_sheet(sheet: Any, header: Sequence[str]) -> None:
    sheet.sheet_view.tabSelected = False
    sheet.column_dimensions["A"].width = 16
    sheet.column_dimensions["B"].width = 90
    sheet.append([bold_cell(sheet, "column"), bold_cell(sheet, "what it holds")])
    for name in header:
        sheet.append([xlsx_text(name), xlsx_text(COLUMN_NOTES.get(name, ""))])
