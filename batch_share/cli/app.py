"""Command line: parse flags, call the library, print, exit.

Each command imports what it needs inside its own body: `--help` and `plan` then never pay
for httpx, and nothing pays for the emulator's server stack unless it is started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from batch_share.cli.config import config as config_command
from batch_share.cli.config import profile_choice, root_options
from batch_share.errors import BatchShareError, MassRemovalError, ReportError, exit_code_for
from batch_share.models import ExitCode, Problem, Status

if TYPE_CHECKING:
    from batch_share.models import Outcome
    from batch_share.pipeline import Guard, PlannedSheet, RunOptions, RunResult
    from batch_share.send.auth import Credentials
    from batch_share.send.executor import ProgressEvent

DEFAULT_API_URL = "https://api.remote.it/graphql/v1"
PROBLEMS_SHOWN = 20
MUTATIONS_SHOWN = 5

app = typer.Typer(
    no_args_is_help=True,
    add_completion=True,
    help="Grant and revoke remote.it device access in bulk from a spreadsheet.",
)


# The global options (--config, --version) and the settings hook: see batch_share.cli.config.
app.callback()(root_options)

SheetArg = Annotated[
    Path, typer.Argument(help="CSV/TSV/TXT, XLSX/XLSM/XLS/ODS sheet, or an earlier report.")
]
SheetNameOpt = Annotated[
    str | None, typer.Option("--sheet", help="Excel worksheet name (default: the first).")
]
ReportOpt = Annotated[
    Path | None,
    typer.Option("--report", help="Per-row report; the format follows the extension."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable summary on stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and the final line.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Every problem and mutation.")]
PerRequestOpt = Annotated[
    int | None,
    typer.Option("--per-request", min=1, help="Mutations packed into one HTTP request."),
]
CrossDeviceOpt = Annotated[
    bool,
    typer.Option("--cross-device", help="Send one mutation for several devices (opt-in)."),
]
OnlyOpt = Annotated[
    str | None,
    typer.Option(
        "--only", help="With a report as input: the statuses to replay, e.g. failed,not-run."
    ),
]
MaxRemovalsOpt = Annotated[
    int, typer.Option("--max-removals", min=0, help="Refuse more REMOVEs than this.")
]
MaxRemovalFractionOpt = Annotated[
    float,
    typer.Option(
        "--max-removal-fraction", min=0.0, max=1.0, help="Refuse a larger share of REMOVEs."
    ),
]
AllowMassRemovalOpt = Annotated[
    bool, typer.Option("--allow-mass-removal", help="Override the removal guard.")
]
MinRowsOpt = Annotated[
    int, typer.Option("--min-rows", min=0, help="Refuse a sheet with fewer valid rows.")
]
LogFormatOpt = Annotated[
    str,
    typer.Option(
        "--log-format", help="stderr log lines: text, or json (one object per line, for cron)."
    ),
]


class Console:
    """Where text goes: human text to stdout, or to stderr when stdout carries JSON.

    With `--log-format json` every human line becomes one JSON object on stderr (run id,
    event, message, and for the final line the counts), so cron and log shippers can parse
    it; stdout then carries only the `--json` summary, if asked for.
    """

    def __init__(
        self,
        *,
        as_json: bool,
        quiet: bool,
        verbose: bool,
        log_format: str = "text",
        run_id: str = "",
    ) -> None:
        if log_format not in {"text", "json"}:
            raise typer.BadParameter("use text or json", param_hint="--log-format")
        self.as_json = as_json
        self.quiet = quiet
        self.verbose = verbose
        self.json_log = log_format == "json"
        self.run_id = run_id

    def route_library_logs(self, context: typer.Context) -> None:
        """Send the library's warnings (a world-readable credentials file, a taken-over lock,
        a halved batch size) through this console, so `--log-format json` covers them too."""
        library = logging.getLogger("batch_share")
        saved = (library.handlers[:], library.level, library.propagate)
        library.handlers[:] = [_ConsoleHandler(self)]
        library.setLevel(logging.DEBUG if self.verbose else logging.WARNING)
        library.propagate = False

        def restore() -> None:
            library.handlers[:], library.level, library.propagate = saved

        # The command's context closes on every exit path, exceptions included, so an
        # in-process caller (a test, a library user) gets the logger back as it was.
        context.call_on_close(restore)

    def progress(self, text: str, fields: Mapping[str, Any]) -> None:
        if self.json_log:
            self._log("progress", text, fields)
        else:
            typer.echo(text, err=True)

    def warning(self, text: str) -> None:
        if self.json_log:
            self._log("warning", text)
        else:
            typer.echo(f"warning: {text}", err=True)

    def _log(self, event: str, message: str, fields: Mapping[str, Any] | None = None) -> None:
        record = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "run_id": self.run_id,
            "event": event,
            "message": message,
            **(fields or {}),
        }
        typer.echo(json.dumps(record), err=True)

    def info(self, text: str = "") -> None:
        if self.quiet:
            return
        if self.json_log:
            self._log("info", text.strip())
        else:
            typer.echo(text, err=self.as_json)

    def final(self, text: str, fields: Mapping[str, Any] | None = None) -> None:
        if self.json_log:
            self._log("finished", text, fields)
        else:
            typer.echo(text, err=self.as_json)

    def error(self, text: str) -> None:
        if self.json_log:
            self._log("error", text)
        else:
            typer.echo(f"error: {text}", err=True)

    def data(self, payload: Mapping[str, Any]) -> None:
        if self.as_json:
            typer.echo(json.dumps(payload, indent=None, sort_keys=False))


class _ConsoleHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.console.error(record.getMessage())
        elif record.levelno >= logging.WARNING:
            self.console.warning(record.getMessage())
        else:
            self.console.info(record.getMessage())


def _interrupted(console: Console) -> typer.Exit:
    console.error("interrupted")
    return typer.Exit(int(ExitCode.INTERRUPTED))


def _fail(console: Console, error: BatchShareError) -> typer.Exit:
    console.error(str(error))
    return typer.Exit(int(exit_code_for(error)))


def _show_problems(console: Console, problems: tuple[Problem, ...]) -> None:
    if not problems:
        return
    shown = problems if console.verbose else problems[:PROBLEMS_SHOWN]
    console.info(f"problems ({len(problems)}):")
    for problem in shown:
        console.info(f"  row {problem.row}, {problem.column}: {problem.code}: {problem.message}")
    if len(shown) < len(problems):
        console.info(f"  ... {len(problems) - len(shown)} more (see --verbose or --report)")


def _plan_summary(planned: PlannedSheet, per_request: int) -> dict[str, Any]:
    from batch_share.pipeline import status_counts

    sheet = planned.sheet
    mutations = len(planned.plan.mutations)
    counts = status_counts(planned, None)
    return {
        "sheet": sheet.source,
        "worksheet": sheet.sheet_name,
        "rows": sheet.row_count,
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
    }


def _print_plan(console: Console, planned: PlannedSheet, summary: Mapping[str, Any]) -> None:
    from batch_share.pipeline import mutation_preview

    where = summary["sheet"] + (f" [{summary['worksheet']}]" if summary["worksheet"] else "")
    console.info(
        f"{where}: {summary['rows']} rows ({summary['blank_rows_skipped']} blank skipped), "
        f"{summary['lines']} lines"
    )
    console.info(
        f"  valid intents {summary['intents']}, invalid {summary['invalid']}, "
        f"conflicts {summary['conflicts']}, duplicates {summary['duplicates']}"
    )
    console.info(
        f"  {summary['mutations']} mutations on {summary['devices']} devices in "
        f"{summary['http_requests']} HTTP requests ({summary['per_request']} per request)"
    )
    _show_problems(console, planned.problems())
    limit = None if console.verbose else MUTATIONS_SHOWN
    preview = mutation_preview(planned, limit)
    if preview:
        console.info("mutations:")
        for line in preview:
            console.info(f"  {line}")
        hidden = len(planned.plan.mutations) - len(preview)
        if hidden:
            console.info(f"  ... {hidden} more (see --show-mutations)")


def _load_planned(
    sheet: Path, sheet_name: str | None, only: str | None, *, cross_device: bool
) -> PlannedSheet:
    from batch_share.pipeline import plan_sheet
    from batch_share.sheet.rerun import parse_only

    statuses = parse_only(only) if only is not None else None
    return plan_sheet(sheet, sheet_name=sheet_name, only=statuses, cross_device=cross_device)


def _default_per_request() -> int:
    from batch_share.send.executor import PER_REQUEST_DEFAULT

    return PER_REQUEST_DEFAULT


# Options `run` needs and `plan` does not, accepted by `plan` too (SPEC: common options) so a
# script can pass one set of flags to both; hidden from `plan --help`.
_IGNORED = {"hidden": True, "help": "Accepted for symmetry with `run`; no effect on `plan`."}


@app.command()
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
    _api_url: Annotated[str | None, typer.Option("--api-url", **_IGNORED)] = None,
    _profile: Annotated[str | None, typer.Option("--profile", **_IGNORED)] = None,
    _concurrency: Annotated[int | None, typer.Option("--concurrency", **_IGNORED)] = None,
    _rate: Annotated[float | None, typer.Option("--rate", **_IGNORED)] = None,
    _retries: Annotated[int | None, typer.Option("--retries", **_IGNORED)] = None,
    _dry_run: Annotated[bool, typer.Option("--dry-run", **_IGNORED)] = False,
) -> None:
    """Read, validate and group a sheet; print the plan. No network, no credentials."""
    from batch_share.pipeline import Guard, status_counts

    started = time.time()
    console = Console(as_json=as_json, quiet=quiet, verbose=verbose)
    console.route_library_logs(context)
    try:
        if report is not None:
            from batch_share.report.writer import check_report_path

            check_report_path(report)
        planned = _load_planned(sheet, sheet_name, only, cross_device=cross_device)
    except BatchShareError as error:
        raise _fail(console, error) from None
    except KeyboardInterrupt:
        raise _interrupted(console) from None
    per_request = per_request or _default_per_request()
    summary = _plan_summary(planned, per_request)
    _print_plan(console, planned, summary)
    mutations = (
        [{"mutation": m.id, **m.variables()} for m in planned.plan.mutations]
        if show_mutations
        else []
    )
    if show_mutations and not as_json:
        for variables in mutations:
            typer.echo(json.dumps(variables))
    if report is not None:
        _write_plan_report(console, report, planned, summary, started=started)
    counts = status_counts(planned, None)
    problems = counts[Status.INVALID.value] + counts[Status.CONFLICT.value]
    guard = Guard(max_removals, max_removal_fraction, allow_mass_removal, min_rows)
    empty = _nothing_to_send(planned)
    refusal = _guard_refusal(console, planned, guard, only_a_warning=not empty)
    if empty:
        code = ExitCode.SAFETY_GUARD
    else:
        if refusal is not None:
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


def _write_report(
    path: Path,
    planned: PlannedSheet,
    outcomes: dict[int, Outcome] | None,
    summary: Mapping[str, Any],
    *,
    started: float,
    api_url: str | None,
) -> None:
    from batch_share.pipeline import report_rows, status_counts
    from batch_share.report.writer import ReportSummary, sha256_file, write_report

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
            planned.extra_columns,
            report_rows(planned, outcomes or {}),
            ReportSummary(counts=counts, fields=facts),
        )
    except OSError as error:
        raise ReportError(f"could not write the report {path}: {error.strerror or error}") from None


def _progress_printer(
    console: Console,
) -> tuple[Callable[[ProgressEvent], None], Callable[[], None]]:
    """A rich bar on a terminal; otherwise one plain line a minute (cron mail stays short)."""
    if console.quiet or console.as_json:
        return (lambda _event: None), (lambda: None)
    if sys.stderr.isatty():
        from rich.progress import Progress

        bar = Progress(transient=True)
        task = bar.add_task("sending", total=None)
        bar.start()

        def update(event: ProgressEvent) -> None:
            bar.update(
                task,
                completed=event.mutations_done,
                total=event.mutations_total,
                description=(
                    f"ok {event.keys_succeeded} failed {event.keys_failed} retries {event.retries} "
                    f"{event.rate:.1f} req/s"
                ),
            )

        return update, bar.stop
    last = [time.monotonic()]

    def log(event: ProgressEvent) -> None:
        now = time.monotonic()
        if now - last[0] >= 60:
            last[0] = now
            console.progress(
                f"progress: {event.mutations_done}/{event.mutations_total} mutations, "
                f"{event.keys_succeeded} ok, {event.keys_failed} failed, {event.retries} retries",
                {
                    "mutations_done": event.mutations_done,
                    "mutations_total": event.mutations_total,
                    "succeeded": event.keys_succeeded,
                    "failed": event.keys_failed,
                    "retries": event.retries,
                },
            )

    return log, (lambda: None)


@app.command()
def run(
    context: typer.Context,
    sheet: SheetArg,
    report: ReportOpt = None,
    sheet_name: SheetNameOpt = None,
    only: OnlyOpt = None,
    api_url: Annotated[
        str, typer.Option("--api-url", envvar="REMOTEIT_API_URL", help="GraphQL endpoint.")
    ] = DEFAULT_API_URL,
    profile: Annotated[
        str | None,
        typer.Option("--profile", envvar="R3_PROFILE", help="Credentials profile."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="HTTP requests in flight at once.")
    ] = 8,
    rate: Annotated[
        float, typer.Option("--rate", min=0.1, help="Ceiling on requests per second.")
    ] = 10.0,
    retries: Annotated[int, typer.Option("--retries", min=0, help="Retries per request.")] = 6,
    per_request: PerRequestOpt = None,
    cross_device: CrossDeviceOpt = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for one response.")
    ] = 30.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and plan only; send nothing.")
    ] = False,
    verify: Annotated[
        bool, typer.Option("--verify", help="Read the devices back; fail lines not applied.")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Skip what an earlier run confirmed (see --resume-window)."),
    ] = False,
    resume_window: Annotated[
        float, typer.Option("--resume-window", min=0.0, help="Hours --resume looks back.")
    ] = 24.0,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", envvar="BATCH_SHARE_STATE_DIR", help="Journal and run lock directory."
        ),
    ] = None,
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
    from batch_share.models import Outcome
    from batch_share.pipeline import Guard, RunResult, pending_outcomes
    from batch_share.report.writer import check_report_path, default_report_path

    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(2)
    console = Console(
        as_json=as_json, quiet=quiet, verbose=verbose, log_format=log_format, run_id=run_id
    )
    console.route_library_logs(context)
    started = time.time()
    report = report or default_report_path(sheet, datetime.now(UTC))
    per_request = per_request or _default_per_request()
    command = "run --dry-run" if dry_run else "run"
    try:
        check_report_path(report)
        credentials = None
        if not dry_run:
            from batch_share.send.auth import load_credentials
            from batch_share.send.client import check_api_url

            check_api_url(api_url)
            explicit, configured = profile_choice(context, profile)
            credentials = load_credentials(explicit, configured_profile=configured)
        planned = _load_planned(sheet, sheet_name, only, cross_device=cross_device)
    except BatchShareError as error:
        raise _fail(console, error) from None
    except KeyboardInterrupt:
        raise _interrupted(console) from None
    summary: dict[str, Any] = {"run_id": run_id, **_plan_summary(planned, per_request)}
    _print_plan(console, planned, summary)
    # From here `http_requests` counts what was really sent; the plan's estimate stays too.
    summary["planned_http_requests"] = summary["http_requests"]
    summary["http_requests"] = 0
    guard = Guard(max_removals, max_removal_fraction, allow_mass_removal, min_rows)
    dry_run_only_warns = credentials is None and not _nothing_to_send(planned)
    refusal = _guard_refusal(console, planned, guard, only_a_warning=dry_run_only_warns)
    if refusal is not None and not dry_run_only_warns:
        outcome = Outcome(Status.NOT_RUN, "guard-refused", str(refusal))
        refused = pending_outcomes(planned, outcome)
        try:
            _write_report(report, planned, refused, summary, started=started, api_url=None)
        except ReportError as report_error:
            console.error(str(report_error))
        result = RunResult(None, refused)
        _finish(console, command, planned, result, summary, report, ExitCode.SAFETY_GUARD, started)
    if credentials is None:
        if refusal is not None:
            console.warning("a real run would be refused (see above)")
        code = _write_plan_report(console, report, planned, summary, started=started)
        _finish(console, command, planned, None, summary, report, code, started)

    from batch_share.pipeline import RunOptions
    from batch_share.send.executor import ExecConfig
    from batch_share.send.journal import Journal, default_state_dir, run_lock

    state = state_dir or default_state_dir()
    try:
        with run_lock(state), Journal(state) as journal:
            journal.start_run(run_id, planned.sheet.source, api_url)
            options = RunOptions(
                config=ExecConfig(
                    concurrency=concurrency, rate=rate, retries=retries, per_request=per_request
                ),
                timeout=timeout,
                run_id=run_id,
                journal=journal,
                resume_since=time.time() - resume_window * 3600 if resume else None,
                verify=verify,
                handle_signals=True,
            )
            result = _execute(
                planned, console, api_url, credentials, options, summary, report, started
            )
    except BatchShareError as error:
        raise _fail(console, error) from None
    except KeyboardInterrupt:
        # Only possible outside the sending phase (which turns signals into a clean stop);
        # the report has been written by then.
        raise _interrupted(console) from None
    _finish(console, command, planned, result, summary, report, _run_exit(planned, result), started)


def _nothing_to_send(planned: PlannedSheet) -> bool:
    """No data rows, or none valid: refused (exit 4) by `run`, dry or not, and by `plan`."""
    return planned.sheet.row_count == 0 or planned.sendable_lines == 0


def _guard_refusal(
    console: Console, planned: PlannedSheet, guard: Guard, *, only_a_warning: bool = False
) -> BatchShareError | None:
    """The safety guard's verdict, with what it would remove shown even under --quiet."""
    from batch_share.pipeline import check_guard, removal_preview

    say = console.warning if only_a_warning else console.error
    try:
        check_guard(planned, guard)
    except MassRemovalError as refusal:
        say(str(refusal))
        for line in removal_preview(planned):
            say(f"  would {line}")
        return refusal
    except BatchShareError as refusal:
        say(str(refusal))
        return refusal
    return None


