"""What a nightly cron job relies on: surviving kill -9, the run lock, replaying a report's
failed lines, and reading the devices back with --verify.

Runs that must die or be watched from outside go in a real subprocess; the rest run
in-process with typer's CliRunner. Every run's state directory is in tmp_path.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import WAIT_LIMIT, read_report, wait_until, write_sheet
from typer.testing import CliRunner, Result

from batch_share.cli import app
from batch_share.emulator import ServerHandle, device_id, service_id
from batch_share.send.journal import DB_NAME, LOCK_NAME, run_lock

DEVICES = range(1, 11)

Invoke = Callable[..., Result]


def one_user_per_device(path: Path) -> Path:
    """A whole-device ADD per device, each to its own address: one `share` field per line."""
    rows = [[device_id(i), "", f"user{i}@example.com", "add", "", "", f"T-{i}"] for i in DEVICES]
    return write_sheet(path, rows)


def assert_sheet_applied(emulator: ServerHandle) -> None:
    for i in DEVICES:
        assert emulator.state.access(device_id(i)) == {f"user{i}@example.com": False}


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def cli_env(emulator: ServerHandle, state_dir: Path) -> dict[str, str]:
    return {
        "R3_ACCESS_KEY_ID": emulator.key_id,
        "R3_SECRET_ACCESS_KEY": emulator.secret,
        "REMOTEIT_API_URL": emulator.url,
        "BATCH_SHARE_STATE_DIR": str(state_dir),
    }


@pytest.fixture
def invoke(cli_env: dict[str, str]) -> Invoke:
    def run(*args: str | Path) -> Result:
        return CliRunner().invoke(app, [str(arg) for arg in args], env=cli_env)

    return run


def start_run(
    cli_env: dict[str, str], sheet: Path, report: Path, *options: str
) -> subprocess.Popen[str]:
    env = {**os.environ, **cli_env}
    env.pop("R3_PROFILE", None)
    command = [sys.executable, "-m", "batch_share", "run", str(sheet), "--report", str(report)]
    return subprocess.Popen(
        [*command, *options], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def journal_query(state_dir: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the journal as another process would, while (or after) a run writes it."""
    path = state_dir / DB_NAME
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError:  # the run has not created its tables yet
            return []


def confirmed_in_journal(state_dir: Path) -> int:
    rows = journal_query(state_dir, "SELECT count(*) FROM confirmed")
    return int(str(rows[0][0])) if rows else 0


def wait_for_server_idle(emulator: ServerHandle) -> None:
    """A killed client leaves its last request running on the server; let it end."""
    deadline = time.monotonic() + WAIT_LIMIT
    while emulator.state.counters.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)


# --- kill -9, then run again ------------------------------------------------------------------


@pytest.mark.parametrize("resume", [False, True], ids=["plain-rerun", "resume"])
@pytest.mark.parametrize("confirmed_before_kill", [1, 4, 8], ids=["first", "few", "most"])
def test_rerun_after_kill_9_completes_the_sheet(
    emulator: ServerHandle,
    cli_env: dict[str, str],
    invoke: Invoke,
    state_dir: Path,
    tmp_path: Path,
    confirmed_before_kill: int,
    resume: bool,
) -> None:
    emulator.state.faults.latency = 0.08
    sheet = one_user_per_device(tmp_path / "sheet.csv")
    options = ("--per-request", "1", "--concurrency", "1", "--rate", "1000")
    with start_run(cli_env, sheet, tmp_path / "killed.csv", *options) as process:
        wait_until(lambda: confirmed_in_journal(state_dir) >= confirmed_before_kill, process)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=WAIT_LIMIT)
    assert process.returncode == -signal.SIGKILL
    wait_for_server_idle(emulator)
    confirmed = confirmed_in_journal(state_dir)
    applied = [call for call in emulator.state.counters.share_calls if call.error is None]
    assert confirmed_before_kill <= confirmed < len(DEVICES)
    assert confirmed <= len(applied) <= confirmed + 1  # at most the one request in flight
    [(killed_run,)] = journal_query(state_dir, "SELECT run_id FROM runs")
    emulator.state.counters.reset()
    emulator.state.faults.latency = 0.0
    report = tmp_path / "rerun.csv"

    result = invoke("run", sheet, "--report", report, *(["--resume"] if resume else []))

    assert result.exit_code == 0, result.output
    lines = read_report(report)
    assert [line["email"] for line in lines] == [f"user{i}@example.com" for i in DEVICES]
    assert {line["status"] for line in lines} == {"succeeded"}
    assert_sheet_applied(emulator)
    vouched = [line for line in lines if line["message"].startswith("confirmed by earlier run ")]
    if resume:
        assert len(vouched) == confirmed
        assert {line["message"] for line in vouched} == {f"confirmed by earlier run {killed_run}"}
        assert emulator.state.counters.share_fields == len(DEVICES) - confirmed
    else:
        assert vouched == []
        assert emulator.state.counters.share_fields == len(DEVICES)


