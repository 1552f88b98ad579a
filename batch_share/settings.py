"""Settings files: long options written down once, in TOML, for hand runs and nightly jobs.

The file never decides anything on its own: it only supplies defaults, which the command
line and the environment still override (click's `default_map` gives exactly that order).
This module reads and checks the file against a description of each command's options, so
it knows nothing of typer; `batch_share.cli.config` builds that description from the real
commands, which is why a command added later gets settings without any wiring of its own.

    max-removals = 20          # every command that has --max-removals
    [run]
    rate = 3.0                 # `run` only
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch_share.errors import UsageError

FILE_NAME = "batch-share.toml"
USER_FILE = Path("batch-share") / "config.toml"
CREDENTIALS_HINT = "~/.remoteit/credentials"

# Key fragments that mean a secret. A settings file is shared, copied into tickets and
# checked into repositories; the credentials file is the one place a secret may live.
_SECRET_WORDS = ("secret", "password", "passwd", "token", "access-key", "key-id", "credential")


class SettingsError(UsageError):
    """The settings file cannot be used (exit 2); the message names file, key and line."""


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """What the settings file needs to know of one long option of one command.

    `kind` is the Python type a TOML value must have (`list` for repeatable options);
    `check` is the command's own conversion (ranges, choices), so a file value is held to
    the same rules as a typed one and its error can still name the file and line.
    """

    key: str
    name: str
    kind: type
    envvars: tuple[str, ...] = ()
    check: Callable[[Any], Any] | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One value from the file, with where it was written."""

    key: str
    value: Any
    line: int
    table: str | None  # None: the top level, which applies to every command


@dataclass(frozen=True, slots=True)
class Settings:
    path: Path | None
    entries: tuple[Entry, ...] = ()
    # (command, option name) -> the entry in force; filled by `resolve`.
    chosen: dict[tuple[str, str], Entry] = field(default_factory=dict)

    def where(self, entry: Entry) -> str:
        return f"{self.path}:{entry.line}"


