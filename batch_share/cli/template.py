"""`batch-share template OUT`: an empty sheet to start from, laid out so a spreadsheet
cannot mangle what is typed into it. Offline: no credentials, no network."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from batch_share.cli.options import QuietOpt
from batch_share.errors import BatchShareError, UsageError, exit_code_for


def template(
    out: Annotated[Path, typer.Argument(help="Sheet to write: .xlsx or .csv.")],
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Write the columns `run` reads, two example rows and a sheet explaining each column."""
    from batch_share.report.roster import write_template

    try:
        # A template over a sheet someone has filled in would cost them their work.
        if out.exists() and not force:
            raise UsageError(f"template {out}: already exists; use --force to replace it")
        write_template(out)
    except BatchShareError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(int(exit_code_for(error))) from None
    except OSError as error:
        typer.echo(f"error: could not write {out}: {error.strerror or error}", err=True)
        raise typer.Exit(2) from None
    if not quiet:
        typer.echo(f"wrote {out}: replace the example rows, then `batch-share plan {out}`")