def _write_plan_report(
    console: Console,
    report: Path,
    planned: PlannedSheet,
    summary: Mapping[str, Any],
    *,
    started: float,
) -> ExitCode:
    """Write a report of planned lines; 0 when every line is valid, else 1 (SPEC: dry run)."""
    from batch_share.pipeline import status_counts

    try:
        _write_report(report, planned, None, summary, started=started, api_url=None)
    except ReportError as error:
        raise _fail(console, error) from None
    counts = status_counts(planned, None)
    bad = counts[Status.INVALID.value] + counts[Status.CONFLICT.value]
    return ExitCode.SOME_ROWS_NOT_DONE if bad else ExitCode.OK


def _execute(
    planned: PlannedSheet,
    console: Console,
    api_url: str,
    credentials: Credentials,
    options: RunOptions,
    summary: dict[str, Any],
    report: Path,
    started: float,
) -> RunResult:
    """Send, and write the report whatever happens: success, abort, or an exception."""
    from batch_share.pipeline import RunResult, run_plan

    on_progress, close_progress = _progress_printer(console)
    result = RunResult(None)
    try:
        result = run_plan(
            planned,
            api_url=api_url,
            credentials=credentials,
            options=options,
            on_progress=on_progress,
        )
    finally:
        close_progress()
        with _patient_signals(console):
            _report_run(planned, result, summary, report, started=started, api_url=api_url)
    if result.aborted == "auth-refused":
        console.error("the API refused the credentials; stopped sending (see the report)")
    if result.aborted == "interrupted":
        console.error("interrupted; in-flight requests finished, the rest were not sent")
    return result


