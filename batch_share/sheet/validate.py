"""Check every sheet row before anything touches the network, and explode rows into lines.

A million-row sheet holds a few hundred thousand distinct IDs and a handful of distinct
actions, flags and email cells, so every check runs once per distinct cell text
(`Column.values`) and its verdict is broadcast to rows with numpy (`table[column.codes]`).
Python objects are made only for rows that have problems.

Even once per distinct text, a million distinct email cells cost seconds in Python, so IDs
and email cells take a vectorised fast path first: an RE2 pass in arrow recognises the
everyday cell (an ID already in canonical form, a cell holding one plain address), whose
verdict is known to be "fine", and only the other texts go through the Python checks that
also write the messages.

Duplicates and conflicts need several rows at once; the planner finds them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from batch_share.errors import SheetError
from batch_share.models import (
    ACTIONS,
    Action,
    BoolArray,
    Column,
    IntArray,
    Lines,
    Problem,
    Sheet,
    Status,
)
from batch_share.sheet.arrowtext import arrow_if_worth_it, fullmatch, to_arrow, to_bools, to_ints

if TYPE_CHECKING:
    import pyarrow as pa

# Canonical order: a row's `code` is its first problem in this order.
COLUMNS: tuple[str, ...] = ("device_id", "service_id", "email", "action", "scripting", "notify")
REQUIRED: tuple[str, ...] = ("device_id", "email")

ALIASES: dict[str, tuple[str, ...]] = {
    "device_id": ("device", "deviceid", "device id", "device address", "device_address"),
    "service_id": ("service", "serviceid", "service id"),
    "email": ("e-mail", "emails", "user", "user email", "users", "email address"),
    "action": ("operation", "op"),
    "scripting": ("bulk scripting", "allow scripting"),
    "notify": ("send email", "notify user"),
}

_ACTION_WORDS: dict[str, Action] = {
    "add": Action.ADD,
    "share": Action.ADD,
    "grant": Action.ADD,
    "remove": Action.REMOVE,
    "unshare": Action.REMOVE,
    "revoke": Action.REMOVE,
    "leave": Action.LEAVE,
}
_BOOLEAN_WORDS: dict[str, bool] = {
    "true": True,
    "yes": True,
    "y": True,
    "1": True,
    "x": True,
    "false": False,
    "no": False,
    "n": False,
    "0": False,
}
_BOOLEAN_DEFAULTS: dict[str, bool] = {"scripting": False, "notify": True}
_ADD = ACTIONS.index(Action.ADD)
_LEAVE = ACTIONS.index(Action.LEAVE)

_TEXT_HINT = "format the column as Text and re-export"

# (code, message) of one problem, before it is tied to a row.
_Issue = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Validated:
    """Validation's result: the lines to plan, every problem, and where the columns are.

    Invalid lines keep whatever could be parsed; what could not is -1 (`device`, `service`,
    and `action` for an unknown action), so a report shows such cells from the sheet's raw
    text (`column_map`), not from the tables. A blank email cell is one line whose email is "".
    """

    lines: Lines  # one line per (sheet row, email), sheet order
    problems: tuple[Problem, ...]  # every problem, sorted by (row, column order)
    column_map: dict[str, int]  # canonical name -> sheet column index
    extra_columns: tuple[int, ...]  # sheet columns carried through untouched, in order


# ---------------------------------------------------------------------------------------------
# Header


def _header_key(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())


_HEADER_KEYS: dict[str, str] = {
    _header_key(alias): canonical
    for canonical, aliases in ALIASES.items()
    for alias in (canonical, *aliases)
}


def map_columns(header: Sequence[str]) -> tuple[dict[str, int], list[Problem]]:
    """Find each canonical column in the header.

    Two columns that mean the same thing (`E-Mail` and `Email`) are refused rather than one
    of them being picked: the other's addresses would silently never be shared.
    """
    column_map: dict[str, int] = {}
    ambiguous: list[Problem] = []
    for index, name in enumerate(header):
        canonical = _HEADER_KEYS.get(_header_key(name))
        if canonical is None:
            continue
        if canonical in column_map:
            first = header[column_map[canonical]]
            ambiguous.append(
                Problem(
                    0,
                    canonical,
                    "ambiguous-column",
                    f"columns '{first}' and '{name}' both mean {canonical}; "
                    "rename or remove one of them",
                )
            )
        else:
            column_map[canonical] = index
    problems = ambiguous + [
        Problem(
            0,
            name,
            "missing-column",
            f"required column {name} is missing (accepted headers: {_accepted_headers(name)})",
        )
        for name in REQUIRED
        if name not in column_map
    ]
    return column_map, problems


def _accepted_headers(name: str) -> str:
    return ", ".join((name, *ALIASES[name]))


def _missing_columns_error(sheet: Sheet, problems: Sequence[Problem]) -> SheetError:
    seen = ", ".join(f"'{name}'" for name in sheet.header) or "nothing"
    where = f"{sheet.source}" + (f" (sheet '{sheet.sheet_name}')" if sheet.sheet_name else "")
    missing = "; ".join(p.message for p in problems)
    return SheetError(f"{where}: {missing}. The header row (row {sheet.header_row}) has: {seen}")


# ---------------------------------------------------------------------------------------------
# Single values


_CANONICAL_ID = re.compile(r"[0-9A-F]{2}(?::[0-9A-F]{2}){7}")
_ID_SEPARATORS = re.compile(r"[-:\s]")
_HEX16 = re.compile(r"[0-9A-Fa-f]{16}")


def normalize_id(text: str) -> str | None:
    """`80:00:00:00:12:34:56:78` for any case, surrounding space, and `:` `-` space or no
    separator; None unless the text holds exactly 16 hex digits."""
    if _CANONICAL_ID.fullmatch(text):  # the common case, kept cheap for big sheets
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


_EMAIL_SEPARATORS = re.compile(r"[,;\s\u200b\ufeff]+")


def split_emails(cell: str) -> list[str]:
    """The addresses in one email cell, in order: separated by `,` `;` whitespace or
    newlines (zero-width spaces too, which pasting from web pages leaves behind)."""
    return [part for part in _EMAIL_SEPARATORS.split(cell) if part]


_EMAIL_FORBIDDEN = frozenset('()<>[]\\",;:')


# The everyday address, matched in one C-level call: a strict subset of what `_email_fault`
# accepts, so it only skips the slow, message-producing checks for addresses that pass them.
# A sheet of a million distinct addresses spends most of validation here.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]*[A-Za-z0-9]"
)


def _email_fault(address: str) -> str | None:
    """What makes `address` unusable, in words, or None. Deliberately a sanity check, not
    RFC 5322: the server has the last word on whether an account exists."""
    if len(address) <= 254 and _PLAIN_EMAIL.fullmatch(address) and address.index("@") <= 64:
        return None
    if len(address) > 254:
        return "it is longer than 254 characters"
    if address.count("@") != 1:
        return "it has no @" if "@" not in address else "it has more than one @"
    bad = next((ch for ch in address if ch in _EMAIL_FORBIDDEN or not ch.isprintable()), None)
    if bad is not None:
        return f"it contains {bad!r}"
    local, domain = address.split("@")
    if not local:
        return "there is nothing before the @"
    if len(local) > 64:
        return "the part before the @ is longer than 64 characters"
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return "the part before the @ has a misplaced dot"
    if not domain:
        return "there is nothing after the @"
    labels = domain.split(".")
    if len(labels) < 2:
        return f"the domain '{domain}' has no dot"
    if not all(labels):
        return f"the domain '{domain}' has an empty part"
    if any(not all(ch.isalnum() or ch == "-" for ch in label) for label in labels):
        return f"the domain '{domain}' has characters a domain cannot have"
    if any(label.startswith("-") or label.endswith("-") for label in labels):
        return f"the domain '{domain}' has a part starting or ending with '-'"
    if len(labels[-1]) < 2 or labels[-1].isdigit():
        return f"the domain '{domain}' does not end in a top-level domain"
    return None


def _quote(text: str) -> str:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return "'" + shown.replace("\r", "\\r").replace("\n", "\\n") + "'"


# ---------------------------------------------------------------------------------------------
# Whole columns: one verdict per distinct text


@dataclass(frozen=True, slots=True)
class _Verdicts:
    """One column's verdict per distinct cell text: the parsed value and the problem."""

    value: IntArray  # table index, action index or 0/1, per distinct text; -1 if unusable
    issues: tuple[_Issue | None, ...]
    bad: BoolArray

    @classmethod
    def build(cls, values: Sequence[int], issues: Sequence[_Issue | None]) -> _Verdicts:
        return cls(
            value=np.asarray(values, dtype=np.int64),
            issues=tuple(issues),
            bad=np.fromiter((i is not None for i in issues), dtype=np.bool_, count=len(issues)),
        )