# --- the run lock -----------------------------------------------------------------------------


def test_a_second_run_is_refused_while_the_lock_is_held(
    invoke: Invoke, emulator: ServerHandle, state_dir: Path, tmp_path: Path
) -> None:
    sheet = one_user_per_device(tmp_path / "sheet.csv")

    with run_lock(state_dir):
        refused = invoke("run", sheet, "--report", tmp_path / "refused.csv")
    after = invoke("run", sheet, "--report", tmp_path / "after.csv")

    assert refused.exit_code == 4, refused.output
    assert f"pid {os.getpid()}" in refused.stderr
    assert after.exit_code == 0, after.output
    assert emulator.state.counters.share_fields == len(DEVICES)  # all from the second run


def test_a_running_subprocess_holds_the_lock(
    emulator: ServerHandle, cli_env: dict[str, str], invoke: Invoke, tmp_path: Path
) -> None:
    emulator.state.faults.latency = 0.2
    sheet = one_user_per_device(tmp_path / "sheet.csv")
    options = ("--per-request", "1", "--concurrency", "1", "--rate", "1000")

    with start_run(cli_env, sheet, tmp_path / "first.csv", *options) as process:
        wait_until(lambda: emulator.state.counters.requests >= 1, process)
        refused = invoke("run", sheet, "--report", tmp_path / "refused.csv")
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=WAIT_LIMIT)

    assert refused.exit_code == 4, refused.output
    assert f"pid {process.pid}" in refused.stderr
    assert process.returncode == 130


def test_a_lock_left_by_a_dead_process_is_taken_over(
    emulator: ServerHandle, cli_env: dict[str, str], state_dir: Path, tmp_path: Path
) -> None:
    state_dir.mkdir()
    (state_dir / LOCK_NAME).write_text("99999 2026-01-01T00:00:00Z\n", encoding="utf-8")
    sheet = one_user_per_device(tmp_path / "sheet.csv")

    with start_run(cli_env, sheet, tmp_path / "report.csv") as process:
        _, stderr = process.communicate(timeout=WAIT_LIMIT)

    assert process.returncode == 0, stderr
    assert "took over the run lock left by pid 99999" in stderr
    assert_sheet_applied(emulator)


def test_json_log_format_covers_the_lock_takeover_message(
    emulator: ServerHandle, cli_env: dict[str, str], state_dir: Path, tmp_path: Path
) -> None:
    state_dir.mkdir()
    (state_dir / LOCK_NAME).write_text("99999 2026-01-01T00:00:00Z\n", encoding="utf-8")
    sheet = one_user_per_device(tmp_path / "sheet.csv")

    with start_run(cli_env, sheet, tmp_path / "report.csv", "--log-format", "json") as process:
        _, stderr = process.communicate(timeout=WAIT_LIMIT)

    assert process.returncode == 0, stderr
    records = [json.loads(line) for line in stderr.splitlines()]  # library warnings too
    assert any("99999" in record["message"] for record in records)


# --- a report as the next run's input ---------------------------------------------------------

FORMULA = '=HYPERLINK("http://evil.example","click")'
FIRST_ROWS = [
    [device_id(1), "", "ann@example.com, zed@example.com", "add", "", "", "T-1"],
    [device_id(5), "", "carol@example.com", "add", "yes", "no", "T-2"],
    [device_id(2), "", "dave@example.com", "add", "", "", "T-3"],
    [device_id(6), "", "erin@example.com", "add", "", "", FORMULA],
    ["12:34:56", "", "fred@example.com", "add", "", "", "T-5"],
]


