"""What the loader checks in a zip-based workbook (`.xlsx`, `.xlsm`, `.ods`) before handing it
to python-calamine, and the reader it uses instead when calamine would be the wrong tool.

Two traps sit inside an ordinary-looking file. A decompression bomb: calamine inflates parts
without a ceiling, so every part is inflated here first, counting what really comes out
rather than trusting the sizes the zip declares. And a used range far bigger than the data:
calamine turns a sheet into one dense grid from A1 to its furthest cell, so a single stray
cell at XFD1048576 asks for 17 billion cells and aborts the process. While inflating, each
worksheet's furthest reference is found, and a sheet whose range is mostly air is read here
cell by cell, keeping only the cells that hold something.
"""

from __future__ import annotations

import io
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import IO
from xml.etree import ElementTree as ET

from batch_share.errors import SheetError
from batch_share.sheet import limits

_LOCAL_HEADER = struct.Struct("<4s22xHH")
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
_INFLATE_INPUT = 1 << 16
_INFLATE_OUTPUT = 1 << 20
# A cell or row reference: `r="B7"` on a cell, `r="7"` on a row. The search starts with the
# literal `r=` so the regex engine can skip ahead to it, which keeps the scan far cheaper
# than parsing. Other attributes ending in "r" (header="0.3") never match: no closing quote
# follows their digits.
_REF_ROW = re.compile(rb"""r=["'][A-Za-z]{0,3}([0-9]+)["']""")
_REF_COLUMN = re.compile(rb"""r=["']([A-Za-z]+)[0-9]""")

_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_DOC_RELS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
# Built-in number formats that show a date or time (ECMA-376 18.8.30, plus the East Asian
# ids Excel also treats as dates).
_DATE_FORMAT_IDS = frozenset((*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)))
_DURATION_FORMAT_IDS = frozenset((46,))
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
_EXCEL_EPOCH = datetime(1899, 12, 30)  # noqa: DTZ001 - spreadsheet times are naive
_EXCEL_1904_EPOCH = datetime(1904, 1, 1)  # noqa: DTZ001


@dataclass(slots=True)
class Extent:
    """How far a worksheet part's references reach, and how many there are."""

    rows: int = 0
    columns: int = 0
    references: int = 0

    @property
    def dense_cells(self) -> int:
        return self.rows * self.columns

    def is_mostly_air(self) -> bool:
        """True when a dense grid over the used range would cost far more than the cells."""
        return self.dense_cells > max(
            limits.DENSE_RANGE_FLOOR, limits.DENSE_RANGE_MIN_FILL * self.references
        )