def _check_ids(column: Column, name: str, *, required: bool) -> tuple[_Verdicts, tuple[str, ...]]:
    """Each distinct ID text -> index into the returned table of normalised IDs. Texts that
    differ only in form (`80-00-...` vs `80:00:...`) share one table entry."""
    canonical = _canonical_id_texts(column)
    if canonical.all():
        # Fast path: distinct texts that are already canonical are distinct IDs, so the
        # table is the column's own values, in the order the loop below would give.
        count = len(column.values)
        verdicts = _Verdicts(
            np.arange(count, dtype=np.int64), (None,) * count, np.zeros(count, dtype=np.bool_)
        )
        return verdicts, column.values
    table: dict[str, int] = {}
    values: list[int] = []
    issues: list[_Issue | None] = []
    typed = column.typed or (False,) * len(column.values)
    for text, is_typed, is_canonical in zip(column.values, typed, canonical.tolist(), strict=True):
        if is_canonical:
            values.append(table.setdefault(text, len(table)))
            issues.append(None)
            continue
        value, issue = _id_verdict(text.strip(), name, is_typed=is_typed, required=required)
        values.append(-1 if value is None else table.setdefault(value, len(table)))
        issues.append(issue)
    return _Verdicts.build(values, issues), tuple(table)


def _canonical_id_texts(column: Column) -> BoolArray:
    """Per distinct text: a text cell (not a number the spreadsheet typed) already holding a
    canonical ID, which needs no normalising and has no problem. One RE2 pass over the
    texts; the Python regex only when arrow cannot take them."""
    texts = arrow_if_worth_it(column.values)
    if texts is None:
        matches = (_CANONICAL_ID.fullmatch(text) is not None for text in column.values)
        canonical = np.fromiter(matches, dtype=np.bool_, count=len(column.values))
    else:
        canonical = fullmatch(texts, _CANONICAL_ID)
    if column.typed is not None:
        canonical &= ~np.asarray(column.typed, dtype=np.bool_)
    return canonical


