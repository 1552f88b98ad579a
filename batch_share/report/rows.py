"""Report rows: each line's final outcome (duplicates resolved to the line they repeat) as
the report's columns, and the counts by status."""

from __future__ import annotations

from collections.abc import Iterator

from batch_share.models import ACTIONS, Action, Lines, Outcome, Sheet, Status
from batch_share.plan.planned import NOT_IN_SHEET, PlannedSheet, final_outcome


def report_rows(planned: PlannedSheet, outcomes: dict[int, Outcome]) -> Iterator[list[str | int]]:
    """One report row per line, in sheet order, with the sheet's extra columns appended.

    A sync's removal lines have no sheet row: their `row` is empty and their message says
    they were not in the sheet."""
    lines, plan, sheet = planned.lines, planned.plan, planned.sheet
    extras = planned.validated.extra_columns
    service_col = planned.validated.column_map.get("service_id")
    column_map = planned.validated.column_map
    # A roster may name its devices in a device_name column alone.
    device_col = column_map["device_id" if "device_id" in column_map else "device_name"]
    for line in range(len(lines)):
        row = int(lines.row[line])
        outcome = final_outcome(planned, outcomes, line)
        device = int(lines.device[line])
        service = int(lines.service[line])
        index = int(plan.line_mutation[line])
        if outcome.status is not Status.INVALID:
            action = ACTIONS[int(lines.action[line])].value
            scripting = "true" if lines.scripting[line] else "false"
            notify = "true" if lines.notify[line] else "false"
        else:
            # An invalid line keeps what was typed: fed back in, it must fail again rather
            # than run with a default standing in for a value nobody could read.
            action = _raw(planned, "action", row, Action.ADD.value)
            scripting = _raw(planned, "scripting", row, "false")
            notify = _raw(planned, "notify", row, "true")
        row_number = int(sheet.row_numbers[row])
        message = outcome.message
        if row_number == 0 and not message.startswith(NOT_IN_SHEET):
            message = f"{NOT_IN_SHEET}; {message}" if message else NOT_IN_SHEET
        yield [
            row_number or "",
            lines.device_ids[device] if device >= 0 else sheet.cell(device_col, row).strip(),
            _service_text(lines, sheet, service, service_col, row),
            lines.emails[int(lines.email[line])],
            action,
            scripting,
            notify,
            outcome.status.value,
            outcome.code,
            message,
            outcome.attempts,
            plan.mutations[index].id if index >= 0 else "",
            *_typed_names(lines, line),
            *(sheet.cell(column, row) for column in extras),
        ]


def _typed_names(lines: Lines, line: int) -> tuple[str, ...]:
    if lines.device_name is None or lines.service_name is None:
        return ()
    device, service = int(lines.device_name[line]), int(lines.service_name[line])
    return (
        lines.names[device] if device >= 0 else "",
        lines.names[service] if service >= 0 else "",
    )


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
