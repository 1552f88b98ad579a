"""`batch-share sync` against the emulator over real HTTP: the roster becomes the account's
state exactly, and nothing else is touched or sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Invoke, read_report, write_sheet

from batch_share.emulator import ACCOUNT_EMAIL, ServerHandle, device_id, service_id

HEADER = ["device_id", "service_id", "email", "scripting", "action"]


def roster(tmp_path: Path, rows: list[list[str]], name: str = "roster.csv") -> Path:
    return write_sheet(tmp_path / name, rows, header=HEADER)


def share_fields(emulator: ServerHandle) -> list[tuple[str, tuple[str, ...], str, object]]:
    """Every share the emulator executed: (device, emails, action, services)."""
    return [
        (call.device_ids[0], call.emails, call.action, call.services)
        for call in emulator.state.counters.share_calls
    ]


def test_a_roster_becomes_the_exact_state_and_only_the_difference_is_sent(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    state = emulator.state
    d1, d2, d3 = device_id(1), device_id(2), device_id(3)
    s11, s12 = service_id(1, 1), service_id(1, 2)
    state.grant(d1, "ann@example.com", scripting=True)  # kept as is
    state.grant(d1, "bob@example.com")  # whole device today, only one service tomorrow
    state.grant(d1, "cat@example.com", service_id=s11)  # service share kept
    state.grant(d1, "gus@example.com", service_id=s12)  # service share nobody listed
    state.grant(d2, "old@example.com")  # whole device nobody listed
    state.grant(d2, "sam@example.com", scripting=False)  # scripting changes
    state.grant(d3, "out@example.com")  # a device the sheet does not name: untouched
    sheet = roster(
        tmp_path,
        [
            [d1, "", "ann@example.com", "yes", ""],
            [d1, s12, "bob@example.com", "", ""],
            [d1, s11, "cat@example.com", "", "add"],
            [d1, "", "dan@example.com", "", ""],
            [d2, "", "sam@example.com", "yes", ""],
            [d2, "", "eve@example.com", "", ""],
        ],
    )

    result = invoke("sync", sheet, "--report", tmp_path / "out.csv", "--json")

    assert result.exit_code == 0, result.output
    assert state.access(d1) == {"ann@example.com": True, "dan@example.com": False}
    assert state.service_grants(s11) == {"cat@example.com"}
    assert state.service_grants(s12) == {"bob@example.com"}
    assert state.access(d2) == {"sam@example.com": True, "eve@example.com": False}
    assert state.access(d3) == {"out@example.com": False}
    # Only the difference went out: two unchanged lines were not sent.
    sent = share_fields(emulator)
    assert sorted((device, emails, action) for device, emails, action, _ in sent) == sorted(
        [
            (d1, ("bob@example.com",), "REMOVE"),
            (d1, ("gus@example.com",), "REMOVE"),
            (d2, ("old@example.com",), "REMOVE"),
            (d1, ("bob@example.com",), "ADD"),
            (d1, ("dan@example.com",), "ADD"),
            (d2, ("eve@example.com",), "ADD"),
            (d2, ("sam@example.com",), "ADD"),
        ]
    )
    rows = read_report(tmp_path / "out.csv")
    assert [(r["row"], r["email"], r["status"], r["code"]) for r in rows] == [
        ("2", "ann@example.com", "succeeded", "unchanged"),
        ("3", "bob@example.com", "succeeded", ""),
        ("4", "cat@example.com", "succeeded", "unchanged"),
        ("5", "dan@example.com", "succeeded", ""),
        ("6", "sam@example.com", "succeeded", ""),
        ("7", "eve@example.com", "succeeded", ""),
        ("", "bob@example.com", "succeeded", ""),
        ("", "gus@example.com", "succeeded", ""),
        ("", "old@example.com", "succeeded", ""),
    ]
    removals = [r for r in rows if not r["row"]]
    assert {r["action"] for r in removals} == {"REMOVE"}
    assert {r["message"] for r in removals} == {"not in sheet"}
    assert [r["service_id"] for r in removals] == ["", s12, ""]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["current_shares"] == 6
    assert summary["unchanged"] == 2


def test_a_second_sync_of_the_same_roster_sends_nothing(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = roster(tmp_path, [[device_id(1), "", "ann@example.com", "", ""]])
    assert invoke("sync", sheet, "--report", tmp_path / "first.csv").exit_code == 0
    emulator.state.counters.reset()

    result = invoke("sync", sheet, "--report", tmp_path / "second.csv")

    assert result.exit_code == 0, result.output
    assert emulator.state.counters.share_fields == 0
    assert [r["code"] for r in read_report(tmp_path / "second.csv")] == ["unchanged"]


def test_the_key_owner_is_never_removed(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.grant(device_id(1), ACCOUNT_EMAIL)
    emulator.state.grant(device_id(1), "old@example.com")
    sheet = roster(tmp_path, [[device_id(1), "", "ann@example.com", "", ""]])

    result = invoke("sync", sheet, "--allow-mass-removal", "--report", tmp_path / "out.csv")

    assert result.exit_code == 0, result.output
    assert set(emulator.state.access(device_id(1))) == {ACCOUNT_EMAIL, "ann@example.com"}


def test_a_device_with_an_unclear_row_gets_its_additions_but_keeps_its_access(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.grant(device_id(1), "old@example.com")
    emulator.state.grant(device_id(2), "old@example.com")
    sheet = roster(
        tmp_path,
        [
            [device_id(1), "", "ann@example.com", "", ""],
            [device_id(1), "", "not-an-address", "", ""],
            [device_id(2), "", "ann@example.com", "", ""],
        ],
    )

    result = invoke("sync", sheet, "--report", tmp_path / "out.csv")

    assert result.exit_code == 1, result.output
    assert emulator.state.access(device_id(1)) == {
        "old@example.com": False,
        "ann@example.com": False,
    }
    assert emulator.state.access(device_id(2)) == {"ann@example.com": False}
    held = [r for r in read_report(tmp_path / "out.csv") if r["code"] == "unclear-device"]
    assert [(r["device_id"], r["email"], r["status"]) for r in held] == [
        (device_id(1), "old@example.com", "not-run")
    ]


def test_a_conflicting_roster_row_holds_the_devices_removals(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.grant(device_id(1), "old@example.com")
    sheet = roster(
        tmp_path,
        [
            [device_id(1), "", "ann@example.com", "yes", ""],
            [device_id(1), "", "ann@example.com", "no", ""],
        ],
    )

    result = invoke("sync", sheet, "--report", tmp_path / "out.csv")

    assert result.exit_code == 1
    assert emulator.state.access(device_id(1)) == {"old@example.com": False}
    codes = [r["code"] for r in read_report(tmp_path / "out.csv")]
    assert codes == ["conflict", "conflict", "unclear-device"]


def test_remove_and_leave_rows_are_invalid_in_a_sync(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.grant(device_id(1), "bob@example.com")
    sheet = roster(
        tmp_path,
        [
            [device_id(1), "", "ann@example.com", "", ""],
            [device_id(1), "", "bob@example.com", "", "remove"],
        ],
    )

    result = invoke("sync", sheet, "--report", tmp_path / "out.csv")

    rows = read_report(tmp_path / "out.csv")
    assert result.exit_code == 1
    assert [r["code"] for r in rows] == ["", "action-in-sync", "unclear-device"]
    assert rows[1]["action"] == "remove"  # as typed, so a replay fails it again
    assert "bob@example.com" in emulator.state.access(device_id(1))
    assert "action-in-sync" in result.output


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param([], id="no data rows"),
        pytest.param([[device_id(1), "", "not-an-address", "", ""]], id="no valid row"),
        pytest.param([["80:00:00", "", "ann@example.com", "", ""]], id="no device"),
    ],
)
def test_an_empty_or_broken_roster_is_refused_before_anything_is_read(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path, rows: list[list[str]]
) -> None:
    emulator.state.grant(device_id(1), "old@example.com")

    result = invoke("sync", roster(tmp_path, rows), "--report", tmp_path / "out.csv")

    assert result.exit_code == 4, result.output
    assert emulator.state.counters.requests == 0
    assert emulator.state.access(device_id(1)) == {"old@example.com": False}


def test_dry_run_reads_prints_the_difference_and_sends_no_share(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.grant(device_id(1), "old@example.com")
    emulator.state.grant(device_id(1), "ann@example.com")
    sheet = roster(
        tmp_path,
        [
            [device_id(1), "", "ann@example.com", "", ""],
            [device_id(1), "", "new@example.com", "yes", ""],
        ],
    )

    result = invoke("sync", sheet, "--dry-run", "--report", tmp_path / "out.csv")

    assert result.exit_code == 0, result.output
    assert emulator.state.counters.share_fields == 0
    # One read: the device's access, and in the same request whose key this is.
    assert emulator.state.counters.requests == 1
    assert f"{device_id(1)}:" in result.output
    assert "  + new@example.com (scripting)" in result.output
    assert "  - old@example.com" in result.output
    assert "  = 1 unchanged" in result.output
    assert "difference: 1 to add, 1 to remove, 1 unchanged on 1 devices" in result.output
    rows = read_report(tmp_path / "out.csv")
    assert [(r["status"], r["code"]) for r in rows] == [
        ("succeeded", "unchanged"),
        ("not-run", "planned"),
        ("not-run", "planned"),
    ]


def test_scope_account_removes_access_on_devices_the_sheet_does_not_name(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    for i in (1, 2, 3):
        emulator.state.grant(device_id(i), "ann@example.com")
    emulator.state.grant(device_id(4), "bob@example.com")
    sheet = roster(tmp_path, [[device_id(1), "", "ann@example.com", "", ""]])

    by_sheet = invoke("sync", sheet, "--dry-run", "--report", tmp_path / "sheet.csv")
    by_account = invoke(
        "sync", sheet, "--scope", "account", "--allow-mass-removal", "--report", tmp_path / "a.csv"
    )

    assert by_sheet.exit_code == 0
    assert [r["code"] for r in read_report(tmp_path / "sheet.csv")] == ["unchanged"]
    assert by_account.exit_code == 0, by_account.output
    assert emulator.state.access(device_id(1)) == {"ann@example.com": False}
    for i in (2, 3, 4):
        assert emulator.state.access(device_id(i)) == {}
    # Devices shared *with* the account are not its to sync.
    assert ACCOUNT_EMAIL in emulator.state.access("80:00:00:00:02:00:00:01")


def test_the_brake_counts_against_todays_access(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    for i in (1, 2, 3):
        emulator.state.grant(device_id(i), "ann@example.com")
    sheet = roster(tmp_path, [[device_id(1), "", "ann@example.com", "", ""]])

    result = invoke("sync", sheet, "--scope", "account", "--report", tmp_path / "out.csv")

    assert result.exit_code == 4, result.output
    assert "of today's 3 shares on the devices in scope" in result.output
    assert emulator.state.counters.share_fields == 0
    assert all(emulator.state.access(device_id(i)) for i in (1, 2, 3))
    rows = read_report(tmp_path / "out.csv")
    assert {r["code"] for r in rows if not r["row"]} == {"guard-refused"}


def test_max_removals_caps_a_sync(invoke: Invoke, emulator: ServerHandle, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        emulator.state.grant(device_id(1), f"{name}@example.com")
    emulator.state.grant(device_id(1), "ann@example.com")
    sheet = roster(tmp_path, [[device_id(1), "", "ann@example.com", "", ""]])

    refused = invoke(
        "sync",
        sheet,
        "--max-removals",
        "2",
        "--max-removal-fraction",
        "1",
        "--report",
        tmp_path / "1.csv",
    )
    allowed = invoke(
        "sync",
        sheet,
        "--max-removals",
        "3",
        "--max-removal-fraction",
        "1",
        "--report",
        tmp_path / "2.csv",
    )

    assert refused.exit_code == 4
    assert allowed.exit_code == 0, allowed.output
    assert emulator.state.access(device_id(1)) == {"ann@example.com": False}


def test_a_failed_sync_converges_when_its_report_is_replayed(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.grant(device_id(2), "old@example.com")
    emulator.state.faults.failing_devices = {device_id(2)}
    sheet = roster(
        tmp_path,
        [
            [device_id(1), "", "ann@example.com", "", ""],
            [device_id(2), "", "eve@example.com", "", ""],
        ],
    )

    first = invoke("sync", sheet, "--allow-mass-removal", "--report", tmp_path / "first.csv")
    emulator.state.faults.failing_devices = set()
    retry = invoke(
        "run",
        tmp_path / "first.csv",
        "--only",
        "failed,not-run",
        "--allow-mass-removal",
        "--report",
        tmp_path / "retry.csv",
    )

    assert first.exit_code == 1
    failed = [r for r in read_report(tmp_path / "first.csv") if r["status"] == "failed"]
    assert [(r["row"], r["email"]) for r in failed] == [
        ("3", "eve@example.com"),
        ("", "old@example.com"),
    ]
    assert retry.exit_code == 0, retry.output
    assert [(r["row"], r["action"]) for r in read_report(tmp_path / "retry.csv")] == [
        ("3", "ADD"),
        ("", "REMOVE"),
    ]
    assert emulator.state.access(device_id(2)) == {"eve@example.com": False}
    assert emulator.state.access(device_id(1)) == {"ann@example.com": False}


def test_sync_refuses_only_so_a_partial_report_is_never_a_roster(
    invoke: Invoke, tmp_path: Path
) -> None:
    sheet = roster(tmp_path, [[device_id(1), "", "ann@example.com", "", ""]])

    result = invoke("sync", sheet, "--only", "failed", "--report", tmp_path / "out.csv")

    assert result.exit_code == 2
    assert "batch-share run REPORT --only" in result.output


def test_replaying_a_sync_report_never_removes_what_the_sync_held_back(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.grant(device_id(1), "old@example.com")
    sheet = roster(
        tmp_path,
        [[device_id(1), "", "ann@example.com", "", ""], [device_id(1), "", "bad@", "", ""]],
    )
    invoke("sync", sheet, "--report", tmp_path / "first.csv")

    retry = invoke("run", tmp_path / "first.csv", "--only", "failed,not-run")

    assert "removals a sync held back (unclear-device) are not replayed" in retry.output
    assert "old@example.com" in emulator.state.access(device_id(1))


def test_a_row_whose_device_cannot_be_read_holds_back_that_emails_removals(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.grant(device_id(1), "carl@example.com")
    emulator.state.grant(device_id(1), "old@example.com")
    emulator.state.grant(device_id(2), "carl@example.com")
    sheet = roster(
        tmp_path,
        [
            [device_id(1), "", "bob@example.com", "", ""],
            [device_id(2), "", "bob@example.com", "", ""],
            ["Lobby CameraX", "", "carl@example.com", "", ""],  # a misspelt name
            ["80:00:00:00:01:00:00:0G", "", "carl@example.com", "", ""],  # a typo'd ID
        ],
    )

    result = invoke(
        "sync", sheet, "--scope", "account", "--allow-mass-removal", "--report", tmp_path / "r.csv"
    )

    assert result.exit_code == 1, result.output
    assert "carl@example.com" in emulator.state.access(device_id(1))
    assert "carl@example.com" in emulator.state.access(device_id(2))
    assert "old@example.com" not in emulator.state.access(device_id(1))
    held = [r for r in read_report(tmp_path / "r.csv") if r["code"] == "unclear-device"]
    assert {(r["device_id"], r["email"]) for r in held} == {
        (device_id(1), "carl@example.com"),
        (device_id(2), "carl@example.com"),
    }
    assert all("names no device" in r["message"] for r in held)


def test_an_unreadable_row_holds_back_every_removal(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.grant(device_id(1), "old@example.com")
    sheet = roster(
        tmp_path,
        [[device_id(1), "", "ann@example.com", "", ""], ["8.0E+15", "", "nobody", "", ""]],
    )

    result = invoke("sync", sheet, "--allow-mass-removal", "--report", tmp_path / "r.csv")

    assert result.exit_code == 1
    assert emulator.state.access(device_id(1)) == {
        "old@example.com": False,
        "ann@example.com": False,
    }


def test_a_refused_key_while_reading_still_writes_the_report(
    emulator: ServerHandle, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from batch_share.cli import app

    sheet = roster(tmp_path, [[device_id(1), "", "ann@example.com", "", ""]])
    env = {
        "R3_ACCESS_KEY_ID": emulator.key_id,
        "R3_SECRET_ACCESS_KEY": "d3Jvbmcgc2VjcmV0",  # base64, but not the emulator's
        "REMOTEIT_API_URL": emulator.url,
        "BATCH_SHARE_STATE_DIR": str(tmp_path / "state"),
    }

    result = CliRunner().invoke(
        app, ["sync", str(sheet), "--report", str(tmp_path / "r.csv")], env=env
    )

    assert result.exit_code == 3, result.output
    rows = read_report(tmp_path / "r.csv")
    assert [(r["status"], r["code"]) for r in rows] == [("not-run", "auth-refused")]
    assert emulator.state.counters.share_fields == 0


def test_a_roster_whose_names_all_fail_is_refused_with_a_report(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.grant(device_id(1), "old@example.com")
    sheet = roster(tmp_path, [["No Such Device", "", "ann@example.com", "", ""]])

    result = invoke("sync", sheet, "--report", tmp_path / "r.csv")

    assert result.exit_code == 4, result.output
    assert [r["code"] for r in read_report(tmp_path / "r.csv")] == ["unknown-device-name"]
    assert emulator.state.access(device_id(1)) == {"old@example.com": False}
