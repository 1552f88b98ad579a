"""`sync`: the sheet is the complete list of who should have access; plan the difference.

Pure: the caller reads the account (`DeviceAccess` per device) and hands it in. The result is
an ordinary `PlannedSheet` the executor and the report take as they take a `run`'s:

- Every sheet line stays, in sheet order. A line whose access is already in place is not
  sent: `succeeded` / `unchanged`. A line that asks for missing access, or for other
  scripting, is an ADD.
- One line per removal follows, on a blank row with no row number: current access no line
  asks for. A whole-device share nobody listed; a service share no line names for that
  email. A service share of someone the sheet gives the whole device is left alone: it
  grants nothing the whole-device share does not, and removing it would count against the
  brake for no change anyone could see.
- The key owner's own access is never removed, and nothing is LEFT: a sync row's action
  may only be ADD (`action-in-sync` otherwise).
- A device with any invalid or conflicting line keeps all its current access: its removal
  lines are `not-run` / `unclear-device`. An unclear sheet must never cost someone access;
  its additions still go out, since they are what the valid lines ask for.

The one case where order matters is a person who has the whole device today and whom the
sheet gives only some services: the whole-device REMOVE takes their service shares with
it, so the service ADDs must come after (`Plan.later`); when a sync has such a case, its
removals all go first, otherwise everything goes out together. The removals are planned
apart from the additions for the same reason: planned together, the planner would rightly
call that pair a conflict.

Worked example (device D with services S1, S2; the key owner is admin@x):

    today:  D: ann@x (scripting), bob@x, admin@x;   S1: cat@x (service only)
    sheet:  D ann@x scripting=yes;  D S2 bob@x;  D S1 cat@x;  D dan@x

    ann@x  D       unchanged                       (row 2)
    bob@x  D S2    ADD, after bob's removal        (row 3)
    cat@x  D S1    unchanged                       (row 4)
    dan@x  D       ADD                             (row 5)
    bob@x  D       REMOVE  not in sheet            (no row)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from batch_share.models import (
    ACTIONS,
    Action,
    BoolArray,
    Column,
    DeviceAccess,
    IntArray,
    Lines,
    Plan,
    Problem,
    Sheet,
    Status,
)
from batch_share.plan.grouping import combine_devices, plan_lines
from batch_share.plan.planned import NOT_IN_SHEET, PlannedSheet, waiting_for_names
from batch_share.sheet.rerun import HELD_BACK

_ADD = ACTIONS.index(Action.ADD)
_REMOVE = ACTIONS.index(Action.REMOVE)
_UNCHANGED = (Status.SUCCEEDED, "unchanged", "already in place")
_UNCLEAR = (
    Status.NOT_RUN,
    HELD_BACK,
    f"{NOT_IN_SHEET}; kept, because this device has invalid or conflicting rows",
)


@dataclass(frozen=True, slots=True)
class SyncFacts:
    """What the difference was taken against, for the guard, the summary and the report."""

    scope: tuple[str, ...]  # the devices whose access the sheet decides, sorted
    current_shares: int  # today's shares in scope, the owner's own left out
    first_removal_line: int  # lines from here on are removals nobody listed
    unclear_devices: frozenset[str]


@dataclass(frozen=True, slots=True)
class DeviceDiff:
    """One device's difference, for `sync --dry-run` and the page."""

    device_id: str
    name: str  # as the sheet typed it, "" when it gave the ID
    added: tuple[str, ...]  # "email (scripting)" or "email service S"
    removed: tuple[str, ...]
    unchanged: int
    held: int  # removals kept because the device is unclear


def sheet_scope(planned: PlannedSheet) -> tuple[str, ...]:
    """The devices named by at least one valid row, sorted (`--scope sheet`)."""
    lines = planned.lines
    named = np.unique(lines.device[lines.valid & (lines.device >= 0)])
    return tuple(sorted({lines.device_ids[int(d)] for d in named}))


