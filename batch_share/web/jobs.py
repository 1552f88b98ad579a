"""The one place the page reaches the job API: `run_job(sheet, JobOptions, on_event=...)`.

The library's `run_job` (plan, guard, lock, send, report as one call) is being added to
`pipeline.py`; until it lands this module provides the same names and shape over
`plan_sheet`/`check_guard`/`run_plan`, doing what `cli/app.py`'s `run` does. When it lands,
this file shrinks to re-exports and nothing else in `batch_share.web` changes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch_share.errors import BatchShareError, MassRemovalError, ReportError, UsageError
from batch_share.models import ExitCode, Outcome, Status
from batch_share.pipeline import (
    Guard,
    PlannedSheet,
    check_guard,
    pending_outcomes,
    plan_sheet,
    removal_preview,
    report_rows,
    status_counts,
)
from batch_share.send.executor import PER_REQUEST_DEFAULT, ProgressEvent

if TYPE_CHECKING:
    from batch_share.send.auth import Credentials

DEFAULT_API_URL = "https://api.remote.it/graphql/v1"
COMMANDS = ("run",)  # what the page offers; "sync" joins with the library's run_job


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Everything a `run` or `sync` job can be told; the defaults are the CLI's."""

    command: str = "run"  # "run" or "sync"
    sheet_name: str | None = None
    only: frozenset[str] | None = None
    report: Path | None = None
    dry_run: bool = False
    api_url: str = DEFAULT_API_URL
    profile: str | None = None
    credentials: Credentials | None = None  # given: used as is (the emulator's key)
    per_request: int = PER_REQUEST_DEFAULT
    cross_device: bool = False
    guard: Guard = field(default_factory=Guard)
    concurrency: int = 8
    rate: float = 10.0
    retries: int = 6
    timeout: float = 30.0
    verify: bool = False
    resume: bool = False
    resume_window: float = 24.0
    state_dir: Path | None = None
    scope: str = "sheet"
    run_id: str = ""


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """The plan is known; nothing has been sent."""

    planned: PlannedSheet
    summary: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class GuardEvent:
    """The safety guard refuses the job, or only warns (a dry run that would be refused)."""

    message: str
    preview: tuple[str, ...]
    only_a_warning: bool


JobEvent = PlannedEvent | GuardEvent | ProgressEvent


@dataclass
class JobResult:
    """What a job did: the page's result table, counts and report."""

    command: str
    run_id: str
    exit_code: ExitCode
    report: Path
    planned: PlannedSheet
    summary: dict[str, Any]
    outcomes: dict[int, Outcome] | None = None
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        return status_counts(self.planned, self.outcomes)

    def rows(self) -> Iterator[list[str | int]]:
        return report_rows(self.planned, self.outcomes or {})


def plan_summary(planned: PlannedSheet, per_request: int) -> dict[str, Any]:
    """The numbers `plan` prints, as the CLI computes them."""
    counts = status_counts(planned, None)
    mutations = len(planned.plan.mutations)
    return {
        "sheet": planned.sheet.source,
        "worksheet": planned.sheet.sheet_name,
        "rows": planned.sheet.row_count,
        "blank_rows_skipped": planned.sheet.blank_rows,
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
    }


def write_job_report(
    path: Path,
    planned: PlannedSheet,
    outcomes: dict[int, Outcome] | None,
    summary: Mapping[str, Any],
    *,
    api_url: str | None = None,
    elapsed: float = 0.0,
) -> None:
    """The CLI's report writer, with the same Summary facts."""
    from batch_share.report.writer import ReportSummary, sha256_file, write_report  # noqa: PLC0415

    facts = [(key, "" if value is None else str(value)) for key, value in summary.items()]
    facts += [
        ("api_url", api_url or ""),
        ("input_sha256", sha256_file(planned.path) if planned.path else ""),
        ("elapsed_seconds", f"{elapsed:.2f}"),
    ]
    try:
        write_report(
            path,
            planned.extra_columns,
            report_rows(planned, outcomes or {}),
            ReportSummary(counts=status_counts(planned, outcomes), fields=facts),
        )
    except OSError as error:
        raise ReportError(f"could not write the report {path}: {error.strerror or error}") from None


