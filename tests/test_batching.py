"""Fewer round trips: many mutations per request, and opt-in cross-device batching.

Each test runs the real CLI against the emulator over HTTP and compares what the admin
sees (the report, the exit code) and what the server holds (the emulator's state).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import read_report, write_sheet
from typer.testing import CliRunner

from batch_share.cli import app
from batch_share.emulator import ServerHandle
from batch_share.emulator.fleet import device_id

DEVICES = 50  # the shared emulator fixture seeds 50 devices
ROWS_PER_DEVICE = 10
HEADER = ["device_id", "email", "action", "scripting", "notify", "ticket"]


def mixed_options_rows() -> list[list[str]]:
    """2,000 rows over 200 devices whose options vary, so each device needs several calls."""
    rows = []
    for d in range(1, DEVICES + 1):
        for r in range(ROWS_PER_DEVICE):
            scripting = "yes" if r % 4 == 0 else "no"
            notify = "no" if r % 3 == 0 else "yes"
            rows.append([device_id(d), f"u{r}@example.com", "ADD", scripting, notify, f"T{d}-{r}"])
    return rows


def run_cli(
    emulator: ServerHandle, tmp_path: Path, sheet: Path, report: Path, *extra: str
) -> tuple[int, dict[str, object]]:
    env = {
        "R3_ACCESS_KEY_ID": emulator.key_id,
        "R3_SECRET_ACCESS_KEY": emulator.secret,
        "REMOTEIT_API_URL": emulator.url,
        "BATCH_SHARE_STATE_DIR": str(tmp_path / "state"),
    }
    args = ["run", str(sheet), "--report", str(report), "--json", "--rate", "1000", *extra]
    result = CliRunner().invoke(app, args, env=env)
    return result.exit_code, json.loads(result.stdout)


def shares(emulator: ServerHandle) -> dict[str, dict[str, bool]]:
    return {device_id(d): emulator.state.access(device_id(d)) for d in range(1, DEVICES + 1)}


def test_packing_needs_a_tenth_of_the_requests_and_reports_the_same(
    emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path / "mixed.csv", mixed_options_rows(), HEADER)

    code, packed = run_cli(emulator, tmp_path, sheet, tmp_path / "packed.csv")
    packed_state = shares(emulator)
    emulator.state.reset()
    one_code, single = run_cli(
        emulator, tmp_path, sheet, tmp_path / "single.csv", "--per-request", "1"
    )

    assert code == one_code == 0
    assert packed["mutations"] == single["mutations"] == DEVICES * 4
    assert single["http_requests"] == single["mutations"]
    assert isinstance(packed["http_requests"], int)
    assert packed["http_requests"] * 10 <= single["mutations"]
    # The admin sees the same report either way: same statuses, same mutation names.
    assert read_report(tmp_path / "packed.csv") == read_report(tmp_path / "single.csv")
    assert packed_state == shares(emulator)
    assert all(len(access) == ROWS_PER_DEVICE for access in packed_state.values())


@pytest.mark.parametrize("per_request", ["1", "20"])
def test_per_request_does_not_change_failure_attribution(
    emulator: ServerHandle, tmp_path: Path, per_request: str
) -> None:
    rows = [
        [device_id(1), "a@example.com, b@unregistered.example, c@example.com", "ADD", "", "", "T1"],
        [device_id(2), "a@example.com", "ADD", "", "", "T2"],
        [device_id(3), "a@example.com, c@example.com", "ADD", "", "", "T3"],
    ]
    emulator.state.faults.failing_devices = {device_id(2)}
    sheet = write_sheet(tmp_path / "s.csv", rows, HEADER)

    code, _ = run_cli(emulator, tmp_path, sheet, tmp_path / "r.csv", "--per-request", per_request)

    lines = read_report(tmp_path / "r.csv")
    status = {(line["device_id"], line["email"]): line["status"] for line in lines}
    assert code == 1
    assert status == {
        (device_id(1), "a@example.com"): "succeeded",
        (device_id(1), "b@unregistered.example"): "failed",
        (device_id(1), "c@example.com"): "succeeded",
        (device_id(2), "a@example.com"): "failed",
        (device_id(3), "a@example.com"): "succeeded",
        (device_id(3), "c@example.com"): "succeeded",
    }
    refused = next(line for line in lines if line["email"] == "b@unregistered.example")
    assert "b@unregistered.example" in refused["message"]
    assert emulator.state.access(device_id(1)).keys() == {"a@example.com", "c@example.com"}
    assert emulator.state.access(device_id(2)) == {}


def test_cross_device_batching_attributes_a_failing_device(
    emulator: ServerHandle, tmp_path: Path
) -> None:
    team = "ann@example.com, bob@example.com"
    rows = [[device_id(d), team, "ADD", "", "", f"T{d}"] for d in range(1, 6)]
    emulator.state.faults.failing_devices = {device_id(3)}
    sheet = write_sheet(tmp_path / "team.csv", rows, HEADER)

    code, summary = run_cli(emulator, tmp_path, sheet, tmp_path / "r.csv", "--cross-device")

    lines = read_report(tmp_path / "r.csv")
    assert code == 1
    assert summary["mutations"] == 1
    assert {line["mutation"] for line in lines} == {"M0001"}
    failed = {(line["device_id"], line["email"]) for line in lines if line["status"] == "failed"}
    assert failed == {(device_id(3), "ann@example.com"), (device_id(3), "bob@example.com")}
    assert all(device_id(3) in line["message"] for line in lines if line["status"] == "failed")
    for d in (1, 2, 4, 5):
        assert emulator.state.access(device_id(d)).keys() == {"ann@example.com", "bob@example.com"}
    assert emulator.state.access(device_id(3)) == {}
