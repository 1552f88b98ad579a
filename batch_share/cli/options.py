"""Options several commands share, declared once so their names and help agree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from batch_share.models import DEFAULT_API_URL

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


ApiUrlOpt = Annotated[
    str, typer.Option("--api-url", envvar="REMOTEIT_API_URL", help="GraphQL endpoint.")
]
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", envvar="R3_PROFILE", help="Credentials profile.")
]
ConcurrencyOpt = Annotated[
    int, typer.Option("--concurrency", min=1, help="HTTP requests in flight at once.")
]
RateOpt = Annotated[float, typer.Option("--rate", min=0.1, help="Ceiling on requests per second.")]
RetriesOpt = Annotated[int, typer.Option("--retries", min=0, help="Retries per request.")]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=0.1, help="Seconds to wait for one response.")
]
VerifyOpt = Annotated[
    bool, typer.Option("--verify", help="Read the devices back; fail lines not applied.")
]
ResumeOpt = Annotated[
    bool,
    typer.Option("--resume", help="Skip what an earlier run confirmed (see --resume-window)."),
]
ResumeWindowOpt = Annotated[
    float, typer.Option("--resume-window", min=0.0, help="Hours --resume looks back.")
]
StateDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", envvar="BATCH_SHARE_STATE_DIR", help="Journal and run lock directory."
    ),
]
__all__ = ["DEFAULT_API_URL"]
ReportDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--report-dir",
        help="Without --report: write <sheet>.<command>-<UTC time>.csv into this directory.",
    ),
]
KeepReportsOpt = Annotated[
    int | None,
    typer.Option("--keep-reports", min=1, help="With --report-dir: keep this many newest."),
]
JournalDaysOpt = Annotated[
    float,
    typer.Option("--journal-days", min=0.0, help="Days the journal remembers confirmations."),
]
