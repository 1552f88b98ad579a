"""Write the per-line result report as CSV, XLSX or JSONL (SPEC.md, Report).

This module only writes: the caller decides every status and hands over finished rows.
Decisions worth knowing:

- Atomic on every exit path: the report is written to a hidden temp file next to the
  target, fsynced and renamed over it, so a crash or Ctrl-C mid-write never leaves a torn
  report or clobbers the previous one. A new report is readable by its owner only (it lists
  who may reach which device); replacing an existing report keeps that file's permissions.
- Formula neutralising (CSV and XLSX): a text cell starting with `= + - @`, tab or carriage
  return (the OWASP CSV-injection list) gets a leading `'`, which spreadsheets treat as
  "this is text". Legitimate values such as `-` or `+1 555 0100` get it too; that is the
  accepted price. The integer columns (`row`, `attempts`) are numbers and never touched.
  JSONL is data for programs, not a spreadsheet, so it carries every value exactly.
- CSV is UTF-8 with a BOM (Excel otherwise guesses a legacy code page and garbles `Zoë`),
  with the csv module's `\\r\\n` record ends, as Excel itself writes them.
- XLSX keeps `Report` as the first sheet, so the report read back as input
  (`run REPORT --only failed`) finds its rows on the default sheet, and makes `Summary`
  the active sheet, so the workbook opens on it.
- The summary goes only into the XLSX; a CSV or JSONL report stays one record per line so
  it can be re-read by the loader or by line-oriented tools.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from batch_share.errors import UsageError

REPORT_COLUMNS: tuple[str, ...] = (
    "row",
    "device_id",
    "service_id",
    "email",
    "action",
    "scripting",
    "notify",
    "status",
    "code",
    "message",
    "attempts",
    "mutation",
)
REPORT_EXTENSIONS: tuple[str, ...] = (".csv", ".jsonl", ".xlsx")

Cell = str | int

_FORMULA_TRIGGERS = frozenset("=+-@\t\r")


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """What the Summary sheet shows: line counts by status, then ordered key/value facts
    (run id, started, elapsed, api url, input file and its sha256, mutations, ...)."""

    counts: Mapping[str, int]
    fields: Sequence[tuple[str, str]]


def check_report_path(
    path: Path, what: str = "report", extensions: Sequence[str] = REPORT_EXTENSIONS
) -> None:
    """Refuse a report (or other output) path that cannot be written, before any work."""
    _check_format(path, what, extensions)
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"{what} {path}: directory {parent} does not exist")
    if path.is_dir():
        raise UsageError(f"{what} {path}: is a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: directory {parent} is not writable")


def write_report(
    path: Path,
    extra_columns: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    summary: ReportSummary,
) -> Path:
    """Write the report atomically in the format its extension names and return `path`.

    Each row holds `len(REPORT_COLUMNS) + len(extra_columns)` cells in header order, with
    `row` and `attempts` as ints. `rows` is consumed once, as it is written.
    """
    # Only the format: the directory was checked before sending (`check_report_path`), and
    # if it has gone or turned read-only since, that is an OSError from the write itself
    # (the caller's "could not write the report"), not a usage error after the fact.
    _check_format(path)
    header = (*REPORT_COLUMNS, *extra_columns)
    write = _WRITERS[path.suffix.lower()]
    replace_atomically(path, lambda out: write(out, header, rows, summary))
    return path


def _check_format(
    path: Path, what: str = "report", extensions: Sequence[str] = REPORT_EXTENSIONS
) -> None:
    if path.suffix.lower() not in extensions:
        accepted = ", ".join(extensions)
        raise UsageError(
            f"{what} {path}: unknown format {path.suffix or '(no extension)'!r}; "
            f"the extension must be one of {accepted}"
        )


def default_report_path(sheet_path: Path, now: datetime) -> Path:
    """`<stem>.result-<UTC YYYYmmddTHHMMSSZ>.csv` next to the sheet."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return sheet_path.with_name(f"{sheet_path.stem}.result-{stamp}.csv")


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, streamed, so a report can name exactly what it ran."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


# --- atomic replacement ---------------------------------------------------------------


