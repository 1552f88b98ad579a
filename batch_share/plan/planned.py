"""What is known before the network: a sheet loaded, validated and grouped, and the safety
guard that judges it. Pure apart from reading the sheet file."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from batch_share.errors import MassRemovalError, SafetyGuardError
from batch_share.models import (
    ACTIONS,
    Action,
    BoolArray,
    Lines,
    Outcome,
    Plan,
    Problem,
    Sheet,
    Status,
    distinct,
)
from batch_share.plan.grouping import combine_devices, plan_lines, removal_count
from batch_share.sheet.validate import NAME_NOT_RESOLVED, Validated, validate

if TYPE_CHECKING:
    from batch_share.plan.sync import SyncFacts

PLANNED = Outcome(Status.NOT_RUN, "planned", "planned; nothing sent")
# Report columns that follow `mutation` when a sheet names devices or services.
NAME_COLUMNS = ("device_name", "service_name")
# The message of a sync line that removes access nobody listed.
NOT_IN_SHEET = "not in sheet"


@dataclass(frozen=True, slots=True)
class Guard:
    """Thresholds of the safety guard (SPEC.md, Grouping: safety guard)."""

    max_removals: int = 100
    max_removal_fraction: float = 0.5
    allow_mass_removal: bool = False
    min_rows: int = 0


@dataclass(frozen=True, slots=True)
class PlannedSheet:
    """Everything known before the network: the sheet, its lines, problems and mutations."""

    sheet: Sheet
    validated: Validated
    plan: Plan
    path: Path | None = None  # the file it came from, for the report's checksum
    sync: SyncFacts | None = None  # set when the plan is a sync's difference

    @property
    def lines(self) -> Lines:
        return self.validated.lines

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return tuple(self.sheet.header[i] for i in self.validated.extra_columns)

    @property
    def uses_names(self) -> bool:
        """The sheet named devices or services: the report then says which names it typed."""
        return self.lines.device_name is not None

    @property
    def report_extra_columns(self) -> tuple[str, ...]:
        """The report's columns after `mutation`: the typed names (only when the sheet used
        names), then the sheet's own extra columns."""
        names = NAME_COLUMNS if self.uses_names else ()
        return (*names, *self.extra_columns)

    def line_outcome(self, line: int) -> Outcome | None:
        """The decision made before sending (invalid/conflict), or None for a line to send."""
        decided = self.lines.problems.get(line) or self.plan.problems.get(line)
        if decided is None:
            return None
        status, code, message = decided
        return Outcome(status, code, message)

    @property
    def sendable_lines(self) -> int:
        """Distinct requests to send (a duplicate rides on the line it repeats)."""
        return int(self.plan.sent_mask.sum())

    def problems(self) -> tuple[Problem, ...]:
        """Every problem in row order: validation's, then the planner's conflicts."""
        seen: set[tuple[int, str]] = set()
        conflicts = []
        for line, (_, code, message) in sorted(self.plan.problems.items()):
            row = int(self.sheet.row_numbers[int(self.lines.row[line])])
            if (row, message) not in seen:
                seen.add((row, message))
                conflicts.append(Problem(row, "email", code, message))
        merged = [*self.validated.problems, *conflicts]
        return tuple(sorted(merged, key=lambda problem: problem.row))

    @property
    def removals(self) -> int:
        return removal_count(self.lines, self.plan)

    def devices(self) -> int:
        return len({d for m in self.plan.mutations for d in m.device_ids})


def plan_loaded(
    sheet: Sheet, *, cross_device: bool = False, path: Path | None = None
) -> PlannedSheet:
    validated = validate(sheet)
    plan = plan_lines(validated.lines, row_numbers=sheet.row_numbers)
    if cross_device:
        plan = combine_devices(plan)
    return PlannedSheet(sheet, validated, plan, path)


def plan_loaded_lines(
    planned: PlannedSheet, validated: Validated, *, cross_device: bool = False
) -> PlannedSheet:
    """The same sheet planned again from changed lines (names resolved, a roster's rules)."""
    plan = plan_lines(validated.lines, row_numbers=planned.sheet.row_numbers)
    if cross_device:
        plan = combine_devices(plan)
    return replace(planned, validated=validated, plan=plan)