def _id_verdict(
    value: str, name: str, *, is_typed: bool, required: bool
) -> tuple[str | None, _Issue | None]:
    """The normalised ID in one stripped cell, or what is wrong with it."""
    kind = name.removesuffix("_id")
    if not value:
        return None, ((f"missing-{kind}-id", f"{name} is blank") if required else None)
    if is_typed:
        message = (
            f"{name} {_quote(value)} was stored by the spreadsheet as a number or date, "
            f"not text, so the ID may be damaged; {_TEXT_HINT}"
        )
        return None, ("id-mangled", message)
    if (normal := normalize_id(value)) is not None:
        return normal, None
    if (reason := looks_mangled(value)) is not None:
        return None, ("id-mangled", f"{name} {_quote(value)} looks like {reason}; {_TEXT_HINT}")
    message = (
        f"{name} {_quote(value)} is not an ID: {_id_shape_fault(value)} "
        "(expected 16 hex digits like 80:00:00:00:12:34:56:78)"
    )
    return None, (f"invalid-{kind}-id", message)


def _id_shape_fault(value: str) -> str:
    compact = _ID_SEPARATORS.sub("", value)
    bad = next((ch for ch in compact if ch not in "0123456789abcdefABCDEF"), None)
    if bad is not None:
        return f"{bad!r} is not a hex digit"
    return f"it has {len(compact)} hex digits"