def replace_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Put what `write` writes at `path`, whole or not at all (see the module docstring)."""
    # BaseException on purpose: Ctrl-C mid-write must not leave the temp file behind.
    temp = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, kept on success
        mode="wb", delete=False, dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    temp_path = Path(temp.name)
    try:
        with temp:
            write(temp)
            temp.flush()
            os.fsync(temp.fileno())
        _keep_permissions(path, temp_path)
        temp_path.replace(path)  # os.replace: atomic on POSIX and Windows
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _keep_permissions(path: Path, temp_path: Path) -> None:
    """Replacing a report must not change who can read it; a new one stays owner-only."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    temp_path.chmod(mode)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable. Best effort: Windows has no directory handles and
    some network filesystems refuse the call, and the report is in place either way."""
    if sys.platform == "win32":
        return
    with suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextmanager
def _text_stream(binary: IO[bytes], encoding: str, newline: str) -> Iterator[io.TextIOWrapper]:
    # backslashreplace: a stray lone surrogate must not cost the whole report.
    text = io.TextIOWrapper(binary, encoding=encoding, errors="backslashreplace", newline=newline)
    try:
        yield text
        text.flush()
    finally:
        text.detach()  # leave the temp file open for fsync


# --- rows -------------------------------------------------------------------------------


def neutralise(text: str) -> str:
    return "'" + text if text[:1] in _FORMULA_TRIGGERS else text


def checked_rows(rows: Iterable[Sequence[Cell]], width: int) -> Iterator[Sequence[Cell]]:
    """Rows of the header's width; a short or long row would shift every later column."""
    for index, row in enumerate(rows, 1):
        if len(row) != width:
            raise ValueError(f"report line {index} has {len(row)} cells, expected {width}")
        yield row


def _write_csv(
    out: IO[bytes],
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    _summary: ReportSummary,
) -> None:
    write_csv_table(out, header, rows)


def write_csv_table(out: IO[bytes], header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> None:
    """A header and rows as a spreadsheet-safe CSV: BOM, neutralised formulas, checked widths."""
    with _text_stream(out, "utf-8-sig", newline="") as text:
        writer = csv.writer(text)
        writer.writerow([neutralise(name) for name in header])
        writer.writerows(_csv_records(rows, len(header)))


def _csv_records(rows: Iterable[Sequence[Cell]], width: int) -> Iterator[list[Cell]]:
    # One generator with the neutralising inlined: this runs for every cell of a report
    # that may have a million lines, and each extra layer costs a visible fraction.
    triggers = _FORMULA_TRIGGERS
    for row in checked_rows(rows, width):
        yield [
            "'" + cell if isinstance(cell, str) and cell[:1] in triggers else cell for cell in row
        ]


def _write_jsonl(
    out: IO[bytes],
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    _summary: ReportSummary,
) -> None:
    write_jsonl_table(out, header, rows)


def write_jsonl_table(
    out: IO[bytes], header: Sequence[str], rows: Iterable[Sequence[Cell]]
) -> None:
    """One JSON object per row, keyed by the header; values exactly as given."""
    keys = _unique_keys(header)
    encode = json.JSONEncoder(ensure_ascii=False).encode
    with _text_stream(out, "utf-8", newline="\n") as text:
        text.writelines(
            encode(dict(zip(keys, row, strict=True))) + "\n"
            for row in checked_rows(rows, len(header))
        )


def _unique_keys(header: Sequence[str]) -> list[str]:
    """JSON objects cannot repeat a key, but a sheet can repeat a column name (or reuse a
    report column's name): later ones become `name.1`, `name.2`, as pandas names them."""
    seen: set[str] = set()
    keys = []
    for name in header:
        key, number = name, 0
        while key in seen:
            number += 1
            key = f"{name}.{number}"
        seen.add(key)
        keys.append(key)
    return keys


# --- xlsx -------------------------------------------------------------------------------


def _write_xlsx(
    out: IO[bytes],
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    summary: ReportSummary,
) -> None:
    # openpyxl takes a tenth of a second to import: only runs that write .xlsx pay for it.
    from batch_share.report.xlsx import write_xlsx  # noqa: PLC0415

    write_xlsx(out, header, rows, summary)


_Writer = Callable[[IO[bytes], Sequence[str], Iterable[Sequence[Cell]], ReportSummary], None]
_WRITERS: Mapping[str, _Writer] = {".csv": _write_csv, ".jsonl": _write_jsonl, ".xlsx": _write_xlsx}
