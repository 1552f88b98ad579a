"""The library's front door: one call runs a whole job, the way the CLI and the web page do.

    result = run_job(Path("onboarding.xlsx"), JobOptions(report=Path("out.xlsx")))
    result.exit_code, result.counts, result.report

`run_job` loads, validates and plans the sheet (for `sync`, reads the account and plans the
difference), applies the safety guard, sends, and writes the report on every path past
planning, returning everything a caller prints. Callers watch it through `on_event`: the
plan once it is known, the guard's verdict, progress while sending. Errors that stop a job
before anything could be reported (an unreadable sheet, missing credentials, a held lock)
are raised as `BatchShareError`s; `errors.exit_code_for` maps them.

The stages are importable on their own too (`plan_sheet`, `run_plan`, `report_rows`, ...).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batch_share.errors import ApiError, AuthRefusedError, ReportError, UsageError
from batch_share.models import (
    DEFAULT_API_URL,
    PER_REQUEST_DEFAULT,
    DeviceAccess,
    ExitCode,
    Outcome,
    ProgressEvent,
    Status,
)
from batch_share.plan.planned import (
    PLANNED,
    Guard,
    GuardVerdict,
    PlannedSheet,
    check_guard,
    final_outcome,
    guard_verdict,
    mutation_preview,
    nothing_to_send,
    pending_outcomes,
    plan_loaded,
    plan_summary,
    removal_preview,
    status_counts,
    waiting_for_names,
)
from batch_share.report.rows import report_rows

if TYPE_CHECKING:
    from batch_share.plan.sync import DeviceDiff
    from batch_share.send.auth import Credentials
    from batch_share.send.run import RunResult

logger = logging.getLogger("batch_share")

__all__ = [
    "DEFAULT_API_URL",
    "PER_REQUEST_DEFAULT",
    "PLANNED",
    "DiffEvent",
    "Guard",
    "GuardEvent",
    "GuardVerdict",
    "JobEvent",
    "JobOptions",
    "JobResult",
    "PlannedEvent",
    "PlannedSheet",
    "check_guard",
    "consult_account",
    "credentials_for",
    "final_outcome",
    "guard_verdict",
    "mutation_preview",
    "needs_lookup",
    "new_run_id",
    "nothing_to_send",
    "pending_outcomes",
    "plan_loaded",
    "plan_sheet",
    "plan_summary",
    "removal_preview",
    "report_rows",
    "run_job",
    "status_counts",
    "write_job_report",
]


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Everything a `run` or `sync` job can be told; the defaults are the CLI's."""

    command: str = "run"  # "run" or "sync"
    sheet_name: str | None = None
    only: frozenset[str] | None = None  # with a report as input: statuses to replay
    report: Path | None = None  # default: `<sheet stem>.result-<UTC time>.csv` beside it
    report_dir: Path | None = None  # without `report`: `<stem>.<command>-<UTC time>.csv` in it
    keep_reports: int | None = None  # with `report_dir`: prune this sheet's older reports
    journal_days: float | None = 30.0  # the journal forgets confirmations older than this
    dry_run: bool = False
    api_url: str = DEFAULT_API_URL
    profile: str | None = None  # asked for by name: wins over R3_* keys in the environment
    configured_profile: str | None = None  # from a settings file: used when no keys are set
    credentials: Credentials | None = None  # given: used as is (the page's emulator key)
    per_request: int = PER_REQUEST_DEFAULT
    cross_device: bool = False
    guard: Guard = field(default_factory=Guard)
    concurrency: int = 8
    rate: float = 10.0
    retries: int = 6
    timeout: float = 30.0
    verify: bool = False
    resume: bool = False
    resume_window: float = 24.0  # hours
    state_dir: Path | None = None
    scope: str = "sheet"  # sync: "sheet" (devices the sheet names) or "account"
    run_id: str = ""  # default: a new one
    handle_signals: bool = False  # SIGINT/SIGTERM stop sending cleanly (main thread only)


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    """The plan is known (for sync: the difference); nothing has been sent."""

    planned: PlannedSheet
    summary: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class GuardEvent:
    """The safety guard refuses the job, or only warns (a dry run that would be refused)."""

    message: str
    preview: tuple[str, ...]
    only_a_warning: bool


