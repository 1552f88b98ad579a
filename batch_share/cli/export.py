"""`batch-share export OUT`: today's access as a roster that `sync` accepts.

Read-only: it asks the API who has access and writes a file, never sends a share. Output
is written atomically, so a nightly snapshot is either the new file or the previous one.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from batch_share.cli.console import Console, fail, interrupted
from batch_share.cli.options import ApiUrlOpt, JsonOpt, ProfileOpt, QuietOpt, TimeoutOpt
from batch_share.errors import BatchShareError, ReportError
from batch_share.models import DEFAULT_API_URL, ExitCode

if TYPE_CHECKING:
    from batch_share.send.account import AccountAccess
    from batch_share.send.auth import Credentials


def export(
    context: typer.Context,
    out: Annotated[Path, typer.Argument(help="Roster to write: .csv, .xlsx or .jsonl.")],
    devices: Annotated[
        Path | None,
        typer.Option("--devices", help="Only the devices this sheet names (default: all owned)."),
    ] = None,
    sheet_name: Annotated[
        str | None,
        typer.Option("--sheet", help="Worksheet of the --devices sheet (default: the first)."),
    ] = None,
    api_url: ApiUrlOpt = DEFAULT_API_URL,
    profile: ProfileOpt = None,
    timeout: TimeoutOpt = 30.0,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write who has access to the devices the key owns, one row per share (read-only)."""
    from batch_share.cli.config import profile_choice
    from batch_share.pipeline import JobOptions, credentials_for
    from batch_share.report.roster import check_roster_path, roster_rows, write_roster
    from batch_share.send.signals import run_async

    console = Console(as_json=as_json, quiet=quiet, verbose=False)
    started = time.monotonic()
    try:
        check_roster_path(out)
        explicit, configured = profile_choice(context, profile)
        credentials = credentials_for(
            JobOptions(api_url=api_url, profile=explicit, configured_profile=configured)
        )
        wanted = None if devices is None else _sheet_devices(devices, sheet_name)
        progress, close = _progress(quiet=quiet or as_json)
        try:
            account = run_async(_read(api_url, credentials, timeout, wanted, progress))
        finally:
            close()
        rows = roster_rows(account)
        try:
            write_roster(out, rows)
        except OSError as error:
            raise ReportError(f"could not write {out}: {error.strerror or error}") from None
    except BatchShareError as error:
        raise fail(console, error) from None
    except KeyboardInterrupt:
        raise interrupted(console) from None
    owned = sum(1 for device in account.devices if device.owner == account.email)
    summary: dict[str, Any] = {
        "command": "export",
        "output": str(out),
        "devices": owned,
        "rows": len(rows),
        "requests": account.requests,
        "elapsed": round(time.monotonic() - started, 3),
        "exit_code": int(ExitCode.OK),
    }
    console.data(summary)
    if not quiet:
        console.final(
            f"batch-share export: {len(rows)} rows on {owned} devices, "
            f"{account.requests} requests, {summary['elapsed']:.1f}s; wrote {out}"
        )


def _sheet_devices(sheet: Path, sheet_name: str | None) -> list[str]:
    """The valid device IDs a sheet names; its other problems are `plan`'s business."""
    import numpy as np

    from batch_share.pipeline import plan_sheet

    lines = plan_sheet(sheet, sheet_name=sheet_name).lines
    codes = np.unique(lines.device[lines.valid])
    return [lines.device_ids[int(code)] for code in codes if code >= 0]


async def _read(
    api_url: str,
    credentials: Credentials,
    response_timeout: float,
    device_ids: Iterable[str] | None,
    progress: Callable[[int, int | None], None],
) -> AccountAccess:
    from batch_share.send.account import read_account
    from batch_share.send.client import ShareClient

    async with ShareClient(api_url, credentials, timeout=response_timeout) as client:
        return await read_account(client, device_ids=device_ids, on_progress=progress)


def _progress(*, quiet: bool) -> tuple[Callable[[int, int | None], None], Callable[[], None]]:
    """A bar on a terminal, for accounts big enough to take a while; nothing otherwise."""
    if quiet or not sys.stderr.isatty():
        return (lambda _done, _total: None), (lambda: None)
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    task = bar.add_task("reading devices", total=None)
    bar.start()

    def update(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    return update, bar.stop
