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

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

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
from batch_share.sheet.columns import map_columns, missing_columns_error
from batch_share.sheet.emails import EmailCells, check_emails
from batch_share.sheet.ids import check_ids, named_cells
from batch_share.sheet.rerun import strip_formula_guard
from batch_share.sheet.verdicts import Issue, Verdicts, quote

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
# The code of a line that names its device or service and waits for the account's answer.
NAME_NOT_RESOLVED = "name-not-resolved"
_ADD = ACTIONS.index(Action.ADD)
_LEAVE = ACTIONS.index(Action.LEAVE)


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


def _check_actions(column: Column) -> Verdicts:
    values: list[int] = []
    issues: list[Issue | None] = []
    for text in column.values:
        word = text.strip().casefold()
        action = _ACTION_WORDS.get(word, Action.ADD if not word else None)
        values.append(-1 if action is None else ACTIONS.index(action))
        issues.append(None if action is not None else _unknown_action(text.strip()))
    return Verdicts.build(values, issues)


def _check_booleans(column: Column, name: str) -> Verdicts:
    default = _BOOLEAN_DEFAULTS[name]
    values: list[int] = []
    issues: list[Issue | None] = []
    for text in column.values:
        word = text.strip().casefold()
        flag = _BOOLEAN_WORDS.get(word, default if not word else None)
        values.append(int(default if flag is None else flag))
        issues.append(None if flag is not None else _invalid_boolean(name, text.strip()))
    return Verdicts.build(values, issues)


def _unknown_action(value: str) -> Issue:
    message = (
        f"action {quote(value)} is not one of ADD (add, share, grant), "
        "REMOVE (remove, unshare, revoke) or LEAVE"
    )
    return ("unknown-action", message)


def _invalid_boolean(name: str, value: str) -> Issue:
    message = (
        f"{name} {quote(value)} is not a yes/no value "
        "(use true/false, yes/no, y/n, 1/0, or x for true)"
    )
    return ("invalid-boolean", message)


# ---------------------------------------------------------------------------------------------
# The sheet


@dataclass(frozen=True, slots=True)
class _RowCheck:
    """One column's verdicts as seen from rows; `codes` is None when the column is absent."""

    name: str
    verdicts: Verdicts | None = None
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

    def issue(self, row: int) -> Issue | None:
        if self.verdicts is None or self.codes is None:
            return None
        return self.verdicts.issues[int(self.codes[row])]


@dataclass(frozen=True, slots=True)
class _Identity:
    """The device (or service) of each row, from its ID column and its name column.

    The check's verdicts are per distinct (ID cell, name cell) pair. A row the account must
    be asked about (`lookup`) names its device or service and gives no ID; `name` is the
    name as typed, for the report, also where an ID was given beside it.
    """

    check: _RowCheck
    ids: tuple[str, ...]
    given: BoolArray  # per row: the ID or the name cell is filled, valid or not
    name: IntArray  # per row: index into the names table, -1 for none
    lookup: BoolArray


@dataclass(frozen=True, slots=True)
class _RowChecks:
    """Every single-cell column check, plus the tables the ID checks built."""

    device: _Identity
    service: _Identity
    action: _RowCheck
    scripting: _RowCheck
    notify: _RowCheck
    names: tuple[str, ...]

    def all(self) -> tuple[_RowCheck, ...]:
        return (self.device.check, self.service.check, self.action, self.scripting, self.notify)


def _check_rows(sheet: Sheet, column_map: dict[str, int]) -> _RowChecks:
    def column(name: str) -> Column | None:
        index = column_map.get(name)
        return None if index is None else sheet.columns[index]

    names: dict[str, int] = {}
    device = _identity(column("device_id"), column("device_name"), "device", sheet, names)
    service = _identity(column("service_id"), column("service_name"), "service", sheet, names)

    action = _RowCheck("action")
    if (action_column := column("action")) is not None:
        action = _RowCheck("action", _check_actions(action_column), action_column.codes)

    flags = {}
    for name in ("scripting", "notify"):
        flags[name] = _RowCheck(name)
        if (flag_column := column(name)) is not None:
            flags[name] = _RowCheck(name, _check_booleans(flag_column, name), flag_column.codes)

    return _RowChecks(device, service, action, flags["scripting"], flags["notify"], tuple(names))


def _identity(
    ids: Column | None, named: Column | None, kind: str, sheet: Sheet, names: dict[str, int]
) -> _Identity:
    """Merge a kind's ID and name columns into one check (see `_Identity`)."""
    label, rows = f"{kind}_id", sheet.row_count
    required = kind == "device"
    if ids is None and named is None:
        none = np.zeros(rows, dtype=np.bool_)
        return _Identity(_RowCheck(label), (), none, np.full(rows, -1, dtype=np.int64), none)
    if ids is None:
        ids = Column(label, np.zeros(rows, dtype=np.int64), ("",))
    verdicts, table = check_ids(ids, label, required=required)
    by_name = named_cells(ids, verdicts)
    if named is None and not by_name.any():
        # The everyday sheet: IDs only. Nothing to merge, nothing to look up. A cell is
        # filled when it holds an ID or a problem other than a blank one.
        filled = verdicts.value >= 0
        for index in np.flatnonzero(~filled).tolist():
            filled[index] = bool(ids.values[index].strip())
        return _Identity(
            _RowCheck(label, verdicts, ids.codes),
            table,
            filled[ids.codes],
            np.full(rows, -1, dtype=np.int64),
            np.zeros(rows, dtype=np.bool_),
        )
    name_values = named.values if named is not None else ("",)
    name_codes = named.codes if named is not None else np.zeros(rows, dtype=np.int64)
    pairs, codes = np.unique(ids.codes * len(name_values) + name_codes, return_inverse=True)
    values: list[int] = []
    issues: list[Issue | None] = []
    typed_name: list[int] = []
    lookup: list[bool] = []
    given: list[bool] = []
    for pair in pairs.tolist():
        cell, name_cell = divmod(pair, len(name_values))
        id_text = ids.values[cell].strip()
        # An export guards a name like "-cam" as "'-cam"; the name is the text behind it.
        name_text = strip_formula_guard(name_values[name_cell].strip())
        value, issue = int(verdicts.value[cell]), verdicts.issues[cell]
        name, look = name_text, False
        if not id_text and name_text:
            issue, look = None, True
        elif by_name[cell]:
            name, look = id_text, True
            if name_text and name_text.casefold() != id_text.casefold():
                issue = (
                    "name-mismatch",
                    (
                        f"{label} {quote(id_text)} and {kind}_name {quote(name_text)} name "
                        f"different {kind}s; keep one of them"
                    ),
                )
        values.append(value)
        issues.append(issue)
        typed_name.append(names.setdefault(name, len(names)) if name else -1)
        lookup.append(look and issue is None)
        given.append(bool(id_text or name_text))
    merged = Verdicts.build(values, issues)
    codes = codes.reshape(-1).astype(np.int64)
    return _Identity(
        _RowCheck(label, merged, codes),
        table,
        np.asarray(given, dtype=np.bool_)[codes],
        np.asarray(typed_name, dtype=np.int64)[codes],
        np.asarray(lookup, dtype=np.bool_)[codes],
    )