def _report_run(
    planned: PlannedSheet,
    result: RunResult,
    summary: dict[str, Any],
    report: Path,
    *,
    started: float,
    api_url: str,
) -> None:
    from batch_share.models import Outcome
    from batch_share.pipeline import pending_outcomes

    if result.exec_result is not None:
        summary.update(
            http_requests=result.exec_result.requests,
            retries=result.exec_result.retries,
            rate_limited=result.exec_result.rate_limited,
            resumed=result.resumed,
            not_applied=result.not_applied,
        )
        outcomes = result.outcomes
    else:
        failed = Outcome(Status.NOT_RUN, "not-sent", "the run stopped before sending this")
        outcomes = pending_outcomes(planned, failed)
    _write_report(report, planned, outcomes, summary, started=started, api_url=api_url)


@contextlib.contextmanager
def _patient_signals(console: Console) -> Iterator[None]:
    """After sending, a second Ctrl-C must not cost the report: say so and carry on; the
    previous handlers come back afterwards, so an in-process caller keeps its own."""

    def still_writing(_signum: int, _frame: object) -> None:
        console.error("still writing the report; it will be done in a moment")

    signals = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = [signal.getsignal(signum) for signum in signals]
    for signum in signals:
        signal.signal(signum, still_writing)
    try:
        yield
    finally:
        for signum, handler in zip(signals, previous, strict=True):
            signal.signal(signum, handler)


