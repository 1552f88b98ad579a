"""Devices and services by name, against the emulator over real HTTP: exact and
case-insensitive matches, unknown names with suggestions, ambiguous names with their IDs,
service names on their device, LEAVE among shared devices, and reports that rerun without
another lookup."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import read_report, write_sheet
from typer.testing import CliRunner, Result

from batch_share.cli import app
from batch_share.emulator import (
    ACCOUNT_EMAIL,
    ServerHandle,
    device_id,
    service_id,
    shared_device_id,
)

Invoke = Callable[..., Result]
HEADER = ["device", "service", "email", "action"]
GATEWAYS = (device_id(25), device_id(50))  # the fleet names every 25th device "Gateway"


@pytest.fixture
def invoke(emulator: ServerHandle, tmp_path: Path) -> Invoke:
    env = {
        "R3_ACCESS_KEY_ID": emulator.key_id,
        "R3_SECRET_ACCESS_KEY": emulator.secret,
        "REMOTEIT_API_URL": emulator.url,
        "BATCH_SHARE_STATE_DIR": str(tmp_path / "state"),
    }

    def run(*args: str | Path) -> Result:
        return CliRunner().invoke(app, [str(arg) for arg in args], env=env)

    return run


def sheet(tmp_path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    return write_sheet(tmp_path / "names.csv", rows, header=header)


def by_row(report: Path) -> dict[str, dict[str, str]]:
    return {line["row"]: line for line in read_report(report)}


def test_names_resolve_exactly_and_case_insensitively(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    path = sheet(
        tmp_path,
        [
            ["Lobby Camera", "", "ann@example.com", ""],
            ["  FRONT desk pc ", "", "bob@example.com", ""],
            [device_id(4), "HTTP", "cat@example.com", ""],
            ["lobby camera", "vnc", "dan@example.com", ""],
        ],
    )

    result = invoke("run", path, "--report", tmp_path / "out.csv")

    assert result.exit_code == 0, result.output
    assert emulator.state.access(device_id(1)) == {"ann@example.com": False}
    assert emulator.state.access(device_id(2)) == {"bob@example.com": False}
    assert emulator.state.service_grants(service_id(4, 2)) == {"cat@example.com"}
    assert emulator.state.service_grants(service_id(1, 3)) == {"dan@example.com"}
    rows = by_row(tmp_path / "out.csv")
    # The report keeps the IDs it resolved and the names as typed, after `mutation`.
    assert (rows["2"]["device_id"], rows["2"]["device_name"]) == (device_id(1), "Lobby Camera")
    assert (rows["4"]["service_id"], rows["4"]["service_name"]) == (service_id(4, 2), "HTTP")
    header = list(read_report(tmp_path / "out.csv")[0])
    assert header[header.index("mutation") + 1 : header.index("mutation") + 3] == [
        "device_name",
        "service_name",
    ]


def test_an_unknown_name_suggests_the_closest_and_an_ambiguous_one_lists_candidates(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    path = sheet(
        tmp_path,
        [
            ["Lobby Camra", "", "ann@example.com", ""],
            ["Gateway", "", "bob@example.com", ""],
            [device_id(25), "ssh", "cat@example.com", ""],
            [device_id(1), "telnet", "dan@example.com", ""],
            ["Build Server", "", "eve@example.com", ""],
        ],
    )

    result = invoke("run", path, "--report", tmp_path / "out.csv")

    assert result.exit_code == 1, result.output
    rows = by_row(tmp_path / "out.csv")
    assert rows["2"]["code"] == "unknown-device-name"
    assert "did you mean 'Lobby Camera'" in rows["2"]["message"]
    assert rows["3"]["code"] == "ambiguous-device-name"
    assert all(gateway in rows["3"]["message"] for gateway in GATEWAYS)
    assert rows["4"]["code"] == "ambiguous-service-name"
    assert service_id(25, 1) in rows["4"]["message"]
    assert service_id(25, 2) in rows["4"]["message"]
    assert rows["5"]["code"] == "unknown-service-name"
    assert rows["6"]["status"] == "succeeded"
    assert "row 2, device_id: unknown-device-name" in result.output
    for gateway in GATEWAYS:
        assert emulator.state.access(gateway) == {}


def test_leave_resolves_among_devices_shared_with_the_key(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    path = sheet(
        tmp_path,
        [
            ["partner-device-2", "", ACCOUNT_EMAIL, "leave"],
            # An owned device's name is not a device shared with the key.
            ["Lobby Camera", "", ACCOUNT_EMAIL, "leave"],
        ],
    )

    result = invoke("run", path, "--report", tmp_path / "out.csv")

    rows = by_row(tmp_path / "out.csv")
    assert result.exit_code == 1
    assert rows["2"]["status"] == "succeeded"
    assert ACCOUNT_EMAIL not in emulator.state.access(shared_device_id(2))
    assert rows["3"]["code"] == "unknown-device-name"
    assert "shared with you" in rows["3"]["message"]


def test_plan_counts_named_rows_offline_and_resolves_them_with_resolve(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    path = sheet(tmp_path, [["Lobby Camera", "", "ann@example.com", ""]])

    offline = invoke("plan", path, "--json")
    resolved = invoke("plan", path, "--resolve", "--json", "--report", tmp_path / "plan.csv")

    assert offline.exit_code == 0, offline.output
    assert '"named_rows": 1' in offline.output
    assert '"mutations": 0' in offline.output
    assert resolved.exit_code == 0, resolved.output
    assert '"mutations": 1' in resolved.output
    assert by_row(tmp_path / "plan.csv")["2"]["device_id"] == device_id(1)
    # Read-only: the account was asked, nothing was shared.
    assert emulator.state.counters.share_fields == 0
    assert emulator.state.counters.requests == 2


def test_a_report_of_named_rows_reruns_without_another_lookup(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.faults.failing_devices = {device_id(2)}
    path = sheet(
        tmp_path,
        [["Lobby Camera", "", "ann@example.com", ""], ["Front Desk PC", "", "bob@example.com", ""]],
    )
    first = invoke("run", path, "--report", tmp_path / "first.csv")
    emulator.state.faults.failing_devices = set()
    emulator.state.counters.reset()

    retry = invoke(
        "run", tmp_path / "first.csv", "--only", "failed", "--report", tmp_path / "retry.csv"
    )

    assert first.exit_code == 1
    assert retry.exit_code == 0, retry.output
    # One request: the share itself, no `whoami` and no device listing.
    assert emulator.state.counters.requests == 1
    assert emulator.state.access(device_id(2)) == {"bob@example.com": False}
    assert by_row(tmp_path / "retry.csv")["3"]["device_name"] == "Front Desk PC"


def test_the_messy_samples_service_name_is_a_working_row(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    samples = Path(__file__).resolve().parent.parent / "sample_sheets"

    invoke("run", samples / "messy.csv", "--report", tmp_path / "out.csv")

    row = by_row(tmp_path / "out.csv")["8"]
    assert (row["status"], row["service_id"], row["service_name"]) == (
        "succeeded",
        service_id(6, 1),
        "ssh",
    )
    assert "bob@example.com" in emulator.state.service_grants(service_id(6, 1))


def test_sync_by_name_with_a_name_column(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.grant(device_id(1), "old@example.com")
    path = sheet(
        tmp_path,
        [["Lobby Camera", "ann@example.com"], ["Lobby Camera", "old@example.com"]],
        header=["Device Name", "Email"],
    )

    result = invoke("sync", path, "--report", tmp_path / "out.csv")

    assert result.exit_code == 0, result.output
    assert emulator.state.access(device_id(1)) == {
        "ann@example.com": False,
        "old@example.com": False,
    }
    assert [line["code"] for line in read_report(tmp_path / "out.csv")] == ["", "unchanged"]


def test_names_that_disagree_are_refused_before_the_account_is_asked(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    path = sheet(
        tmp_path,
        [
            ["Lobby Camera", "Front Desk PC", "ann@example.com"],
            [device_id(3), "", "bob@example.com"],
        ],
        header=["device_id", "device_name", "email"],
    )

    result = invoke("plan", path)

    assert result.exit_code == 1
    assert "row 2, device_id: name-mismatch" in result.output
    assert emulator.state.counters.requests == 0
