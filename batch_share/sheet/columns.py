"""The header: which sheet column is which canonical column, by name and alias."""

from __future__ import annotations

from collections.abc import Sequence

from batch_share.errors import SheetError
from batch_share.models import (
    Problem,
    Sheet,
)

# Canonical order: a row's `code` is its first problem in this order.
COLUMNS: tuple[str, ...] = ("device_id", "service_id", "email", "action", "scripting", "notify")
REQUIRED: tuple[str, ...] = ("device_id", "email")

ALIASES: dict[str, tuple[str, ...]] = {
    "device_id": ("device", "deviceid", "device id", "device address", "device_address"),
    "service_id": ("service", "serviceid", "service id"),
    "email": ("e-mail", "emails", "user", "user email", "users", "email address"),
    "action": ("operation", "op"),
    "scripting": ("bulk scripting", "allow scripting"),
    "notify": ("send email", "notify user"),
}


def _header_key(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch.isalnum())


_HEADER_KEYS: dict[str, str] = {
    _header_key(alias): canonical
    for canonical, aliases in ALIASES.items()
    for alias in (canonical, *aliases)
}


def map_columns(header: Sequence[str]) -> tuple[dict[str, int], list[Problem]]:
    """Find each canonical column in the header.

    Two columns that mean the same thing (`E-Mail` and `Email`) are refused rather than one
    of them being picked: the other's addresses would silently never be shared.
    """
    column_map: dict[str, int] = {}
    ambiguous: list[Problem] = []
    for index, name in enumerate(header):
        canonical = _HEADER_KEYS.get(_header_key(name))
        if canonical is None:
            continue
        if canonical in column_map:
            first = header[column_map[canonical]]
            ambiguous.append(
                Problem(
                    0,
                    canonical,
                    "ambiguous-column",
                    f"columns '{first}' and '{name}' both mean {canonical}; "
                    "rename or remove one of them",
                )
            )
        else:
            column_map[canonical] = index
    problems = ambiguous + [
        Problem(
            0,
            name,
            "missing-column",
            f"required column {name} is missing (accepted headers: {_accepted_headers(name)})",
        )
        for name in REQUIRED
        if name not in column_map
    ]
    return column_map, problems


def _accepted_headers(name: str) -> str:
    return ", ".join((name, *ALIASES[name]))


def missing_columns_error(sheet: Sheet, problems: Sequence[Problem]) -> SheetError:
    seen = ", ".join(f"'{name}'" for name in sheet.header) or "nothing"
    where = f"{sheet.source}" + (f" (sheet '{sheet.sheet_name}')" if sheet.sheet_name else "")
    missing = "; ".join(p.message for p in problems)
    return SheetError(f"{where}: {missing}. The header row (row {sheet.header_row}) has: {seen}")
