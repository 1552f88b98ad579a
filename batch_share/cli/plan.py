"""`batch-share plan`: read, validate and group a sheet; print the plan. Offline."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from batch_share.cli.console import Console, fail, interrupted, print_plan, show_guard
from batch_share.cli.options import (
    DEFAULT_API_URL,
    AllowMassRemovalOpt,
    ApiUrlOpt,
    CrossDeviceOpt,
    JsonOpt,
    MaxRemovalFractionOpt,
    MaxRemovalsOpt,
    MinRowsOpt,
    OnlyOpt,
    PerRequestOpt,
    ProfileOpt,
    QuietOpt,
    ReportOpt,
    SheetArg,
    SheetNameOpt,
    TimeoutOpt,
    VerboseOpt,
)
from batch_share.errors import BatchShareError
from batch_share.models import ExitCode, Status

# Options `run` needs and `plan` does not, accepted by `plan` too (SPEC: common options) so a
# script can pass one set of flags to both; hidden from `plan --help`.
_IGNORED: dict[str, Any] = {
    "hidden": True,
    "help": "Accepted for symmetry with `run`; no effect on `plan`.",
}


def plan(
    context: typer.Context,
    sheet: SheetArg,
    sheet_name: SheetNameOpt = None,
    report: ReportOpt = None,
    only: OnlyOpt = None,
    show_mutations: Annotated[
        bool, typer.Option("--show-mutations", help="Print every mutation's GraphQL variables.")
    ] = False,
    per_request: PerRequestOpt = None,
    cross_device: CrossDeviceOpt = False,
    max_removals: MaxRemovalsOpt = 100,
    max_removal_fraction: MaxRemovalFractionOpt = 0.5,
    allow_mass_removal: AllowMassRemovalOpt = False,
    min_rows: MinRowsOpt = 0,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    resolve: Annotated[
        bool,
        typer.Option(
            "--resolve", help="Look up device and service names in the account (read-only)."
        ),
    ] = False,
    api_url: ApiUrlOpt = DEFAULT_API_URL,
    profile: ProfileOpt = None,
    timeout: TimeoutOpt = 30.0,
    _concurrency: Annotated[int | None, typer.Option("--concurrency", **_IGNORED)] = None,
    _rate: Annotated[float | None, typer.Option("--rate", **_IGNORED)] = None,
    _retries: Annotated[int | None, typer.Option("--retries", **_IGNORED)] = None,
    _dry_run: Annotated[bool, typer.Option("--dry-run", **_IGNORED)] = False,
) -> None:
    """Read, validate and group a sheet; print the plan. No network and no credentials,
    except that --resolve asks the account (read-only) for the IDs behind names."""
    from batch_share.pipeline import (
        PER_REQUEST_DEFAULT,
        Guard,
        JobOptions,
        consult_account,
        credentials_for,
        guard_verdict,
        needs_lookup,
        nothing_to_send,
        plan_sheet,
        plan_summary,
        status_counts,
        write_job_report,
    )
    from batch_share.sheet.rerun import parse_only

    started = time.time()
    console = Console(as_json=as_json, quiet=quiet, verbose=verbose)
    console.route_library_logs(context)
    try:
        if report is not None:
            from batch_share.report.writer import check_report_path

            check_report_path(report)
        statuses = parse_only(only) if only is not None else None
        planned = plan_sheet(sheet, sheet_name=sheet_name, only=statuses, cross_device=cross_device)
        if resolve and needs_lookup(planned):
            from batch_share.cli.config import profile_choice

            explicit, configured = profile_choice(context, profile)
            options = JobOptions(
                api_url=api_url,
                profile=explicit,
                configured_profile=configured,
                timeout=timeout,
                cross_device=cross_device,
            )
            planned, _ = consult_account(planned, options, credentials_for(options))
    except BatchShareError as error:
        raise fail(console, error) from None
    except KeyboardInterrupt:
        raise interrupted(console) from None
    summary = plan_summary(planned, per_request or PER_REQUEST_DEFAULT)
    print_plan(console, planned, summary)
    mutations = (
        [{"mutation": m.id, **m.variables()} for m in planned.plan.mutations]
        if show_mutations
        else []
    )
    if show_mutations and not as_json:
        for variables in mutations:
            typer.echo(json.dumps(variables))
    if report is not None:
        try:
            write_job_report(report, planned, None, summary, started=started, api_url=None)
        except BatchShareError as error:
            raise fail(console, error) from None
    counts = status_counts(planned, None)
    problems = counts[Status.INVALID.value] + counts[Status.CONFLICT.value]
    guard = Guard(max_removals, max_removal_fraction, allow_mass_removal, min_rows)
    empty = nothing_to_send(planned)
    verdict = guard_verdict(planned, guard)
    if verdict is not None:
        show_guard(console, verdict.message, verdict.preview, only_a_warning=not empty)
    if empty:
        code = ExitCode.SAFETY_GUARD
    else:
        if verdict is not None:
            console.warning("`run` would refuse this sheet unless told otherwise (see above)")
        code = ExitCode.SOME_ROWS_NOT_DONE if problems else ExitCode.OK
    payload: dict[str, Any] = {"command": "plan", **summary, "counts": counts}
    if show_mutations:
        payload["mutation_variables"] = mutations
    console.data({**payload, "exit_code": int(code)})
    console.final(
        f"batch-share plan: {summary['lines']} lines, {problems} with problems, "
        f"{summary['mutations']} mutations, {summary['http_requests']} HTTP requests; "
        f"exit {int(code)}"
    )
    raise typer.Exit(int(code))
