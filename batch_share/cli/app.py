"""The `batch-share` command: the typer app and its commands, one module each.

Each command imports what it needs inside its own body: `--help` and `plan` then never pay
for httpx, and nothing pays for the emulator's server stack unless it is started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import typer
import typer.core
import typer.main

from batch_share.cli.config import config as config_command
from batch_share.cli.config import root_options
from batch_share.cli.emulator import emulator
from batch_share.cli.export import export
from batch_share.cli.plan import plan
from batch_share.cli.run import run
from batch_share.cli.serve import serve
from batch_share.cli.sync import sync
from batch_share.cli.template import template

# Name, function and click context settings of each command, in the order `--help` lists them.
COMMANDS: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "plan": (plan, {}),
    "run": (run, {}),
    "sync": (sync, {}),
    "emulator": (emulator, {}),
    "export": (export, {}),
    "template": (template, {}),
    "serve": (serve, {}),
    "config": (config_command, {"allow_extra_args": True}),
}


def _build(name: str) -> Any:
    function, context_settings = COMMANDS[name]
    alone = typer.Typer(add_completion=False)
    alone.command(name, context_settings=context_settings)(function)
    command = typer.main.get_command(alone)
    command.name = name
    return command


class _CommandsOnDemand(MutableMapping[str, Any]):
    """The group's command table, building each command's click options when first asked.

    Typer turns every command's signature into click options before parsing a word, which
    was a tenth of a `plan` run; a run needs one command, `--help` and the settings check
    all of them.
    """

    def __init__(self) -> None:
        self._built: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in COMMANDS:
                raise KeyError(name)  # click then says "No such command" with suggestions
            self._built[name] = _build(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        raise TypeError("the commands are those in COMMANDS")

    def __delitem__(self, name: str) -> None:
        raise TypeError("the commands are those in COMMANDS")

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class _Group(typer.core.TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _CommandsOnDemand()

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)


app = typer.Typer(
    cls=_Group,
    no_args_is_help=True,
    add_completion=True,
    help="Grant and revoke remote.it device access in bulk from a spreadsheet.",
)
# The global options (--config, --version) and the settings hook: see batch_share.cli.config.
app.callback()(root_options)


def main() -> None:
    app()