@dataclass(frozen=True, slots=True)
class DiffEvent:
    """A sync's difference per device in scope, before anything is sent."""

    devices: tuple[DeviceDiff, ...]


JobEvent = PlannedEvent | GuardEvent | DiffEvent | ProgressEvent


@dataclass
class JobResult:
    """What a job did: enough for the CLI's final line and `--json`, and the page's table."""

    command: str  # "run", "run --dry-run", "sync", "sync --dry-run"
    run_id: str
    exit_code: ExitCode
    report: Path
    planned: PlannedSheet
    summary: dict[str, Any]
    outcomes: dict[int, Outcome] | None = None  # None: nothing was sent (dry run, refusal)
    errors: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        return status_counts(self.planned, self.outcomes)

    def payload(self) -> dict[str, Any]:
        """The `--json` summary."""
        return {
            "command": self.command,
            **self.summary,
            "counts": self.counts,
            "elapsed": round(self.elapsed, 3),
            "report": str(self.report),
            "exit_code": int(self.exit_code),
        }

    def rows(self) -> Iterator[list[str | int]]:
        """The report's rows, as written."""
        return report_rows(self.planned, self.outcomes or {})


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
    from batch_share.sheet.loader import load_sheet  # noqa: PLC0415 - the file, at the edge
    from batch_share.sheet.rerun import is_report, select_report_lines  # noqa: PLC0415

    sheet = load_sheet(path, sheet=sheet_name)
    if only is not None or is_report(sheet):
        sheet = select_report_lines(sheet, only or frozenset(s.value for s in Status))
    return plan_loaded(sheet, cross_device=cross_device, path=path)


def needs_lookup(planned: PlannedSheet) -> bool:
    """Whether some line names its device or service and waits for the account."""
    return bool(waiting_for_names(planned.lines).any())


def new_run_id(now: datetime | None = None) -> str:
    import secrets  # noqa: PLC0415 - hmac and OpenSSL would be 5 ms of every start

    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


