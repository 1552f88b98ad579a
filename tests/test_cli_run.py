"""End-to-end tests of `batch-share run` against the emulator over real HTTP.

Most tests drive the command in-process with typer's CliRunner; the Ctrl-C test runs it as
a real subprocess, since the signal has to reach the process that runs the event loop.
Every run points its state directory into tmp_path, so no test touches the real home.
"""

from __future__ import annotations

import base64
import csv
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    SHEET_HEADER,
    SPEC_REPORT_COLUMNS,
    WAIT_LIMIT,
    read_report,
    wait_until,
    write_sheet,
)
from openpyxl import load_workbook
from typer.testing import CliRunner, Result

from batch_share.cli import app
from batch_share.emulator import ServerHandle, device_id, service_id

Invoke = Callable[..., Result]
Cells = Sequence[str]


def report_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle))


def add_rows(devices: range, email: str = "user{}@example.com") -> list[list[str]]:
    """One whole-device ADD per device, each to its own address: one mutation per row."""
    return [[device_id(i), "", email.format(i), "add", "", "", f"T-{i}"] for i in devices]


@pytest.fixture
def cli_env(emulator: ServerHandle, tmp_path: Path) -> dict[str, str | None]:
    return {
        "R3_ACCESS_KEY_ID": emulator.key_id,
        "R3_SECRET_ACCESS_KEY": emulator.secret,
        "REMOTEIT_API_URL": emulator.url,
        "R3_PROFILE": None,
        "BATCH_SHARE_STATE_DIR": str(tmp_path / "state"),
    }