def _check_actions(column: Column) -> _Verdicts:
    values: list[int] = []
    issues: list[_Issue | None] = []
    for text in column.values:
        word = text.strip().casefold()
        action = _ACTION_WORDS.get(word, Action.ADD if not word else None)
        values.append(-1 if action is None else ACTIONS.index(action))
        issues.append(None if action is not None else _unknown_action(text.strip()))
    return _Verdicts.build(values, issues)


def _check_booleans(column: Column, name: str) -> _Verdicts:
    default = _BOOLEAN_DEFAULTS[name]
    values: list[int] = []
    issues: list[_Issue | None] = []
    for text in column.values:
        word = text.strip().casefold()
        flag = _BOOLEAN_WORDS.get(word, default if not word else None)
        values.append(int(default if flag is None else flag))
        issues.append(None if flag is not None else _invalid_boolean(name, text.strip()))
    return _Verdicts.build(values, issues)


def _unknown_action(value: str) -> _Issue:
    message = (
        f"action {_quote(value)} is not one of ADD (add, share, grant), "
        "REMOVE (remove, unshare, revoke) or LEAVE"
    )
    return ("unknown-action", message)


def _invalid_boolean(name: str, value: str) -> _Issue:
    message = (
        f"{name} {_quote(value)} is not a yes/no value "
        "(use true/false, yes/no, y/n, 1/0, or x for true)"
    )
    return ("invalid-boolean", message)


@dataclass(frozen=True, slots=True)
class _EmailCells:
    """Each distinct email cell split into addresses, flattened.

    Cell k's addresses are `addresses[starts[k] : starts[k] + counts[k]]` (indices into
    `emails`, which lists each address once, in order of first appearance). A blank cell
    holds one address, "", so it still gets a report line.
    """

    counts: IntArray
    starts: IntArray
    addresses: IntArray
    emails: tuple[str, ...]
    keys: tuple[str, ...]  # per entry of `emails`: its case-folded comparison key
    issues: tuple[_Issue | None, ...]  # per entry of `emails`
    bad: BoolArray  # per entry of `emails`
    cell_bad: BoolArray  # per distinct cell: any of its addresses is bad


def _check_emails(column: Column) -> _EmailCells:
    """Split and check every distinct email cell; the same result as
    `_check_emails_in_python`, which is the definition.

    Fast path: a cell that `_PLAIN_EMAIL` matches whole (RE2, in arrow) and that is within
    the length limits is one address, itself, with no problem: `split_emails` finds no
    separator in it and `_email_fault` accepts it on its first line. Distinct cells are
    distinct texts, so such cells need no deduplicating among themselves; only the other
    cells are split and checked in Python.
    """
    texts = arrow_if_worth_it(column.values)
    if texts is None:
        return _check_emails_in_python(column)
    plain = _plain_address_cells(texts)
    folds = _needs_folding(texts)
    if plain.all():
        return _plain_cells(column.values, folds)
    return _mixed_cells(column.values, texts, plain, folds)


def _plain_address_cells(texts: pa.LargeStringArray) -> BoolArray:
    """Cells `_email_fault` accepts on its first line: `_PLAIN_EMAIL` matches the whole
    cell, it is at most 254 characters, and its @ (there is one) is at most 64 in. Such a
    match is ASCII, so byte counts are character counts."""
    import pyarrow.compute as pc  # noqa: PLC0415 - big columns only (see arrow_if_worth_it)

    plain = fullmatch(texts, _PLAIN_EMAIL)
    plain &= to_ints(pc.binary_length(texts)) <= 254
    plain &= to_ints(pc.find_substring(texts, "@")) <= 64
    return plain


def _needs_folding(texts: pa.LargeStringArray) -> BoolArray:
    """Texts whose `casefold()` may differ from them: any that is not ASCII, and any ASCII
    one with a capital (for ASCII, case-folding is lower-casing A-Z). The rest are their
    own comparison keys, which spares a second copy of a million addresses."""
    import pyarrow.compute as pc  # noqa: PLC0415

    ascii_text = to_bools(pc.string_is_ascii(texts))
    lowered = to_bools(pc.equal(texts, pc.ascii_lower(texts)))
    return ~(ascii_text & lowered)


