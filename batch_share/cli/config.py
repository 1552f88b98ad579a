"""`batch-share config`, and the hook that feeds a settings file to every command.

`apply_settings` runs in the app's callback, before any command parses its options. It reads
the command tree from the root context, so it sees exactly the options each command really
has, wherever that command's module lives, and hands click a `default_map`: click then gives
command line > environment > file > built-in default with no code in the commands.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from batch_share.errors import UsageError
from batch_share.models import ExitCode
from batch_share.settings import (
    OptionSpec,
    Settings,
    find_settings_file,
    read_settings,
    resolve,
)

SETTINGS_KEY = "batch_share.settings"


def _show_version(value: bool) -> None:
    if value:
        from batch_share import __version__

        typer.echo(f"batch-share {__version__}")
        raise typer.Exit()


def root_options(
    context: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Settings file (default: ./batch-share.toml, else "
            "$XDG_CONFIG_HOME/batch-share/config.toml).",
        ),
    ] = None,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Grant and revoke remote.it device access in bulk from a spreadsheet."""
    if context.resilient_parsing:  # shell completion: never fail on a half-typed line
        return
    apply_settings(context, config)


def profile_choice(context: typer.Context, profile: str | None) -> tuple[str | None, str | None]:
    """`(explicit, configured)` for `load_credentials`, from where `--profile` came from.

    Only a `--profile` typed on the command line beats R3_* keys in the environment; one
    from the settings file is a fallback for when they are not set, and one from R3_PROFILE
    is read by `load_credentials` itself. Every command that loads credentials needs this.
    """
    source = context.get_parameter_source("profile")
    origin = source.name if source is not None else "DEFAULT"
    if origin == "COMMANDLINE":
        return profile, None
    return None, profile if origin == "DEFAULT_MAP" else None


def apply_settings(context: typer.Context, explicit: Path | None) -> Settings:
    """Load the settings file (if any) into `context.default_map`; exit 2 when it is unusable."""
    try:
        path = find_settings_file(explicit)
        settings = read_settings(path) if path is not None else Settings(None)
        # Checking keys builds every command's options; with nothing to check, `plan`
        # builds only its own.
        default_map = resolve(settings, command_options(context)) if settings.entries else {}
    except UsageError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(int(ExitCode.USAGE)) from None
    context.default_map = default_map
    context.meta[SETTINGS_KEY] = settings
    return settings


def command_options(context: typer.Context) -> dict[str, list[OptionSpec]]:
    """Every subcommand's long options, as the settings file may name them."""
    group = context.command
    names = group.list_commands(context) if hasattr(group, "list_commands") else []
    found: dict[str, list[OptionSpec]] = {}
    for name in names:
        command = group.get_command(context, name)  # type: ignore[attr-defined]
        if command is not None:
            found[name] = list(_specs(context, name, command.params))
    return found


def _specs(context: typer.Context, command: str, params: Sequence[Any]) -> Iterator[OptionSpec]:
    for param in params:
        longs = [opt for opt in getattr(param, "opts", ()) if opt.startswith("--")]
        if param.param_type_name != "option" or not longs or param.name is None:
            continue
        envvar = param.envvar
        envvars = (envvar,) if isinstance(envvar, str) else tuple(envvar or ())
        yield OptionSpec(
            key=longs[0][2:],
            name=param.name,
            kind=_kind(param),
            envvars=envvars,
            check=_checker(context, command, param),
        )


def _kind(param: Any) -> type:
    if param.multiple:
        return list
    if getattr(param, "is_flag", False):
        return bool
    # The option's click type says what it parses ("int range", "float", ...), which is
    # the same however typer builds its options.
    name = str(getattr(param.type, "name", ""))
    for word, kind in (("int", int), ("float", float), ("bool", bool)):
        if name.startswith(word):
            return kind
    return str


def _checker(context: typer.Context, command: str, param: Any) -> Any:
    def check(value: Any) -> Any:
        # The option's own conversion, so `concurrency = 0` is refused as `--concurrency 0`
        # would be; a throwaway context keeps the real one untouched.
        scratch = typer.Context(context.command, info_name=command, resilient_parsing=False)
        return param.process_value(scratch, value)

    return check


def config(
    context: typer.Context,
    command: Annotated[
        str, typer.Option("--command", help="The command whose settings to show.")
    ] = "run",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Print each setting in force for a command and where it came from.

    Options after `--` are read as that command's command line, so
    `batch-share config --command run -- --rate 3` shows what that run would use.
    """
    root = context.find_root()
    group = root.command
    target = group.get_command(root, command)  # type: ignore[attr-defined]
    if target is None:
        known = ", ".join(group.list_commands(root))  # type: ignore[attr-defined]
        typer.echo(f"error: no command {command!r} (commands: {known})", err=True)
        raise typer.Exit(int(ExitCode.USAGE))
    settings: Settings = root.meta.get(SETTINGS_KEY) or Settings(None)
    # resilient_parsing: a missing SHEET or a bad value must not stop the listing.
    with target.make_context(
        command, list(context.args), parent=root, resilient_parsing=True
    ) as sub:
        rows = list(_rows(sub, command, target.params, settings))
    if as_json:
        payload = {
            "command": command,
            "settings_file": str(settings.path) if settings.path else None,
            "settings": rows,
        }
        typer.echo(json.dumps(payload))
        return
    typer.echo(f"settings file: {settings.path or 'none found'}")
    width = max((len(row["key"]) for row in rows), default=0)
    shown = [(row, _show(row["value"])) for row in rows]
    value_width = min(max((len(text) for _, text in shown), default=0), 40)
    for row, text in shown:
        source = f"{row['source']} {row['where']}" if row["where"] else row["source"]
        typer.echo(f"  {row['key']:<{width}}  {text:<{value_width}}  {source}")


def _rows(
    sub: typer.Context, command: str, params: Sequence[Any], settings: Settings
) -> Iterator[dict[str, Any]]:
    specs = {spec.name: spec for spec in _specs(sub, command, params)}
    for param in params:
        spec = specs.get(param.name)
        if spec is None or getattr(param, "hidden", False):
            continue
        origin = sub.get_parameter_source(param.name)
        kind = origin.name if origin is not None else "DEFAULT"
        where: str | None = None
        if kind == "COMMANDLINE":
            source = "command line"
        elif kind == "ENVIRONMENT":
            source = "environment"
            where = next((var for var in spec.envvars if os.environ.get(var)), spec.envvars[0])
        elif kind == "DEFAULT_MAP":
            source = "file"
            where = settings.where(settings.chosen[(command, param.name)])
        else:
            source = "default"
        yield {
            "key": spec.key,
            "value": _plain(sub.params.get(param.name)),
            "source": source,
            "where": where,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)
