"""The XLSX report: a `Report` sheet of lines and a `Summary` sheet (see `report`).

Kept apart from `report` so that runs writing CSV or JSONL never import openpyxl.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from typing import IO, Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter

from batch_share.errors import UsageError
from batch_share.models import Status
from batch_share.report.writer import (
    REPORT_COLUMNS,
    Cell,
    ReportSummary,
    checked_rows,
    neutralise,
)

# Rows per worksheet in Excel, header included; a longer sheet would not open.
XLSX_MAX_ROWS = 1_048_576
_STATUS_COLUMN = REPORT_COLUMNS.index("status")
_XLSX_MAX_CELL_TEXT = 32_767  # Excel refuses to open a workbook with a longer cell
_COLUMN_WIDTHS: Mapping[str, int] = {
    "row": 7,
    "device_id": 25,
    "service_id": 25,
    "email": 32,
    "action": 9,
    "scripting": 10,
    "notify": 8,
    "status": 11,
    "code": 22,
    "message": 60,
    "attempts": 9,
    "mutation": 12,
}

# Excel's own "Good", "Bad" and "Neutral" fills, plus an orange and a grey.
_STATUS_COLOURS: Mapping[str, str] = {
    Status.SUCCEEDED.value: "C6EFCE",
    Status.FAILED.value: "FFC7CE",
    Status.INVALID.value: "F8CBAD",
    Status.CONFLICT.value: "FFEB9C",
    Status.NOT_RUN.value: "D9D9D9",
}


def write_xlsx(
    out: IO[bytes],
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    summary: ReportSummary,
) -> None:
    save_streamed(
        out,
        [
            ("Report", lambda sheet: _fill_report_sheet(sheet, header, rows)),
            ("Summary", lambda sheet: _fill_summary_sheet(sheet, summary)),
        ],
        active="Summary",  # opens on Summary; Report stays first (see top)
    )


def save_streamed(
    out: IO[bytes], sheets: Sequence[tuple[str, Callable[[Any], None]]], *, active: str
) -> None:
    """A workbook of write-only sheets, each filled in turn: rows stream to disk, so a
    million-line sheet fits in memory. If filling fails, every half-written sheet is
    discarded before the error goes on."""
    workbook = Workbook(write_only=True)
    made = {title: workbook.create_sheet(title) for title, _ in sheets}
    try:
        for title, fill in sheets:
            fill(made[title])
    except BaseException:
        for sheet in made.values():
            _discard_sheet(sheet)
        raise
    workbook.active = made[active]
    workbook.save(out)


def _discard_sheet(sheet: Any) -> None:
    """Abandon a half-streamed write-only sheet tidily.

    openpyxl streams each sheet into its own temp file through a generator; left to the
    garbage collector, that generator fails noisily on an already-closed file and the temp
    file lingers until exit. Closing then deleting it here avoids both. The writer is
    private, hence the guarded lookup; a failure here must not mask the error being raised.
    """
    writer = getattr(sheet, "_writer", None)
    if writer is None or sheet.closed:
        return
    with suppress(Exception):
        sheet.close()
        writer.cleanup()


def xlsx_text(text: str) -> str:
    """Text an XLSX cell can hold, stored as text: control characters that XML forbids
    become U+FFFD, overlong text is cut to Excel's limit, and formulas are neutralised
    (openpyxl would otherwise store a string starting with `=` as a formula)."""
    text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
    if len(text) > _XLSX_MAX_CELL_TEXT:
        text = text[: _XLSX_MAX_CELL_TEXT - 1] + "\u2026"
    return neutralise(text)


def _xlsx_value(cell: Cell) -> Cell:
    return xlsx_text(cell) if isinstance(cell, str) else cell


def bold_cell(sheet: Any, value: Cell) -> Any:
    cell = WriteOnlyCell(sheet, value=_xlsx_value(value))
    cell.font = Font(bold=True)
    return cell


def _status_cell(sheet: Any, status: str) -> Any:
    cell = WriteOnlyCell(sheet, value=status)
    cell.fill = PatternFill(fill_type="solid", start_color=_STATUS_COLOURS[status])
    return cell


def _fill_report_sheet(sheet: Any, header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> None:
    # Write-only sheets emit views and column widths with the first row: set them first.
    # Only the active sheet may be tab-selected, or Excel opens with both sheets grouped.
    sheet.sheet_view.tabSelected = False
    sheet.freeze_panes = "A2"
    for index, name in enumerate(header, 1):
        width = _COLUMN_WIDTHS.get(name, min(max(len(name) + 2, 12), 40))
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.append([bold_cell(sheet, name) for name in header])
    # openpyxl writes an appended cell object before taking the next row, so one styled
    # cell per status can be reused for every line instead of styling a million cells.
    status_cells = {status: _status_cell(sheet, status) for status in _STATUS_COLOURS}
    count = 0
    for row in checked_rows(rows, len(header)):
        count += 1
        if count >= XLSX_MAX_ROWS:
            raise UsageError(
                f"the report has more than {XLSX_MAX_ROWS - 1:,} lines, more than an .xlsx "
                "sheet holds; write it as .csv or .jsonl"
            )
        values: list[Any] = [_xlsx_value(cell) for cell in row]
        styled = status_cells.get(str(row[_STATUS_COLUMN]))
        if styled is not None:
            values[_STATUS_COLUMN] = styled
        sheet.append(values)
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{count + 1}"


def _fill_summary_sheet(sheet: Any, summary: ReportSummary) -> None:
    sheet.sheet_view.tabSelected = True
    sheet.column_dimensions["A"].width = 24
    sheet.column_dimensions["B"].width = 64
    sheet.append([bold_cell(sheet, "status"), bold_cell(sheet, "lines")])
    # Every status is listed, zeros included, so "failed 0" is stated rather than implied.
    statuses = [*_STATUS_COLOURS, *(s for s in summary.counts if s not in _STATUS_COLOURS)]
    for status in statuses:
        label = _status_cell(sheet, status) if status in _STATUS_COLOURS else xlsx_text(status)
        sheet.append([label, summary.counts.get(status, 0)])
    sheet.append([bold_cell(sheet, "total"), bold_cell(sheet, sum(summary.counts.values()))])
    sheet.append([])
    for key, value in summary.fields:
        sheet.append([xlsx_text(key), xlsx_text(value)])
