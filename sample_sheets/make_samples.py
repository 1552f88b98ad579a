"""Write the sample sheets in this folder, and the README that explains them.

    .venv/bin/python sample_sheets/make_samples.py

Every ID comes from the emulator's seeded fleet and every example.com address is a
registered emulator account, so `onboarding.xlsx` succeeds in full against the emulator.
The output is byte-for-byte reproducible: workbook and zip timestamps are pinned, so
regenerating leaves the files unchanged unless this script changed.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zipfile import ZIP_DEFLATED, ZipFile, ZipInfo

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.writer.excel import ExcelWriter

from batch_share.emulator.fleet import (
    ACCOUNT_EMAIL,
    device_id,
    service_id,
    shared_device_id,
    shared_service_id,
)

HERE = Path(__file__).resolve().parent
PINNED_TIME = datetime(2025, 1, 1)  # noqa: DTZ001 - workbook metadata stores naive UTC


def dashed(an_id: str) -> str:
    return an_id.replace(":", "-")


def bare(an_id: str) -> str:
    return an_id.replace(":", "")


# --- onboarding.xlsx -------------------------------------------------------------------------

ONBOARDING_HEADER = (
    "Ticket",
    "Device",
    "Service",
    "Emails",
    "Action",
    "Bulk Scripting",
    "Send Email",
    "Requested by",
)


def onboarding_rows() -> list[tuple[str, ...]]:
    """A new team gets access. Rows repeat the same options on one device on purpose: the
    planner folds them into one `share` call, so 15 rows need far fewer mutations."""
    d1, d2, d3, d4, d5 = (device_id(i) for i in range(1, 6))
    s21, s22, s23, s43 = service_id(2, 1), service_id(2, 2), service_id(2, 3), service_id(4, 3)
    ann_bob, people = "ann@example.com, bob@example.com", "ann@example.com\nkate@example.com"
    # fmt: off
    return [
        ("OPS-101", d1, "", ann_bob, "ADD", "no", "yes", "Priya"),
        ("OPS-101", dashed(d1).lower(), "", "cat@example.com\ndan@example.com", "add", "No",
         "Yes", "Priya"),
        ("OPS-102", d1, "", "eve@example.com", "Share", "", "", "Priya"),
        ("OPS-103", d1, "", "ops-bot@example.com", "grant", "YES", "no", "Marco"),
        ("OPS-104", d2, s21, ann_bob, "ADD", "n", "y", "Marco"),
        ("OPS-104", d2, bare(s22), "ann@example.com; bob@example.com", "Add", "", "", "Marco"),
        ("OPS-104", d2, s23.lower(), "oscar@example.com", "add", "", "no", "Marco"),
        ("OPS-105", d3, "", "frank@example.com", "ADD", "false", "true", "Lena"),
        ("OPS-105", dashed(d3), "", "grace@example.com", "ADD", "FALSE", "TRUE", "Lena"),
        ("OPS-105", d3, "", "heidi@example.com", "add", "", "", "Lena"),
        ("OPS-106", d4, s43, "ivan@example.com", "share", "x", "", "Lena"),
        ("OPS-106", d4, dashed(s43), "judy@example.com", "SHARE", "X", "", "Lena"),
        ("OPS-107", d5, "", people + "\nleo@example.com", "ADD", "0", "1", "Priya"),
        ("OPS-107", f"  {d5} ", "", "nina@example.com", "add", "", "", "Priya"),
        ("OPS-108", bare(d5).lower(), "", "Mia@Example.com", "Add", "no", "yes", "Priya"),
    ]
    # fmt: on


# --- offboarding.csv -------------------------------------------------------------------------

OFFBOARDING_HEADER = ("device_id", "service_id", "user email", "action", "ticket", "reason")


def offboarding_rows() -> list[tuple[str, ...]]:
    """Access taken away, whole devices and single services, in every REMOVE spelling."""
    d1, d2, d3, d4, d5 = (device_id(i) for i in range(1, 6))
    s21, s22, s43 = service_id(2, 1), service_id(2, 2), service_id(4, 3)
    left, ended, moved, over = "left the company", "contract ended", "moved team", "project over"
    # fmt: off
    return [
        (d1, "", "bob@example.com", "REMOVE", "HR-201", left),
        (d5, "", "bob@example.com", "revoke", "HR-201", left),
        (d2, s21, "bob@example.com", "remove", "HR-201", left),
        (d2, s22, "bob@example.com", "Remove", "HR-201", left),
        (d1, "", "eve@example.com", "unshare", "HR-202", ended),
        (dashed(d3), "", "grace@example.com", "Revoke", "HR-203", moved),
        (d3, "", "heidi@example.com", "UNSHARE", "HR-203", moved),
        (d4, s43, "judy@example.com", "revoke", "HR-204", over),
        (d4, dashed(s43).lower(), "ivan@example.com", "revoke", "HR-204", over),
        (d5, "", "leo@example.com, kate@example.com", "remove", "HR-205", "internship over"),
    ]
    # fmt: on


# --- messy.csv -------------------------------------------------------------------------------

MESSY_HEADER = ("Device", "Service", "E-mail", "Action", "Scripting", "Notify", "why")


@dataclass(frozen=True, slots=True)
class Case:
    """One row of messy.csv and what batch-share should make of it."""

    device: str
    email: str
    why: str
    expect: str
    service: str = ""
    action: str = ""
    scripting: str = ""
    notify: str = ""

    def cells(self) -> tuple[str, ...]:
        return (
            self.device,
            self.service,
            self.email,
            self.action,
            self.scripting,
            self.notify,
            self.why,
        )


BLANK_ROW = Case("", "", "", "skipped")


def messy_cases() -> list[Case]:
    """Rows as they arrive from a real export; `expect` assumes the header on row 1 and
    counts one row per record, as a spreadsheet does."""
    d6, d7, d8, d9 = (device_id(i) for i in range(6, 10))
    return [
        Case(d6, "ann@example.com", "valid: whole-device share", "succeeded", action="add"),
        Case("", "bob@example.com", "no device ID at all", "invalid / missing-device-id"),
        Case(
            "80:00:00:00:01:00:00",
            "bob@example.com",
            "device ID one byte short",
            "invalid / invalid-device-id",
        ),
        Case(
            "8,00000000012346E+15",
            "bob@example.com",
            "ID the spreadsheet turned into a number (scientific notation)",
            "invalid / id-mangled",
        ),
        Case(
            "2024-01-05",
            "bob@example.com",
            "ID the spreadsheet turned into a date",
            "invalid / id-mangled",
        ),
        Case(
            "12:34:56",
            "bob@example.com",
            "ID the spreadsheet turned into a time",
            "invalid / id-mangled",
        ),
        Case(
            d6,
            "bob@example.com",
            "a service given by its name: looked up on the row's device",
            "succeeded (`plan` offline: not-run / name-not-resolved)",
            service="ssh",
        ),
        Case(d6, "", "nobody to share with", "invalid / missing-email"),
        Case(d6, "carol@example", "address without a domain ending", "invalid / invalid-email"),
        Case(
            d6,
            "dave@example.com",
            "an action batch-share does not know",
            "invalid / unknown-action",
            action="delete",
        ),
        Case(
            d6,
            "dave@example.com",
            "a yes/no column that says maybe",
            "invalid / invalid-boolean",
            scripting="maybe",
        ),
        Case(
            shared_device_id(1),
            ACCOUNT_EMAIL,
            "LEAVE gives up a whole device; it cannot name a service",
            "invalid / leave-with-service",
            service=shared_service_id(1, 1),
            action="leave",
        ),
        BLANK_ROW,
        Case(
            dashed(d7).lower(),
            "erin@example.com\nfrank@example.com",
            "valid: two addresses on two lines of one quoted cell; one report line each",
            "succeeded (2 lines)",
            action="Share",
            notify="no",
        ),
        Case(
            d7,
            "gina@example.com, not-an-email",
            "one good and one bad address: only the bad one is invalid",
            "succeeded + invalid / invalid-email",
        ),
        Case(
            d7,
            "henry@unregistered.example",
            "valid here, but the address has no remote.it account: the server refuses it",
            "failed (the server refuses the address)",
        ),
        Case(d8, "ivy@example.com", "conflict: added here...", "conflict / conflict"),
        Case(
            d8,
            "Ivy@Example.com",
            "...and removed here (emails compare case-insensitively)",
            "conflict / conflict",
            action="revoke",
        ),
        Case(
            d9,
            "jack@example.com",
            "valid: the original of a duplicate",
            "succeeded",
            scripting="yes",
        ),
        Case(
            dashed(d9),
            "jack@example.com",
            "duplicate: same request as the row above, written differently",
            "succeeded / duplicate of the row above",
            action="ADD",
            scripting="Y",
            notify="true",
        ),
        Case(
            shared_device_id(1),
            ACCOUNT_EMAIL,
            "valid: LEAVE a device someone shared with this account",
            "succeeded",
            action="LEAVE",
        ),
        Case(
            "8.00000000012346E+15",
            "kim@example",
            "several problems: the code is the first by column order, the message lists all",
            "invalid / id-mangled",
            action="drop",
        ),
    ]


# --- writers -----------------------------------------------------------------------------------


def write_csv(
    path: Path,
    header: tuple[str, ...],
    rows: list[tuple[str, ...]],
    *,
    delimiter: str = ",",
    bom: bool = False,
) -> None:
    """CSV as Excel writes it: CRLF records, quoted cells where needed."""
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_xlsx(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A workbook whose ID columns are formatted as Text, the way the README asks admins to
    keep them, so no cell is ever stored as a number."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Access requests"
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for column in ("B", "C"):
        for cell in sheet[column]:
            cell.number_format = "@"
    for column, width in zip("ABCDEFGH", (10, 26, 26, 36, 9, 15, 11, 14), strict=True):
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = "A2"
    workbook.properties.creator = "batch-share samples"
    workbook.properties.created = PINNED_TIME
    workbook.properties.modified = PINNED_TIME
    path.write_bytes(_pinned_zip(workbook))


def _pinned_zip(workbook: Workbook) -> bytes:
    """The workbook's bytes with every zip entry dated PINNED_TIME (openpyxl's own save
    stamps the current time into both the zip and the document properties)."""
    unpinned = io.BytesIO()
    with ZipFile(unpinned, "w", ZIP_DEFLATED) as archive:
        ExcelWriter(workbook, archive).write_data()
    pinned = io.BytesIO()
    with ZipFile(unpinned) as source, ZipFile(pinned, "w", ZIP_DEFLATED) as target:
        for info in source.infolist():
            entry = ZipInfo(info.filename, date_time=PINNED_TIME.timetuple()[:6])
            target.writestr(entry, source.read(info), compress_type=ZIP_DEFLATED)
    return pinned.getvalue()


# --- roster.csv ------------------------------------------------------------------------------

ROSTER_HEADER = ("Device Name", "Service", "Email", "Scripting")
# Who should have access, by the names people give devices. `demo.py` seeds the emulator
# with ROSTER_TODAY first, so `sync --dry-run` has a difference to show.
ROSTER = (
    ("Lobby Camera", "", "ann@example.com", "yes"),
    ("Lobby Camera", "", "bob@example.com", ""),
    ("Lobby Camera", "", "eve@example.com", ""),
    ("Front Desk PC", "ssh", "cat@example.com", ""),
    ("Front Desk PC", "", "fay@example.com", ""),
    ("Warehouse NAS", "", "dan@example.com", "yes"),
)
# (device number, email, scripting): today's whole-device access before the demo's sync.
ROSTER_TODAY = (
    (1, "ann@example.com", True),
    (1, "eve@example.com", False),
    (1, "old@example.com", False),
    (2, "cat@example.com", False),
    (2, "fay@example.com", False),
    (4, "dan@example.com", False),
)


# --- README ----------------------------------------------------------------------------------

README_INTRO = """\
# Sample sheets