def inspect(raw: bytes, source: str) -> dict[str, Extent]:
    """Refuse a bomb, an oversized workbook or a reference past the grid; return the extent
    of every worksheet part. Raises `SheetError`; a file that is not a zip is left alone
    (an `.xls` is not one), for calamine to judge."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, OSError, ValueError):
        return {}
    with archive:
        members = archive.infolist()
        if len(members) > limits.MAX_ZIP_MEMBERS:
            raise SheetError(
                f"{source}: holds {len(members):,} parts, more than the "
                f"{limits.MAX_ZIP_MEMBERS:,} a workbook has; it is not a spreadsheet"
            )
        total = 0
        extents: dict[str, Extent] = {}
        for member in members:
            _refuse_declared(source, member, total)
            scan = _ExtentScan() if _is_worksheet(member.filename) else None
            size = 0
            for chunk in _inflate(raw, member, source):
                size += len(chunk)
                if total + size > limits.MAX_WORKBOOK_XML_BYTES:
                    raise _too_big(source)
                if scan is not None:
                    scan.feed(chunk)
            if size != member.file_size:
                raise SheetError(
                    f"{source}: part {member.filename!r} declares {member.file_size:,} bytes "
                    f"but holds {size:,}; the file is damaged or crafted"
                )
            total += size
            if scan is not None:
                extents[member.filename] = scan.finish(source)
    return extents


def _refuse_declared(source: str, member: zipfile.ZipInfo, total: int) -> None:
    """The cheap checks, on what the zip directory claims, before inflating anything."""
    if total + member.file_size > limits.MAX_WORKBOOK_XML_BYTES:
        raise _too_big(source)
    if (
        member.file_size > limits.COMPRESSION_RATIO_FLOOR
        and member.file_size > limits.MAX_COMPRESSION_RATIO * max(member.compress_size, 1)
    ):
        ratio = member.file_size // max(member.compress_size, 1)
        raise SheetError(
            f"{source}: part {member.filename!r} is compressed {ratio:,}:1, past the "
            f"{limits.MAX_COMPRESSION_RATIO}:1 limit: this looks like a decompression bomb, "
            "not a spreadsheet"
        )


def _too_big(source: str) -> SheetError:
    return SheetError(
        f"{source}: the workbook decompresses to more than "
        f"{limits.MAX_WORKBOOK_XML_BYTES // 2**20:,} MiB, the limit for a workbook; "
        "save the sheet as CSV, which has no such limit, or split it"
    )


def _inflate(raw: bytes, member: zipfile.ZipInfo, source: str) -> Iterator[bytes]:
    """The part's bytes as they really decompress, in bounded chunks.

    Read straight from the local header, as calamine's zip reader does, and not through
    `zipfile.open`: that stops at the declared size, so a part that lies about its size
    would look harmless here and still inflate without end in calamine.
    """
    start = member.header_offset
    try:
        signature, name_length, extra_length = _LOCAL_HEADER.unpack_from(raw, start)
    except struct.error:
        signature = b""
    if signature != _LOCAL_HEADER_SIGNATURE:
        raise _damaged(source, member, "its local header is missing")
    data_start = start + _LOCAL_HEADER.size + name_length + extra_length
    data = memoryview(raw)[data_start : data_start + member.compress_size]
    if member.compress_type == zipfile.ZIP_STORED:
        for offset in range(0, len(data), _INFLATE_OUTPUT):
            yield bytes(data[offset : offset + _INFLATE_OUTPUT])
        return
    if member.compress_type != zipfile.ZIP_DEFLATED:
        raise _damaged(source, member, f"it uses compression method {member.compress_type}")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        for offset in range(0, len(data), _INFLATE_INPUT):
            pending = bytes(data[offset : offset + _INFLATE_INPUT])
            while pending and not inflater.eof:
                chunk = inflater.decompress(pending, _INFLATE_OUTPUT)
                pending = inflater.unconsumed_tail
                yield chunk
            if inflater.eof:
                break
        yield inflater.flush()
    except zlib.error as err:
        raise _damaged(source, member, f"it does not inflate ({err})") from err


def _damaged(source: str, member: zipfile.ZipInfo, why: str) -> SheetError:
    return SheetError(
        f"{source}: cannot be read as a spreadsheet: part {member.filename!r} is damaged, {why}"
    )


def _is_worksheet(name: str) -> bool:
    # ODS keeps every sheet in content.xml, which calamine bounds itself; only the OOXML
    # worksheet parts feed calamine's dense grid.
    return name.endswith(".xml") and "worksheets/" in name


class _ExtentScan:
    """Finds the furthest row and column a worksheet part references, chunk by chunk.

    A chunk is cut before its last `<`, so no reference (which sits inside a tag) is ever
    split between two chunks.
    """

    def __init__(self) -> None:
        self._carry = b""
        self._rows: set[bytes] = set()
        self._columns: set[bytes] = set()
        self._references = 0

    def feed(self, chunk: bytes) -> None:
        text = self._carry + chunk
        cut = text.rfind(b"<")
        if cut <= 0:
            self._carry = text
            return
        self._carry = text[cut:]
        self._scan(text[:cut])

    def _scan(self, text: bytes) -> None:
        rows = _REF_ROW.findall(text)
        self._references += len(rows)
        self._rows.update(rows)
        self._columns.update(_REF_COLUMN.findall(text))

    def finish(self, source: str) -> Extent:
        self._scan(self._carry)
        rows = max(map(int, self._rows), default=0)
        columns = max(map(column_number, self._columns), default=0)
        if rows > limits.MAX_ROWS or columns > limits.MAX_COLUMNS:
            raise SheetError(
                f"{source}: has a cell beyond row {limits.MAX_ROWS:,} or column "
                f"{limits.MAX_COLUMNS:,}, past what a spreadsheet allows; the file is damaged"
            )
        return Extent(rows=rows, columns=columns, references=self._references)


def column_number(letters: bytes) -> int:
    """`A` -> 1, `XFD` -> 16384. Letters past any real column count as past the limit."""
    if len(letters) > 3:
        return limits.MAX_COLUMNS + 1
    number = 0
    for letter in letters.upper():
        number = number * 26 + letter - 64
    return number


# --- which part holds a worksheet -------------------------------------------------------


def worksheet_part(raw: bytes, name: str) -> str | None:
    """The zip member of the worksheet called `name`, found as Excel finds it (workbook
    relationships); None when the workbook is laid out in a way this does not follow."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            workbook = _main_part(archive)
            sheets = ET.fromstring(archive.read(workbook))  # noqa: S314 - size checked already
            relationship = next(
                (
                    sheet.get(f"{_DOC_RELS}id")
                    for sheet in sheets.iter(f"{_MAIN}sheet")
                    if sheet.get("name") == name
                ),
                None,
            )
            targets = _relationships(archive, workbook)
    except (KeyError, ET.ParseError, zipfile.BadZipFile, ValueError):
        return None
    return targets.get(relationship or "")


