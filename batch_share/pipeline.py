"""The library's front door: sheet -> plan -> run -> report rows, with no printing.

The CLI is a thin skin over these functions; a Python caller gets the same behaviour:

    planned = plan_sheet(Path("onboarding.xlsx"))
    result = run_plan(planned, api_url=..., credentials=load_credentials())
    write_report(Path("out.xlsx"), planned.extra_columns, report_rows(planned, result), ...)
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from batch_share.errors import ApiError, MassRemovalError, SafetyGuardError
from batch_share.models import (
    ACTIONS,
    Action,
    Intent,
    Lines,
    Mutation,
    Outcome,
    OutcomeKey,
    Plan,
    Problem,
    Sheet,
    Status,
    distinct,
)
from batch_share.plan.grouping import combine_devices, plan_lines, removal_count
from batch_share.send.executor import ExecConfig, ExecResult, ProgressEvent, execute
from batch_share.send.journal import Journal, intent_key
from batch_share.send.signals import handlers_restored, stop_on_signals
from batch_share.send.verify import not_applied, read_access
from batch_share.sheet.loader import load_sheet
from batch_share.sheet.rerun import is_report, select_report_lines
from batch_share.sheet.validate import Validated, validate

if TYPE_CHECKING:
    from batch_share.send.auth import Credentials  # auth imports httpx, which `plan` never needs

logger = logging.getLogger("batch_share")

PLANNED = Outcome(Status.NOT_RUN, "planned", "planned; nothing sent")


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

    @property
    def lines(self) -> Lines:
        return self.validated.lines

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return tuple(self.sheet.header[i] for i in self.validated.extra_columns)

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


def plan_sheet(
    path: Path,
    *,
    sheet_name: str | None = None,
    only: frozenset[str] | None = None,
    cross_device: bool = False,
) -> PlannedSheet:
    """Load, validate and group a sheet. Raises SheetError when nothing can be planned.

    An earlier report is accepted as input: its lines keep their original row numbers and
    extra columns, and `only` picks the statuses to replay (all lines when None).
    """
    sheet = load_sheet(path, sheet=sheet_name)
    if only is not None or is_report(sheet):
        sheet = select_report_lines(sheet, only or frozenset(s.value for s in Status))
    return plan_loaded(sheet, cross_device=cross_device, path=path)


def plan_loaded(
    sheet: Sheet, *, cross_device: bool = False, path: Path | None = None
) -> PlannedSheet:
    validated = validate(sheet)
    plan = plan_lines(validated.lines, row_numbers=sheet.row_numbers)
    if cross_device:
        plan = combine_devices(plan)
    return PlannedSheet(sheet, validated, plan, path)


def check_guard(planned: PlannedSheet, guard: Guard) -> None:
    """Refuse (SafetyGuardError, exit 4) a run that looks like a bad export.

    A truncated or empty export and a mass removal are the two ways a nightly job can do
    real damage, so both are stopped before anything is sent.
    """
    valid_rows = int(distinct(planned.lines.row[planned.lines.valid]).size)
    if planned.sheet.row_count == 0:
        raise SafetyGuardError(f"{planned.sheet.source}: the sheet has no data rows; nothing to do")
    if valid_rows == 0:
        raise SafetyGuardError(f"{planned.sheet.source}: no row is valid; refusing to run")
    if guard.min_rows and valid_rows < guard.min_rows:
        raise SafetyGuardError(
            f"{planned.sheet.source}: only {valid_rows} valid rows, fewer than --min-rows "
            f"{guard.min_rows}; the export looks truncated"
        )
    removals = planned.removals
    if guard.allow_mass_removal or removals == 0:
        return
    sendable = planned.sendable_lines
    too_many = removals > guard.max_removals
    too_large_a_share = sendable and removals / sendable > guard.max_removal_fraction
    if too_many or too_large_a_share:
        raise MassRemovalError(
            f"refusing to remove {removals} shares ({removals / max(sendable, 1):.0%} of the "
            f"{sendable} lines to send; limits: --max-removals {guard.max_removals}, "
            f"--max-removal-fraction {guard.max_removal_fraction}); "
            "pass --allow-mass-removal if this is intended"
        )


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
        preview.append(f"remove {intent.email} from {target} (row {row})")
        if len(preview) == limit:
            break
    return preview


@dataclass
class RunResult:
    """What a run did: the executor's result (None when nothing was sent) and line outcomes."""

    exec_result: ExecResult | None
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    resumed: int = 0  # lines skipped because an earlier run's confirmation was in the journal
    not_applied: int = 0  # lines --verify found without effect

    @property
    def aborted(self) -> str | None:
        return self.exec_result.aborted if self.exec_result else None


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How to send: executor settings plus the journal, resume and read-back choices."""

    config: ExecConfig = field(default_factory=ExecConfig)
    timeout: float = 30.0
    run_id: str = ""
    journal: Journal | None = None
    resume_since: float | None = None  # skip intents the journal confirmed at/after this time
    verify: bool = False
    handle_signals: bool = False


def run_plan(
    planned: PlannedSheet,
    *,
    api_url: str,
    credentials: Credentials,
    options: RunOptions | None = None,
    stop: asyncio.Event | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
) -> RunResult:
    """Send the plan and return per-line outcomes (the caller writes the report).

    With `handle_signals`, SIGINT/SIGTERM set `stop`: the executor starts nothing new, lets
    in-flight requests finish, and the caller still gets every line's outcome to report.
    """
    from batch_share.send.client import ShareClient  # noqa: PLC0415 - `plan` never pays for httpx

    options = options or RunOptions()
    stop = stop or asyncio.Event()
    sent = _sent_intents(planned)
    earlier = _confirmed_earlier(options, api_url, credentials.key_id, sent)
    mutations = _without_lines(planned, set(earlier))
    journal = options.journal

    def confirmed(mutation: Mutation, outcome_keys: Sequence[OutcomeKey]) -> None:
        if journal is not None:
            journal.record(
                options.run_id,
                (
                    _key_intent_digest(api_url, credentials.key_id, mutation, k)
                    for k in outcome_keys
                ),
            )

    async def go() -> tuple[ExecResult, dict[int, Outcome]]:
        if options.handle_signals:
            stop_on_signals(asyncio.get_running_loop(), stop)
        async with ShareClient(api_url, credentials, timeout=options.timeout) as client:
            result = await execute(
                mutations,
                client,
                options.config,
                stop=stop,
                on_progress=on_progress,
                on_confirmed=confirmed,
            )
            outcomes = {**line_outcomes(planned, result), **earlier}
            if options.verify and result.aborted is None and not stop.is_set():
                devices = {sent[line].device_id for line in sent}
                try:
                    access = await read_access(client, devices)
                except ApiError as error:
                    # The shares were sent and confirmed; a failed read-back must not turn
                    # that into "not sent". The lines stand as the API confirmed them.
                    logger.warning("--verify could not read the devices back: %s", error)
                    return result, outcomes
                missing = not_applied(sent, outcomes, access)
                outcomes.update(missing)
                if journal is not None:
                    journal.forget(
                        intent_key(api_url, credentials.key_id, sent[line]) for line in missing
                    )
            return result, outcomes

    with handlers_restored():
        exec_result, outcomes = asyncio.run(go())
    missing = sum(1 for o in outcomes.values() if o.code == "not-applied")
    return RunResult(exec_result, outcomes, resumed=len(earlier), not_applied=missing)


def _sent_intents(planned: PlannedSheet) -> dict[int, Intent]:
    """The lines that go out themselves (not duplicates), as intents, by line index."""
    sent = map(int, np.flatnonzero(planned.plan.sent_mask))
    return {line: planned.lines.intent(line) for line in sent}


def _confirmed_earlier(
    options: RunOptions, api_url: str, key_id: str, sent: dict[int, Intent]
) -> dict[int, Outcome]:
    """Lines an earlier run confirmed within the resume window (only with --resume)."""
    if options.journal is None or options.resume_since is None:
        return {}
    keys = {line: intent_key(api_url, key_id, intent) for line, intent in sent.items()}
    found = options.journal.confirmed_since(keys.values(), options.resume_since)
    return {
        line: Outcome(Status.SUCCEEDED, "", f"confirmed by earlier run {found[key]}")
        for line, key in keys.items()
        if key in found
    }


def _without_lines(planned: PlannedSheet, skip: set[int]) -> tuple[Mutation, ...]:
    """The plan's mutations minus the emails whose every line is in `skip`."""
    if not skip:
        return planned.plan.mutations
    lines, plan = planned.lines, planned.plan
    keep: dict[int, set[str]] = {}
    for line in map(int, np.flatnonzero(plan.sent_mask)):
        if line not in skip:
            keep.setdefault(int(plan.line_mutation[line]), set()).add(
                lines.email_keys[int(lines.email[line])]
            )
    reduced = []
    for index, mutation in enumerate(plan.mutations):
        emails = tuple(e for e in mutation.emails if e.casefold() in keep.get(index, set()))
        if emails:
            reduced.append(replace(mutation, emails=emails))
    return tuple(reduced)