def run_job(
    sheet: Path,
    options: JobOptions | None = None,
    *,
    on_event: Callable[[JobEvent], None] | None = None,
) -> JobResult:
    """Plan, guard, send and report one sheet; see the module docstring."""
    options = options or JobOptions()
    emit = on_event or (lambda _event: None)
    started = time.time()
    run_id = options.run_id or new_run_id()
    command = options.command + (" --dry-run" if options.dry_run else "")
    report = options.report or _default_report(sheet, options)
    from batch_share.report.writer import check_report_path  # noqa: PLC0415

    check_report_path(report)
    credentials = _credentials(options)
    if options.command == "sync" and options.only is not None:
        raise UsageError(
            "sync takes a whole roster; to retry lines of a sync report, use "
            "`batch-share run REPORT --only failed,not-run`"
        )
    planned = plan_sheet(
        sheet, sheet_name=options.sheet_name, only=options.only, cross_device=options.cross_device
    )
    facts: dict[str, Any] = {}
    unread: ApiError | None = None
    if credentials is not None and (options.command == "sync" or needs_lookup(planned)):
        try:
            planned, facts = consult_account(planned, options, credentials)
        except ApiError as error:
            unread = error  # nothing was sent: report every line as not run, below
    summary: dict[str, Any] = {
        "run_id": run_id,
        **plan_summary(planned, options.per_request),
        **facts,
    }
    emit(PlannedEvent(planned, dict(summary)))
    if planned.sync is not None:
        from batch_share.plan.sync import device_diffs  # noqa: PLC0415

        emit(DiffEvent(tuple(device_diffs(planned))))
    # From here `http_requests` counts what was really sent; the plan's estimate stays too.
    summary["planned_http_requests"] = summary["http_requests"]
    summary["http_requests"] = 0

    def finish(code: ExitCode, outcomes: dict[int, Outcome] | None, errors: list[str]) -> JobResult:
        _prune_reports(sheet, options)
        return JobResult(
            command, run_id, code, report, planned, summary, outcomes, errors, time.time() - started
        )

    if unread is not None:
        why = "auth-refused" if isinstance(unread, AuthRefusedError) else "not-sent"
        outcome = Outcome(Status.NOT_RUN, why, "nothing sent: the account could not be read")
        stopped = pending_outcomes(planned, outcome)
        errors = _write_or_say(report, planned, stopped, summary, started, api_url=None)
        return finish(unread.exit_code, stopped, [str(unread), *errors])
    verdict = guard_verdict(planned, options.guard)
    only_a_warning = options.dry_run and not nothing_to_send(planned)
    if verdict is not None:
        emit(GuardEvent(verdict.message, verdict.preview, only_a_warning))
        if not only_a_warning:
            refused = pending_outcomes(
                planned, Outcome(Status.NOT_RUN, "guard-refused", verdict.message)
            )
            errors = _write_or_say(report, planned, refused, summary, started, api_url=None)
            return finish(ExitCode.SAFETY_GUARD, refused, errors)
    if options.dry_run or credentials is None:
        errors = _write_or_say(report, planned, None, summary, started, api_url=None)
        counts = status_counts(planned, None)
        bad = counts[Status.INVALID.value] + counts[Status.CONFLICT.value]
        code = ExitCode.SOME_ROWS_NOT_DONE if bad or errors else ExitCode.OK
        return finish(code, None, errors)
    result, errors = _send(planned, options, credentials, run_id, summary, report, started, emit)
    if result.aborted == "auth-refused":
        errors.append("the API refused the credentials; stopped sending (see the report)")
    if result.aborted == "interrupted":
        errors.append("interrupted; in-flight requests finished, the rest were not sent")
    code = _run_exit(planned, result)
    if errors and code is ExitCode.OK:
        code = ExitCode.SOME_ROWS_NOT_DONE  # the report could not be written
    return finish(code, result.outcomes, errors)


def consult_account(
    planned: PlannedSheet, options: JobOptions, credentials: Credentials
) -> tuple[PlannedSheet, dict[str, Any]]:
    """Ask the account what the sheet cannot say by itself: the IDs behind names, and for
    `sync` today's access on the devices in scope, then plan against the answers."""
    sync = options.command == "sync"
    if sync:
        from batch_share.plan.planned import check_rows  # noqa: PLC0415
        from batch_share.plan.sync import roster_lines  # noqa: PLC0415

        planned = roster_lines(planned)
        # An empty or broken roster is refused before the account is read: it must never
        # read as "nobody should have access".
        check_rows(planned, options.guard)
    from batch_share.send.signals import run_async  # noqa: PLC0415 - only jobs that ask the account

    found = run_async(_read_account(planned, options, credentials))
    facts: dict[str, Any] = {"read_requests": found.requests}
    planned = found.planned
    if not sync:
        return planned, facts
    from batch_share.plan.sync import plan_sync  # noqa: PLC0415

    synced = plan_sync(
        planned,
        found.access,
        scope=found.scope,
        account=found.account,
        cross_device=options.cross_device,
    )
    unchanged = sum(1 for p in synced.lines.problems.values() if p[1] == "unchanged")
    facts.update(
        scope=options.scope,
        scope_devices=len(found.scope),
        current_shares=synced.sync.current_shares if synced.sync else 0,
        unchanged=unchanged,
    )
    return synced, facts


@dataclass(frozen=True, slots=True)
class _Account:
    """What the account said: whose key this is, the sheet with its names resolved (when it
    names some), and for sync the devices in scope with today's access."""

    account: str
    planned: PlannedSheet
    scope: tuple[str, ...]
    access: dict[str, DeviceAccess]
    requests: int


