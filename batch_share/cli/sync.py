"""`batch-share sync`: make access on the sheet's devices equal the sheet (a roster)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from batch_share.cli.console import Console
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
from batch_share.cli.run import job_options, run_and_exit

if TYPE_CHECKING:
    from batch_share.pipeline import DiffEvent

SCOPES = ("sheet", "account")


def sync(
    context: typer.Context,
    sheet: SheetArg,
    report: ReportOpt = None,
    report_dir: ReportDirOpt = None,
    keep_reports: KeepReportsOpt = None,
    sheet_name: SheetNameOpt = None,
    scope: Annotated[
        str,
        typer.Option(
            "--scope",
            help="sheet: only the devices the sheet names; account: every device the key owns.",
        ),
    ] = "sheet",
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
        bool,
        typer.Option("--dry-run", help="Read the account and show the difference; send nothing."),
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
    """Make access on the sheet's devices equal the sheet: add what is missing, remove what
    nobody listed. The removal brake counts against today's access."""
    if scope not in SCOPES:
        raise typer.BadParameter("use sheet or account", param_hint="--scope")
    options = job_options(
        "sync",
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
        scope=scope,
    )
    console = Console(
        as_json=as_json, quiet=quiet, verbose=verbose, log_format=log_format, run_id=options.run_id
    )

    def show(event: DiffEvent) -> None:
        if dry_run or verbose:
            print_diff(console, event)

    run_and_exit(context, console, sheet, options, only=only, on_diff=show)


def print_diff(console: Console, event: DiffEvent) -> None:
    """Per device: `+ email (scripting)`, `- email`, `= N unchanged`; then the totals."""
    from batch_share.plan.sync import DiffTotals, diff_lines

    for device in event.devices:
        console.info(f"{device.device_id}" + (f" ({device.name}):" if device.name else ":"))
        for line in diff_lines(device):
            console.info(f"  {line}")
    console.info(DiffTotals.of(event.devices).text)