def _run_exit(planned: PlannedSheet, result: RunResult) -> ExitCode:
    from batch_share.pipeline import status_counts

    if result.aborted == "auth-refused":
        return ExitCode.AUTH_REFUSED
    if result.aborted == "interrupted":
        return ExitCode.INTERRUPTED
    counts = status_counts(planned, result.outcomes)
    done = counts[Status.SUCCEEDED.value] == sum(counts.values())
    return ExitCode.OK if done else ExitCode.SOME_ROWS_NOT_DONE


def _finish(
    console: Console,
    command: str,
    planned: PlannedSheet,
    result: RunResult | None,
    summary: Mapping[str, Any],
    report: Path,
    code: ExitCode,
    started: float,
) -> NoReturn:
    from batch_share.pipeline import status_counts

    counts = status_counts(planned, result.outcomes if result is not None else None)
    elapsed = time.time() - started
    payload = {
        "command": command,
        **summary,
        "counts": counts,
        "elapsed": round(elapsed, 3),
        "report": str(report),
        "exit_code": int(code),
    }
    console.data(payload)
    by_status = ", ".join(f"{n} {status}" for status, n in counts.items())
    console.final(
        f"batch-share {command}: {summary.get('lines', 0)} lines: {by_status}; "
        f"{summary.get('mutations', 0)} mutations, {summary.get('http_requests', 0)} requests, "
        f"{summary.get('retries', 0)} retries; {elapsed:.1f}s; report {report}; exit {int(code)}",
        payload,
    )
    raise typer.Exit(int(code))