async def _read_account(
    planned: PlannedSheet, options: JobOptions, credentials: Credentials
) -> _Account:
    from batch_share.plan.resolve import Directory, resolve_names  # noqa: PLC0415
    from batch_share.plan.sync import sheet_scope  # noqa: PLC0415
    from batch_share.send.account import (  # noqa: PLC0415
        READ_BATCH,
        CountingReader,
        list_devices,
        read_access,
        read_access_and_email,
    )
    from batch_share.send.client import ShareClient  # noqa: PLC0415

    sync_account = options.command == "sync" and options.scope == "account"
    async with ShareClient(options.api_url, credentials, timeout=options.timeout) as client:
        account: str | None = None
        requests = 0
        devices = []
        names = needs_lookup(planned)
        if names or sync_account:
            account = (await client.whoami()).casefold()
            listing = CountingReader(client)
            devices = await list_devices(listing, concurrency=options.concurrency)
            requests += 1 + listing.requests
        if names:
            directory = Directory.of(devices, account or "")
            planned = resolve_names(planned, directory, cross_device=options.cross_device)
        if options.command != "sync":
            return _Account(account or "", planned, (), {}, requests)
        if sync_account:
            scope = tuple(sorted(d.id for d in devices if d.owner == account))
        else:
            scope = sheet_scope(planned)
        if account is None:
            # The common nightly case: the first access read also says whose key this is.
            account, access, reads = await read_access_and_email(
                client, scope, concurrency=options.concurrency
            )
        else:
            access = await read_access(client, scope, concurrency=options.concurrency)
            reads = -(-len(scope) // READ_BATCH)
    return _Account(account, planned, scope, access, requests + reads)


def _default_report(sheet: Path, options: JobOptions) -> Path:
    now = datetime.now(UTC)
    if options.report_dir is not None:
        from batch_share.report.paths import report_path  # noqa: PLC0415

        return report_path(options.report_dir, sheet, options.command, now)
    from batch_share.report.writer import default_report_path  # noqa: PLC0415

    return default_report_path(sheet, now)


def _prune_reports(sheet: Path, options: JobOptions) -> None:
    """Keep the newest `keep_reports` of this sheet's reports in `report_dir` (cron runs
    would otherwise fill the disk one report a night)."""
    if options.report_dir is None or options.keep_reports is None or options.report is not None:
        return
    from batch_share.report.paths import prune_reports  # noqa: PLC0415

    try:
        prune_reports(options.report_dir, sheet, options.command, options.keep_reports)
    except OSError as error:
        logger.warning("could not prune old reports in %s: %s", options.report_dir, error)


def _credentials(options: JobOptions) -> Credentials | None:
    """The key to sign with, or None for a dry `run`, which never touches the network."""
    if options.dry_run and options.command == "run":
        return None
    return credentials_for(options)


def credentials_for(options: JobOptions) -> Credentials:
    """The key for `options.api_url`, refusing a URL it must not go to before anything is
    read: the one way every command that talks to the API finds its key."""
    from batch_share.send.auth import load_credentials  # noqa: PLC0415 - httpx only to send
    from batch_share.send.client import check_api_url  # noqa: PLC0415

    check_api_url(options.api_url)
    return options.credentials or load_credentials(
        options.profile, configured_profile=options.configured_profile
    )


def _send(
    planned: PlannedSheet,
    options: JobOptions,
    credentials: Credentials,
    run_id: str,
    summary: dict[str, Any],
    report: Path,
    started: float,
    emit: Callable[[JobEvent], None],
) -> tuple[RunResult, list[str]]:
    """Send while holding the lock and the journal, and write the report before letting go
    of them; returns the result and any report error."""
    from batch_share.send.executor import ExecConfig  # noqa: PLC0415
    from batch_share.send.journal import Journal, default_state_dir, run_lock  # noqa: PLC0415
    from batch_share.send.run import RunOptions, RunResult, run_plan  # noqa: PLC0415

    state = options.state_dir or default_state_dir()
    with run_lock(state), Journal(state, journal_days=options.journal_days) as journal:
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
            handle_signals=options.handle_signals,
        )
        result = RunResult(None)
        try:
            result = run_plan(
                planned,
                api_url=options.api_url,
                credentials=credentials,
                options=run_options,
                on_progress=emit,
            )
        finally:
            # Inside the lock, on every path: a run that failed while sending still says
            # what it did; the next run cannot start writing the same report meanwhile.
            with _patient_signals(options.handle_signals):
                outcomes = _run_outcomes(planned, result, summary)
                errors = _write_or_say(
                    report, planned, outcomes, summary, started, api_url=options.api_url
                )
        return result, errors