def roster_lines(planned: PlannedSheet) -> PlannedSheet:
    """The sheet as a roster: lines whose action is not ADD become `action-in-sync`, and the
    plan is made again so that duplicates and conflicts are those of the roster."""
    lines, sheet = planned.lines, planned.sheet
    wrong = (lines.valid | waiting_for_names(lines)) & (lines.action != _ADD)
    problems = dict(lines.problems)
    found = list(planned.validated.problems)
    rows_told: set[int] = set()
    for line in map(int, np.flatnonzero(wrong)):
        action = ACTIONS[int(lines.action[line])].value
        problems[line] = (
            Status.INVALID,
            "action-in-sync",
            (
                f"action {action} has no place in a sync: the sheet lists who should have "
                "access, so leave the row out to take access away"
            ),
        )
        row = int(sheet.row_numbers[int(lines.row[line])])
        if row not in rows_told:  # one problem per row, however many addresses it holds
            rows_told.add(row)
            found.append(Problem(row, "action", "action-in-sync", problems[line][2]))
    roster = replace(lines, valid=lines.valid & ~wrong, problems=problems)
    validated = replace(planned.validated, lines=roster, problems=tuple(sorted(found, key=_row)))
    plan = plan_lines(roster, row_numbers=sheet.row_numbers)
    return replace(planned, validated=validated, plan=plan)


def _row(problem: Problem) -> int:
    return problem.row


def plan_sync(
    roster: PlannedSheet,
    access: Mapping[str, DeviceAccess],
    *,
    scope: Iterable[str],
    account: str,
    cross_device: bool = False,
) -> PlannedSheet:
    """The difference between `roster` (from `roster_lines`) and today's `access` on the
    devices in `scope`, as a plan; see the module docstring."""
    lines, plan = roster.lines, roster.plan
    owner = account.casefold()
    scope = tuple(sorted(set(scope)))
    unclear = _unclear_devices(lines, plan)
    who = _Unreadable.of(lines)
    wanted = _Wanted.of(lines, plan)
    unchanged = _unchanged_lines(lines, plan, access, wanted)

    removals: list[tuple[str, str | None, str]] = []
    current = 0
    for device in scope:
        today = access.get(device, DeviceAccess())
        for key in sorted(today.device):
            if key == owner:
                continue
            current += 1
            if key not in wanted.whole.get(device, set()):
                removals.append((device, None, key))
        for service in sorted(today.services):
            for key in sorted(today.service_only(service)):
                if key == owner:
                    continue
                current += 1
                if key in wanted.whole.get(device, set()):
                    continue  # covered by a whole-device share the sheet keeps
                if (service, key) not in wanted.services.get(device, set()):
                    removals.append((device, service, key))

    sheet, blank_row = _with_blank_row(roster.sheet)
    holds = [_hold(device, key, unclear, who) for device, _, key in removals]
    combined = _append_removals(lines, removals, blank_row, holds, unchanged)
    decided = np.zeros(len(combined), dtype=np.bool_)
    decided[list(combined.problems)] = True
    decided[list(plan.problems)] = True  # conflicts: never sent
    is_removal = np.zeros(len(combined), dtype=np.bool_)
    is_removal[len(lines) :] = True
    # Duplicates of an unchanged line stay duplicates of it; the rest is planned afresh.
    repeat = np.append(plan.duplicate_of, np.full(len(removals), -1, dtype=np.int64))
    rides_on_unchanged = (repeat >= 0) & np.isin(repeat, np.flatnonzero(unchanged))
    sendable = combined.valid & ~decided & ~rides_on_unchanged
    first = _plan_part(combined, sheet, sendable & is_removal, cross_device)
    then = _plan_part(combined, sheet, sendable & ~is_removal, cross_device)
    narrowed = {(d, k) for d, service, k in removals if service is None and d not in unclear}
    merged = _merge(first, then, plan.problems, ordered=_narrows(combined, sendable, narrowed))
    merged.duplicate_of[rides_on_unchanged] = repeat[rides_on_unchanged]
    held_devices = {device for (device, _, _), hold in zip(removals, holds, strict=True) if hold}
    facts = SyncFacts(scope, current, len(lines), frozenset(held_devices))
    validated = replace(roster.validated, lines=combined)
    return replace(roster, sheet=sheet, validated=validated, plan=merged, sync=facts)