def _main_part(archive: zipfile.ZipFile) -> str:
    for target_type, target in _relationships(archive, "").items():
        if target_type.startswith("type:") and target_type.endswith("/officeDocument"):
            return target
    return "xl/workbook.xml"


def _relationships(archive: zipfile.ZipFile, part: str) -> dict[str, str]:
    """Relationship id -> target part, plus `type:<type>` -> target for lookups by type."""
    folder, base = posixpath.split(part)
    rels = posixpath.join(folder, "_rels", f"{base}.rels")
    root = ET.fromstring(archive.read(rels))  # noqa: S314 - size checked already
    found: dict[str, str] = {}
    for relationship in root.iter(f"{_RELS}Relationship"):
        target = relationship.get("Target", "")
        resolved = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
        resolved = posixpath.normpath(resolved)
        found[relationship.get("Id", "")] = resolved
        found[f"type:{relationship.get('Type', '')}"] = resolved
    return found


# --- reading only the real cells --------------------------------------------------------

Cell = str | float | bool | datetime | date | time | timedelta


def read_cells(raw: bytes, part: str, source: str) -> Iterator[tuple[int, int, Cell]]:
    """Every cell of the worksheet part that holds a value, as (row, column, value) counted
    from 1, with values as python-calamine gives them, so both readers agree on the text.

    Streams the part: memory follows the cells kept, whatever the used range claims.
    """
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        workbook = _main_part(archive)
        targets = _relationships(archive, workbook)
        shared = _shared_strings(archive, targets)
        date_styles = _date_styles(archive, targets)
        epoch = _epoch(archive, workbook)
        with archive.open(part) as stream:
            yield from _cells(stream, shared, date_styles, epoch, source)


def _shared_strings(archive: zipfile.ZipFile, targets: dict[str, str]) -> list[str]:
    part = next((t for k, t in targets.items() if k.endswith("/sharedStrings")), None)
    if part is None or part not in archive.namelist():
        return []
    strings: list[str] = []
    with archive.open(part) as stream:
        for _, element in ET.iterparse(stream):  # noqa: S314 - size checked already
            if element.tag == f"{_MAIN}si":
                strings.append(_rich_text(element))
                element.clear()
    return strings


def _rich_text(element: ET.Element) -> str:
    """The text of a string item: its runs, without the phonetic guides (`rPh`) Excel keeps
    for East Asian names, as calamine reads it."""
    phonetic = {id(t) for rph in element.iter(f"{_MAIN}rPh") for t in rph.iter(f"{_MAIN}t")}
    text = "".join(_run_text(t) for t in element.iter(f"{_MAIN}t") if id(t) not in phonetic)
    # calamine stops at Excel's own cell limit; cutting here too keeps both readers agreeing.
    return text[: limits.MAX_CELL_CHARS]


def _run_text(run: ET.Element) -> str:
    """calamine drops a run of nothing but whitespace unless it is marked to be preserved."""
    text = run.text or ""
    if not text.strip() and run.get(_XML_SPACE) != "preserve":
        return ""
    return text


def _date_styles(archive: zipfile.ZipFile, targets: dict[str, str]) -> dict[int, bool]:
    """Cell style index -> True for a duration format, False for a date/time format."""
    part = next((t for k, t in targets.items() if k.endswith("/styles")), None)
    if part is None or part not in archive.namelist():
        return {}
    root = ET.fromstring(archive.read(part))  # noqa: S314 - size checked already
    custom = {
        int(fmt.get("numFmtId", "-1")): fmt.get("formatCode", "")
        for fmt in root.iter(f"{_MAIN}numFmt")
    }
    styles: dict[int, bool] = {}
    cell_xfs = root.find(f"{_MAIN}cellXfs")
    for index, xf in enumerate(cell_xfs if cell_xfs is not None else ()):
        format_id = int(xf.get("numFmtId", "0"))
        if format_id in custom:
            kind = _custom_format_kind(custom[format_id])
        elif format_id in _DATE_FORMAT_IDS:
            kind = "duration" if format_id in _DURATION_FORMAT_IDS else "date"
        else:
            kind = None
        if kind is not None:
            styles[index] = kind == "duration"
    return styles


