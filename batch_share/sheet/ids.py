"""Device and service IDs: normalising the forms people type, recognising the ones a
spreadsheet has mangled, and checking a whole ID column once per distinct text."""

from __future__ import annotations

import re
from datetime import date

import numpy as np

from batch_share.models import (
    BoolArray,
    Column,
)
from batch_share.sheet.arrowtext import arrow_if_worth_it, fullmatch
from batch_share.sheet.verdicts import Issue, Verdicts, quote

TEXT_HINT = "format the column as Text and re-export"


CANONICAL_ID = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){7}")
_ID_SEPARATORS = re.compile(r"[-:\s]")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_HEX16 = re.compile(r"[0-9A-Fa-f]{16}")


def normalize_id(text: str) -> str | None:
    """`80:00:00:00:12:34:56:78` for any case, surrounding space, and `:` `-` space or no
    separator; None unless the text holds exactly 16 hex digits."""
    if CANONICAL_ID.fullmatch(text):  # the common case, kept cheap for big sheets
        return text
    compact = _ID_SEPARATORS.sub("", text)
    if not _HEX16.fullmatch(compact):
        return None
    upper = compact.upper()
    return ":".join(upper[i : i + 2] for i in range(0, 16, 2))


# Explicit [0-9]: `\d` would also accept digits of other scripts.
_SCIENTIFIC = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]*)?[eE][+-]?[0-9]{1,3}")
_DECIMAL = re.compile(
    r"[+-]?[0-9]+[.,][0-9]+"  # 8000000012345678.0, 1,5
    r"|[+-]?[0-9]{1,3}(?:[,.' \u00a0][0-9]{3})+(?:[.,][0-9]+)?"  # 8,000,000,012,345,678
)
_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:[.,][0-9]+)?)?(\s*[AaPp]\.?[Mm]\.?)?")
_ISO_DATE = re.compile(r"[0-9]{4}[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})(?:[ T].*)?")
_LOCAL_DATE = re.compile(r"([0-9]{1,2})[-/.]([0-9]{1,2})[-/.](?:[0-9]{2}|[0-9]{4})(?:[ T].*)?")
_NAMED_MONTH_DATE = re.compile(
    r"[0-9]{1,2}[- ](?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?[- ,]*[0-9]{2,4}",
    re.IGNORECASE,
)


def looks_mangled(text: str) -> str | None:
    """Why `text` looks like an ID a spreadsheet converted into a number, date or time, or
    None. Text that reads as 16 hex digits is an ID even when it could pass for a number
    (`8000000012345E10`): only the cell's stored type (`Column.typed`) can tell then."""
    value = text.strip()
    if normalize_id(value) is not None:
        return None
    if _SCIENTIFIC.fullmatch(value):
        return "a number the spreadsheet converted (scientific notation)"
    if _DECIMAL.fullmatch(value):
        return "a number the spreadsheet converted (decimal)"
    if _is_time(value):
        return "a time the spreadsheet converted"
    if _is_date(value):
        return "a date the spreadsheet converted"
    return None


def _is_time(value: str) -> bool:
    match = _TIME.fullmatch(value)
    if match is None:
        return False
    hours, minutes, seconds, meridiem = match.groups()
    max_hours = 12 if meridiem else 23
    return int(hours) <= max_hours and int(minutes) < 60 and int(seconds or 0) < 60


def _is_date(value: str) -> bool:
    # Plausible month/day only, so ID fragments like `12-34-56` stay plain invalid IDs.
    if (match := _ISO_DATE.fullmatch(value)) is not None:
        month, day = (int(part) for part in match.groups())
        return 1 <= month <= 12 and 1 <= day <= 31
    if (match := _LOCAL_DATE.fullmatch(value)) is not None:
        first, second = (int(part) for part in match.groups())
        return _is_day_month(first, second) or _is_day_month(second, first)
    return _NAMED_MONTH_DATE.fullmatch(value) is not None


def _is_day_month(day: int, month: int) -> bool:
    try:
        date(2000, month, day)  # a leap year, so 29/02 counts
    except ValueError:
        return False
    return True