@dataclass(frozen=True, slots=True)
class _Wanted:
    """What the valid roster lines ask for, by device: whole-device email keys and
    (service, email key) pairs."""

    whole: dict[str, set[str]]
    services: dict[str, set[tuple[str, str]]]

    @classmethod
    def of(cls, lines: Lines, plan: Plan) -> _Wanted:
        whole: defaultdict[str, set[str]] = defaultdict(set)
        services: defaultdict[str, set[tuple[str, str]]] = defaultdict(set)
        for line in map(int, np.flatnonzero(lines.valid)):
            if line in plan.problems:
                continue
            device = lines.device_ids[int(lines.device[line])]
            key = lines.email_keys[int(lines.email[line])]
            service = int(lines.service[line])
            if service < 0:
                whole[device].add(key)
            else:
                services[device].add((lines.service_ids[service], key))
        return cls(dict(whole), dict(services))


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """Invalid lines whose device could not be read: their removals cannot be pinned to a
    device, so they are held wherever that email would lose access, and everywhere when not
    even the email could be read."""

    emails: frozenset[str]
    everything: bool

    @classmethod
    def of(cls, lines: Lines) -> _Unreadable:
        lost = np.flatnonzero(~lines.valid & (lines.device < 0))
        emails = {lines.email_keys[int(lines.email[line])] for line in lost.tolist()}
        readable = {email for email in emails if "@" in email}
        return cls(frozenset(readable), len(readable) < len(emails))


def _hold(device: str, key: str, unclear: set[str], who: _Unreadable) -> tuple[str, str] | None:
    """Why a removal is held back (code, message), or None to send it."""
    if device in unclear:
        return _UNCLEAR[1], _UNCLEAR[2]
    if who.everything:
        return HELD_BACK, f"{NOT_IN_SHEET}; kept, because a row of the sheet could not be read"
    if key in who.emails:
        return HELD_BACK, f"{NOT_IN_SHEET}; kept, because a row for this email names no device"
    return None


def _unclear_devices(lines: Lines, plan: Plan) -> set[str]:
    """Devices with an invalid or conflicting line whose device could be read."""
    troubled = ~lines.valid
    troubled[list(plan.problems)] = True
    devices = np.unique(lines.device[troubled & (lines.device >= 0)])
    return {lines.device_ids[int(d)] for d in devices}


def _unchanged_lines(
    lines: Lines, plan: Plan, access: Mapping[str, DeviceAccess], wanted: _Wanted
) -> BoolArray:
    """Lines sent by the roster's plan whose access is already exactly in place."""
    unchanged = np.zeros(len(lines), dtype=np.bool_)
    for line in map(int, np.flatnonzero(plan.sent_mask)):
        device = lines.device_ids[int(lines.device[line])]
        today = access.get(device)
        if today is None:
            continue
        key = lines.email_keys[int(lines.email[line])]
        service = int(lines.service[line])
        if service < 0:
            unchanged[line] = today.device.get(key) == bool(lines.scripting[line])
        elif key in today.device:
            # Reached through the whole device: in place only if the sheet keeps that.
            unchanged[line] = key in wanted.whole.get(device, set())
        else:
            unchanged[line] = key in today.service_only(lines.service_ids[service])
    return unchanged


def _with_blank_row(sheet: Sheet) -> tuple[Sheet, int]:
    """The sheet plus one blank data row without a row number, for the removal lines."""
    columns = []
    for column in sheet.columns:
        values, typed = column.values, column.typed
        if "" in values and (typed is None or not typed[values.index("")]):
            blank = values.index("")
        else:
            blank = len(values)
            values = (*values, "")
            typed = None if typed is None else (*typed, False)
        codes = np.append(column.codes, blank).astype(np.int64)
        columns.append(Column(column.name, codes, values, typed))
    row_numbers = np.append(sheet.row_numbers, 0).astype(np.int64)
    grown = replace(sheet, row_numbers=row_numbers, columns=tuple(columns))
    return grown, sheet.row_count