def _write_or_say(
    report: Path,
    planned: PlannedSheet,
    outcomes: dict[int, Outcome] | None,
    summary: Mapping[str, Any],
    started: float,
    *,
    api_url: str | None,
) -> list[str]:
    """Write the report; a failure becomes an error line (exit 1), not an exception."""
    try:
        write_job_report(report, planned, outcomes, summary, started=started, api_url=api_url)
    except ReportError as error:
        return [str(error)]
    return []


def _run_outcomes(
    planned: PlannedSheet, result: RunResult, summary: dict[str, Any]
) -> dict[int, Outcome]:
    if result.exec_result is None:
        stopped = Outcome(Status.NOT_RUN, "not-sent", "the run stopped before sending this")
        return pending_outcomes(planned, stopped)
    summary.update(
        http_requests=result.exec_result.requests,
        retries=result.exec_result.retries,
        rate_limited=result.exec_result.rate_limited,
        resumed=result.resumed,
        not_applied=result.not_applied,
    )
    return result.outcomes


def write_job_report(
    path: Path,
    planned: PlannedSheet,
    outcomes: dict[int, Outcome] | None,
    summary: Mapping[str, Any],
    *,
    started: float,
    api_url: str | None,
) -> None:
    """The report in the format its extension names, with the run's facts in its summary.
    Raises ReportError (exit 1) when it cannot be written."""
    from batch_share.report.writer import ReportSummary, sha256_file, write_report  # noqa: PLC0415

    counts = status_counts(planned, outcomes)
    facts = [(key, "" if value is None else str(value)) for key, value in summary.items()]
    facts += [
        ("api_url", api_url or ""),
        ("input_sha256", sha256_file(planned.path) if planned.path else ""),
        ("elapsed_seconds", f"{time.time() - started:.2f}"),
    ]
    try:
        write_report(
            path,
            planned.report_extra_columns,
            report_rows(planned, outcomes or {}),
            ReportSummary(counts=counts, fields=facts),
        )
    except OSError as error:
        raise ReportError(
            f"could not write the report {path}: {error.strerror or error} "
            "(nothing was replaced: an earlier report at that path is unchanged)"
        ) from None
    except UsageError as error:
        # Found while writing (too many lines for .xlsx): by now shares may have been sent,
        # so this is "finished, but", not a usage error that sent nothing.
        raise ReportError(f"could not write the report {path}: {error}") from None


@contextlib.contextmanager
def _patient_signals(active: bool) -> Iterator[None]:
    """After sending, a second Ctrl-C must not cost the report: it is ignored (with a note in
    the log) until the report is written; the previous handlers come back afterwards, so an
    in-process caller keeps its own."""
    if not active or threading.current_thread() is not threading.main_thread():
        yield
        return

    def still_writing(_signum: int, _frame: object) -> None:
        logger.error("still writing the report; it will be done in a moment")

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = [signal.getsignal(signum) for signum in signals]
    for signum in signals:
        signal.signal(signum, still_writing)
    try:
        yield
    finally:
        for signum, handler in zip(signals, previous, strict=True):
            signal.signal(signum, handler)


def _run_exit(planned: PlannedSheet, result: RunResult) -> ExitCode:
    if result.aborted == "auth-refused":
        return ExitCode.AUTH_REFUSED
    if result.aborted == "interrupted":
        return ExitCode.INTERRUPTED
    counts = status_counts(planned, result.outcomes)
    done = counts[Status.SUCCEEDED.value] == sum(counts.values())
    return ExitCode.OK if done else ExitCode.SOME_ROWS_NOT_DONE
