"""Read a sheet file into a `Sheet`: every cell as the text the user typed, every row under
the number the user sees in their spreadsheet.

The loader is deliberately lossless and opinion-free. Nothing is stripped, nothing is
converted: `0012`, `NA`, `null` and `TRUE` stay text, because an ID column that a spreadsheet
turned into a number must be *reported* as mangled by validation, never silently repaired
here. For workbooks the one thing added is a `typed` flag per distinct value, telling
validation which texts were numbers, dates or booleans in the file.

This is the only module that imports pandas, and only for the files that need it (ragged
text): a well-formed CSV goes through pyarrow alone and a workbook through python-calamine,
which spares `plan` the import. Columns are dictionary-encoded right after parsing, so a
million-row sheet never becomes a million Python objects: only the distinct texts do.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from batch_share.errors import SheetError
from batch_share.models import BoolArray, Column, IntArray, Sheet, distinct
from batch_share.sheet import limits
from batch_share.sheet.arrowtext import to_ints

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from batch_share.sheet import workbook_zip

# Extension -> the delimiter to prefer when sniffing cannot decide.
_TEXT_FORMATS = {".csv": ",", ".txt": ",", ".tsv": "\t"}
_WORKBOOK_FORMATS = (".xlsx", ".xlsm", ".xls", ".ods")
# JSON Lines is read so that a `.jsonl` report can be fed back in like the other formats.
_JSON_LINES = ".jsonl"
_DELIMITERS = (",", ";", "\t", "|")
# Enough records to judge the delimiter, small enough to sniff in a blink.
_SNIFF_BYTES = 64 * 1024
_UTF8_CHECK_CHUNK = 1 << 20
# Up to this size a text file is parsed by the csv module: importing pyarrow would cost a
# hand run on a small sheet more than the whole parse. Bigger files keep the arrow path.
_SMALL_TEXT_BYTES = 256 * 1024
# Excel keeps 15 significant digits, so this shows a number the way the spreadsheet does:
# 12.0 -> "12", 0.5 -> "0.5", 8000000012345678 -> "8.00000001234568e+15".
_NUMBER_FORMAT = ".15g"


@dataclass(frozen=True, slots=True)
class _Encoded:
    """One column of the raw grid (header and blank rows included), dictionary-encoded."""

    codes: IntArray
    values: tuple[str, ...]
    typed: tuple[bool, ...] | None


@dataclass(frozen=True, slots=True)
class _Grid:
    """Every record of the file as encoded columns; record i is row `first_row + i`, and
    column j is the sheet's column `first_column + j` (both counted from 1).

    A grid read cell by cell holds only the rows and columns that have cells: then
    `row_numbers` and `column_numbers` say which they are.
    """

    columns: list[_Encoded]
    first_row: int
    first_column: int
    sheet_name: str | None
    row_numbers: IntArray | None = None
    column_numbers: tuple[int, ...] | None = None
    # In a workbook, cells below the table with nothing under any heading are leftovers
    # (the cell Ctrl+End finds), not lines: a text file has no such thing.
    trailing_strays_are_blank: bool = False


def load_sheet(path: Path, *, sheet: str | None = None) -> Sheet:
    """Read a `.csv`/`.tsv`/`.txt` or `.xlsx`/`.xlsm`/`.xls`/`.ods` file losslessly.

    `sheet` picks a worksheet by name (default: the first). Raises `SheetError`, naming the
    file and the problem, when the file cannot be read or has no header row.
    """
    suffix = path.suffix.lower()
    if suffix in _TEXT_FORMATS:
        if sheet is not None:
            raise SheetError(
                f"{path.name}: has no worksheet named {sheet!r}: a text file has no worksheets"
            )
        grid = _read_text(path, default_delimiter=_TEXT_FORMATS[suffix])
    elif suffix in _WORKBOOK_FORMATS:
        grid = _read_workbook(path, sheet)
    elif suffix == _JSON_LINES:
        grid = _read_json_lines(path)
    else:
        supported = ", ".join((*_TEXT_FORMATS, *_WORKBOOK_FORMATS, _JSON_LINES))
        raise SheetError(
            f"{path.name}: unsupported file type {suffix or '(no extension)'!r}; "
            f"use one of {supported}"
        )
    _refuse_long_cells(grid, source=path.name)
    return _assemble(grid, source=path.name)


def _refuse_long_cells(grid: _Grid, *, source: str) -> None:
    """Checked on the distinct texts only, so it costs nothing per row."""
    for position, column in enumerate(grid.columns):
        longest = max(map(len, column.values), default=0)
        if longest > limits.MAX_CELL_CHARS:
            number = (
                grid.column_numbers[position]
                if grid.column_numbers is not None
                else grid.first_column + position
            )
            raise SheetError(
                f"{source}: a cell in column {number} holds {longest:,} characters, more than "
                f"the {limits.MAX_CELL_CHARS:,} a spreadsheet cell can; in a text file this is "
                "usually a quote that is never closed"
            )


# --- JSON Lines -------------------------------------------------------------------------


def _read_json_lines(path: Path) -> _Grid:
    """One JSON object per line; the keys, in first-seen order, form the header row.

    Line k is row k + 1, as if the header stood on row 1; blank lines keep their number.
    Strings are the cell text; numbers are marked typed, since an ID stored as a JSON number
    has lost its form just as a spreadsheet number has.
    """
    records: list[dict[str, object] | None] = []
    text = _utf8_bytes(path).decode("utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            records.append(None)
            continue
        if len(line) > limits.MAX_JSON_LINE_CHARS:
            raise SheetError(
                f"{path.name}: line {number} is {len(line):,} characters long, past the "
                f"{limits.MAX_JSON_LINE_CHARS:,} limit for one record; it is not a sheet line"
            )
        _refuse_deep_nesting(path, number, line)
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise SheetError(f"{path.name}: line {number} is not JSON: {error.msg}") from None
        if not isinstance(record, dict):
            raise SheetError(f"{path.name}: line {number} is not a JSON object")
        records.append(record)
    header = list(dict.fromkeys(key for record in records if record for key in record))
    columns = []
    for key in header:
        cells = [(key, False), *(_json_text(r.get(key)) if r else ("", False) for r in records)]
        table: dict[tuple[str, bool], int] = {}
        codes = np.fromiter((table.setdefault(cell, len(table)) for cell in cells), dtype=np.int64)
        columns.append(
            _Encoded(codes, tuple(t for t, _ in table), tuple(typed for _, typed in table))
        )
    return _Grid(columns=columns, first_row=1, first_column=1, sheet_name=None)


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def _refuse_deep_nesting(path: Path, number: int, line: str) -> None:
    """Refuse before parsing: the json module recurses once per level, and a line of a few
    thousand brackets would otherwise end in a RecursionError (or, in a C extension, worse).
    """
    if line.count("[") + line.count("{") <= limits.MAX_JSON_DEPTH:
        return  # the usual case: too few brackets to nest that deep, no scan needed
    depth = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", line)):
        depth += 1 if bracket in "[{" else -1
        if depth > limits.MAX_JSON_DEPTH:
            raise SheetError(
                f"{path.name}: line {number} nests deeper than {limits.MAX_JSON_DEPTH} "
                "levels; a sheet record is a flat object"
            )


def _json_text(value: object) -> tuple[str, bool]:
    match value:
        case str():
            return value, False
        case None:
            return "", False
        case bool():
            return ("true" if value else "false"), True
        case int() | float():
            return str(value), True
        case _:
            return json.dumps(value, ensure_ascii=False), True


# --- text files -------------------------------------------------------------------------


def _read_text(path: Path, *, default_delimiter: str) -> _Grid:
    data = _utf8_bytes(path)
    sample = data[:_SNIFF_BYTES].decode("utf-8", errors="ignore")
    delimiter, width = _sniff_delimiter(
        sample, default=default_delimiter, truncated=len(data) > _SNIFF_BYTES
    )
    columns = _parse_small(data, delimiter) if len(data) <= _SMALL_TEXT_BYTES else None
    if columns is None:
        columns = _parse_with_arrow(data, delimiter, width)
    if columns is None:
        columns = _parse_ragged(path, data, delimiter)
    return _Grid(columns=columns, first_row=1, first_column=1, sheet_name=None)


def _utf8_bytes(path: Path) -> bytes:
    """The file's text as UTF-8 without a byte-order mark, whatever it was saved as."""
    raw = _read_bytes(path)
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # The "utf-16" codec reads the byte-order mark to pick LE/BE and drops it.
        data = _transcode(path, raw, "utf-16", "starts like UTF-16 but is not valid UTF-16")
    else:
        _refuse_binary(path, raw)
        data = raw.removeprefix(codecs.BOM_UTF8)
        if not (data.isascii() or _is_utf8(data)):
            # What Excel on Windows writes for "CSV" when it is not told "CSV UTF-8".
            data = _transcode(path, data, "cp1252", "is not UTF-8, UTF-16 or Windows-1252 text")
    _refuse_binary(path, data)
    return data