def _append_removals(
    lines: Lines,
    removals: list[tuple[str, str | None, str]],
    blank_row: int,
    holds: list[tuple[str, str] | None],
    unchanged: BoolArray,
) -> Lines:
    emails = list(lines.emails)
    email_keys = list(lines.email_keys)
    device_ids = list(lines.device_ids)
    service_ids = list(lines.service_ids)
    email_index = {key: i for i, key in enumerate(email_keys)}
    device_index = {device: i for i, device in enumerate(device_ids)}
    service_index = {service: i for i, service in enumerate(service_ids)}

    def index_of(table: list[str], where: dict[str, int], value: str) -> int:
        if value not in where:
            where[value] = len(table)
            table.append(value)
        return where[value]

    problems = dict(lines.problems)
    problems.update(dict.fromkeys(map(int, np.flatnonzero(unchanged)), _UNCHANGED))
    new_email, new_device, new_service = [], [], []
    for offset, (device, service, key) in enumerate(removals):
        if key not in email_index:
            email_index[key] = len(emails)
            emails.append(key)
            email_keys.append(key)
        new_email.append(email_index[key])
        new_device.append(index_of(device_ids, device_index, device))
        new_service.append(-1 if service is None else index_of(service_ids, service_index, service))
        if (hold := holds[offset]) is not None:
            problems[len(lines) + offset] = (Status.NOT_RUN, *hold)
    count = len(removals)
    no_name = np.full(count, -1)
    held = np.asarray([hold is not None for hold in holds], dtype=np.bool_)

    def grow(array: IntArray, tail: object) -> IntArray:
        return np.append(array, np.asarray(tail, dtype=np.int64)).astype(np.int64)

    def grow_mask(array: BoolArray, tail: BoolArray) -> BoolArray:
        return np.append(array, tail).astype(np.bool_)

    return Lines(
        row=grow(lines.row, np.full(count, blank_row)),
        email=grow(lines.email, new_email),
        emails=tuple(emails),
        email_keys=tuple(email_keys),
        device=grow(lines.device, new_device),
        device_ids=tuple(device_ids),
        service=grow(lines.service, new_service),
        service_ids=tuple(service_ids),
        action=grow(lines.action, np.full(count, _REMOVE)),
        scripting=grow_mask(lines.scripting, np.zeros(count, dtype=np.bool_)),
        # Telling someone by email that access went away is the portal's call, not a
        # nightly job's: removals never notify.
        notify=grow_mask(lines.notify, np.zeros(count, dtype=np.bool_)),
        valid=grow_mask(lines.valid & ~unchanged, ~held),
        problems=problems,
        names=lines.names,
        device_name=None if lines.device_name is None else grow(lines.device_name, no_name),
        service_name=None if lines.service_name is None else grow(lines.service_name, no_name),
    )


def _plan_part(lines: Lines, sheet: Sheet, sendable: BoolArray, cross_device: bool) -> Plan:
    part = plan_lines(replace(lines, valid=sendable), row_numbers=sheet.row_numbers)
    return combine_devices(part) if cross_device else part


def _narrows(lines: Lines, sendable: BoolArray, narrowed: set[tuple[str, str]]) -> bool:
    """Whether a service ADD goes to someone whose whole-device share is being removed: then
    the removal must land first, or it would take the new service share with it."""
    if not narrowed:
        return False
    adds = np.flatnonzero(sendable & (lines.service >= 0) & (lines.action == _ADD))
    return any(
        (lines.device_ids[int(lines.device[i])], lines.email_keys[int(lines.email[i])]) in narrowed
        for i in adds.tolist()
    )


