"""`batch-share export` and `batch-share template` against the emulator over real HTTP.

Access is set up by sending real shares through the API, then read back by the command as
an admin would run it; rows are compared exactly.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from helpers import read_report, write_sheet
from openpyxl import load_workbook
from typer.testing import CliRunner, Result

from batch_share.cli import app
from batch_share.emulator import (
    ACCOUNT_EMAIL,
    SHARED_DEVICE_COUNT,
    ServerHandle,
    device_id,
    service_id,
    shared_device_id,
)
from batch_share.emulator.fleet import device_name
from batch_share.errors import BadResponseError
from batch_share.models import (
    Action,
    DeviceAccess,
    DeviceInfo,
    Mutation,
    ServiceChange,
    ServiceInfo,
)
from batch_share.pipeline import plan_sheet
from batch_share.report.roster import TEMPLATE_ROWS, roster_rows
from batch_share.send.account import (
    AccountAccess,
    list_devices,
    read_account,
)
from batch_share.send.auth import Credentials
from batch_share.send.client import GraphQLResponse, ShareClient

Invoke = Callable[..., Result]
HEADER = ["device_id", "device_name", "service_id", "service_name", "email", "scripting"]


def credentials(emulator: ServerHandle) -> Credentials:
    return Credentials(emulator.key_id, base64.b64decode(emulator.secret), "test credentials")


def grant(
    device: int,
    emails: tuple[str, ...],
    *,
    scripting: bool = False,
    services: tuple[int, ...] = (),
    action: Action = Action.ADD,
) -> Mutation:
    changes = tuple(ServiceChange(service_id(device, j), action) for j in services)
    return Mutation(
        id=f"m{device}",
        device_ids=(device_id(device),),
        emails=emails,
        action=action,
        scripting=scripting,
        notify=False,
        services=changes or None,
    )


def send(emulator: ServerHandle, *mutations: Mutation) -> None:
    async def go() -> None:
        async with ShareClient(emulator.url, credentials(emulator)) as client:
            results = await client.share(list(mutations))
        assert all(result.ok for result in results), results

    asyncio.run(go())


@pytest.fixture
def shared(emulator: ServerHandle) -> ServerHandle:
    """Devices 1-3 shared in every way an export must tell apart."""
    send(
        emulator,
        grant(1, ("ann@example.com",)),
        grant(1, ("Bob@Example.com",), scripting=True),
        # dave has the whole device and one service too: only the whole device is a share.
        grant(2, ("dave@example.com",)),
        grant(2, ("carol@example.com", "dave@example.com"), services=(1, 2)),
        grant(3, ("eve@example.com",), scripting=True),
    )
    emulator.state.counters.reset()  # what follows counts only its own requests
    return emulator


ANN = [device_id(1), device_name(1), "", "", "ann@example.com", "false"]
BOB = [device_id(1), device_name(1), "", "", "bob@example.com", "true"]
DAVE = [device_id(2), device_name(2), "", "", "dave@example.com", "false"]
CAROL_HTTP = [device_id(2), device_name(2), service_id(2, 2), "http", "carol@example.com", "false"]
CAROL_SSH = [device_id(2), device_name(2), service_id(2, 1), "ssh", "carol@example.com", "false"]
EVE = [device_id(3), device_name(3), "", "", "eve@example.com", "true"]
# By device name: "device-0003" < "Front Desk PC" < "Lobby Camera", whatever the case.
EXPECTED = [EVE, DAVE, CAROL_HTTP, CAROL_SSH, ANN, BOB]


@pytest.fixture
def invoke(emulator: ServerHandle, tmp_path: Path) -> Invoke:
    env: dict[str, str | None] = {
        "R3_ACCESS_KEY_ID": emulator.key_id,
        "R3_SECRET_ACCESS_KEY": emulator.secret,
        "REMOTEIT_API_URL": emulator.url,
        "R3_PROFILE": None,
        "BATCH_SHARE_STATE_DIR": str(tmp_path / "state"),
        "HOME": str(tmp_path),
    }

    def run(*args: str | Path, env_changes: dict[str, str | None] | None = None) -> Result:
        return CliRunner().invoke(app, [str(a) for a in args], env={**env, **(env_changes or {})})

    return run


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


# --- the read path ----------------------------------------------------------------------


def test_list_devices_pages_names_and_owners(emulator: ServerHandle) -> None:
    async def go() -> list[DeviceInfo]:
        async with ShareClient(emulator.url, credentials(emulator)) as client:
            return await list_devices(client, page_size=7)

    devices = asyncio.run(go())

    assert len(devices) == 50 + SHARED_DEVICE_COUNT
    assert len({device.id for device in devices}) == len(devices)
    first = next(device for device in devices if device.id == device_id(1))
    assert first == DeviceInfo(
        device_id(1),
        device_name(1),
        ACCOUNT_EMAIL,
        (
            ServiceInfo(service_id(1, 1), "ssh"),
            ServiceInfo(service_id(1, 2), "http"),
            ServiceInfo(service_id(1, 3), "vnc"),
        ),
    )
    partner = next(device for device in devices if device.id == shared_device_id(1))
    assert partner.owner == "partner@example.com"
    assert emulator.state.counters.requests == 8  # ceil(55 / 7)


def test_read_account_costs_one_request_per_page(shared: ServerHandle) -> None:
    async def go() -> AccountAccess:
        async with ShareClient(shared.url, credentials(shared)) as client:
            return await read_account(client)

    account = asyncio.run(go())

    assert account.email == ACCOUNT_EMAIL
    assert account.requests == shared.state.counters.requests == 1
    assert account.access[device_id(1)].device == {
        "ann@example.com": False,
        "bob@example.com": True,
    }


def test_read_account_asks_for_pages_at_once_and_keeps_the_apis_order(
    shared: ServerHandle,
) -> None:
    seen: list[tuple[int, int | None]] = []

    async def go() -> tuple[list[DeviceInfo], AccountAccess]:
        async with ShareClient(shared.url, credentials(shared)) as client:
            one_by_one = await list_devices(client, page_size=7, concurrency=1)
            shared.state.counters.requests = 0
            shared.state.faults.latency = 0.02  # long enough for answers to overlap
            account = await read_account(
                client, page_size=7, concurrency=4, on_progress=lambda *at: seen.append(at)
            )
            return one_by_one, account

    one_by_one, account = asyncio.run(go())

    assert [device.id for device in account.devices] == [device.id for device in one_by_one]
    assert account.requests == shared.state.counters.requests == 8  # ceil(55 / 7)
    assert account.access[device_id(1)].device == {
        "ann@example.com": False,
        "bob@example.com": True,
    }
    assert seen[-1] == (55, 55)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert shared.state.counters.peak_concurrency > 1


class OtherServer:
    """The real client and the real emulator, with what other servers do laid over them:
    a smaller largest page, one page cut short, a total that is wrong or missing."""

    def __init__(
        self,
        client: ShareClient,
        *,
        cap: int | None = None,
        short_at: int | None = None,
        total: int | str | None = "true",
    ) -> None:
        self.client, self.cap, self.short_at, self.total = client, cap, short_at, total

    async def execute(self, document: str, variables: Mapping[str, object]) -> GraphQLResponse:
        asked = dict(variables)
        size, start = asked.get("size"), asked.get("from")
        if isinstance(size, int):
            if self.cap is not None:
                size = min(size, self.cap)
            if start == self.short_at:
                size -= 3
            asked["size"] = size
        response = await self.client.execute(document, asked)
        login = response.data["login"] if response.data else None
        if self.total != "true" and isinstance(login, dict):
            login["devices"]["total"] = self.total
        return response


@pytest.mark.parametrize(
    ("quirks", "most_requests"),
    [
        ({"cap": 5}, 11),  # ceil(55 / 5)
        ({"short_at": 14}, 9 + 3),  # one page asked again, and what was in flight after it
        ({"total": None}, 8),  # one page at a time
        ({"total": 30}, 8),  # past the total, one page at a time
        ({"total": 5000}, 8 + 3),  # never more than 4 in flight past the end
    ],
    ids=["page-cap", "short-page", "no-total", "total-too-low", "total-too-high"],
)
def test_read_account_misses_no_device_whatever_the_server_pages_are(
    shared: ServerHandle, quirks: dict[str, Any], most_requests: int
) -> None:
    async def go() -> tuple[list[DeviceInfo], AccountAccess]:
        async with ShareClient(shared.url, credentials(shared)) as client:
            one_by_one = await list_devices(client, page_size=7, concurrency=1)
            account = await read_account(OtherServer(client, **quirks), page_size=7)
            return one_by_one, account

    one_by_one, account = asyncio.run(go())

    assert [device.id for device in account.devices] == [device.id for device in one_by_one]
    assert account.requests <= most_requests


def test_a_page_that_fails_fails_the_reading_with_its_own_error(shared: ServerHandle) -> None:
    def break_the_server(_done: int, _total: int | None) -> None:
        shared.state.faults.html_200 = True  # every page after the first

    async def go() -> AccountAccess:
        async with ShareClient(shared.url, credentials(shared)) as client:
            return await read_account(client, page_size=7, retries=0, on_progress=break_the_server)

    with pytest.raises(BadResponseError, match="not JSON"):
        asyncio.run(go())


def test_the_key_owners_own_access_is_left_out() -> None:
    device = DeviceInfo("D1", "kiosk", "me@example.com", (ServiceInfo("S1", "ssh"),))
    account = AccountAccess(
        email="me@example.com",
        devices=(device,),
        access={
            "D1": DeviceAccess(
                device={"me@example.com": True, "x@example.com": False},
                services={"S1": frozenset({"me@example.com", "x@example.com", "y@example.com"})},
            )
        },
        requests=1,
    )

    rows = [row.cells() for row in roster_rows(account)]

    assert rows == [
        ("D1", "kiosk", "", "", "x@example.com", "false"),
        ("D1", "kiosk", "S1", "ssh", "y@example.com", "false"),
    ]


# --- export -----------------------------------------------------------------------------


def test_export_csv_lists_every_share_the_admin_gave(
    shared: ServerHandle, invoke: Invoke, tmp_path: Path
) -> None:
    out = tmp_path / "access.csv"

    result = invoke("export", out, "--json")

    assert result.exit_code == 0, result.output
    assert csv_rows(out) == [HEADER, *EXPECTED]  # partner devices and the owner left out
    summary = json.loads(result.stdout)
    assert summary == {
        "command": "export",
        "output": str(out),
        "devices": 50,
        "rows": len(EXPECTED),
        "requests": 1,
        "elapsed": summary["elapsed"],
        "exit_code": 0,
    }
    assert shared.state.counters.share_calls == []


def test_export_jsonl(shared: ServerHandle, invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "access.jsonl"

    result = invoke("export", out, "--quiet")

    assert result.exit_code == 0, result.output
    assert result.output == ""
    lines = out.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        dict(zip(HEADER, row, strict=True)) for row in EXPECTED
    ]


def test_export_devices_limits_it_to_the_devices_a_sheet_names(
    shared: ServerHandle, invoke: Invoke, tmp_path: Path
) -> None:
    sheet = write_sheet(
        tmp_path / "which.csv",
        [
            [device_id(3), "", "x@example.com", "", "", "", ""],
            [device_id(1), "", "y@example.com", "", "", "", ""],
            [shared_device_id(1), "", "z@example.com", "", "", "", ""],
            ["8.00000000012346E+15", "", "w@example.com", "", "", "", ""],
        ],
    )
    out = tmp_path / "some.csv"

    result = invoke("export", out, "--devices", sheet, "--json")

    assert result.exit_code == 0, result.output
    assert csv_rows(out) == [HEADER, EVE, ANN, BOB]
    assert json.loads(result.stdout)["requests"] == 1


def test_export_xlsx_keeps_ids_as_text_and_offers_the_values(
    shared: ServerHandle, invoke: Invoke, tmp_path: Path
) -> None:
    out = tmp_path / "access.xlsx"

    result = invoke("export", out)

    assert result.exit_code == 0, result.output
    workbook = load_workbook(out)
    assert workbook.sheetnames == ["Roster", "Columns"]
    sheet = workbook["Roster"]
    rows = [[cell or "" for cell in row] for row in sheet.iter_rows(values_only=True)]
    assert rows == [HEADER, *EXPECTED]
    for letter in "AC":  # device_id, service_id: the whole column, and every cell written
        assert sheet.column_dimensions[letter].number_format == "@"
        written = [sheet[f"{letter}{n}"] for n in range(2, 8) if sheet[f"{letter}{n}"].value]
        assert written
        assert {cell.number_format for cell in written} == {"@"}
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:F7"
    validations = {str(v.sqref): v for v in sheet.data_validations.dataValidation}
    assert set(validations) == {"F2:F1048576"}
    assert validations["F2:F1048576"].formula1 == '"true,false"'
    assert validations["F2:F1048576"].showErrorMessage
    notes = list(workbook["Columns"].iter_rows(values_only=True))
    assert [row[0] for row in notes] == ["column", *HEADER]
    assert all(row[1] for row in notes)
    # and the loader reads it back as the same shares
    planned = plan_sheet(out)
    assert planned.lines.valid.all()
    assert [planned.lines.intent(n).device_id for n in range(len(planned.lines))] == [
        row[0] for row in EXPECTED
    ]


def test_export_refuses_what_it_cannot_do(
    emulator: ServerHandle, invoke: Invoke, tmp_path: Path
) -> None:
    bad_extension = invoke("export", tmp_path / "access.txt")
    no_key = invoke(
        "export",
        tmp_path / "a.csv",
        env_changes={"R3_ACCESS_KEY_ID": None, "R3_SECRET_ACCESS_KEY": None},
    )
    wrong_key = invoke(
        "export",
        tmp_path / "b.csv",
        env_changes={"R3_SECRET_ACCESS_KEY": base64.b64encode(b"not the key").decode()},
    )
    plain_http = invoke("export", tmp_path / "c.csv", "--api-url", "http://example.com/graphql")

    assert bad_extension.exit_code == 2
    assert "unknown format" in bad_extension.output
    assert no_key.exit_code == 2
    assert wrong_key.exit_code == 3
    assert plain_http.exit_code == 2
    assert not list(tmp_path.glob("*.csv"))


# --- template ---------------------------------------------------------------------------


def test_the_template_examples_are_the_emulators_seeded_ids() -> None:
    assert (TEMPLATE_ROWS[0][0], TEMPLATE_ROWS[1][0], TEMPLATE_ROWS[1][1]) == (
        device_id(1),
        device_id(2),
        service_id(2, 1),
    )


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_an_untouched_template_plans_cleanly(invoke: Invoke, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"new{suffix}"

    written = invoke("template", out)
    planned = invoke("plan", out)

    assert written.exit_code == 0, written.output
    assert planned.exit_code == 0, planned.output
    assert "2 lines" in planned.output


def test_template_xlsx_layout(invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "new.xlsx"

    assert invoke("template", out).exit_code == 0

    workbook = load_workbook(out)
    assert workbook.sheetnames == ["Sheet", "Columns"]
    sheet = workbook["Sheet"]
    header = [cell.value for cell in sheet[1]]
    assert header == ["device_id", "service_id", "email", "action", "scripting", "notify"]
    assert [row[3] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["ADD", "REMOVE"]
    assert sheet.column_dimensions["A"].number_format == "@"
    assert sheet.column_dimensions["B"].number_format == "@"
    validations = {str(v.sqref): v.formula1 for v in sheet.data_validations.dataValidation}
    assert validations == {
        "D2:D1048576": '"ADD,REMOVE,LEAVE"',
        "E2:E1048576": '"true,false"',
        "F2:F1048576": '"true,false"',
    }
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:F3"
    notes = list(workbook["Columns"].iter_rows(values_only=True))
    assert [row[0] for row in notes] == ["column", *header]


def test_template_does_not_overwrite_a_sheet_unless_forced(invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "mine.csv"
    out.write_text("device_id,email\n", encoding="utf-8")

    refused = invoke("template", out)
    forced = invoke("template", out, "--force")

    assert refused.exit_code == 2
    assert "already exists" in refused.output
    assert forced.exit_code == 0
    assert len(read_report(out)) == 2


# --- the round trip with sync (SPEC: Export and template) ---------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_sync_of_an_unedited_export_sends_nothing(
    shared: ServerHandle, invoke: Invoke, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"access{suffix}"
    assert invoke("export", out).exit_code == 0

    result = invoke("sync", out, "--report", tmp_path / "report.csv")

    assert result.exit_code == 0, result.output
    assert shared.state.counters.share_calls == []
    report = read_report(tmp_path / "report.csv")
    assert len(report) == len(EXPECTED)
    assert {(line["status"], line["code"]) for line in report} == {("succeeded", "unchanged")}


def _edit(path: Path, change: Callable[[list[list[str]]], None]) -> None:
    """Edit an export the way a person would: in its own format, keeping the rest."""
    if path.suffix == ".csv":
        rows = csv_rows(path)
        change(rows)
        with path.open("w", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerows(rows)
        return
    workbook = load_workbook(path)
    sheet = workbook.worksheets[0]
    rows = [[cell or "" for cell in row] for row in sheet.iter_rows(values_only=True)]
    change(rows)
    sheet.delete_rows(1, sheet.max_row)
    for row in rows:
        sheet.append(row)
    workbook.save(path)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_deleting_a_row_then_syncing_removes_exactly_that_access(
    shared: ServerHandle, invoke: Invoke, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"access{suffix}"
    assert invoke("export", out).exit_code == 0
    _edit(out, lambda rows: rows.remove(CAROL_SSH))  # carol's ssh on device 2

    result = invoke("sync", out, "--report", tmp_path / "report.csv")

    assert result.exit_code == 0, result.output
    state = shared.state
    assert state.service_access(service_id(2, 1)) == {"dave@example.com"}
    assert state.service_access(service_id(2, 2)) == {"carol@example.com", "dave@example.com"}
    assert state.access(device_id(1)) == {"ann@example.com": False, "bob@example.com": True}
    assert state.access(device_id(2)) == {"dave@example.com": False}
    assert state.access(device_id(3)) == {"eve@example.com": True}
    calls = state.counters.share_calls
    assert [(c.device_ids, c.emails, c.action, c.services) for c in calls] == [
        ((device_id(2),), ("carol@example.com",), "REMOVE", ((service_id(2, 1), "REMOVE"),))
    ]
    removals = [line for line in read_report(tmp_path / "report.csv") if line["row"] == ""]
    assert [(line["email"], line["action"], line["message"]) for line in removals] == [
        ("carol@example.com", "REMOVE", "not in sheet")
    ]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_changing_scripting_then_syncing_changes_exactly_that_share(
    shared: ServerHandle, invoke: Invoke, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"access{suffix}"
    assert invoke("export", out).exit_code == 0

    def flip(rows: list[list[str]]) -> None:
        rows[rows.index(ANN)][5] = "true"  # ann on device 1

    _edit(out, flip)

    result = invoke("sync", out, "--report", tmp_path / "report.csv")

    assert result.exit_code == 0, result.output
    state = shared.state
    assert state.access(device_id(1)) == {"ann@example.com": True, "bob@example.com": True}
    assert state.access(device_id(3)) == {"eve@example.com": True}
    calls = state.counters.share_calls
    assert [(c.device_ids, c.emails, c.action, c.services) for c in calls] == [
        ((device_id(1),), ("ann@example.com",), "ADD", None)
    ]
