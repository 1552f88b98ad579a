"""Rosters: today's access as rows a sheet can hold, and the empty sheet to start one from.

An export must be something `sync` reads back as "change nothing", so a row here means
exactly one share that exists: whole-device access is one row with a blank service, and a
service shows up only for an email that lacks whole-device access on that device (the API
lists device-wide users on every service too, and writing them again would turn one share
into several). The key owner's own access is not a share the admin gives, nor is anything
on a device someone else owns, so neither appears.

Written with the report machinery (atomic replace, formula neutralising); `.xlsx` output
goes through `report.sheet_xlsx`, which keeps IDs as text and offers the accepted values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from batch_share.report.writer import (
    check_report_path,
    replace_atomically,
    write_csv_table,
    write_jsonl_table,
)

if TYPE_CHECKING:
    from batch_share.send.account import AccountAccess

ROSTER_COLUMNS: tuple[str, ...] = (
    "device_id",
    "device_name",
    "service_id",
    "service_name",
    "email",
    "scripting",
)
TEMPLATE_COLUMNS: tuple[str, ...] = (
    "device_id",
    "service_id",
    "email",
    "action",
    "scripting",
    "notify",
)
ROSTER_EXTENSIONS: tuple[str, ...] = (".csv", ".jsonl", ".xlsx")
TEMPLATE_EXTENSIONS: tuple[str, ...] = (".csv", ".xlsx")

# What the Columns sheet says about each column: one line a newcomer can act on.
COLUMN_NOTES: Mapping[str, str] = {
    "device_id": "The device: 16 hex digits such as 80:00:00:00:01:00:00:01 (kept as text).",
    "device_name": "The device's name as remote.it shows it; the ID decides which device.",
    "service_id": "Blank for the whole device; a service ID to give only that service.",
    "service_name": "The service's name as remote.it shows it; the ID decides which service.",
    "email": "The remote.it account; several addresses separated by ; make one line each.",
    "action": "ADD (default) gives access, REMOVE takes it away, LEAVE quits a device "
    "shared with you.",
    "scripting": "true lets the user run scripts on the device; blank means false.",
    "notify": "true (default) emails the user about the change; false changes it quietly.",
}
# The values a drop-down offers; the loader accepts more spellings, these are the plain ones.
# Columns whose every cell is formatted as Text in a workbook: a spreadsheet turns an ID
# like 80:00:00:00:01:00:00:01 into a number or a time as soon as it is retyped.
ID_COLUMNS = frozenset({"device_id", "service_id"})
VALUE_LISTS: Mapping[str, tuple[str, ...]] = {
    "action": ("ADD", "REMOVE", "LEAVE"),
    "scripting": ("true", "false"),
    "notify": ("true", "false"),
}
# The emulator's seeded device 1 and service 1 of device 2, written out so the template
# needs no emulator at runtime, and plans cleanly as it is.
TEMPLATE_ROWS: tuple[tuple[str, ...], ...] = (
    ("80:00:00:00:01:00:00:01", "", "new.user@example.com", "ADD", "false", "true"),
    (
        "80:00:00:00:01:00:00:02",
        "80:00:00:00:11:00:00:02",
        "old.user@example.com",
        "REMOVE",
        "false",
        "false",
    ),
)


@dataclass(frozen=True, slots=True)
class RosterRow:
    """One share that exists now; `service_id` is "" for whole-device access."""

    device_id: str
    device_name: str
    service_id: str
    service_name: str
    email: str
    scripting: bool

    def cells(self) -> tuple[str, ...]:
        return (
            self.device_id,
            self.device_name,
            self.service_id,
            self.service_name,
            self.email,
            "true" if self.scripting else "false",
        )


def roster_rows(account: AccountAccess) -> list[RosterRow]:
    """Every share on the devices the key owns, in the order a reader scans for a device:
    by device name (then ID, since names repeat), whole device first, then by service name,
    then email."""
    me = account.email.casefold()
    rows: list[tuple[tuple[str, ...], RosterRow]] = []
    for device in account.devices:
        access = account.access.get(device.id)
        if access is None or device.owner != me:
            continue
        device_key = (device.name.casefold(), device.name, device.id)
        whole = {email: scripting for email, scripting in access.device.items() if email != me}
        for email, scripting in whole.items():
            row = RosterRow(device.id, device.name, "", "", email, scripting)
            rows.append(((*device_key, "0", "", "", "", email), row))
        for service in device.services:
            for email in access.services.get(service.id, frozenset()):
                if email == me or email in whole:
                    continue
                row = RosterRow(
                    device.id, device.name, service.id, service.name, email, scripting=False
                )
                key = (*device_key, "1", service.name.casefold(), service.name, service.id, email)
                rows.append((key, row))
    rows.sort(key=lambda pair: pair[0])
    return [row for _, row in rows]


def check_roster_path(path: Path, what: str = "export") -> None:
    extensions = TEMPLATE_EXTENSIONS if what == "template" else ROSTER_EXTENSIONS
    check_report_path(path, what, extensions)


def write_roster(path: Path, rows: Iterable[RosterRow]) -> Path:
    """Write an export atomically in the format its extension names."""
    check_roster_path(path)
    cells = (row.cells() for row in rows)
    _write(path, ROSTER_COLUMNS, cells, sheet_title="Roster")
    return path


def write_template(path: Path) -> Path:
    """Write the empty sheet to start from: the columns `run` reads and two example rows."""
    check_roster_path(path, "template")
    _write(path, TEMPLATE_COLUMNS, TEMPLATE_ROWS, sheet_title="Sheet")
    return path


def _write(
    path: Path, header: Sequence[str], rows: Iterable[Sequence[str]], *, sheet_title: str
) -> None:
    suffix = path.suffix.lower()

    def write(out: IO[bytes]) -> None:
        if suffix == ".csv":
            write_csv_table(out, header, rows)
        elif suffix == ".jsonl":
            write_jsonl_table(out, header, rows)
        else:
            # openpyxl takes a tenth of a second to import: only .xlsx output pays for it.
            from batch_share.report.sheet_xlsx import write_sheet_xlsx  # noqa: PLC0415

            write_sheet_xlsx(out, header, rows, sheet_title=sheet_title)

    replace_atomically(path, write)