def run_job(
    sheet: Path,
    options: JobOptions,
    *,
    on_event: Callable[[JobEvent], None] | None = None,
) -> JobResult:
    """Plan, guard, send and report one sheet, as `batch-share run` does."""
    if options.command != "run":
        raise UsageError(f"{options.command!r} is not available from the page yet")
    emit = on_event or (lambda _event: None)
    started = time.time()
    run_id = options.run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    command = "run --dry-run" if options.dry_run else "run"
    if options.report is None:
        raise UsageError("the page always names the report")
    report = options.report
    credentials = None if options.dry_run else _credentials(options)
    planned = plan_sheet(
        sheet, sheet_name=options.sheet_name, only=options.only, cross_device=options.cross_device
    )
    summary: dict[str, Any] = {"run_id": run_id, **plan_summary(planned, options.per_request)}
    emit(PlannedEvent(planned, dict(summary)))
    summary["planned_http_requests"] = summary["http_requests"]
    summary["http_requests"] = 0

    def finish(code: ExitCode, outcomes: dict[int, Outcome] | None) -> JobResult:
        elapsed = time.time() - started
        write_job_report(report, planned, outcomes, summary, api_url=None, elapsed=elapsed)
        return JobResult(command, run_id, code, report, planned, summary, outcomes, [], elapsed)

    nothing_to_send = planned.sheet.row_count == 0 or planned.sendable_lines == 0
    only_a_warning = options.dry_run and not nothing_to_send
    try:
        check_guard(planned, options.guard)
    except BatchShareError as refusal:
        preview = removal_preview(planned) if isinstance(refusal, MassRemovalError) else []
        emit(GuardEvent(str(refusal), tuple(f"would {line}" for line in preview), only_a_warning))
        if not only_a_warning:
            outcome = Outcome(Status.NOT_RUN, "guard-refused", str(refusal))
            return finish(ExitCode.SAFETY_GUARD, pending_outcomes(planned, outcome))
    if credentials is None:
        counts = status_counts(planned, None)
        bad = counts[Status.INVALID.value] + counts[Status.CONFLICT.value]
        return finish(ExitCode.SOME_ROWS_NOT_DONE if bad else ExitCode.OK, None)
    return _send(planned, options, credentials, command, run_id, summary, started, emit)


def _credentials(options: JobOptions) -> Credentials:
    from batch_share.send.auth import load_credentials  # noqa: PLC0415
    from batch_share.send.client import check_api_url  # noqa: PLC0415

    check_api_url(options.api_url)
    return options.credentials or load_credentials(options.profile)


def _send(
    planned: PlannedSheet,
    options: JobOptions,
    credentials: Credentials,
    command: str,
    run_id: str,
    summary: dict[str, Any],
    started: float,
    emit: Callable[[JobEvent], None],
) -> JobResult:
    from batch_share.pipeline import RunOptions, RunResult, run_plan  # noqa: PLC0415
    from batch_share.send.executor import ExecConfig  # noqa: PLC0415
    from batch_share.send.journal import Journal, default_state_dir, run_lock  # noqa: PLC0415

    assert options.report is not None  # noqa: S101 - checked by run_job
    state = options.state_dir or default_state_dir()
    result = RunResult(None)
    with run_lock(state), Journal(state) as journal:
        journal.start_run(run_id, planned.sheet.source, options.api_url)
        run_options = RunOptions(
            config=ExecConfig(
                concurrency=options.concurrency,
                rate=options.rate,
                retries=options.retries,
                per_request=options.per_request,
            ),
            timeout=options.timeout,
            run_id=run_id,
            journal=journal,
            resume_since=time.time() - options.resume_window * 3600 if options.resume else None,
            verify=options.verify,
        )
        try:
            result = run_plan(
                planned,
                api_url=options.api_url,
                credentials=credentials,
                options=run_options,
                on_progress=emit,
            )
        finally:
            outcomes = result.outcomes
            if result.exec_result is not None:
                summary.update(
                    http_requests=result.exec_result.requests,
                    retries=result.exec_result.retries,
                    rate_limited=result.exec_result.rate_limited,
                )
            else:
                failed = Outcome(Status.NOT_RUN, "not-sent", "the run stopped before sending this")
                outcomes = pending_outcomes(planned, failed)
            elapsed = time.time() - started
            write_job_report(
                options.report,
                planned,
                outcomes,
                summary,
                api_url=options.api_url,
                elapsed=elapsed,
            )
    errors = []
    code = ExitCode.OK
    counts = status_counts(planned, outcomes)
    if result.aborted == "auth-refused":
        code = ExitCode.AUTH_REFUSED
        errors.append("the API refused the credentials; stopped sending (see the report)")
    elif counts[Status.SUCCEEDED.value] != sum(counts.values()):
        code = ExitCode.SOME_ROWS_NOT_DONE
    return JobResult(
        command, run_id, code, options.report, planned, summary, outcomes, errors, elapsed
    )