def _merge(
    first: Plan, then: Plan, problems: dict[int, tuple[Status, str, str]], *, ordered: bool
) -> Plan:
    """One plan of `first`'s mutations, then `then`'s (sent after them), ids renumbered."""
    mutations = (*first.mutations, *then.mutations)
    width = max(4, len(str(len(mutations))))
    renamed = tuple(
        replace(mutation, id=f"M{index:0{width}d}")
        for index, mutation in enumerate(mutations, start=1)
    )
    offset = len(first.mutations)
    line_mutation = np.where(
        first.line_mutation >= 0,
        first.line_mutation,
        np.where(then.line_mutation >= 0, then.line_mutation + offset, -1),
    )
    duplicate_of = np.where(first.duplicate_of >= 0, first.duplicate_of, then.duplicate_of)
    return Plan(
        mutations=renamed,
        line_mutation=line_mutation.astype(np.int64),
        duplicate_of=duplicate_of.astype(np.int64),
        problems={**first.problems, **then.problems, **problems},
        later=offset if ordered and first.mutations and then.mutations else None,
    )


def device_diffs(planned: PlannedSheet) -> list[DeviceDiff]:
    """Per device in scope: what the sync adds, removes, leaves alone and holds back."""
    facts = planned.sync
    if facts is None:
        return []
    lines, plan = planned.lines, planned.plan
    added: defaultdict[str, list[str]] = defaultdict(list)
    removed: defaultdict[str, list[str]] = defaultdict(list)
    unchanged: defaultdict[str, int] = defaultdict(int)
    held: defaultdict[str, int] = defaultdict(int)
    typed: dict[str, str] = {}
    for line in range(len(lines)):
        device_index = int(lines.device[line])
        if device_index < 0:
            continue
        device = lines.device_ids[device_index]
        decided = lines.problems.get(line) or plan.problems.get(line)
        service = int(lines.service[line])
        where = "" if service < 0 else f" service {lines.service_ids[service]}"
        if lines.device_name is not None and lines.service_name is not None:
            if (device_name := int(lines.device_name[line])) >= 0:
                typed.setdefault(device, lines.names[device_name])
            if service >= 0 and (service_name := int(lines.service_name[line])) >= 0:
                where += f" ({lines.names[service_name]})"
        email = lines.emails[int(lines.email[line])]
        if decided == _UNCHANGED:
            unchanged[device] += 1
        elif decided is not None and decided[1] == HELD_BACK:
            held[device] += 1
        elif plan.sent_mask[line] and line >= facts.first_removal_line:
            removed[device].append(f"{email}{where}")
        elif plan.sent_mask[line]:
            scripting = " (scripting)" if lines.scripting[line] and service < 0 else ""
            added[device].append(f"{email}{where}{scripting}")
    devices = sorted(set(facts.scope) | set(added) | set(removed))
    return [
        DeviceDiff(
            device,
            typed.get(device, ""),
            tuple(added[device]),
            tuple(removed[device]),
            unchanged[device],
            held[device],
        )
        for device in devices
    ]


@dataclass(frozen=True, slots=True)
class DiffTotals:
    """A difference's totals: the CLI's last line, and the numbers the page asks to confirm."""

    added: int
    removed: int
    unchanged: int
    held: int
    devices: int

    @classmethod
    def of(cls, devices: Sequence[DeviceDiff]) -> DiffTotals:
        return cls(
            added=sum(len(d.added) for d in devices),
            removed=sum(len(d.removed) for d in devices),
            unchanged=sum(d.unchanged for d in devices),
            held=sum(d.held for d in devices),
            devices=len(devices),
        )

    @property
    def text(self) -> str:
        return (
            f"difference: {self.added} to add, {self.removed} to remove, "
            f"{self.unchanged} unchanged"
            + (f", {self.held} removals held back" if self.held else "")
            + f" on {self.devices} devices"
        )


def diff_lines(device: DeviceDiff) -> list[str]:
    """One device's difference in the words `sync --dry-run` prints and the page shows, so
    the two can never drift apart: `+ email (scripting)`, `- email`, `= N unchanged`, and
    `!` for removals held back."""
    lines = [f"+ {text}" for text in device.added]
    lines += [f"- {text}" for text in device.removed]
    if device.unchanged:
        lines.append(f"= {device.unchanged} unchanged")
    if device.held:
        lines.append(f"! {device.held} removals held back: the device has unclear rows")
    return lines