def _key_intent_digest(api_url: str, key_id: str, mutation: Mutation, key: OutcomeKey) -> str:
    _, device, service, email_key = key
    action = mutation.action
    if service is not None and mutation.services is not None:
        action = next(s.action for s in mutation.services if s.service_id == service)
    intent = Intent(device, service, email_key, action, mutation.scripting, mutation.notify)
    return intent_key(api_url, key_id, intent)


def line_outcomes(planned: PlannedSheet, exec_result: ExecResult) -> dict[int, Outcome]:
    """The outcome of every line sent itself, from the executor's per-key results."""
    lines, plan = planned.lines, planned.plan
    outcomes: dict[int, Outcome] = {}
    for line in map(int, np.flatnonzero(plan.sent_mask)):
        mutation = plan.mutations[int(plan.line_mutation[line])]
        service = int(lines.service[line])
        key = (
            mutation.id,
            lines.device_ids[int(lines.device[line])],
            lines.service_ids[service] if service >= 0 else None,
            lines.email_keys[int(lines.email[line])],
        )
        outcomes[line] = exec_result.outcomes.get(
            key, Outcome(Status.NOT_RUN, "not-sent", "no result from the executor")
        )
    return outcomes


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


def report_rows(planned: PlannedSheet, outcomes: dict[int, Outcome]) -> Iterator[list[str | int]]:
    """One report row per line, in sheet order, with the sheet's extra columns appended."""
    lines, plan, sheet = planned.lines, planned.plan, planned.sheet
    extras = planned.validated.extra_columns
    service_col = planned.validated.column_map.get("service_id")
    device_col = planned.validated.column_map["device_id"]
    for line in range(len(lines)):
        row = int(lines.row[line])
        outcome = final_outcome(planned, outcomes, line)
        device = int(lines.device[line])
        service = int(lines.service[line])
        index = int(plan.line_mutation[line])
        if lines.valid[line]:
            action = ACTIONS[int(lines.action[line])].value
            scripting = "true" if lines.scripting[line] else "false"
            notify = "true" if lines.notify[line] else "false"
        else:
            # An invalid line keeps what was typed: fed back in, it must fail again rather
            # than run with a default standing in for a value nobody could read.
            action = _raw(planned, "action", row, Action.ADD.value)
            scripting = _raw(planned, "scripting", row, "false")
            notify = _raw(planned, "notify", row, "true")
        yield [
            int(sheet.row_numbers[row]),
            lines.device_ids[device] if device >= 0 else sheet.cell(device_col, row).strip(),
            _service_text(lines, sheet, service, service_col, row),
            lines.emails[int(lines.email[line])],
            action,
            scripting,
            notify,
            outcome.status.value,
            outcome.code,
            outcome.message,
            outcome.attempts,
            plan.mutations[index].id if index >= 0 else "",
            *(sheet.cell(column, row) for column in extras),
        ]


def _service_text(
    lines: Lines, sheet: Sheet, service: int, service_col: int | None, row: int
) -> str:
    if service >= 0:
        return lines.service_ids[service]
    return sheet.cell(service_col, row).strip() if service_col is not None else ""


def _raw(planned: PlannedSheet, column: str, row: int, default: str) -> str:
    """The cell as typed (or the column's default when blank or absent)."""
    index = planned.validated.column_map.get(column)
    text = planned.sheet.cell(index, row).strip() if index is not None else ""
    return text or default


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