@app.command()
def emulator(
    port: Annotated[
        int, typer.Option("--port", help="TCP port on 127.0.0.1 (0: any free).")
    ] = 8765,
    devices: Annotated[int, typer.Option("--devices", min=1, help="Seeded devices.")] = 1000,
    services_per_device: Annotated[
        int, typer.Option("--services-per-device", min=0, help="Seeded services per device.")
    ] = 3,
    key_id: Annotated[str | None, typer.Option("--key-id", help="Access key id to accept.")] = None,
    secret: Annotated[
        str | None, typer.Option("--secret", help="Base64 secret to accept (default: random).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the fault dice.")] = 0,
    latency: Annotated[float, typer.Option("--latency", help="Seconds added per request.")] = 0.0,
    p503: Annotated[float, typer.Option("--p503", help="Probability of a 503.")] = 0.0,
    p429: Annotated[float, typer.Option("--p429", help="Probability of a 429.")] = 0.0,
    retry_after: Annotated[
        float, typer.Option("--retry-after", help="Retry-After seconds sent with --p429.")
    ] = 1.0,
    p_drop: Annotated[
        float, typer.Option("--p-drop", help="Probability of dropping the connection.")
    ] = 0.0,
    p_apply_then_drop: Annotated[
        float,
        typer.Option("--p-apply-then-drop", help="Probability of applying, then dropping."),
    ] = 0.0,
    rate_limit: Annotated[
        float | None, typer.Option("--rate-limit", help="Requests/s before answering 429.")
    ] = None,
    alias_cap: Annotated[
        int | None, typer.Option("--alias-cap", help="Most share fields in one request.")
    ] = None,
    failing_device: Annotated[
        list[str] | None,
        typer.Option("--failing-device", help="Device id whose shares always fail (repeatable)."),
    ] = None,
    unregistered_email: Annotated[
        list[str] | None,
        typer.Option("--unregistered-email", help="Address with no account (repeatable)."),
    ] = None,
    silent_drop_device: Annotated[
        list[str] | None,
        typer.Option(
            "--silent-drop-device", help="Device whose shares answer true but are not stored."
        ),
    ] = None,
) -> None:
    """Serve a local remote.it-compatible API with a throwaway key, for trying things safely."""
    try:
        from batch_share.emulator import serve
    except ImportError as missing:
        typer.echo(
            f"error: the emulator needs the `emulator` extra ({missing.name} is not installed): "
            "pip install 'batch-share[emulator]'",
            err=True,
        )
        raise typer.Exit(int(ExitCode.USAGE)) from None

    try:
        serve(
            port,
            devices=devices,
            services_per_device=services_per_device,
            key_id=key_id,
            secret=secret,
            seed=seed,
            latency=latency,
            p503=p503,
            p429=p429,
            retry_after=retry_after,
            p_drop=p_drop,
            p_apply_then_drop=p_apply_then_drop,
            rate_limit=rate_limit,
            alias_cap=alias_cap,
            failing_devices=tuple(failing_device or ()),
            unregistered_emails=tuple(unregistered_email or ()),
            silent_drop_devices=tuple(silent_drop_device or ()),
        )
    except (ValueError, OSError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(int(ExitCode.USAGE)) from None


app.command("config", context_settings={"allow_extra_args": True})(config_command)


def main() -> None:
    app()