def find_settings_file(
    explicit: Path | None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """`--config PATH`, else ./batch-share.toml, else $XDG_CONFIG_HOME/batch-share/config.toml.

    An explicit path that does not exist is an error rather than a silent fallback: a
    nightly job pointed at a moved file must not quietly run with the defaults.
    """
    if explicit is not None:
        if not explicit.is_file():
            raise SettingsError(f"settings file {explicit} does not exist")
        return explicit
    env = os.environ if environ is None else environ
    local = (Path.cwd() if cwd is None else cwd) / FILE_NAME
    if local.is_file():
        return local
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    user = Path(base) / USER_FILE
    return user if user.is_file() else None


def read_settings(path: Path) -> Settings:
    """Parse the file into entries with their line numbers; no checking against commands."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise SettingsError(f"cannot read settings file {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"settings file {path} is not UTF-8 text") from None
    import tomllib  # noqa: PLC0415 - its parser is 3 ms of a start with no file

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"settings file {path}: {error}") from None
    lines = text.splitlines()
    entries: list[Entry] = []
    for key, value in data.items():
        if isinstance(value, dict):
            table_line = _line_of(lines, key, table=None, header=True)
            if not value:
                entries.append(Entry(key, value, table_line, None))
            for inner, inner_value in value.items():
                line = _line_of(lines, inner, table=key) or table_line
                entries.append(Entry(inner, inner_value, line, key))
        else:
            entries.append(Entry(key, value, _line_of(lines, key, table=None), None))
    return Settings(path, tuple(entries))


def resolve(
    settings: Settings, commands: Mapping[str, Sequence[OptionSpec]]
) -> dict[str, dict[str, Any]]:
    """Check every entry against the commands' options; return click's `default_map`.

    A top-level key applies to each command that has that option and must exist on at
    least one; a key in `[command]` must exist on that command and wins over the top level.
    """
    default_map: dict[str, dict[str, Any]] = {name: {} for name in commands}
    ordered = sorted(settings.entries, key=lambda entry: entry.table is not None)
    for entry in ordered:
        _refuse_secret(settings, entry)
        if entry.table is None and isinstance(entry.value, dict):
            if entry.key not in commands:
                raise SettingsError(
                    f"{settings.where(entry)}: no command {entry.key!r} for a table "
                    f"(commands: {', '.join(sorted(commands))})"
                )
            continue
        targets = [entry.table] if entry.table is not None else list(commands)
        if entry.table is not None and entry.table not in commands:
            raise SettingsError(
                f"{settings.where(entry)}: [{entry.table}] is not a command "
                f"(commands: {', '.join(sorted(commands))})"
            )
        matched = False
        for command in targets:
            spec = next((s for s in commands[command] if s.key == entry.key), None)
            if spec is None:
                continue
            matched = True
            default_map[command][spec.name] = _checked(settings, entry, spec)
            settings.chosen[(command, spec.name)] = entry
        if not matched:
            scope = f"`{entry.table}`" if entry.table else "any command"
            raise SettingsError(
                f"{settings.where(entry)}: unknown key {entry.key!r}: not an option of {scope}"
            )
    return {command: values for command, values in default_map.items() if values}


def _refuse_secret(settings: Settings, entry: Entry) -> None:
    normal = entry.key.lower().replace("_", "-")
    if any(word in normal for word in _SECRET_WORDS):
        raise SettingsError(
            f"{settings.where(entry)}: {entry.key!r} looks like a secret, which does not "
            f"belong in a settings file: keep the access key in {CREDENTIALS_HINT} "
            "(a [profile] with R3_ACCESS_KEY_ID and R3_SECRET_ACCESS_KEY) "
            'and choose it with profile = "NAME"'
        )


def _checked(settings: Settings, entry: Entry, spec: OptionSpec) -> Any:
    value = entry.value
    if not _fits(value, spec.kind):
        raise SettingsError(
            f"{settings.where(entry)}: {entry.key} must be {_describe(spec.kind)}, "
            f"not {_describe(type(value))} ({value!r})"
        )
    if spec.check is not None:
        try:
            spec.check(value)
        except Exception as error:  # noqa: BLE001 - any refusal by the option's own rules
            message = getattr(error, "message", None) or str(error)
            raise SettingsError(f"{settings.where(entry)}: {entry.key}: {message}") from None
    return value


def _fits(value: Any, kind: type) -> bool:
    # TOML has real types, so the file is held to them: `max-removals = "20"` is a typo
    # waiting to happen elsewhere (a quoted number in one key, an unquoted one in the next).
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, int)
    if kind is float:
        return isinstance(value, int | float)
    if kind is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, str)


def _describe(kind: type) -> str:
    return {
        bool: "true or false",
        int: "a whole number",
        float: "a number",
        list: "a list of strings",
        str: "a string",
        dict: "a table",
    }.get(kind, kind.__name__)


def _line_of(lines: Sequence[str], key: str, *, table: str | None, header: bool = False) -> int:
    """The line a key (or a `[table]` header) is written on, found in the text simply.

    tomllib gives no positions. A key is looked for inside its table's section first, then
    anywhere (a dotted `run.rate = 3` or an inline table); 0 when it cannot be found.
    """
    quoted = rf"(?:{re.escape(key)}|\"{re.escape(key)}\"|'{re.escape(key)}')"
    if header:
        pattern = re.compile(rf"^\s*\[\s*{quoted}\s*\]|^\s*{quoted}\s*[.=]")
        return next((n for n, text in enumerate(lines, 1) if pattern.match(text)), 0)
    key_line = re.compile(rf"^\s*(?:[\w\"'.-]+\.)?{quoted}\s*=")
    anywhere = re.compile(rf"(?<![\w-]){quoted}\s*=")
    section: str | None = None
    fallback = 0
    for number, text in enumerate(lines, 1):
        found = re.match(r"^\s*\[\s*([^\]]+?)\s*\]", text)
        if found:
            section = found.group(1).strip("\"'")
            continue
        if key_line.match(text) and section == table:
            return number
        if not fallback and anywhere.search(text):
            fallback = number
    return fallback
