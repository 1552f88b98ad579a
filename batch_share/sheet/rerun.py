"""A report is valid input: `run REPORT --only failed,not-run` retries exactly those lines.

Pure: turns a loaded report (a `Sheet` whose header starts with the report columns) into a
sheet of just the selected lines, numbered with their ORIGINAL row numbers and carrying
their original extra columns, so the new report lines up with the first sheet.
"""

from __future__ import annotations

import logging
import re

import numpy as np

from batch_share.errors import SheetError, UsageError
from batch_share.models import Column, Sheet, Status

# Columns a report adds that are output, not input: they must not come back as extras.
REPORT_ONLY_COLUMNS = ("row", "status", "code", "message", "attempts", "mutation")
# The code of a sync's removal that was kept because its device had unclear rows.
HELD_BACK = "unclear-device"
logger = logging.getLogger("batch_share")
_NEUTRALISED = re.compile(r"^'(?=[=+\-@\t\r])")


def parse_only(text: str) -> frozenset[str]:
    """`--only failed,not-run` -> statuses; unknown names are a usage error."""
    wanted = frozenset(part.strip().lower() for part in text.split(",") if part.strip())
    known = {status.value for status in Status}
    unknown = sorted(wanted - known)
    if unknown or not wanted:
        raise UsageError(
            f"--only takes statuses separated by commas ({', '.join(sorted(known))}); got {text!r}"
        )
    return wanted


def is_report(sheet: Sheet) -> bool:
    names = {name.strip().lower() for name in sheet.header}
    return {"row", "status", "mutation"} <= names


def select_report_lines(sheet: Sheet, only: frozenset[str]) -> Sheet:
    """The report lines whose status is in `only`, as a sheet batch-share can plan again."""
    if not is_report(sheet):
        raise SheetError(
            f"{sheet.source}: --only needs a batch-share report (columns row, status, ...); "
            "this sheet has none"
        )
    index = {name.strip().lower(): i for i, name in reversed(list(enumerate(sheet.header)))}
    status = sheet.columns[index["status"]]
    wanted_codes = [k for k, value in enumerate(status.values) if value.strip().lower() in only]
    selected = np.isin(status.codes, wanted_codes)
    if "code" in index:
        # A sync held these removals back because the device's rows were unclear; replaying
        # them would take away exactly the access it chose to keep. Fix the sheet and sync.
        code = sheet.columns[index["code"]]
        held_codes = [k for k, value in enumerate(code.values) if value.strip() == HELD_BACK]
        held = selected & np.isin(code.codes, held_codes)
        if held.any():
            logger.warning(
                "%s: %d removals a sync held back (%s) are not replayed; fix the sheet's "
                "unclear rows and sync again",
                sheet.source,
                int(held.sum()),
                HELD_BACK,
            )
        selected &= ~held
    keep = np.flatnonzero(selected)
    row_column = sheet.columns[index["row"]]
    row_numbers = np.asarray(
        [_row_number(sheet, row_column.values[int(row_column.codes[i])], int(i)) for i in keep],
        dtype=np.int64,
    )
    dropped = {index[name] for name in REPORT_ONLY_COLUMNS if name in index}
    kept_columns = [i for i in range(len(sheet.header)) if i not in dropped]
    return Sheet(
        source=sheet.source,
        sheet_name=sheet.sheet_name,
        header=tuple(sheet.header[i] for i in kept_columns),
        header_row=sheet.header_row,
        row_numbers=row_numbers,
        columns=tuple(_take(sheet.columns[i], keep) for i in kept_columns),
    )


def _row_number(sheet: Sheet, text: str, line: int) -> int:
    """The original row number; 0 for a sync's removal line, which came from no row."""
    if not text.strip():
        return 0
    try:
        return int(text.strip())
    except ValueError:
        raise SheetError(
            f"{sheet.source}: row {int(sheet.row_numbers[line])}, column row: "
            f"{text!r} is not a row number"
        ) from None


def strip_formula_guard(text: str) -> str:
    """The text without the apostrophe a report or export put before `= + - @`, so a
    spreadsheet would not run it as a formula."""
    return _NEUTRALISED.sub("", text)


def _take(column: Column, keep: np.ndarray) -> Column:
    """The kept cells, with the report's formula-guard apostrophe taken off again."""
    values = tuple(strip_formula_guard(value) for value in column.values)
    return Column(column.name, column.codes[keep], values, column.typed)