def check_ids(column: Column, name: str, *, required: bool) -> tuple[Verdicts, tuple[str, ...]]:
    """Each distinct ID text -> index into the returned table of normalised IDs. Texts that
    differ only in form (`80-00-...` vs `80:00:...`) share one table entry."""
    canonical = _canonical_id_texts(column)
    if canonical.all():
        # Fast path: distinct texts that are already canonical are distinct IDs, so the
        # table is the column's own values, in the order the loop below would give.
        count = len(column.values)
        verdicts = Verdicts(
            np.arange(count, dtype=np.int64), (None,) * count, np.zeros(count, dtype=np.bool_)
        )
        return verdicts, column.values
    table: dict[str, int] = {}
    values: list[int] = []
    issues: list[Issue | None] = []
    typed = column.typed or (False,) * len(column.values)
    for text, is_typed, is_canonical in zip(column.values, typed, canonical.tolist(), strict=True):
        if is_canonical:
            values.append(table.setdefault(text, len(table)))
            issues.append(None)
            continue
        value, issue = id_verdict(text.strip(), name, is_typed=is_typed, required=required)
        values.append(-1 if value is None else table.setdefault(value, len(table)))
        issues.append(issue)
    return Verdicts.build(values, issues), tuple(table)


def _canonical_id_texts(column: Column) -> BoolArray:
    """Per distinct text: a text cell (not a number the spreadsheet typed) already holding a
    canonical ID, which needs no normalising and has no problem. One RE2 pass over the
    texts; the Python regex only when arrow cannot take them."""
    texts = arrow_if_worth_it(column.values)
    if texts is None:
        matches = (CANONICAL_ID.fullmatch(text) is not None for text in column.values)
        canonical = np.fromiter(matches, dtype=np.bool_, count=len(column.values))
    else:
        canonical = fullmatch(texts, CANONICAL_ID)
    if column.typed is not None:
        canonical &= ~np.asarray(column.typed, dtype=np.bool_)
    return canonical


def looks_like_an_id(value: str) -> bool:
    """Whether a cell that is not a valid ID was meant as one, so it is reported as a bad ID
    rather than looked up as a name.

    SPEC: a value made only of hex digits and ID separators stays an ID attempt. So does a
    typo in an otherwise whole ID (`80:00:00:00:12:34:56:7G`): 15 to 17 characters besides
    separators, all but two of them hex digits. Names people give devices ("Lobby Camera",
    "Cabinet B2 Feed 01") are not that; a name made only of hex letters ("cafe") has to go
    in the `device_name` column.
    """
    compact = _ID_SEPARATORS.sub("", value)
    hex_digits = sum(ch in _HEX_DIGITS for ch in compact)
    if hex_digits == len(compact):
        return True
    return 15 <= len(compact) <= 17 and hex_digits >= len(compact) - 2


def named_cells(column: Column, verdicts: Verdicts) -> BoolArray:
    """Per distinct text: a cell that names a device or service instead of giving its ID."""
    # Only texts that are neither an ID nor a problem can be names: look at those alone, so
    # a column of a million good IDs costs one numpy pass.
    named = (verdicts.value < 0) & ~verdicts.bad
    for index in np.flatnonzero(named).tolist():
        named[index] = bool(column.values[index].strip())
    return named


def id_verdict(
    value: str, name: str, *, is_typed: bool, required: bool
) -> tuple[str | None, Issue | None]:
    """The normalised ID in one stripped cell, or what is wrong with it."""
    kind = name.removesuffix("_id")
    if not value:
        return None, ((f"missing-{kind}-id", f"{name} is blank") if required else None)
    if is_typed:
        message = (
            f"{name} {quote(value)} was stored by the spreadsheet as a number or date, "
            f"not text, so the ID may be damaged; {TEXT_HINT}"
        )
        return None, ("id-mangled", message)
    if (normal := normalize_id(value)) is not None:
        return normal, None
    if (reason := looks_mangled(value)) is not None:
        return None, ("id-mangled", f"{name} {quote(value)} looks like {reason}; {TEXT_HINT}")
    if not looks_like_an_id(value):
        return None, None  # a name (SPEC: Devices and services by name)
    message = (
        f"{name} {quote(value)} is not an ID: {_id_shape_fault(value)} "
        "(expected 16 hex digits like 80:00:00:00:12:34:56:78)"
    )
    return None, (f"invalid-{kind}-id", message)


def _id_shape_fault(value: str) -> str:
    compact = _ID_SEPARATORS.sub("", value)
    bad = next((ch for ch in compact if ch not in "0123456789abcdefABCDEF"), None)
    if bad is not None:
        return f"{bad!r} is not a hex digit"
    return f"it has {len(compact)} hex digits"