def validate(sheet: Sheet) -> Validated:
    """Check every row and explode email cells into lines. Raises `SheetError` only when a
    required column is missing; bad data becomes `Problem`s and invalid lines."""
    column_map, missing = map_columns(sheet.header)
    if missing:
        raise missing_columns_error(sheet, missing)
    rows = sheet.row_count
    checks = _check_rows(sheet, column_map)
    email_codes = sheet.columns[column_map["email"]].codes
    cells = check_emails(sheet.columns[column_map["email"]])

    row_action = checks.action.values(rows, _ADD)
    leave_with_service = (row_action == _LEAVE) & checks.service.given
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
        device=checks.device.check.values(rows, -1)[line_row],
        device_ids=checks.device.ids,
        service=checks.service.check.values(rows, -1)[line_row],
        service_ids=checks.service.ids,
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
    if checks.names:
        lines = _with_names(lines, checks)
    mapped = set(column_map.values())
    extras = tuple(i for i in range(len(sheet.header)) if i not in mapped)
    return Validated(lines, tuple(problems), column_map, extras)


def _with_names(lines: Lines, checks: _RowChecks) -> Lines:
    """Carry the typed names, and hold back the lines only a name identifies: they are
    planned once the account has been asked (plan/resolve.py)."""
    device_name = checks.device.name[lines.row]
    service_name = checks.service.name[lines.row]
    waiting = lines.valid & (checks.device.lookup | checks.service.lookup)[lines.row]
    problems = dict(lines.problems)
    for line in map(int, np.flatnonzero(waiting)):
        problems[line] = _waiting_for_lookup(checks, int(lines.row[line]))
    return replace(
        lines,
        valid=lines.valid & ~waiting,
        problems=problems,
        names=checks.names,
        device_name=device_name,
        service_name=service_name,
    )


def _waiting_for_lookup(checks: _RowChecks, row: int) -> tuple[Status, str, str]:
    named = [
        f"{kind} {quote(checks.names[int(identity.name[row])])}"
        for kind, identity in (("device", checks.device), ("service", checks.service))
        if identity.lookup[row]
    ]
    return (
        Status.NOT_RUN,
        NAME_NOT_RESOLVED,
        (
            f"{' and '.join(named)} named, not given by ID: looked up in the account when "
            "the sheet runs (plan --resolve looks it up now)"
        ),
    )


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
    cells: EmailCells,
    has_problem: BoolArray,
    first_line: IntArray,
) -> tuple[list[Problem], dict[int, tuple[Status, str, str]]]:
    rows = np.flatnonzero(has_problem)
    if len(rows) == 0:
        return [], {}
    email_codes = sheet.columns[column_map["email"]].codes
    everything = np.ones(sheet.row_count, dtype=np.bool_)
    key_columns = [
        checks.device.check.key_codes(sheet.row_count),
        # LEAVE names it
        checks.service.check.key_codes(sheet.row_count, keep=checks.service.given),
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
    sheet: Sheet, column_map: dict[str, int], checks: _RowChecks, cells: EmailCells, r: int
) -> _RowVerdict:
    """Describe data row r. A row-level problem spoils every line of the row; an address
    problem only its own line. Issues are gathered in COLUMNS order, email in the middle."""
    before_email = _named_issues((checks.device.check, checks.service.check), r)
    after_email = _named_issues((checks.action,), r)
    if checks.action.values_at(r, _ADD) == _LEAVE and checks.service.given[r]:
        service_column = column_map.get("service_id", column_map.get("service_name"))
        service_text = "" if service_column is None else sheet.cell(service_column, r).strip()
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


def _named_issues(checks: Sequence[_RowCheck], r: int) -> list[tuple[str, Issue]]:
    return [(check.name, issue) for check in checks if (issue := check.issue(r)) is not None]


def _line_verdict(found: list[tuple[str, Issue]]) -> tuple[Status, str, str]:
    """A line's code is its first problem in column order; its message names them all."""
    message = "; ".join(message for _, (_, message) in found)
    return (Status.INVALID, found[0][1][0], message)


def _leave_with_service_issue(service_text: str) -> Issue:
    return (
        "leave-with-service",
        (
            f"action LEAVE gives up a whole device, but service_id {quote(service_text)} "
            "is filled in; leave service_id blank"
        ),
    )
