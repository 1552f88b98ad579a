"""Where text goes, for every command: human lines, JSON log lines, the `--json` summary,
and progress while sending."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from batch_share.errors import BatchShareError, exit_code_for
from batch_share.models import ExitCode, Problem

if TYPE_CHECKING:
    from batch_share.models import ProgressEvent
    from batch_share.plan.planned import PlannedSheet

PROBLEMS_SHOWN = 20
MUTATIONS_SHOWN = 5


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


def interrupted(console: Console) -> typer.Exit:
    console.error("interrupted")
    return typer.Exit(int(ExitCode.INTERRUPTED))


def fail(console: Console, error: BatchShareError) -> typer.Exit:
    console.error(str(error))
    return typer.Exit(int(exit_code_for(error)))


def show_problems(console: Console, problems: tuple[Problem, ...]) -> None:
    if not problems:
        return
    shown = problems if console.verbose else problems[:PROBLEMS_SHOWN]
    console.info(f"problems ({len(problems)}):")
    for problem in shown:
        console.info(f"  row {problem.row}, {problem.column}: {problem.code}: {problem.message}")
    if len(shown) < len(problems):
        console.info(f"  ... {len(problems) - len(shown)} more (see --verbose or --report)")


def print_plan(console: Console, planned: PlannedSheet, summary: Mapping[str, Any]) -> None:
    from batch_share.plan.planned import mutation_preview

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
    if summary.get("named_rows"):
        rows = summary["named_rows"]
        console.info(
            f"  {rows} {'row names' if rows == 1 else 'rows name'} a device or service: looked "
            "up in the account when the sheet runs (plan --resolve looks it up now)"
        )
    show_problems(console, planned.problems())
    limit = None if console.verbose else MUTATIONS_SHOWN
    preview = mutation_preview(planned, limit)
    if preview:
        console.info("mutations:")
        for line in preview:
            console.info(f"  {line}")
        hidden = len(planned.plan.mutations) - len(preview)
        if hidden:
            console.info(f"  ... {hidden} more (see --show-mutations)")


def progress_printer(
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


def show_guard(
    console: Console, message: str, preview: Sequence[str], *, only_a_warning: bool
) -> None:
    """The guard's verdict, with what it would remove, shown even under --quiet: a refused
    nightly run must say why in the one mail cron sends."""
    say = console.warning if only_a_warning else console.error
    say(message)
    for line in preview:
        say(f"  would {line}")