def _fold(texts: Sequence[str], folds: BoolArray) -> tuple[str, ...]:
    """`casefold()` of each text, computed only where `folds` says it may change it."""
    if not folds.any():
        return tuple(texts)
    keys = list(texts)
    for index in np.flatnonzero(folds).tolist():
        keys[index] = keys[index].casefold()
    return tuple(keys)


def _plain_cells(values: tuple[str, ...], folds: BoolArray) -> _EmailCells:
    """Every cell is one good address: cell k is address k."""
    count = len(values)
    each = np.arange(count, dtype=np.int64)
    none = np.zeros(count, dtype=np.bool_)
    keys = values if not folds.any() else _fold(values, folds)
    return _EmailCells(
        np.ones(count, dtype=np.int64), each, each, values, keys, (None,) * count, none, none
    )


def _mixed_cells(
    values: tuple[str, ...], texts: pa.LargeStringArray, plain: BoolArray, folds: BoolArray
) -> _EmailCells:
    """Plain cells as in `_plain_cells`; the others split and checked in Python.

    Split addresses may repeat each other or a plain cell, so every address gets an
    identity: the index of the plain cell with its text, or, past all cells, one per new
    address. Keeping each identity's first appearance gives the table in the order
    `_check_emails_in_python` builds it.
    """
    count = len(values)
    others = np.flatnonzero(~plain)
    split = [split_emails(values[cell]) or [""] for cell in others.tolist()]
    counts = np.ones(count, dtype=np.int64)
    counts[others] = [len(addresses) for addresses in split]
    starts = np.cumsum(counts) - counts
    found = [address for addresses in split for address in addresses]
    identity, new_addresses = _address_identities(values, texts, plain, found)

    flat = np.empty(int(counts.sum()), dtype=np.int64)  # the identity of every address
    flat[starts[plain]] = np.flatnonzero(plain)
    flat[_slots(starts[others], counts[others])] = [identity[address] for address in found]
    in_order, entry = _first_appearances(flat, count + len(new_addresses))

    pool = np.empty(count + len(new_addresses), dtype=object)  # the text of each identity
    pool[:count] = values
    pool[count:] = new_addresses
    emails = tuple(pool[in_order].tolist())
    is_new = in_order >= count
    keys = _fold(emails, np.append(folds, np.ones(len(new_addresses), dtype=np.bool_))[in_order])
    issue_of = {address: _email_issue(address) for address in new_addresses}
    issues = tuple(
        issue_of[email] if new else None for email, new in zip(emails, is_new.tolist(), strict=True)
    )
    bad = np.fromiter((i is not None for i in issues), dtype=np.bool_, count=len(issues))
    addresses = entry[flat]
    cell_bad = np.logical_or.reduceat(bad[addresses], starts)
    return _EmailCells(counts, starts, addresses, emails, keys, issues, bad, cell_bad)


def _address_identities(
    values: tuple[str, ...], texts: pa.LargeStringArray, plain: BoolArray, found: list[str]
) -> tuple[dict[str, int], list[str]]:
    """The identity of each address found by splitting (see `_mixed_cells`), and the found
    addresses that no plain cell holds, in order of first appearance."""
    distinct = list(dict.fromkeys(found))
    wanted = to_arrow(distinct)
    if wanted is None:  # cannot happen: pieces of texts that converted convert too
        raise ValueError("split email addresses are not valid text")
    import pyarrow.compute as pc  # noqa: PLC0415

    # An arrow set lookup of the few found addresses over all cells, rather than a dict
    # of a million cells.
    repeated = np.flatnonzero(plain & to_bools(pc.is_in(texts, value_set=wanted)))
    identity = {values[cell]: cell for cell in repeated.tolist()}
    new_addresses = [address for address in distinct if address not in identity]
    identity.update((address, len(values) + i) for i, address in enumerate(new_addresses))
    return identity, new_addresses


def _slots(starts: IntArray, counts: IntArray) -> IntArray:
    """Every position starts[i], starts[i] + 1, ..., starts[i] + counts[i] - 1, in order."""
    run_starts = np.cumsum(counts) - counts
    within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(run_starts, counts)
    slots: IntArray = np.repeat(starts, counts) + within
    return slots