def _transcode(path: Path, raw: bytes, encoding: str, problem: str) -> bytes:
    try:
        return raw.decode(encoding).encode("utf-8")
    except UnicodeDecodeError as err:
        raise SheetError(
            f"{path.name}: {problem} (byte {err.start}); save it as CSV UTF-8"
        ) from err


def _refuse_binary(path: Path, data: bytes) -> None:
    if b"\x00" in data:
        raise SheetError(
            f"{path.name}: is not a text file (it contains NUL bytes); a spreadsheet needs its "
            "real extension, and UTF-16 text a byte-order mark"
        )


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > limits.MAX_FILE_BYTES:
            raise SheetError(
                f"{path.name}: is {size / 2**30:.1f} GiB, past the "
                f"{limits.MAX_FILE_BYTES // 2**30} GiB limit for a sheet file; split it into "
                "smaller files and run each"
            )
        return path.read_bytes()
    except FileNotFoundError as err:
        raise SheetError(f"{path}: no such file") from err
    except IsADirectoryError as err:
        raise SheetError(f"{path}: is a directory, not a sheet file") from err
    except OSError as err:
        raise SheetError(f"{path.name}: cannot be read ({err.strerror or err})") from err


def _is_utf8(raw: bytes) -> bool:
    """Validate in chunks: decoding a big file whole would build a str several times its size."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(raw)
    try:
        for start in range(0, len(raw), _UTF8_CHECK_CHUNK):
            decoder.decode(view[start : start + _UTF8_CHECK_CHUNK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _sniff_delimiter(sample: str, *, default: str, truncated: bool) -> tuple[str, int]:
    """Pick the delimiter that splits the sample's records into one column count above 1.

    Returns the delimiter and the widest record seen with it. When no candidate is
    consistent (a hand-edited file with a short row), the one that splits the first record
    into the most columns wins; when nothing splits, the extension's default.
    """
    candidates = (default, *(d for d in _DELIMITERS if d != default))
    consistent: list[tuple[int, str]] = []
    by_header: list[tuple[int, str]] = []
    for delimiter in candidates:
        # Empty lines are blank rows whatever the delimiter; they say nothing about it.
        records = [r for r in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter) if r]
        if truncated:
            records = records[:-1]  # the sample may cut the last record short
        if not records:
            continue
        widths = {len(record) for record in records}
        if len(widths) == 1 and len(records[0]) > 1:
            consistent.append((len(records[0]), delimiter))
        by_header.append((len(records[0]), delimiter))
    # max() keeps the first of equal widths, and candidates start with the default.
    for choices in (consistent, [c for c in by_header if c[0] > 1]):
        if choices:
            width, delimiter = max(choices, key=lambda choice: choice[0])
            return delimiter, width
    return default, 1


def _parse_small(data: bytes, delimiter: str) -> list[_Encoded] | None:
    """The small-file path: the csv module, giving what the arrow path (or, for rows of
    different lengths, the ragged path) gives: every record, empty lines included, short
    ones padded with empty cells, each column encoded in order of first appearance. None
    for anything it is not sure of (a cell past the csv module's size limit), so the other
    paths decide."""
    text = data.decode("utf-8")
    try:
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error:
        return None
    if not records:
        return []
    # Only empty lines: arrow reads them as one column of empty cells.
    width = max(1, *map(len, records))
    tables: list[dict[str, int]] = [{} for _ in range(width)]
    codes = np.empty((width, len(records)), dtype=np.int64)
    for number, record in enumerate(records):
        if len(record) < width:
            record = [*record, *[""] * (width - len(record))]  # noqa: PLW2901
        for column, cell in enumerate(record):
            table = tables[column]
            codes[column, number] = table.setdefault(cell, len(table))
    return [_Encoded(codes[i], tuple(tables[i]), None) for i in range(width)]


def _parse_with_arrow(data: bytes, delimiter: str, width: int) -> list[_Encoded] | None:
    """The fast path, for rectangular files; None when pyarrow cannot take this file.

    pyarrow.csv is used directly rather than through `pd.read_csv(engine="pyarrow")`
    because pandas does not pass `newlines_in_values`: without it a quoted cell holding a
    line break can be split at a block boundary. `ignore_empty_lines=False` keeps empty
    lines as records, so they still count in the row numbers.

    One thread: parsing is a small part of loading, and measured on a million-row CSV the
    reader's threads cost more in system time (paging memory in and out) than the parallel
    parse saved.
    """
    import pyarrow as pa  # noqa: PLC0415 - only files past _SMALL_TEXT_BYTES load arrow
    import pyarrow.csv as pa_csv  # noqa: PLC0415

    column_types = {f"f{i}": pa.string() for i in range(max(width, 1))}
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(data),
            memory_pool=_parse_memory(),
            read_options=pa_csv.ReadOptions(autogenerate_column_names=True, use_threads=False),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter, newlines_in_values=True, ignore_empty_lines=False
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=column_types,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        # Rows of different lengths, an empty file, a cell bigger than a block: the
        # slower path handles them all.
        return None
    if not all(pa.types.is_string(field.type) for field in table.schema):
        # More columns than the sniffed sample showed: pyarrow inferred types for the
        # rest, which would turn "0012" into 12. Never accept that.
        return None
    return [_encode_arrow(column) for column in table.columns]


def _parse_memory() -> pa.MemoryPool:
    """Arrow buffers made while parsing come from the C library's allocator rather than
    arrow's default (mimalloc): measured on a million-row CSV, the default pool made the
    kernel spend about 0.4 s more paging in fresh memory, a fifth of the whole `plan`."""
    import pyarrow as pa  # noqa: PLC0415

    return pa.system_memory_pool()


def _encode_arrow(cells: pa.ChunkedArray) -> _Encoded:
    """Dictionary-encode in arrow, in order of first appearance as `pd.factorize` does.

    Only the distinct texts become Python strings, in one bulk `to_pylist`: going through
    pandas iterated them one by one, which cost more than parsing the file. The chunks of
    an encoded chunked array share one dictionary, so they need no combining.
    """
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    encoded = pc.dictionary_encode(cells, memory_pool=_parse_memory())
    if encoded.num_chunks == 0:
        return _Encoded(np.zeros(0, dtype=np.int64), (), None)
    codes = to_ints(pa.chunked_array([chunk.indices for chunk in encoded.chunks]))
    return _Encoded(codes, tuple(encoded.chunk(0).dictionary.to_pylist()), None)


def _parse_ragged(path: Path, data: bytes, delimiter: str) -> list[_Encoded]:
    """The slower path: rows of different lengths, or anything else pyarrow refuses.

    pandas' C engine pads short rows when told how many columns to expect, and the widest
    record is only known after a pass of the csv module (which streams, keeping no rows).
    """
    import pandas as pd  # noqa: PLC0415 - only ragged files pay for pandas

    width = _widest_record(path, data, delimiter)
    if width == 0:
        return []
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            sep=delimiter,
            header=None,
            names=range(width),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,  # empty lines still count in the row numbers
            engine="c",
            encoding="utf-8",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise SheetError(f"{path.name}: cannot be parsed as delimited text ({err})") from err
    return [_encode_texts(frame[name]) for name in frame.columns]


def _widest_record(path: Path, data: bytes, delimiter: str) -> int:
    with io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="") as text:
        try:
            return max(map(len, csv.reader(text, delimiter=delimiter)), default=0)
        except csv.Error as err:
            raise SheetError(f"{path.name}: cannot be parsed as delimited text ({err})") from err


def _encode_texts(cells: pd.Series[str]) -> _Encoded:
    import pandas as pd  # noqa: PLC0415 - see _parse_ragged

    codes, uniques = pd.factorize(cells, use_na_sentinel=False)
    # tolist() converts in bulk; iterating the arrow-backed uniques costs a call per value.
    return _Encoded(np.asarray(codes, dtype=np.int64), tuple(uniques.tolist()), None)


# --- workbooks --------------------------------------------------------------------------


class _Boolean(Enum):
    """Stands in for a boolean cell while factorizing: True == 1 == 1.0 in Python, so a
    TRUE cell would otherwise share a value with a cell holding the number 1."""

    FALSE = "FALSE"
    TRUE = "TRUE"


def _read_workbook(path: Path, wanted: str | None) -> _Grid:
    # Imported here so that reading a CSV never loads the workbook reader.
    from python_calamine import (  # noqa: PLC0415
        CalamineError,
        CalamineWorkbook,
        PasswordError,
    )

    from batch_share.sheet import workbook_zip  # noqa: PLC0415

    raw = _read_bytes(path)
    extents = workbook_zip.inspect(raw, path.name)
    try:
        # From the bytes, not the path: calamine then detects the format from the content,
        # so an .xlsx saved under an .xls name (common for "Export to Excel") still reads.
        with CalamineWorkbook.from_filelike(io.BytesIO(raw)) as workbook:
            name = _pick_worksheet(path, workbook.sheet_names, wanted)
            part = _sparse_part(raw, name, extents, source=path.name)
            if part is None:
                worksheet = workbook.get_sheet_by_name(name)
                # Calamine trims the empty rows and columns before the data; `start` says
                # where the trimmed range begins, which keeps row and column numbers true.
                rows = worksheet.to_python()
                start = worksheet.start
    except PasswordError as err:
        raise SheetError(f"{path.name}: is password-protected; save a copy without one") from err
    except CalamineError as err:
        raise SheetError(
            f"{path.name}: cannot be read as a spreadsheet; the file is damaged or is not "
            f"what its extension says ({err})"
        ) from err
    if part is not None:
        return _read_sparse(raw, part, name, source=path.name)
    top, left = start if start is not None else (0, 0)
    columns = [_encode_cells(cells) for cells in zip(*rows, strict=True)]
    return _Grid(
        columns=columns,
        first_row=top + 1,
        first_column=left + 1,
        sheet_name=name,
        trailing_strays_are_blank=True,
    )


def _sparse_part(
    raw: bytes, name: str, extents: dict[str, workbook_zip.Extent], *, source: str
) -> str | None:
    """The worksheet part to read cell by cell, or None to let calamine read it whole."""
    from batch_share.sheet import workbook_zip  # noqa: PLC0415

    if not any(extent.is_mostly_air() for extent in extents.values()):
        return None
    part = workbook_zip.worksheet_part(raw, name)
    if part is None or part not in extents:
        raise SheetError(
            f"{source}: a worksheet's used range reaches far past its cells, and the "
            f"workbook's layout does not say which part holds {name!r}; copy the table into "
            "a new workbook"
        )
    return part if extents[part].is_mostly_air() else None


def _read_sparse(raw: bytes, part: str, name: str, *, source: str) -> _Grid:
    """Only the rows and columns that hold cells, so a stray cell at XFD1048576 costs one
    cell, not the 17 billion of the range it stretches."""
    import zipfile  # noqa: PLC0415 - workbooks only, like the rest of this path
    import zlib  # noqa: PLC0415
    from xml.etree import ElementTree as ET  # noqa: PLC0415

    from batch_share.sheet import workbook_zip  # noqa: PLC0415

    by_column: dict[int, dict[int, object]] = {}
    rows: set[int] = set()
    count = 0
    try:
        for row, column, value in workbook_zip.read_cells(raw, part, source):
            by_column.setdefault(column, {})[row] = value
            rows.add(row)
            count += 1
    except (ET.ParseError, zipfile.BadZipFile, zlib.error, KeyError) as err:
        raise SheetError(
            f"{source}: cannot be read as a spreadsheet; the file is damaged ({err})"
        ) from err
    row_numbers = np.array(sorted(rows), dtype=np.int64)
    column_numbers = tuple(sorted(by_column))
    if len(row_numbers) * len(column_numbers) > max(
        limits.DENSE_RANGE_FLOOR, limits.DENSE_RANGE_MIN_FILL * count
    ):
        raise SheetError(
            f"{source}: worksheet {name!r} has {count:,} cells scattered over "
            f"{len(row_numbers):,} rows and {len(column_numbers):,} columns; that is not a "
            "table. Copy the table into a new sheet"
        )
    position = {int(row): index for index, row in enumerate(row_numbers)}
    columns = []
    for column in column_numbers:
        cells: list[object] = [""] * len(row_numbers)  # how calamine gives an empty cell
        for row, cell in by_column[column].items():
            cells[position[row]] = cell
        columns.append(_encode_cells(tuple(cells)))
    return _Grid(
        columns=columns,
        first_row=int(row_numbers[0]) if len(row_numbers) else 1,
        first_column=column_numbers[0] if column_numbers else 1,
        sheet_name=name,
        row_numbers=row_numbers,
        column_numbers=column_numbers,
        trailing_strays_are_blank=True,
    )


def _pick_worksheet(path: Path, names: list[str], wanted: str | None) -> str:
    if not names:
        raise SheetError(f"{path.name}: the workbook has no worksheets")
    if wanted is None:
        return names[0]
    if wanted in names:
        return wanted
    by_case = [name for name in names if name.casefold() == wanted.casefold()]
    if len(by_case) == 1:
        return by_case[0]
    listed = ", ".join(repr(name) for name in names)
    raise SheetError(f"{path.name}: has no worksheet named {wanted!r}; it has {listed}")


def _encode_cells(cells: Sequence[object]) -> _Encoded:
    """Encode a workbook column on (text, typed): a number cell and a text cell that read the
    same must stay apart, since only the number was mangled by the spreadsheet.

    Deduplicated with a dict in C (`dict.fromkeys`) rather than `pd.factorize`: measured on
    a 100,000-row workbook it is faster, and a workbook no longer pays for importing pandas.
    """
    table: dict[object, int] = dict.fromkeys(cells, 0)
    if 0 in table or 1 in table:
        # True == 1 == 1.0 and False == 0 in a dict, so a TRUE cell would share a key with
        # a cell holding the number 1. Only then is every cell looked at in Python.
        cells = [_Boolean(str(cell).upper()) if type(cell) is bool else cell for cell in cells]
        table = dict.fromkeys(cells, 0)
    # Distinct cell values can still show as the same text (1 and 1.0, or two numbers that
    # differ past the 15th digit); merge them so `values` holds each (text, typed) once.
    index: dict[tuple[str, bool], int] = {}
    for value in table:
        table[value] = index.setdefault(_cell_text(value), len(index))
    codes = np.fromiter(map(table.__getitem__, cells), dtype=np.int64, count=len(cells))
    return _Encoded(
        codes,
        tuple(text for text, _ in index),
        tuple(typed for _, typed in index),
    )


def _cell_text(value: object) -> tuple[str, bool]:
    """A workbook cell as (the text the spreadsheet shows, whether it was typed non-text).

    Error cells (#N/A, #DIV/0!) arrive as empty strings: python-calamine maps them so.
    """
    match value:
        case str():
            return value, False
        case None:
            return "", False
        case _Boolean():
            return value.value, True
        case float():
            return format(value, _NUMBER_FORMAT), True
        case int():
            return str(value), True
        case datetime():
            return value.isoformat(sep=" "), True
        case date() | time():
            return value.isoformat(), True
        case timedelta():
            return _duration_text(value), True
        case _:
            return str(value), True


def _duration_text(value: timedelta) -> str:
    """As Excel shows an elapsed time: 30:00:00, not "1 day, 6:00:00"."""
    seconds = round(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours}:{minutes:02d}:{seconds:02d}"


# --- from grid to sheet -----------------------------------------------------------------


def _assemble(grid: _Grid, *, source: str) -> Sheet:
    """Find the header (the first non-blank record), drop blank rows, and keep the rest
    under their true row numbers."""
    blank = _blank_records(grid.columns)
    filled = np.flatnonzero(~blank)
    if len(filled) == 0:
        where = f" (worksheet {grid.sheet_name!r})" if grid.sheet_name is not None else ""
        raise SheetError(f"{source}{where}: no header row: the sheet is empty")
    header_at = int(filled[0])
    if grid.trailing_strays_are_blank:
        filled = _without_trailing_strays(grid.columns, filled, header_at)
    data_rows = filled[1:]
    records_after_header = len(blank) - header_at - 1
    everything_kept = len(data_rows) == records_after_header
    # Usually nothing is blank after the header: a slice is a view, while indexing with
    # the row list would copy every column of a million rows.
    selection: slice | IntArray = slice(header_at + 1, None) if everything_kept else data_rows
    if everything_kept:
        dropped_rows = np.arange(header_at + 1, dtype=np.int64)
    else:
        kept = np.zeros(len(blank), dtype=np.bool_)
        kept[data_rows] = True
        dropped_rows = np.flatnonzero(~kept)
    if grid.row_numbers is not None:
        row_numbers = grid.row_numbers[data_rows]
        header_row = int(grid.row_numbers[header_at])
    else:
        row_numbers = (data_rows + grid.first_row).astype(np.int64)
        header_row = grid.first_row + header_at
    if grid.trailing_strays_are_blank:
        # Rows are counted in the sheet's numbering, up to the table's last line: a grid
        # read cell by cell has no records for its empty rows, and what follows the last
        # line is outside the table.
        last_row = int(row_numbers[-1]) if len(row_numbers) else header_row
        blank_rows = last_row - header_row - len(row_numbers)
    else:
        blank_rows = records_after_header - len(data_rows)

    header: list[str] = []
    columns: list[Column] = []
    for index, raw in enumerate(grid.columns):
        name = raw.values[int(raw.codes[header_at])]
        column = _compact(
            name, raw.codes[selection], raw.values, raw.typed, distinct(raw.codes[dropped_rows])
        )
        if not name.strip():
            if _all_blank(column):
                continue  # padding beyond the table: no name, no data
            position = (
                grid.column_numbers[index]
                if grid.column_numbers is not None
                else grid.first_column + index
            )
            # Data under no heading is kept under a made-up name rather than lost.
            column = Column(f"column_{position}", column.codes, column.values, column.typed)
        header.append(column.name)
        columns.append(column)

    return Sheet(
        source=source,
        sheet_name=grid.sheet_name,
        header=tuple(header),
        header_row=header_row,
        row_numbers=row_numbers,
        columns=tuple(columns),
        blank_rows=blank_rows,
    )


def _without_trailing_strays(columns: list[_Encoded], filled: IntArray, header_at: int) -> IntArray:
    """`filled` less the records after the table's last line that hold nothing under a
    heading: the stray cell far down a workbook (Ctrl+End's) is not a share to check."""
    headed = [column for column in columns if not _blank_cell(column, header_at)]
    last = int(filled[-1])
    if last == header_at or any(not _blank_cell(column, last) for column in headed):
        return filled  # the usual case: the last record is a line
    tail = filled[1:]
    headless = _blank_records([_Encoded(c.codes[tail], c.values, c.typed) for c in headed])
    lines = np.flatnonzero(~headless)
    last = int(lines[-1]) + 1 if len(lines) else 0
    return filled[: last + 1]


def _blank_records(columns: list[_Encoded]) -> BoolArray:
    """True for each record whose cells are all empty or whitespace; worked out once per
    distinct value and broadcast, never per row in Python.

    Columns with the fewest distinct values go first and the search stops once no record
    can still be blank: in a sheet with a filled `action` column that settles it after a
    handful of values, rather than stripping a million distinct email cells.
    """
    height = len(columns[0].codes) if columns else 0
    blank: BoolArray = np.ones(height, dtype=np.bool_)
    for column in sorted(columns, key=lambda column: len(column.values)):
        blank &= _blank_values(column.values, column.typed)[column.codes]
        if not blank.any():
            break
    return blank


def _blank_cell(column: _Encoded, record: int) -> bool:
    code = int(column.codes[record])
    typed = column.typed is not None and column.typed[code]
    return not typed and not column.values[code].strip()


def _blank_values(values: tuple[str, ...], typed: tuple[bool, ...] | None) -> BoolArray:
    if typed is None:
        flags = (not value.strip() for value in values)
    else:
        flags = (not t and not v.strip() for v, t in zip(values, typed, strict=True))
    return np.fromiter(flags, dtype=np.bool_, count=len(values))


def _compact(
    name: str,
    codes: IntArray,
    values: tuple[str, ...],
    typed: tuple[bool, ...] | None,
    suspects: IntArray,
) -> Column:
    """A column of the data rows only. `suspects` are the values of the header and blank
    rows, the only ones that may be missing from the data; those that are, go."""
    unused = [int(code) for code in suspects if not np.any(codes == code)]
    if not unused:
        return Column(name, codes, values, typed)
    if unused == list(range(len(unused))):
        # The usual case: codes count in order of first appearance, so the header row's
        # text is code 0, and dropping it is a shift rather than a re-index of every row.
        # In place: `codes` is a view of the grid's own array, which nothing reads again.
        shift = len(unused)
        codes -= shift
        moved_typed = typed[shift:] if typed is not None else None
        return Column(name, codes, values[shift:], moved_typed)
    used = np.ones(len(values), dtype=np.bool_)
    used[unused] = False
    new_index = np.cumsum(used, dtype=np.int64) - 1
    return Column(
        name,
        new_index[codes],
        tuple(itertools.compress(values, used)),
        tuple(itertools.compress(typed, used)) if typed is not None else None,
    )


def _all_blank(column: Column) -> bool:
    return bool(_blank_values(column.values, column.typed).all())