def _custom_format_kind(code: str) -> str | None:
    """A custom number format's kind, judged as calamine judges it: by the date letters
    left once quoted text, escapes and colours are removed."""
    plain = re.sub(r'"[^"]*"|\\.|_.|\*.', "", code)
    if re.search(r"\[(?:h+|m+|s+)\]", plain, re.IGNORECASE):
        return "duration"
    plain = re.sub(r"\[[^\]]*\]", "", plain)
    if re.search(r"[dmyhs]", plain, re.IGNORECASE):
        return "date"
    return None


def _epoch(archive: zipfile.ZipFile, workbook: str) -> datetime:
    root = ET.fromstring(archive.read(workbook))  # noqa: S314 - size checked already
    properties = root.find(f"{_MAIN}workbookPr")
    if properties is not None and properties.get("date1904") in {"1", "true"}:
        return _EXCEL_1904_EPOCH
    return _EXCEL_EPOCH


def _cells(
    stream: IO[bytes],
    shared: list[str],
    date_styles: dict[int, bool],
    epoch: datetime,
    source: str,
) -> Iterator[tuple[int, int, Cell]]:
    row = 0
    column = 0
    container: ET.Element | None = None
    for event, element in ET.iterparse(stream, events=("start", "end")):  # noqa: S314
        tag = element.tag
        if event == "start":
            if tag == f"{_MAIN}sheetData":
                container = element
            elif tag == f"{_MAIN}row":
                reference = element.get("r")
                row = int(reference) if reference else row + 1
                column = 0
            continue
        if tag == f"{_MAIN}c":
            reference = element.get("r")
            if reference:
                letters = reference.rstrip("0123456789")
                column = column_number(letters.encode())
                row = int(reference[len(letters) :] or row)
            else:
                column += 1
            if row > limits.MAX_ROWS or column > limits.MAX_COLUMNS:
                raise SheetError(
                    f"{source}: has a cell beyond row {limits.MAX_ROWS:,} or column "
                    f"{limits.MAX_COLUMNS:,}, past what a spreadsheet allows; the file is damaged"
                )
            value = _value(element, shared, date_styles, epoch)
            if value is not None:
                yield row, column, value
            element.clear()
        elif tag == f"{_MAIN}row" and container is not None:
            # Without this the parsed tree keeps every (cleared) row of a million-row sheet.
            container.clear()


def _value(
    cell: ET.Element, shared: list[str], date_styles: dict[int, bool], epoch: datetime
) -> Cell | None:
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        inline = cell.find(f"{_MAIN}is")
        return _rich_text(inline) if inline is not None else None
    v = cell.find(f"{_MAIN}v")
    if v is None or v.text is None:
        return None
    text = v.text
    try:
        if kind == "s":
            return shared[int(text)]
        if kind == "b":
            return text.strip() in {"1", "true"}
        if kind == "e":
            return ""  # python-calamine gives error cells (#N/A) as empty text
        if kind in {"str", "d"}:
            return text
        number = float(text)
    except (ValueError, IndexError):
        return text
    style = int(cell.get("s", "0"))
    if style not in date_styles:
        return number
    return _excel_time(number, epoch, duration=date_styles[style])


def _excel_time(serial: float, epoch: datetime, *, duration: bool) -> Cell:
    """As python-calamine converts a date-formatted number: a duration as a timedelta, a
    fraction of a day as a time, a whole day as a date, anything else as a datetime."""
    try:
        # To the millisecond, as calamine does: a day is not a whole number of binary
        # fractions, so 12:30 is stored as 12:30:00.000001 and would not read back as 12:30.
        elapsed = timedelta(milliseconds=round(serial * 86_400_000))
        if duration:
            return elapsed
        moment = epoch + elapsed
    except OverflowError:
        return serial
    if 0 <= serial < 1:
        return moment.time()
    if serial == int(serial):
        return moment.date()
    return moment