def _first_appearances(flat: IntArray, size: int) -> tuple[IntArray, IntArray]:
    """The distinct values of `flat` (all below `size`) in order of first appearance, and
    each value's place in that order (for values that appear)."""
    first = np.full(size, len(flat), dtype=np.int64)
    np.minimum.at(first, flat, np.arange(len(flat), dtype=np.int64))
    is_first = np.zeros(len(flat), dtype=np.bool_)
    is_first[first[first < len(flat)]] = True
    in_order = flat[is_first]
    place = np.zeros(size, dtype=np.int64)
    place[in_order] = np.arange(len(in_order), dtype=np.int64)
    return in_order, place


def _check_emails_in_python(column: Column) -> _EmailCells:
    """Split and check every cell in Python: the definition the fast path must agree with,
    and the path for texts arrow cannot take."""
    table: dict[str, int] = {}
    counts: list[int] = []
    flat: list[int] = []
    for text in column.values:
        in_cell = split_emails(text) or [""]
        counts.append(len(in_cell))
        if len(in_cell) == 1:
            flat.append(table.setdefault(in_cell[0], len(table)))
        else:
            flat.extend(table.setdefault(address, len(table)) for address in in_cell)
    emails = tuple(table)
    issues = tuple(_email_issue(address) for address in emails)
    bad = np.fromiter((i is not None for i in issues), dtype=np.bool_, count=len(issues))
    count_array = np.asarray(counts, dtype=np.int64)
    starts = np.cumsum(count_array) - count_array
    addresses = np.asarray(flat, dtype=np.int64)
    cell_bad = np.logical_or.reduceat(bad[addresses], starts) if len(starts) else bad[:0]
    keys = tuple(email.casefold() for email in emails)
    return _EmailCells(count_array, starts, addresses, emails, keys, issues, bad, cell_bad)


def _email_issue(address: str) -> _Issue | None:
    if not address:
        return ("missing-email", "email is blank")
    fault = _email_fault(address)
    if fault is None:
        return None
    return ("invalid-email", f"email {_quote(address)} is not a valid address: {fault}")


# ---------------------------------------------------------------------------------------------
# The sheet


@dataclass(frozen=True, slots=True)
class _RowCheck:
    """One column's verdicts as seen from rows; `codes` is None when the column is absent."""

    name: str
    verdicts: _Verdicts | None = None
    codes: IntArray | None = None

    def values(self, rows: int, default: int) -> IntArray:
        if self.verdicts is None or self.codes is None:
            return np.full(rows, default, dtype=np.int64)
        return self.verdicts.value[self.codes]

    def bad(self, rows: int) -> BoolArray:
        if self.verdicts is None or self.codes is None:
            return np.zeros(rows, dtype=np.bool_)
        return self.verdicts.bad[self.codes]

    def values_at(self, row: int, default: int) -> int:
        if self.verdicts is None or self.codes is None:
            return default
        return int(self.verdicts.value[self.codes[row]])

    def key_codes(self, rows: int, *, keep: BoolArray | None = None) -> IntArray:
        """Per row, what decides this column's part of the row's verdict: the cell's
        distinct-text code where it is bad (or `keep`), else -1, so that rows that differ
        only in good values share one verdict."""
        if self.verdicts is None or self.codes is None:
            return np.full(rows, -1, dtype=np.int64)
        wanted = self.verdicts.bad[self.codes] if keep is None else keep
        return np.where(wanted, self.codes, -1)

    def issue(self, row: int) -> _Issue | None:
        if self.verdicts is None or self.codes is None:
            return None
        return self.verdicts.issues[int(self.codes[row])]


@dataclass(frozen=True, slots=True)
class _RowChecks:
    """Every single-cell column check, plus the tables the ID checks built."""

    device: _RowCheck
    device_ids: tuple[str, ...]
    service: _RowCheck
    service_ids: tuple[str, ...]
    service_given: BoolArray  # per row: the service cell is not blank, valid or not
    action: _RowCheck
    scripting: _RowCheck
    notify: _RowCheck

    def all(self) -> tuple[_RowCheck, ...]:
        return (self.device, self.service, self.action, self.scripting, self.notify)