def check_guard(planned: PlannedSheet, guard: Guard) -> None:
    """Refuse (SafetyGuardError, exit 4) a run that looks like a bad export.

    A truncated or empty export and a mass removal are the two ways a nightly job can do
    real damage, so both are stopped before anything is sent.
    """
    check_rows(planned, guard)
    removals = planned.removals
    if guard.allow_mass_removal or removals == 0:
        return
    if planned.sync is None:
        total = planned.sendable_lines
        of_what = f"of the {total} lines to send"
    else:
        # Sync: against what exists now, so that "remove half of today's access" means that.
        total = planned.sync.current_shares
        of_what = f"of today's {total} shares on the devices in scope"
    too_many = removals > guard.max_removals
    too_large_a_share = total and removals / total > guard.max_removal_fraction
    if too_many or too_large_a_share:
        raise MassRemovalError(
            f"refusing to remove {removals} shares ({removals / max(total, 1):.0%} {of_what}; "
            f"limits: --max-removals {guard.max_removals}, "
            f"--max-removal-fraction {guard.max_removal_fraction}); "
            "pass --allow-mass-removal if this is intended"
        )


def check_rows(planned: PlannedSheet, guard: Guard) -> None:
    """Refuse an empty sheet, one with no valid row, or fewer valid rows than --min-rows.
    A row that names its device and waits for the account counts as valid, and so does a
    sync's row whose access is already in place; a sync's removal lines are no rows."""
    lines = planned.lines
    in_place = np.zeros(len(lines), dtype=np.bool_)
    in_place[[i for i, p in lines.problems.items() if p[0] is Status.SUCCEEDED]] = True
    from_rows = planned.sheet.row_numbers[lines.row] > 0
    usable = (lines.valid | waiting_for_names(lines) | in_place) & from_rows
    valid_rows = int(distinct(lines.row[usable]).size)
    if not np.count_nonzero(planned.sheet.row_numbers):
        raise SafetyGuardError(f"{planned.sheet.source}: the sheet has no data rows; nothing to do")
    if valid_rows == 0:
        raise SafetyGuardError(f"{planned.sheet.source}: no row is valid; refusing to run")
    if guard.min_rows and valid_rows < guard.min_rows:
        raise SafetyGuardError(
            f"{planned.sheet.source}: only {valid_rows} valid rows, fewer than --min-rows "
            f"{guard.min_rows}; the export looks truncated"
        )


def waiting_for_names(lines: Lines) -> BoolArray:
    """Lines that name their device or service and wait for the account's answer."""
    waiting = np.zeros(len(lines), dtype=np.bool_)
    waiting[[i for i, p in lines.problems.items() if p[1] == NAME_NOT_RESOLVED]] = True
    return waiting


def pending_outcomes(planned: PlannedSheet, outcome: Outcome) -> dict[int, Outcome]:
    """The same outcome for every line that would have been sent (a refused or failed run)."""
    return dict.fromkeys(map(int, np.flatnonzero(planned.plan.sent_mask)), outcome)


def removal_preview(planned: PlannedSheet, limit: int = 20) -> list[str]:
    """Human lines for the first `limit` removals, for the guard's refusal message."""
    remove = ACTIONS.index(Action.REMOVE)
    preview: list[str] = []
    removing = (planned.lines.action == remove) & planned.plan.sent_mask
    for line in map(int, np.flatnonzero(removing)):
        intent = planned.lines.intent(line)
        target = intent.device_id + (f" service {intent.service_id}" if intent.service_id else "")
        row = int(planned.sheet.row_numbers[int(planned.lines.row[line])])
        where = f"row {row}" if row else NOT_IN_SHEET
        preview.append(f"remove {intent.email} from {target} ({where})")
        if len(preview) == limit:
            break
    return preview


def mutation_preview(planned: PlannedSheet, limit: int | None) -> Sequence[str]:
    """Readable one-liners for the first `limit` mutations (all when None)."""
    shown = planned.plan.mutations if limit is None else planned.plan.mutations[:limit]
    out = []
    for mutation in shown:
        target = ", ".join(mutation.device_ids)
        scope = (
            "whole device"
            if mutation.services is None
            else "services "
            + ", ".join(f"{s.service_id} {s.action.value}" for s in mutation.services)
        )
        out.append(
            f"{mutation.id} {mutation.action.value} {target} ({scope}) "
            f"scripting={str(mutation.scripting).lower()} notify={str(mutation.notify).lower()} "
            f"-> {', '.join(mutation.emails)}"
        )
    return out