Generated by `make_samples.py` (run `.venv/bin/python sample_sheets/make_samples.py`);
edit the script, not the files. Every device and service ID belongs to the emulator's
seeded fleet (`batch-share emulator`), and every `@example.com` address is a registered
emulator account; `@unregistered.example` addresses are not.

## onboarding.xlsx

A new team gets access: {onboarding_rows} rows over five devices, some shared whole and some
service by service. The sheet looks like one an admin keeps: a `Ticket` and a `Requested by`
column (carried into the report untouched), header names in the admin's own words
(`Device`, `Emails`, `Bulk Scripting`, `Send Email`), IDs written with dashes, in lower case,
without separators or with stray spaces, actions and yes/no values in mixed case, and cells
holding several addresses separated by `, `, `; ` or line breaks. The ID columns are
formatted as Text. Every row is valid and every request succeeds against the emulator.

Many rows ask for the same thing on the same device (for example rows 2-4: five people,
whole device 1, no scripting, notify), so the plan needs far fewer `share` mutations than
there are report lines; `batch-share plan sample_sheets/onboarding.xlsx` shows the counts.

## offboarding.csv

The nightly removal: {offboarding_rows} rows, every one a REMOVE, spelled `REMOVE`, `remove`,
`revoke` and `unshare` in several cases, for whole devices and for single services. Because
every valid row removes access, the safety guard refuses it by default (more than half of
the valid rows are removals); a job that means it runs it with `--allow-mass-removal`.