def _check_rows(sheet: Sheet, column_map: dict[str, int]) -> _RowChecks:
    def column(name: str) -> Column | None:
        index = column_map.get(name)
        return None if index is None else sheet.columns[index]

    device_column = sheet.columns[column_map["device_id"]]
    device_verdicts, device_ids = _check_ids(device_column, "device_id", required=True)
    device = _RowCheck("device_id", device_verdicts, device_column.codes)

    service = _RowCheck("service_id")
    service_ids: tuple[str, ...] = ()
    service_given = np.zeros(sheet.row_count, dtype=np.bool_)
    if (service_column := column("service_id")) is not None:
        service_verdicts, service_ids = _check_ids(service_column, "service_id", required=False)
        service = _RowCheck("service_id", service_verdicts, service_column.codes)
        nonblank = np.fromiter((bool(v.strip()) for v in service_column.values), dtype=np.bool_)
        service_given = nonblank[service_column.codes]

    action = _RowCheck("action")
    if (action_column := column("action")) is not None:
        action = _RowCheck("action", _check_actions(action_column), action_column.codes)

    flags = {}
    for name in ("scripting", "notify"):
        flags[name] = _RowCheck(name)
        if (flag_column := column(name)) is not None:
            flags[name] = _RowCheck(name, _check_booleans(flag_column, name), flag_column.codes)

    return _RowChecks(
        device,
        device_ids,
        service,
        service_ids,
        service_given,
        action,
        flags["scripting"],
        flags["notify"],
    )


def validate(sheet: Sheet) -> Validated:
    """Check every row and explode email cells into lines. Raises `SheetError` only when a
    required column is missing; bad data becomes `Problem`s and invalid lines."""
    column_map, missing = map_columns(sheet.header)
    if missing:
        raise _missing_columns_error(sheet, missing)
    rows = sheet.row_count
    checks = _check_rows(sheet, column_map)
    email_codes = sheet.columns[column_map["email"]].codes
    cells = _check_emails(sheet.columns[column_map["email"]])

    row_action = checks.action.values(rows, _ADD)
    leave_with_service = (row_action == _LEAVE) & checks.service_given
    row_bad = leave_with_service
    for check in checks.all():
        row_bad = row_bad | check.bad(rows)

    # Row r owns lines first_line[r] .. first_line[r] + counts[r] - 1, one per address.
    counts = cells.counts[email_codes]
    first_line = np.cumsum(counts) - counts
    line_row = np.repeat(np.arange(rows, dtype=np.int64), counts)
    position = np.arange(len(line_row), dtype=np.int64) - first_line[line_row]
    line_email = cells.addresses[cells.starts[email_codes][line_row] + position]

    problems, line_problems = _describe_problems(
        sheet,
        column_map=column_map,
        checks=checks,
        cells=cells,
        has_problem=row_bad | cells.cell_bad[email_codes],
        first_line=first_line,
    )
    lines = Lines(
        row=line_row,
        email=line_email,
        emails=cells.emails,
        email_keys=cells.keys,
        device=checks.device.values(rows, -1)[line_row],
        device_ids=checks.device_ids,
        service=checks.service.values(rows, -1)[line_row],
        service_ids=checks.service_ids,
        action=row_action[line_row],
        # Scripting is a permission that only ADD grants: a REMOVE or LEAVE sends false
        # whatever the cell says, so two removals differing only there ask the same thing.
        scripting=(checks.scripting.values(rows, 0) * (row_action == _ADD))[line_row].astype(
            np.bool_
        ),
        notify=checks.notify.values(rows, 1)[line_row].astype(np.bool_),
        valid=~row_bad[line_row] & ~cells.bad[line_email],
        problems=line_problems,
    )
    mapped = set(column_map.values())
    extras = tuple(i for i in range(len(sheet.header)) if i not in mapped)
    return Validated(lines, tuple(problems), column_map, extras)


@dataclass(frozen=True, slots=True)
class _RowVerdict:
    """What is wrong with a row; every row with the same cells shares it, which keeps a
    sheet whose whole ID column was mangled from costing a Python pass per problem."""

    problems: tuple[tuple[str, str, str], ...]  # (column, code, message), column order
    lines: tuple[tuple[int, tuple[Status, str, str]], ...]  # (line offset in row, verdict)