def plan_summary(planned: PlannedSheet, per_request: int) -> dict[str, Any]:
    """The plan's counts, as `plan` prints them and `--json` carries them."""
    waiting = waiting_for_names(planned.lines)
    sheet = planned.sheet
    mutations = len(planned.plan.mutations)
    counts = status_counts(planned, None)
    return {
        "sheet": sheet.source,
        "worksheet": sheet.sheet_name,
        # A sync's removal lines sit on a row of their own that has no number.
        "rows": int(np.count_nonzero(sheet.row_numbers)),
        "blank_rows_skipped": sheet.blank_rows,
        "lines": len(planned.lines),
        "intents": planned.sendable_lines,
        "invalid": counts[Status.INVALID.value],
        "conflicts": counts[Status.CONFLICT.value],
        "duplicates": int((planned.plan.duplicate_of >= 0).sum()),
        "devices": planned.devices(),
        "mutations": mutations,
        "http_requests": math.ceil(mutations / per_request),
        "per_request": per_request,
        "removals": planned.removals,
        # Rows that name a device or service and wait for the account (`plan --resolve`).
        "named_rows": len({int(planned.lines.row[i]) for i in np.flatnonzero(waiting)}),
    }


def nothing_to_send(planned: PlannedSheet) -> bool:
    """No data rows, or none valid: refused (exit 4) by `run` and `sync`, dry or not, and by
    `plan`, because an empty export must never pass for "nothing to change"."""
    if planned.sync is not None:
        return False  # checked on the roster before the account was read (plan/sync.py)
    if planned.sheet.row_count == 0:
        return True
    return planned.sendable_lines == 0 and not waiting_for_names(planned.lines).any()


@dataclass(frozen=True, slots=True)
class GuardVerdict:
    """Why the safety guard refuses a plan, and what it would have removed."""

    error: SafetyGuardError
    preview: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        return str(self.error)


def guard_verdict(planned: PlannedSheet, guard: Guard) -> GuardVerdict | None:
    """The guard's refusal with a removal preview, or None when the plan may go."""
    try:
        check_guard(planned, guard)
    except MassRemovalError as refusal:
        return GuardVerdict(refusal, tuple(removal_preview(planned)))
    except SafetyGuardError as refusal:
        return GuardVerdict(refusal)
    return None


def final_outcome(planned: PlannedSheet, outcomes: dict[int, Outcome], line: int) -> Outcome:
    """A line's outcome, resolving duplicates to the line they repeat."""
    decided = planned.line_outcome(line)
    if decided is not None:
        return decided
    first = int(planned.plan.duplicate_of[line])
    if first >= 0:
        original = final_outcome(planned, outcomes, first)
        row = int(planned.sheet.row_numbers[int(planned.lines.row[first])])
        return Outcome(original.status, original.code, f"duplicate of row {row}", original.attempts)
    return outcomes.get(line, PLANNED)


def status_counts(planned: PlannedSheet, outcomes: dict[int, Outcome] | None) -> dict[str, int]:
    """Lines by final status; `outcomes=None` counts a plan (sendable lines are not-run).

    Counted from the few decided lines plus whole arrays, so a million-line plan stays fast.
    """
    counts: Counter[str] = Counter()
    for decided in (planned.lines.problems, planned.plan.problems):
        counts.update(status.value for status, _, _ in decided.values())
    for line in np.flatnonzero(planned.plan.duplicate_of >= 0):
        if planned.line_outcome(int(line)) is None:
            counts[final_outcome(planned, outcomes or {}, int(line)).status.value] += 1
    if outcomes is None:
        sent = planned.plan.sent_mask
        counts[Status.NOT_RUN.value] += int(sent.sum())
    else:
        counts.update(outcome.status.value for outcome in outcomes.values())
    return {status.value: counts.get(status.value, 0) for status in Status}