@pytest.fixture
def invoke(cli_env: dict[str, str | None]) -> Invoke:
    """Run the CLI in-process against the emulator; `env=` overrides single variables."""

    def run(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
        return CliRunner().invoke(app, [str(arg) for arg in args], env={**cli_env, **(env or {})})

    return run


# --- the happy path ---------------------------------------------------------------------------

HAPPY_ROWS = [
    [device_id(1), "", "ann@example.com; bob@example.com", "add", "", "", "T-1"],
    [device_id(1), "", "carol@example.com", "Add", "", "", "T-2"],
    [device_id(1), "", "dave@example.com", "add", "yes", "no", "T-3"],
    [device_id(2), service_id(2, 1), "erin@example.com", "grant", "", "", "T-4"],
    [device_id(3), "", "Frank@Example.com", "share", "", "", "T-5"],
    [device_id(4), "", "gina@example.com", "remove", "", "", "T-6"],
]


def test_happy_path_applies_the_sheet_and_reports_every_line(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    seed = write_sheet(tmp_path / "seed.csv", [[device_id(4), "", "gina@example.com", "add"]])
    assert invoke("run", seed, "--report", tmp_path / "seed-report.csv").exit_code == 0
    assert emulator.state.access(device_id(4)) == {"gina@example.com": False}
    sheet = write_sheet(tmp_path / "sheet.csv", HAPPY_ROWS)
    report = tmp_path / "report.csv"

    result = invoke("run", sheet, "--report", report)

    assert result.exit_code == 0, result.output
    state = emulator.state
    assert state.access(device_id(1)) == {
        "ann@example.com": False,
        "bob@example.com": False,
        "carol@example.com": False,
        "dave@example.com": True,
    }
    assert state.access(device_id(2)) == {}
    assert state.service_access(service_id(2, 1)) == {"erin@example.com"}
    assert state.service_access(service_id(2, 2)) == set()
    assert state.access(device_id(3)) == {"frank@example.com": False}
    assert state.access(device_id(4)) == {}

    assert report_header(report) == [*SPEC_REPORT_COLUMNS, "ticket"]
    lines = read_report(report)
    assert [(line["row"], line["email"]) for line in lines] == [
        ("2", "ann@example.com"),
        ("2", "bob@example.com"),
        ("3", "carol@example.com"),
        ("4", "dave@example.com"),
        ("5", "erin@example.com"),
        ("6", "Frank@Example.com"),
        ("7", "gina@example.com"),
    ]
    assert {line["status"] for line in lines} == {"succeeded"}
    assert all(int(line["attempts"]) >= 1 for line in lines)
    assert [line["ticket"] for line in lines] == ["T-1", "T-1", "T-2", "T-3", "T-4", "T-5", "T-6"]
    assert [line["action"] for line in lines] == ["ADD"] * 6 + ["REMOVE"]
    assert (lines[3]["scripting"], lines[3]["notify"]) == ("true", "false")
    assert (lines[0]["scripting"], lines[0]["notify"]) == ("false", "true")
    assert lines[4]["service_id"] == service_id(2, 1)
    mutations = [line["mutation"] for line in lines]
    assert mutations[0] == mutations[1] == mutations[2]  # sent together: one mutation
    assert len(set(mutations)) == 5


SAMPLES = Path(__file__).resolve().parent.parent / "sample_sheets"

# sample_sheets/README.md, the messy.csv table: row -> expected (status, code) of each line.
MESSY_EXPECTED = {
    2: [("succeeded", "")],
    3: [("invalid", "missing-device-id")],
    4: [("invalid", "invalid-device-id")],
    5: [("invalid", "id-mangled")],
    6: [("invalid", "id-mangled")],
    7: [("invalid", "id-mangled")],
    8: [("succeeded", "")],  # the service named "ssh" is looked up on its device
    9: [("invalid", "missing-email")],
    10: [("invalid", "invalid-email")],
    11: [("invalid", "unknown-action")],
    12: [("invalid", "invalid-boolean")],
    13: [("invalid", "leave-with-service")],
    15: [("succeeded", "")] * 2,
    16: [("succeeded", ""), ("invalid", "invalid-email")],
    17: [("failed", "api-error")],
    18: [("conflict", "conflict")],
    19: [("conflict", "conflict")],
    20: [("succeeded", "")],
    21: [("succeeded", "")],
    22: [("succeeded", "")],
    23: [("invalid", "id-mangled")],
}


def test_messy_sample_ends_as_its_readme_says(invoke: Invoke, tmp_path: Path) -> None:
    report = tmp_path / "messy.csv"

    result = invoke("run", SAMPLES / "messy.csv", "--report", report)

    assert result.exit_code == 1, result.output
    by_row: dict[int, list[tuple[str, str]]] = {}
    lines = read_report(report)
    for line in lines:
        by_row.setdefault(int(line["row"]), []).append((line["status"], line["code"]))
    assert by_row == MESSY_EXPECTED
    messages = {int(line["row"]): line["message"] for line in lines}
    assert messages[21] == "duplicate of row 20"
    assert "has no remote.it account" in messages[17]


# --- report formats ---------------------------------------------------------------------------

FORMULA = '=HYPERLINK("http://evil.example","click")'


@pytest.fixture
def sheet_with_a_formula(tmp_path: Path) -> Path:
    rows = [
        [device_id(1), "", "ann@example.com", "add", "", "", FORMULA],
        [device_id(2), "", "bob@example.com, carol@example.com", "add", "", "", "T-2"],
    ]
    return write_sheet(tmp_path / "sheet.csv", rows)


def test_csv_report_neutralises_formulas(
    invoke: Invoke, sheet_with_a_formula: Path, tmp_path: Path
) -> None:
    report = tmp_path / "out.csv"

    result = invoke("run", sheet_with_a_formula, "--report", report)

    assert result.exit_code == 0, result.output
    lines = read_report(report)
    assert len(lines) == 3
    assert lines[0]["ticket"] == "'" + FORMULA


def test_xlsx_report_has_a_summary_and_neutralises_formulas(
    invoke: Invoke, sheet_with_a_formula: Path, tmp_path: Path
) -> None:
    report = tmp_path / "out.xlsx"

    result = invoke("run", sheet_with_a_formula, "--report", report)

    assert result.exit_code == 0, result.output
    workbook = load_workbook(report)
    try:
        assert "Summary" in workbook.sheetnames
        assert workbook.active is not None
        assert workbook.active.title == "Summary"
        rows = list(workbook.worksheets[0].iter_rows(values_only=True))
        ticket = workbook.worksheets[0].cell(row=2, column=len(SPEC_REPORT_COLUMNS) + 1)
        assert ticket.data_type == "s"  # stored as text, never as a formula
    finally:
        workbook.close()
    assert list(rows[0]) == [*SPEC_REPORT_COLUMNS, "ticket"]
    assert len(rows) == 4
    assert rows[1][-1] == "'" + FORMULA
    assert {row[SPEC_REPORT_COLUMNS.index("status")] for row in rows[1:]} == {"succeeded"}


def test_jsonl_report_has_one_object_per_line(
    invoke: Invoke, sheet_with_a_formula: Path, tmp_path: Path
) -> None:
    report = tmp_path / "out.jsonl"

    result = invoke("run", sheet_with_a_formula, "--report", report)

    assert result.exit_code == 0, result.output
    lines = [json.loads(text) for text in report.read_text(encoding="utf-8").splitlines()]
    assert [list(line) for line in lines] == [[*SPEC_REPORT_COLUMNS, "ticket"]] * 3
    assert [line["email"] for line in lines] == [
        "ann@example.com",
        "bob@example.com",
        "carol@example.com",
    ]
    assert {line["status"] for line in lines} == {"succeeded"}
    assert lines[0]["ticket"] == FORMULA  # data for programs: carried exactly


# --- dry run ----------------------------------------------------------------------------------


def test_dry_run_sends_nothing_and_plans_every_line(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path / "sheet.csv", HAPPY_ROWS)
    report = tmp_path / "dry.csv"

    result = invoke("run", sheet, "--dry-run", "--report", report)

    assert result.exit_code == 0, result.output
    assert emulator.state.counters.requests == 0
    lines = read_report(report)
    assert len(lines) == 7
    assert {(line["status"], line["code"]) for line in lines} == {("not-run", "planned")}


def test_dry_run_with_an_invalid_row_exits_1(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = write_sheet(
        tmp_path / "sheet.csv", [*HAPPY_ROWS, ["12:34:56", "", "zed@example.com", "add"]]
    )
    report = tmp_path / "dry.csv"

    result = invoke("run", sheet, "--dry-run", "--report", report)

    assert result.exit_code == 1, result.output
    assert emulator.state.counters.requests == 0
    statuses = [(line["status"], line["code"]) for line in read_report(report)]
    assert statuses == [("not-run", "planned")] * 7 + [("invalid", "id-mangled")]


# --- failures -----------------------------------------------------------------------------------


def test_failing_device_and_unregistered_email_fail_only_their_lines(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.faults.failing_devices = {device_id(5)}
    sheet = write_sheet(
        tmp_path / "sheet.csv",
        [
            [device_id(1), "", "ann@example.com, zed@unregistered.example, bob@example.com", "add"],
            [device_id(5), "", "carol@example.com", "add"],
            [device_id(2), "", "dave@example.com", "add"],
        ],
        header=SHEET_HEADER[:4],
    )
    report = tmp_path / "report.csv"

    result = invoke("run", sheet, "--report", report)

    assert result.exit_code == 1, result.output
    outcome = {line["email"]: line for line in read_report(report)}
    assert [outcome[e]["status"] for e in ("ann@example.com", "bob@example.com")] == [
        "succeeded",
        "succeeded",
    ]
    assert outcome["dave@example.com"]["status"] == "succeeded"
    unregistered = outcome["zed@unregistered.example"]
    assert unregistered["status"] == "failed"
    assert "zed@unregistered.example has no remote.it account" in unregistered["message"]
    failing = outcome["carol@example.com"]
    assert failing["status"] == "failed"
    assert f"could not update sharing for device {device_id(5)}" in failing["message"]
    assert emulator.state.access(device_id(1)) == {
        "ann@example.com": False,
        "bob@example.com": False,
    }
    assert emulator.state.access(device_id(5)) == {}
    assert emulator.state.access(device_id(2)) == {"dave@example.com": False}


def test_thirty_percent_transient_faults_still_end_all_succeeded(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    faults = emulator.state.faults
    faults.p503, faults.p429, faults.p_drop, faults.retry_after = 0.1, 0.1, 0.1, 0.05
    devices = range(1, 21)
    sheet = write_sheet(tmp_path / "sheet.csv", add_rows(devices))
    report = tmp_path / "report.csv"

    result = invoke(
        "run", sheet, "--report", report, "--rate", "1000", "--per-request", "1", "--json"
    )

    assert result.exit_code == 0, result.output
    counters = emulator.state.counters
    struck = (
        counters.dropped + counters.status_counts.get(503, 0) + counters.status_counts.get(429, 0)
    )
    assert struck > 0
    assert json.loads(result.stdout)["retries"] == struck
    assert {line["status"] for line in read_report(report)} == {"succeeded"}
    for i in devices:
        assert emulator.state.access(device_id(i)) == {f"user{i}@example.com": False}


# --- credentials and the API URL --------------------------------------------------------------


def test_refused_credentials_stop_the_run_and_still_write_the_report(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    wrong = base64.b64encode(bytes(32)).decode("ascii")
    sheet = write_sheet(tmp_path / "sheet.csv", HAPPY_ROWS)
    report = tmp_path / "report.csv"

    result = invoke("run", sheet, "--report", report, env={"R3_SECRET_ACCESS_KEY": wrong})

    assert result.exit_code == 3, result.output
    assert wrong not in result.output
    lines = read_report(report)
    assert len(lines) == 7
    assert {(line["status"], line["code"]) for line in lines} == {("not-run", "auth-refused")}
    assert emulator.state.counters.status_counts.get(401, 0) >= 1
    assert emulator.state.counters.share_fields == 0


def test_missing_credentials_name_where_they_were_looked_for(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    sheet = write_sheet(tmp_path / "sheet.csv", HAPPY_ROWS)

    result = invoke(
        "run",
        sheet,
        "--report",
        tmp_path / "report.csv",
        env={"R3_ACCESS_KEY_ID": None, "R3_SECRET_ACCESS_KEY": None, "HOME": str(home)},
    )

    assert result.exit_code == 2, result.output
    assert str(home / ".remoteit" / "credentials") in result.stderr
    assert "R3_ACCESS_KEY_ID" in result.stderr
    assert "Traceback" not in result.output
    assert emulator.state.counters.requests == 0


def test_plain_http_to_a_remote_host_is_refused(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path / "sheet.csv", HAPPY_ROWS)

    result = invoke(
        "run",
        sheet,
        "--report",
        tmp_path / "report.csv",
        "--api-url",
        "http://example.com/graphql/v1",
    )

    assert result.exit_code == 2, result.output
    assert "http://" in result.stderr
    assert "example.com" in result.stderr
    assert emulator.state.counters.requests == 0


# --- the safety guard ---------------------------------------------------------------------------


def removal_sheet(path: Path, removals: int, adds: int) -> Path:
    rows = [[device_id(i), "", f"gone{i}@example.com", "remove"] for i in range(1, removals + 1)]
    rows += [[device_id(20 + i), "", f"new{i}@example.com", "add"] for i in range(1, adds + 1)]
    return write_sheet(path, rows, header=SHEET_HEADER[:4])


def test_mostly_removals_are_refused_and_reported(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = removal_sheet(tmp_path / "sheet.csv", removals=5, adds=1)
    report = tmp_path / "report.csv"

    result = invoke("run", sheet, "--report", report)

    assert result.exit_code == 4, result.output
    assert "--allow-mass-removal" in result.stderr
    assert emulator.state.counters.requests == 0
    lines = read_report(report)
    assert len(lines) == 6
    assert {line["status"] for line in lines} == {"not-run"}


def test_allow_mass_removal_lets_the_run_through(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = removal_sheet(tmp_path / "sheet.csv", removals=5, adds=1)
    report = tmp_path / "report.csv"

    result = invoke("run", sheet, "--report", report, "--allow-mass-removal")

    assert result.exit_code == 0, result.output
    assert {line["status"] for line in read_report(report)} == {"succeeded"}
    assert emulator.state.access(device_id(21)) == {"new1@example.com": False}


def test_more_removals_than_max_removals_are_refused(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = removal_sheet(tmp_path / "sheet.csv", removals=3, adds=5)

    result = invoke("run", sheet, "--report", tmp_path / "report.csv", "--max-removals", "2")

    assert result.exit_code == 4, result.output
    assert emulator.state.counters.requests == 0


def test_the_same_removals_pass_under_the_default_limits(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = removal_sheet(tmp_path / "sheet.csv", removals=3, adds=5)

    result = invoke("run", sheet, "--report", tmp_path / "report.csv")

    assert result.exit_code == 0, result.output
    assert emulator.state.counters.share_fields == 8


def test_a_sheet_without_a_valid_row_is_refused(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    rows = [["12:34:56", "", "ann@example.com", "add"], [device_id(1), "", "bob@", "add"]]
    sheet = write_sheet(tmp_path / "sheet.csv", rows, header=SHEET_HEADER[:4])

    result = invoke("run", sheet, "--report", tmp_path / "report.csv")

    assert result.exit_code == 4, result.output
    assert emulator.state.counters.requests == 0


def test_fewer_valid_rows_than_min_rows_is_refused(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path / "sheet.csv", add_rows(range(1, 4)))

    result = invoke("run", sheet, "--report", tmp_path / "report.csv", "--min-rows", "10")

    assert result.exit_code == 4, result.output
    assert "--min-rows" in result.stderr
    assert emulator.state.counters.requests == 0


# --- output modes -------------------------------------------------------------------------------


def test_json_summary_on_stdout(invoke: Invoke, tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path / "sheet.csv", HAPPY_ROWS)
    report = tmp_path / "report.csv"

    result = invoke("run", sheet, "--report", report, "--json")

    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)
    assert summary["run_id"]
    assert summary["counts"]["succeeded"] == 7
    assert summary["lines"] == 7
    assert summary["mutations"] == 5
    assert summary["http_requests"] >= 1
    assert summary["retries"] == 0
    assert summary["elapsed"] >= 0
    assert summary["report"] == str(report)
    assert summary["exit_code"] == 0


def test_quiet_prints_only_the_final_line(invoke: Invoke, tmp_path: Path) -> None:
    sheet = write_sheet(tmp_path / "sheet.csv", HAPPY_ROWS)

    result = invoke("run", sheet, "--report", tmp_path / "report.csv", "--quiet")

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    printed = result.stdout.strip().splitlines()
    assert len(printed) == 1
    assert printed[0].startswith("batch-share run:")
    assert printed[0].endswith("exit 0")


def test_json_log_format_makes_every_stderr_line_an_object(invoke: Invoke, tmp_path: Path) -> None:
    sheet = write_sheet(
        tmp_path / "sheet.csv", [*HAPPY_ROWS, [device_id(9), "", "bad-address", "add"]]
    )

    result = invoke("run", sheet, "--report", tmp_path / "report.csv", "--log-format", "json")

    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    records = [json.loads(line) for line in result.stderr.splitlines()]
    assert len(records) > 2
    assert len({record["run_id"] for record in records}) == 1
    assert records[0]["run_id"]
    assert all(record["event"] for record in records)
    assert records[-1]["event"] == "finished"
    assert records[-1]["counts"]["invalid"] == 1


# --- concurrency and Ctrl-C ---------------------------------------------------------------------


def test_concurrency_caps_requests_in_flight(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    emulator.state.faults.latency = 0.05
    sheet = write_sheet(tmp_path / "sheet.csv", add_rows(range(1, 21)))

    result = invoke(
        "run",
        sheet,
        "--report",
        tmp_path / "report.csv",
        "--concurrency",
        "2",
        "--per-request",
        "1",
        "--rate",
        "1000",
    )

    assert result.exit_code == 0, result.output
    counters = emulator.state.counters
    assert counters.requests == 20
    assert counters.peak_concurrency == 2


def test_ctrl_c_finishes_in_flight_requests_and_writes_a_complete_report(
    emulator: ServerHandle, cli_env: dict[str, str | None], tmp_path: Path
) -> None:
    emulator.state.faults.latency = 0.3
    devices = range(1, 31)
    sheet = write_sheet(tmp_path / "sheet.csv", add_rows(devices))
    report = tmp_path / "report.csv"
    env = {**os.environ, **{k: v for k, v in cli_env.items() if v is not None}}
    env.pop("R3_PROFILE", None)
    command = [sys.executable, "-m", "batch_share", "run", str(sheet), "--report", str(report)]
    options = ["--per-request", "1", "--concurrency", "1", "--rate", "1000"]

    with subprocess.Popen(
        [*command, *options], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        wait_until(lambda: emulator.state.counters.requests >= 1, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=WAIT_LIMIT)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    lines = read_report(report)
    assert [line["email"] for line in lines] == [f"user{i}@example.com" for i in devices]
    succeeded = {line["email"] for line in lines if line["status"] == "succeeded"}
    assert 1 <= len(succeeded) < len(lines)
    rest = {(line["status"], line["code"]) for line in lines if line["status"] != "succeeded"}
    assert rest == {("not-run", "interrupted")}
    for i in devices:
        email = f"user{i}@example.com"
        assert emulator.state.access(device_id(i)) == ({email: False} if email in succeeded else {})


# --- found in review ----------------------------------------------------------------------------


def test_dry_run_of_a_mass_removal_plans_it_and_warns_instead_of_refusing(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    rows = [[device_id(i), "", f"user{i}@example.com", "remove", "", "", ""] for i in range(1, 6)]
    sheet = write_sheet(tmp_path / "sheet.csv", rows)
    report = tmp_path / "dry.csv"

    result = invoke("run", sheet, "--dry-run", "--quiet", "--report", report)

    assert result.exit_code == 0, result.output
    assert "a real run would be refused" in result.output
    assert "would remove user1@example.com" in result.output
    assert {line["code"] for line in read_report(report)} == {"planned"}
    assert emulator.state.counters.requests == 0


def test_a_replayed_invalid_boolean_stays_invalid(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    rows = [[device_id(1), "", "ann@example.com", "add", "maybe", "", "T-1"]]
    first = tmp_path / "first.csv"
    invoke("run", write_sheet(tmp_path / "sheet.csv", rows), "--report", first)
    assert [line["scripting"] for line in read_report(first)] == ["maybe"]

    result = invoke("run", first, "--only", "invalid", "--report", tmp_path / "second.csv")

    assert result.exit_code == 4, result.output  # nothing valid left to send
    assert [line["code"] for line in read_report(tmp_path / "second.csv")] == ["invalid-boolean"]
    assert emulator.state.access(device_id(1)) == {}


def test_an_unusable_state_directory_is_a_usage_error(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("", encoding="utf-8")
    sheet = write_sheet(tmp_path / "sheet.csv", HAPPY_ROWS)

    result = invoke("run", sheet, "--state-dir", not_a_directory, "--report", tmp_path / "r.csv")

    assert result.exit_code == 2
    assert f"cannot use the state directory {not_a_directory}" in result.output
    assert "Traceback" not in result.output
    assert emulator.state.counters.requests == 0


def test_plan_accepts_the_flags_a_script_also_passes_to_run(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path / "sheet.csv", HAPPY_ROWS)
    flags = ["--api-url", emulator.url, "--concurrency", "2", "--rate", "5", "--retries", "1"]

    result = invoke("plan", sheet, *flags, "--dry-run", "--profile", "prod")

    assert result.exit_code == 0, result.output
    assert emulator.state.counters.requests == 0


def test_an_in_process_run_leaves_logging_and_signal_handlers_as_it_found_them(
    invoke: Invoke, tmp_path: Path
) -> None:
    library = logging.getLogger("batch_share")
    before = (list(library.handlers), library.level, library.propagate)
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))

    result = invoke(
        "run", write_sheet(tmp_path / "s.csv", HAPPY_ROWS), "--report", tmp_path / "r.csv"
    )

    assert result.exit_code == 0, result.output
    assert (list(library.handlers), library.level, library.propagate) == before
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers


def test_a_dry_run_of_a_sheet_with_nothing_valid_is_refused_like_plan(
    invoke: Invoke, emulator: ServerHandle, tmp_path: Path
) -> None:
    sheet = write_sheet(tmp_path / "s.csv", [["12:34:56", "", "zed@example.com", "add"]])

    dry = invoke("run", sheet, "--dry-run", "--report", tmp_path / "r.csv")
    planned = invoke("plan", sheet)

    assert dry.exit_code == planned.exit_code == 4
    assert emulator.state.counters.requests == 0
