"""`batch-share run`: apply a sheet's actions and write the per-row report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from batch_share.cli.console import (
    Console,
    fail,
    interrupted,
    print_plan,
    progress_printer,
    show_guard,
)
from batch_share.cli.options import (
    DEFAULT_API_URL,
    AllowMassRemovalOpt,
    ApiUrlOpt,
    ConcurrencyOpt,
    CrossDeviceOpt,
    JournalDaysOpt,
    JsonOpt,
    KeepReportsOpt,
    LogFormatOpt,
    MaxRemovalFractionOpt,
    MaxRemovalsOpt,
    MinRowsOpt,
    OnlyOpt,
    PerRequestOpt,
    ProfileOpt,
    QuietOpt,
    RateOpt,
    ReportDirOpt,
    ReportOpt,
    ResumeOpt,
    ResumeWindowOpt,
    RetriesOpt,
    SheetArg,
    SheetNameOpt,
    StateDirOpt,
    TimeoutOpt,
    VerboseOpt,
    VerifyOpt,
)
from batch_share.errors import BatchShareError

if TYPE_CHECKING:
    from batch_share.pipeline import DiffEvent, JobEvent, JobOptions, JobResult


def run(
    context: typer.Context,
    sheet: SheetArg,
    report: ReportOpt = None,
    report_dir: ReportDirOpt = None,
    keep_reports: KeepReportsOpt = None,
    sheet_name: SheetNameOpt = None,
    only: OnlyOpt = None,
    api_url: ApiUrlOpt = DEFAULT_API_URL,
    profile: ProfileOpt = None,
    concurrency: ConcurrencyOpt = 8,
    rate: RateOpt = 10.0,
    retries: RetriesOpt = 6,
    per_request: PerRequestOpt = None,
    cross_device: CrossDeviceOpt = False,
    timeout: TimeoutOpt = 30.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and plan only; send nothing.")
    ] = False,
    verify: VerifyOpt = False,
    resume: ResumeOpt = False,
    resume_window: ResumeWindowOpt = 24.0,
    state_dir: StateDirOpt = None,
    journal_days: JournalDaysOpt = 30.0,
    max_removals: MaxRemovalsOpt = 100,
    max_removal_fraction: MaxRemovalFractionOpt = 0.5,
    allow_mass_removal: AllowMassRemovalOpt = False,
    min_rows: MinRowsOpt = 0,
    log_format: LogFormatOpt = "text",
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Apply a sheet to the remote.it API and write the per-row report."""
    options = job_options(
        "run",
        context,
        sheet_name=sheet_name,
        report=report,
        report_dir=report_dir,
        keep_reports=keep_reports,
        journal_days=journal_days,
        dry_run=dry_run,
        api_url=api_url,
        profile=profile,
        per_request=per_request,
        cross_device=cross_device,
        guard=(max_removals, max_removal_fraction, allow_mass_removal, min_rows),
        concurrency=concurrency,
        rate=rate,
        retries=retries,
        timeout=timeout,
        verify=verify,
        resume=resume,
        resume_window=resume_window,
        state_dir=state_dir,
    )
    console = Console(
        as_json=as_json, quiet=quiet, verbose=verbose, log_format=log_format, run_id=options.run_id
    )
    run_and_exit(context, console, sheet, options, only=only)


def job_options(
    command: str,
    context: typer.Context,
    *,
    profile: str | None,
    per_request: int | None,
    guard: tuple[int, float, bool, int],
    **chosen: Any,
) -> JobOptions:
    """The job `run` and `sync` describe with the same flags, for the main thread (signals
    stop sending cleanly) with a fresh run id."""
    from batch_share.cli.config import profile_choice
    from batch_share.pipeline import PER_REQUEST_DEFAULT, Guard, JobOptions, new_run_id

    explicit, configured = profile_choice(context, profile)
    return JobOptions(
        command=command,
        profile=explicit,
        configured_profile=configured,
        per_request=per_request or PER_REQUEST_DEFAULT,
        guard=Guard(*guard),
        run_id=new_run_id(),
        handle_signals=True,
        **chosen,
    )


def run_and_exit(
    context: typer.Context,
    console: Console,
    sheet: Path,
    options: JobOptions,
    *,
    only: str | None,
    on_diff: Callable[[DiffEvent], None] | None = None,
) -> NoReturn:
    """Run the job, printing what it reports as it goes, then the final line; exit with its
    code. Shared by `run` and `sync`, which differ only in their options."""
    from dataclasses import replace

    from batch_share.pipeline import DiffEvent, GuardEvent, PlannedEvent, run_job
    from batch_share.sheet.rerun import parse_only

    console.route_library_logs(context)
    on_progress, close_progress = progress_printer(console)

    def on_event(event: JobEvent) -> None:
        if isinstance(event, PlannedEvent):
            print_plan(console, event.planned, event.summary)
        elif isinstance(event, GuardEvent):
            show_guard(console, event.message, event.preview, only_a_warning=event.only_a_warning)
            if event.only_a_warning:
                console.warning("a real run would be refused (see above)")
        elif isinstance(event, DiffEvent):
            if on_diff is not None:
                on_diff(event)
        else:
            on_progress(event)

    try:
        if only is not None:
            options = replace(options, only=parse_only(only))
        try:
            result = run_job(sheet, options, on_event=on_event)
        finally:
            close_progress()
    except BatchShareError as error:
        raise fail(console, error) from None
    except KeyboardInterrupt:
        # Only possible outside the sending phase (which turns signals into a clean stop).
        raise interrupted(console) from None
    for message in result.errors:
        console.error(message)
    finish(console, result)


def finish(console: Console, result: JobResult) -> NoReturn:
    """The `--json` summary and the stable final line cron greps for; then exit."""
    payload = result.payload()
    console.data(payload)
    summary = result.summary
    by_status = ", ".join(f"{n} {status}" for status, n in result.counts.items())
    console.final(
        f"batch-share {result.command}: {summary.get('lines', 0)} lines: {by_status}; "
        f"{summary.get('mutations', 0)} mutations, {summary.get('http_requests', 0)} requests, "
        f"{summary.get('retries', 0)} retries; {result.elapsed:.1f}s; report {result.report}; "
        f"exit {int(result.exit_code)}",
        payload,
    )
    raise typer.Exit(int(result.exit_code))