@pytest.mark.parametrize(
    "first_format",
    [
        ".csv",
        ".xlsx",
        ".jsonl",
    ],
)
def test_only_failed_lines_of_a_report_are_replayed(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path, first_format: str
) -> None:
    faults = emulator.state.faults
    faults.unregistered_emails = {"zed@example.com"}
    faults.failing_devices = {device_id(5), device_id(6)}
    first = tmp_path / f"first{first_format}"
    first_run = invoke("run", write_sheet(tmp_path / "sheet.csv", FIRST_ROWS), "--report", first)
    assert first_run.exit_code == 1, first_run.output
    faults.unregistered_emails = set()
    faults.failing_devices = {device_id(6)}  # one device stays broken
    emulator.state.counters.reset()
    second = tmp_path / "second.csv"

    result = invoke("run", first, "--only", "failed,not-run", "--report", second)

    assert result.exit_code == 1, result.output
    lines = read_report(second)
    assert [(line["row"], line["email"], line["ticket"]) for line in lines] == [
        ("2", "zed@example.com", "T-1"),
        ("3", "carol@example.com", "T-2"),
        ("5", "erin@example.com", "'" + FORMULA),  # neutralised once, not twice
    ]
    assert [line["status"] for line in lines] == ["succeeded", "succeeded", "failed"]
    assert (lines[1]["scripting"], lines[1]["notify"]) == ("true", "false")
    sent = {email for call in emulator.state.counters.share_calls for email in call.emails}
    assert sent == {"zed@example.com", "carol@example.com", "erin@example.com"}
    assert emulator.state.access(device_id(1)) == {
        "ann@example.com": False,
        "zed@example.com": False,
    }
    assert emulator.state.access(device_id(5)) == {"carol@example.com": True}


# --- --verify -----------------------------------------------------------------------------------

VERIFY_ROWS = [
    [device_id(1), "", "ann@example.com", "add", "", "", "T-1"],
    [device_id(3), "", "bob@example.com, carol@example.com", "add", "", "", "T-2"],
    [device_id(3), service_id(3, 2), "dave@example.com", "add", "", "", "T-3"],
    [device_id(2), service_id(2, 1), "erin@example.com", "add", "", "", "T-4"],
]


def test_verify_fails_the_lines_the_server_silently_dropped(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.faults.silent_drop_devices = {device_id(3)}
    report = tmp_path / "report.csv"

    result = invoke(
        "run", write_sheet(tmp_path / "sheet.csv", VERIFY_ROWS), "--verify", "--report", report
    )

    assert result.exit_code == 1, result.output
    outcome = {line["email"]: (line["status"], line["code"]) for line in read_report(report)}
    assert outcome == {
        "ann@example.com": ("succeeded", ""),
        "bob@example.com": ("failed", "not-applied"),
        "carol@example.com": ("failed", "not-applied"),
        "dave@example.com": ("failed", "not-applied"),
        "erin@example.com": ("succeeded", ""),
    }


def test_resume_resends_what_verify_found_missing(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.faults.silent_drop_devices = {device_id(3)}
    sheet = write_sheet(tmp_path / "sheet.csv", VERIFY_ROWS)
    invoke("run", sheet, "--verify", "--report", tmp_path / "first.csv")
    emulator.state.faults.silent_drop_devices = set()

    result = invoke("run", sheet, "--resume", "--report", tmp_path / "second.csv")

    assert result.exit_code == 0, result.output
    messages = {line["email"]: line["message"] for line in read_report(tmp_path / "second.csv")}
    assert messages["ann@example.com"].startswith("confirmed by earlier run ")
    assert messages["bob@example.com"] == ""  # resent, not trusted
    assert emulator.state.access(device_id(3)).keys() == {"bob@example.com", "carol@example.com"}


def test_verify_keeps_applied_lines_succeeded(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    report = tmp_path / "report.csv"

    result = invoke(
        "run", write_sheet(tmp_path / "sheet.csv", VERIFY_ROWS), "--verify", "--report", report
    )

    assert result.exit_code == 0, result.output
    assert {line["status"] for line in read_report(report)} == {"succeeded"}
    reads = [record for record in emulator.state.counters.log if not record.share_calls]
    assert reads, "--verify read nothing back"
    assert emulator.state.service_access(service_id(3, 2)) == {
        "bob@example.com",
        "carol@example.com",
        "dave@example.com",
    }
