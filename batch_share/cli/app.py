"""The `batch-share` command: the typer app and its commands, one module each.

Each command imports what it needs inside its own body: `--help` and `plan` then never pay
for httpx, and nothing pays for the emulator's server stack unless it is started.
"""

from __future__ import annotations

import typer

from batch_share.cli.config import config as config_command
from batch_share.cli.config import root_options
from batch_share.cli.emulator import emulator
from batch_share.cli.export import export
from batch_share.cli.plan import plan
from batch_share.cli.run import run
from batch_share.cli.serve import serve
from batch_share.cli.sync import sync
from batch_share.cli.template import template

app = typer.Typer(
    no_args_is_help=True,
    add_completion=True,
    help="Grant and revoke remote.it device access in bulk from a spreadsheet.",
)
# The global options (--config, --version) and the settings hook: see batch_share.cli.config.
app.callback()(root_options)
app.command()(plan)
app.command()(run)
app.command()(sync)
app.command()(emulator)
app.command()(export)
app.command()(template)
app.command()(serve)
app.command("config", context_settings={"allow_extra_args": True})(config_command)


def main() -> None:
    app()