def _describe_problems(
    sheet: Sheet,
    *,
    column_map: dict[str, int],
    checks: _RowChecks,
    cells: _EmailCells,
    has_problem: BoolArray,
    first_line: IntArray,
) -> tuple[list[Problem], dict[int, tuple[Status, str, str]]]:
    rows = np.flatnonzero(has_problem)
    if len(rows) == 0:
        return [], {}
    email_codes = sheet.columns[column_map["email"]].codes
    everything = np.ones(sheet.row_count, dtype=np.bool_)
    key_columns = [
        checks.device.key_codes(sheet.row_count),
        checks.service.key_codes(sheet.row_count, keep=checks.service_given),  # LEAVE names it
        checks.action.key_codes(sheet.row_count, keep=everything),
        checks.scripting.key_codes(sheet.row_count),
        checks.notify.key_codes(sheet.row_count),
        # A cell of good addresses matters only through how many lines it makes.
        np.where(cells.cell_bad[email_codes], email_codes, -cells.counts[email_codes]),
    ]
    keys = zip(*(key[rows].tolist() for key in key_columns), strict=True)
    verdicts: dict[tuple[int, ...], _RowVerdict] = {}
    problems: list[Problem] = []
    line_problems: dict[int, tuple[Status, str, str]] = {}
    for r, row_number, start, key in zip(
        rows.tolist(),
        sheet.row_numbers[rows].tolist(),
        first_line[rows].tolist(),
        keys,
        strict=True,
    ):
        verdict = verdicts.get(key)
        if verdict is None:
            verdict = verdicts[key] = _row_verdict(sheet, column_map, checks, cells, r)
        problems.extend(Problem(row_number, *problem) for problem in verdict.problems)
        for offset, line_verdict in verdict.lines:
            line_problems[start + offset] = line_verdict
    return problems, line_problems


def _row_verdict(
    sheet: Sheet, column_map: dict[str, int], checks: _RowChecks, cells: _EmailCells, r: int
) -> _RowVerdict:
    """Describe data row r. A row-level problem spoils every line of the row; an address
    problem only its own line. Issues are gathered in COLUMNS order, email in the middle."""
    before_email = _named_issues((checks.device, checks.service), r)
    after_email = _named_issues((checks.action,), r)
    if checks.action.values_at(r, _ADD) == _LEAVE and checks.service_given[r]:
        service_text = sheet.cell(column_map["service_id"], r).strip()
        after_email.append(("action", _leave_with_service_issue(service_text)))
    after_email += _named_issues((checks.scripting, checks.notify), r)

    cell = int(sheet.columns[column_map["email"]].codes[r])
    start = int(cells.starts[cell])
    addresses = cells.addresses[start : start + int(cells.counts[cell])].tolist()
    own_issues = [cells.issues[address] for address in addresses]
    email_issues = [("email", issue) for issue in own_issues if issue is not None]

    problems = tuple(
        (name, code, message)
        for name, (code, message) in (*before_email, *email_issues, *after_email)
    )
    row_level = [*before_email, *after_email]
    lines = []
    for offset, own in enumerate(own_issues):
        found = row_level if own is None else [*before_email, ("email", own), *after_email]
        if found:
            lines.append((offset, _line_verdict(found)))
    return _RowVerdict(problems, tuple(lines))


def _named_issues(checks: Sequence[_RowCheck], r: int) -> list[tuple[str, _Issue]]:
    return [(check.name, issue) for check in checks if (issue := check.issue(r)) is not None]


def _line_verdict(found: list[tuple[str, _Issue]]) -> tuple[Status, str, str]:
    """A line's code is its first problem in column order; its message names them all."""
    message = "; ".join(message for _, (_, message) in found)
    return (Status.INVALID, found[0][1][0], message)


def _leave_with_service_issue(service_text: str) -> _Issue:
    return (
        "leave-with-service",
        (
            f"action LEAVE gives up a whole device, but service_id {_quote(service_text)} "
            "is filled in; leave service_id blank"
        ),
    )