## roster.csv

A roster for `batch-share sync`: who should have access, with devices named the way people
know them (`Device Name` column) and one service by name. `make demo` seeds the emulator
with some access first (`ROSTER_TODAY` in `make_samples.py`) and shows the difference a sync
would make: old@example.com loses Lobby Camera, cat@example.com goes from the whole Front
Desk PC to its ssh service, dan@example.com gets scripting on Warehouse NAS, bob joins.

## messy.csv

What a real export can look like: UTF-8 with a byte-order mark, `;` as the delimiter (as a
European Excel writes it, which is also why its scientific notation uses a decimal comma),
a blank row, and a quoted cell spanning two lines. The `why` column says what each row shows;
the header is row 1, and rows count records, not physical lines, as a spreadsheet does.
Expected results are those of `batch-share run` against the emulator (`plan` stops before
the server, so row 17 cannot fail there).

| Row | What it shows | Expected status / code |
|---:|---|---|
"""


def readme(cases: list[Case], onboarding: int, offboarding: int) -> str:
    table = []
    for number, case in enumerate(cases, start=2):
        shows = case.why or "blank row: skipped, but it keeps its row number"
        expect = case.expect.replace("the row above", f"row {number - 1}")
        table.append(f"| {number} | {shows} | {expect} |")
    intro = README_INTRO.format(onboarding_rows=onboarding, offboarding_rows=offboarding)
    return intro + "\n".join(table) + "\n"


def main() -> None:
    onboarding = onboarding_rows()
    offboarding = offboarding_rows()
    cases = messy_cases()
    write_xlsx(HERE / "onboarding.xlsx", ONBOARDING_HEADER, onboarding)
    write_csv(HERE / "offboarding.csv", OFFBOARDING_HEADER, offboarding)
    write_csv(HERE / "roster.csv", ROSTER_HEADER, list(ROSTER))
    write_csv(
        HERE / "messy.csv",
        MESSY_HEADER,
        [case.cells() for case in cases],
        delimiter=";",
        bom=True,
    )
    (HERE / "README.md").write_text(
        readme(cases, len(onboarding), len(offboarding)), encoding="utf-8"
    )
    print(
        "wrote onboarding.xlsx, offboarding.csv, roster.csv, messy.csv and README.md in "
        f"{HERE.name}/"
    )


if __name__ == "__main__":
    main()
